"""Session cookies, CSRF tokens and login rate limiting (desk.sessions, desk.ratelimit)."""

from __future__ import annotations

import time

import pytest

from desk.ratelimit import LoginLimiter
from desk.sessions import Sessions

SECRET = "s" * 40


def test_a_cookie_reads_back_as_its_session() -> None:
    sessions = Sessions(SECRET)
    cookie, issued = sessions.issue("li.na", 3)
    assert sessions.read(cookie, now=time.time()) == issued


@pytest.mark.parametrize("tamper", [
    lambda c: c[:-2] + ("AA" if not c.endswith("AA") else "BB"),  # signature changed
    lambda c: "x" + c,  # payload changed
    lambda c: "",  # none
    lambda c: "not-a-cookie",
])
def test_a_forged_cookie_is_no_session(tamper: object) -> None:

    sessions = Sessions(SECRET)
    cookie, _ = sessions.issue("li.na", 0)
    assert sessions.read(tamper(cookie), now=time.time()) is None  # type: ignore[operator]


def test_a_cookie_signed_with_another_secret_is_no_session() -> None:

    cookie, _ = Sessions("t" * 40).issue("li.na", 0)
    assert Sessions(SECRET).read(cookie, now=time.time()) is None


def test_an_expired_cookie_is_no_session(monkeypatch: pytest.MonkeyPatch) -> None:

    sessions = Sessions(SECRET, max_age=60)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 120)  # issued two minutes ago
    cookie, _ = sessions.issue("li.na", 0)
    monkeypatch.setattr(time, "time", real)
    assert sessions.read(cookie, now=real()) is None


def test_csrf_token_belongs_to_its_session() -> None:
    sessions = Sessions(SECRET)
    _, mine = sessions.issue("li.na", 0)
    _, other = sessions.issue("li.na", 0)
    token = sessions.csrf_token(mine)
    assert sessions.csrf_ok(mine, token)
    assert not sessions.csrf_ok(other, token)
    assert not sessions.csrf_ok(mine, None)
    assert not sessions.csrf_ok(mine, "")


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="32"):
        Sessions("short")


def test_five_failures_lock_the_name_for_the_window_from_any_address() -> None:
    limiter = LoginLimiter(max_failures=5, window=300)
    for i in range(5):
        assert limiter.retry_after("li.na", f"10.0.0.{i}", 100.0 + i) == 0
        limiter.failed("li.na", f"10.0.0.{i}", 100.0 + i)
    assert limiter.retry_after("LI.NA", "10.9.9.9", 110.0) == pytest.approx(290.0)
    assert limiter.retry_after("li.na", "10.9.9.9", 400.5) == 0  # the first failure left the window
    assert limiter.retry_after("wang.wei", "10.9.9.9", 110.0) == 0  # other names are not locked


def test_one_address_trying_many_names_is_locked() -> None:
    limiter = LoginLimiter(max_failures=5, window=300)
    for i in range(5):
        limiter.failed(f"user{i}", "10.0.0.1", 100.0)
    assert limiter.retry_after("someone-else", "10.0.0.1", 101.0) > 0
    assert limiter.retry_after("someone-else", "10.0.0.2", 101.0) == 0


def test_a_success_clears_the_name_but_not_the_address() -> None:
    limiter = LoginLimiter(max_failures=2, window=300)
    limiter.failed("li.na", "10.0.0.1", 100.0)
    limiter.failed("li.na", "10.0.0.1", 100.0)
    limiter.succeeded("li.na")
    assert limiter.retry_after("li.na", "10.0.0.2", 101.0) == 0
    assert limiter.retry_after("li.na", "10.0.0.1", 101.0) > 0
