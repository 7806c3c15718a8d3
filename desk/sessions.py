"""Session cookies and CSRF tokens (pure: no I/O, the clock is passed in).

A session is a cookie signed with the desk's secret (itsdangerous, HMAC-SHA256 with a
timestamp): the username, the account's `session_epoch` when it was issued, and a random
nonce. Nothing is kept server-side, so every controller sharing the secret accepts it and
a controller reload keeps everyone logged in; a password change or a disable raises the
account's epoch, which refuses the older cookies.

The CSRF token of a session is an HMAC of its nonce: forms carry it in a hidden field and a
POST without the right one is refused. A cross-site page cannot read it (the cookie is
HttpOnly and SameSite=Strict besides, so a browser does not send it cross-site at all).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

COOKIE = "ivr_desk"
MAX_AGE = 12 * 3600  # seconds: a long shift; then the agent logs in again


@dataclass(frozen=True)
class Session:
    username: str
    epoch: int
    nonce: str


class Sessions:
    def __init__(self, secret: str, *, max_age: int = MAX_AGE) -> None:
        if len(secret) < 32:
            raise ValueError("the desk's session secret is shorter than 32 characters")
        self._serializer = URLSafeTimedSerializer(secret, salt="ivr-desk-session")
        self._csrf_key = hashlib.sha256(b"ivr-desk-csrf\0" + secret.encode()).digest()
        self.max_age = max_age

    def issue(self, username: str, epoch: int) -> tuple[str, Session]:
        session = Session(username, epoch, secrets.token_urlsafe(16))
        return self._serializer.dumps({"u": username, "e": epoch, "n": session.nonce}), session

    def read(self, cookie: str | None, *, now: float) -> Session | None:
        """The session a cookie carries; None if it is missing, forged, malformed or expired."""
        if not cookie:
            return None
        try:
            payload, signed_at = self._serializer.loads(cookie, max_age=self.max_age, return_timestamp=True)
        except (BadSignature, SignatureExpired):
            return None
        if signed_at.timestamp() > now + 60:  # from the future: a clock far off, or forged
            return None
        if not isinstance(payload, dict):
            return None
        username, epoch, nonce = payload.get("u"), payload.get("e"), payload.get("n")
        if not isinstance(username, str) or not isinstance(epoch, int) or not isinstance(nonce, str):
            return None
        return Session(username, epoch, nonce)

    def csrf_token(self, session: Session) -> str:
        return hmac.new(self._csrf_key, session.nonce.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(self.csrf_token(session), token)
