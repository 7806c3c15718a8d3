"""Signed feedback links: what a genuine link carries, and every way a link is refused."""

from __future__ import annotations

import datetime as dt
import string

import pytest
from itsdangerous import URLSafeTimedSerializer

from survey_engine.config import WebForm
from survey_engine.links import (
    SALT,
    FeedbackLinks,
    LinkExpired,
    LinkInvalid,
    SecretError,
    SignedCall,
    secret_from_env,
)

T0 = dt.datetime(2026, 11, 25, 9, 30, 15, tzinfo=dt.timezone.utc)
SECRET = "k" * 32
CALL = "1764063015.42-7f3a"


def links(secret: str = SECRET, days: float = 7) -> FeedbackLinks:
    return FeedbackLinks(secret, base_url="https://feedback.example.com/", link_days=days)


def token_of(url: str) -> str:
    return url.rsplit("/f/", 1)[1]


def test_a_link_is_the_base_url_then_f_then_a_token_that_gives_back_the_call_and_language() -> None:
    url = links().link_for(CALL, "zh-CN", T0)
    assert url.startswith("https://feedback.example.com/f/")
    assert "/" not in token_of(url) and "?" not in token_of(url)
    assert links().verify(token_of(url), T0 + dt.timedelta(hours=3)) == SignedCall(CALL, "zh-CN", T0)


def test_any_one_character_changed_anywhere_in_the_token_is_refused_as_invalid() -> None:
    token = links().token(CALL, "en-US", T0)
    alphabet = string.ascii_letters + string.digits + "-_."
    for position, original in enumerate(token):
        for replacement in (alphabet[(alphabet.index(original) + 1) % len(alphabet)], "A" if original != "A" else "B"):
            tampered = token[:position] + replacement + token[position + 1:]
            with pytest.raises(LinkInvalid):
                links().verify(tampered, T0)


def test_a_token_cut_short_or_lengthened_is_invalid() -> None:
    token = links().token(CALL, "en-US", T0)
    for changed in (token[:-1], token[:20], token + "A", token + "=", "x" + token):
        with pytest.raises(LinkInvalid):
            links().verify(changed, T0)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "...", "中文.中文.中文", "A" * 5000, "%00", "../../etc/passwd"])
def test_garbled_tokens_are_invalid(garbage: str) -> None:
    with pytest.raises(LinkInvalid):
        links().verify(garbage, T0)


def test_a_link_signed_with_another_key_is_invalid() -> None:
    token = links(secret="another-key-of-32-characters-xx").token(CALL, "zh-CN", T0)
    with pytest.raises(LinkInvalid):
        links().verify(token, T0)


def test_a_token_signed_with_the_same_key_for_another_purpose_is_invalid() -> None:
    elsewhere = URLSafeTimedSerializer(SECRET, salt="password-reset").dumps([CALL, "zh-CN"])
    with pytest.raises(LinkInvalid):
        links().verify(elsewhere, dt.datetime.now(dt.timezone.utc))


def test_a_genuinely_signed_payload_that_is_not_a_call_and_language_is_invalid() -> None:
    for payload in ({"call": CALL}, [CALL], [CALL, ""], [CALL, 7], "call"):
        token = URLSafeTimedSerializer(SECRET, salt=SALT).dumps(payload)
        with pytest.raises(LinkInvalid):
            links().verify(token, dt.datetime.now(dt.timezone.utc))


def test_a_link_older_than_link_days_is_expired_and_still_says_its_language() -> None:
    token = links(days=7).token(CALL, "zh-CN", T0)
    assert links(days=7).verify(token, T0 + dt.timedelta(days=7)).call_id == CALL  # the last valid second
    with pytest.raises(LinkExpired) as expired:
        links(days=7).verify(token, T0 + dt.timedelta(days=7, seconds=1))
    assert expired.value.call == SignedCall(CALL, "zh-CN", T0)


def test_a_tampered_old_link_is_invalid_not_expired() -> None:
    token = links().token(CALL, "zh-CN", T0)
    tampered = token[:5] + ("B" if token[5] != "B" else "C") + token[6:]
    with pytest.raises(LinkInvalid):
        links().verify(tampered, T0 + dt.timedelta(days=30))


def test_link_days_comes_from_the_web_settings() -> None:
    settings = WebForm(base_url="http://127.0.0.1:8088", link_days=0.5)
    signer = FeedbackLinks.from_settings(settings, SECRET)
    assert signer.link_for(CALL, "en-US", T0).startswith("http://127.0.0.1:8088/f/")
    with pytest.raises(LinkExpired):
        signer.verify(signer.token(CALL, "en-US", T0), T0 + dt.timedelta(hours=13))


def test_the_secret_comes_from_the_named_environment_variable() -> None:
    settings = WebForm(secret_env="SHOP_FEEDBACK_KEY")
    assert secret_from_env(settings, {"SHOP_FEEDBACK_KEY": SECRET}) == SECRET
    with pytest.raises(SecretError, match="SHOP_FEEDBACK_KEY"):
        secret_from_env(settings, {"IVR_FEEDBACK_SECRET": SECRET})
    with pytest.raises(SecretError, match="at least 16"):
        secret_from_env(settings, {"SHOP_FEEDBACK_KEY": "short"})
