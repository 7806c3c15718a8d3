"""Several controllers on one PostgreSQL store: a controller that starts again closes the calls
and frees the callbacks it left open, never those of a controller still running. A SQLite
file has one controller, which owns every row in it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ivr.records.model import CallbackRequest, CallStarted, Disposition
from ivr.records.store import CallStore

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 3, 16, 10, 0, 0, tzinfo=UTC)


def at(seconds: float) -> dt.datetime:
    return NOW + dt.timedelta(seconds=seconds)


def started(call_id: str, when: dt.datetime = NOW) -> CallStarted:
    return CallStarted(call_id, f"u-{call_id}", f"PJSIP/trunk-{call_id}", "4008001234", "13800138000", "4008001234",
                       "zh-CN", "2026.1", "cfg-test", when)


def request(call_id: str) -> CallbackRequest:
    return CallbackRequest(f"cb-{call_id}", call_id, "13700000001", "billing", "en-US", "en", "4008001234", NOW)


async def crashed(target: Path | str, controller: str | None, *calls: CallStarted) -> None:
    """`controller` started these calls and a callback per call, then stopped before they ended."""
    store = await CallStore.open(target, controller=controller)
    try:
        for call in calls:
            store.call_started(call)
            assert await store.add_callback(request(call.call_id))
            assert await store.claim_callback(f"cb-{call.call_id}", call.started_at) is not None
    finally:
        await store.close()


async def open_calls(store: CallStore) -> list[str]:
    return sorted([c.call_id async for c in store.iter_calls() if c.disposition is None])


async def dialing(store: CallStore) -> list[str]:
    return sorted(r.call_id for r in await store.callbacks() if r.status == "dialing")


async def test_a_restarted_controller_leaves_the_live_calls_of_the_others_alone(pg_url: str) -> None:
    await crashed(pg_url, "ivr-a", started("a1"))
    await crashed(pg_url, "ivr-b", started("b1"))
    store = await CallStore.open(pg_url, controller="ivr-a")
    try:
        assert await store.recover_interrupted(at(60)) == 1
        assert await store.recover_callbacks(at(60)) == 1
        row = await store.get_call("a1")
        assert row is not None and row.disposition is Disposition.INTERRUPTED
        assert await open_calls(store) == ["b1"]  # ivr-b's caller is still in its menu
        assert await dialing(store) == ["b1"]  # and ivr-b is still dialing its callback
    finally:
        await store.close()


async def test_what_a_controller_that_never_came_back_left_open_is_closed_a_day_later(pg_url: str) -> None:
    await crashed(pg_url, "ivr-gone", started("old", at(-86_400 - 1)), started("recent", at(-3_600)))
    store = await CallStore.open(pg_url, controller="ivr-a")
    try:
        assert await store.recover_interrupted(NOW) == 1
        assert await open_calls(store) == ["recent"]
        # A callback is dialed within minutes: one left dialing for an hour is freed.
        assert await store.recover_callbacks(NOW) == 1
        assert await dialing(store) == ["recent"]
    finally:
        await store.close()


async def test_rows_written_before_controllers_were_named_are_anyones(pg_url: str) -> None:
    await crashed(pg_url, None, started("legacy"))
    store = await CallStore.open(pg_url, controller="ivr-a")
    try:
        assert (await store.recover_interrupted(at(60)), await store.recover_callbacks(at(60))) == (1, 1)
    finally:
        await store.close()


async def test_a_sqlite_file_has_one_controller_whatever_its_name_was(tmp_path: Path) -> None:
    target = tmp_path / "calls.sqlite"
    await crashed(target, "container-7f3a", started("c1"))
    store = await CallStore.open(target, controller="container-91bc")  # a new host name after a restart
    try:
        assert (await store.recover_interrupted(at(60)), await store.recover_callbacks(at(60))) == (1, 1)
        assert await open_calls(store) == [] and await dialing(store) == []
    finally:
        await store.close()
