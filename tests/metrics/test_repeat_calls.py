"""Repeat calls (the first-call-resolution proxy) as the store finds them, on both backends,
against the hand-counted repeats of the hand-made calls (handcalls.REPEATED).

PostgreSQL: a database of this module's own (tests/pgkit.py); when the server cannot be
reached the test skips, except under CI=true, where it fails."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

import pgkit
from exportkit import write_handcalls
from handcalls import REPEATED, sh
from ivr.records.store import CallStore


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    url = pgkit.create_database()
    yield url
    pgkit.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    if request.param == "sqlite":
        return tmp_path / "calls.sqlite"
    url: str = request.getfixturevalue("pg_url")
    pgkit.reset(url)
    return url


async def test_repeats_are_counted_on_the_earlier_call_of_the_same_caller_and_hotline(target: Path | str) -> None:
    await write_handcalls(target)
    store = await CallStore.open(target)
    try:
        assert await store.repeated_calls(None, None, 24) == REPEATED
        # c12's caller came back 24 h 1.5 min later: a repeat within 25 hours.
        assert await store.repeated_calls(None, None, 25) == REPEATED | {"c12"}
        # Only the calls started in the window are listed; their later calls may start after it.
        day = sh(0, 0).astimezone(dt.timezone.utc), sh(0, 0, day=26).astimezone(dt.timezone.utc)
        assert await store.repeated_calls(*day, 25) == REPEATED | {"c12"}
        assert await store.repeated_calls(sh(23, 0).astimezone(dt.timezone.utc), None, 24) == {"c14"}
    finally:
        await store.close()
