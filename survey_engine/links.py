"""Signed per-call links to the web feedback form: <base_url>/f/<token>.

The token is the call id and the prompt language to show the form in, signed with
itsdangerous (HMAC over the payload and the signing time). Whoever holds a link may answer
for that one call and nothing else; a link changed by one character does not verify. The
time is always given by the caller, so that expiry is tested without waiting.
"""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer

from survey_engine.config import WebForm

# A salt of its own: a token signed with the same key for another purpose never verifies here.
SALT = "ivr400.survey_engine.feedback-link.v1"
# Shorter keys are guessable offline from one link (the HMAC is public in every token).
MIN_SECRET_LENGTH = 16
PATH_PREFIX = "/f/"


@dataclass(frozen=True)
class SignedCall:
    """What a valid link says: which call, in which language, signed when."""

    call_id: str
    language: str
    issued_at: dt.datetime


class LinkError(Exception):
    """A link the form must refuse."""


class LinkInvalid(LinkError):
    """Tampered, truncated, garbled, or signed with another key or salt."""


class LinkExpired(LinkError):
    """Genuine but older than `link_days`. The payload is trustworthy (the signature holds), so
    the refusal can still be shown in the call's language."""

    def __init__(self, call: SignedCall, age: dt.timedelta) -> None:
        super().__init__(f"link for call {call.call_id} is {age} old")
        self.call = call
        self.age = age


class SecretError(Exception):
    """The signing key is missing or too short."""


def secret_from_env(settings: WebForm, environ: Mapping[str, str]) -> str:
    """The signing key from the environment variable `settings.secret_env` names."""
    secret = environ.get(settings.secret_env, "")
    if not secret:
        raise SecretError(f"the environment variable {settings.secret_env} (surveys.yaml web.secret_env) is not set: "
                          "it holds the key that signs feedback links")
    if len(secret) < MIN_SECRET_LENGTH:
        raise SecretError(f"{settings.secret_env} is {len(secret)} characters long: use at least {MIN_SECRET_LENGTH} "
                          "random characters (e.g. `openssl rand -hex 32`)")
    return secret


class _SignedAt(TimestampSigner):
    """A TimestampSigner that signs with the time it is given instead of reading the clock."""

    def __init__(self, *args: Any, issued_at: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._issued_at = issued_at

    def get_timestamp(self) -> int:
        return self._issued_at


class FeedbackLinks:
    def __init__(self, secret: str, *, base_url: str, link_days: float) -> None:
        self._secret = secret
        self._base_url = base_url.rstrip("/")
        self._max_age = dt.timedelta(days=link_days)

    @classmethod
    def from_settings(cls, settings: WebForm, secret: str) -> FeedbackLinks:
        return cls(secret, base_url=settings.base_url, link_days=settings.link_days)

    def token(self, call_id: str, language: str, now: dt.datetime) -> str:
        return self._sign([call_id, language], now)

    def _sign(self, payload: object, now: dt.datetime) -> str:
        serializer = URLSafeTimedSerializer(
            self._secret, salt=SALT, signer=_SignedAt, signer_kwargs={"issued_at": int(now.timestamp())}
        )
        return serializer.dumps(payload)

    def link_for(self, call_id: str, language: str, now: dt.datetime) -> str:
        return self._base_url + PATH_PREFIX + self.token(call_id, language, now)

    def verify(self, token: str, now: dt.datetime) -> SignedCall:
        """The call a token is for; LinkInvalid or LinkExpired otherwise."""
        serializer = URLSafeTimedSerializer(self._secret, salt=SALT)
        try:
            # No max_age here: itsdangerous would compare against the wall clock, not `now`.
            payload, issued_at = serializer.loads(token, return_timestamp=True)
        except BadSignature as exc:  # also BadPayload, BadTimeSignature
            raise LinkInvalid(str(exc)) from exc
        if (
            not isinstance(payload, list) or len(payload) != 2
            or not all(isinstance(part, str) and part for part in payload)
        ):
            raise LinkInvalid("the signed payload is not [call id, language]")
        # Base64 ignores the spare low bits of a last character, so a few one-character changes
        # still verify; only the exact token we would issue is accepted.
        if not hmac.compare_digest(self._sign(payload, issued_at).encode(), token.encode()):
            raise LinkInvalid("not the token as issued")
        call = SignedCall(call_id=payload[0], language=payload[1], issued_at=issued_at)
        age = now - issued_at
        if age > self._max_age:
            raise LinkExpired(call, age)
        return call
