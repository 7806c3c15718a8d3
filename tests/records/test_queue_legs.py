"""Call records of ACD calls: queue legs, the schema step that adds them, and caller history."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import aiosqlite
import pytest

from ivr.records.masking import Policy
from ivr.records.model import CallEnded, CallStarted, Disposition, EventKind, PathEvent, QueueLeg
from ivr.records.store import MIGRATIONS, SCHEMA_VERSION, CallStore, caller_key

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 3, 16, 10, 0, 0, tzinfo=UTC)
CALLER = "+86 138 0013 8000"
DAY = dt.timedelta(days=1)


def at(seconds: float, base: dt.datetime = NOW) -> dt.datetime:
    return base + dt.timedelta(seconds=seconds)


def started(call_id: str, caller: str = CALLER, when: dt.datetime = NOW) -> CallStarted:
    return CallStarted(call_id, f"u-{call_id}", f"PJSIP/trunk-{call_id}", "4008001234", caller, "4008001234",
                       "zh-CN", "2026.1", "cfg-test", when)


def ended(call_id: str, when: dt.datetime, legs: tuple[QueueLeg, ...] = (), disposition: Disposition = Disposition.ANSWERED,
          hung_up_by: str | None = "agent") -> CallEnded:
    return CallEnded(call_id, when, disposition, "", "zh-CN", None, None, None, hung_up_by, (), legs)


def answered(agent: str, talk: float, start: dt.datetime) -> QueueLeg:
    return QueueLeg("general", start, at(5 + talk, start), "answered", answered_at=at(5, start), agent_id=agent,
                    talk_seconds=talk, offers=1, ended_by="caller")


# --- queue legs ---------------------------------------------------------------------------------------


async def test_call_overflowed_from_billing_then_answered_by_1003_round_trips(target: Path | str) -> None:
    billing = QueueLeg(
        queue="billing", enqueued_at=at(30), left_at=at(210), outcome="overflowed", offers=2,
        overflow="timeout", first_estimate=45.0, priority=10,
    )
    general = QueueLeg(
        queue="general", enqueued_at=at(210), left_at=at(337.25), outcome="answered", answered_at=at(222.5),
        agent_id="1003", talk_seconds=114.75, offers=1, first_estimate=20.0, priority=10, ended_by="agent",
        wrap_seconds=15.0,
    )
    events = (
        PathEvent(at(30), EventKind.ENQUEUED, "billing-queue", "billing priority=10 vip"),
        PathEvent(at(210), EventKind.OVERFLOW, "billing-queue", "timeout -> general"),
        PathEvent(at(222.5), EventKind.CONNECTED, "billing-queue", "1003"),
    )
    store = await CallStore.open(target, privacy_policy="mask", salt="s")
    try:
        store.call_started(started("c1"))
        store.call_ended(CallEnded("c1", at(337.25), Disposition.ANSWERED, "general: 1003", "zh-CN", at(2), at(8),
                                   "rec.wav", "agent", events, (billing, general)))
        await store.flush()
        row = await store.get_call("c1")
        assert row is not None
        assert row.queue_legs == (billing, general)
        assert row.events == events
        assert row.disposition is Disposition.ANSWERED and row.hung_up_by == "agent"
        assert [leg.waited for leg in row.queue_legs] == [180.0, 12.5]
        assert [r.queue_legs async for r in store.iter_calls()] == [(billing, general)]
        assert row.caller == "*" * (len(CALLER) - 4) + "8000"
    finally:
        await store.close()


async def test_legs_are_indexed_by_queue_and_agent(tmp_path: Path) -> None:
    store = await CallStore.open(tmp_path / "calls.sqlite")
    await store.close()
    async with aiosqlite.connect(tmp_path / "calls.sqlite") as db:

        async def columns(index: str) -> list[str]:
            cursor = await db.execute(f"PRAGMA index_info({index})")
            return [name for _seqno, _cid, name in await cursor.fetchall()]

        cursor = await db.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'calls'")
        call_indexes = {name for (name,) in await cursor.fetchall()}
        assert await columns("queue_legs_queue_enqueued") == ["queue", "enqueued_at"]
        assert await columns("queue_legs_agent") == ["agent_id"]
    assert "calls_caller_key" in call_indexes


async def test_a_crash_still_closes_open_calls_as_interrupted(target: Path | str) -> None:
    store = await CallStore.open(target)
    store.call_started(started("open"))
    await store.close()  # the end never came: the controller stopped
    store = await CallStore.open(target)
    try:
        assert await store.recover_interrupted(at(60.25)) == 1
        row = await store.get_call("open")
        assert row is not None and row.disposition is Disposition.INTERRUPTED and row.queue_legs == ()
        assert (row.ended_at, row.duration_ms) == (at(60.25), 60250)
    finally:
        await store.close()


# --- schema migration -----------------------------------------------------------------------------------


async def test_migrating_a_v2_database_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "calls.sqlite"
    async with aiosqlite.connect(path) as db:  # what the previous release created
        await db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        await db.execute("INSERT INTO schema_version (version) VALUES (2)")
        for step in MIGRATIONS[:2]:
            for statement in step:
                await db.execute(statement)
        await db.execute(
            "INSERT INTO calls (call_id, uniqueid, channel, dialed, caller, hotline, language, menu_version,"
            " config_version, started_at, ended_at, duration_ms, disposition, detail, hung_up_by, hangup_cause,"
            " hangup_cause_txt) VALUES ('old', 'u-old', 'PJSIP/t', '4008001234', '*********8000', '4008001234',"
            " 'zh-CN', '2026.1', 'cfg-old', '2026-03-01T09:00:00.000+00:00', '2026-03-01T09:02:00.000+00:00',"
            " 120000, 'queued', 'billing', 'caller', 16, 'Normal Clearing')"
        )
        await db.execute(
            "INSERT INTO call_events (call_id, seq, at, kind, node, value)"
            " VALUES ('old', 0, '2026-03-01T09:00:01.000+00:00', 'queue', 'billing-queue', 'billing')"
        )
        await db.commit()
    assert SCHEMA_VERSION > 2  # every step after v2 runs on open
    store = await CallStore.open(path)
    try:
        row = await store.get_call("old")
        assert row is not None
        assert (row.caller, row.disposition, row.duration_ms, row.hangup_cause) == (
            "*********8000", Disposition.QUEUED, 120000, 16
        )
        assert [e.kind for e in row.events] == [EventKind.QUEUE] and row.queue_legs == ()
        # The new schema works next to the old rows.
        store.call_started(started("new"))
        store.call_ended(ended("new", at(300), (answered("1003", 100, at(100)),)))
        await store.flush()
        assert [r.call_id async for r in store.iter_calls()] == ["old", "new"]
        # An old row has no caller key: history() cannot attribute it, and does not guess from the mask.
        assert [p.ended_at for p in await store.history(CALLER, NOW - 30 * DAY)] == [at(300).timestamp()]
    finally:
        await store.close()
    async with aiosqlite.connect(path) as db:
        cursor = await db.execute("SELECT version FROM schema_version")
        assert await cursor.fetchall() == [(SCHEMA_VERSION,)]


# --- caller history ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["mask", "hash", "full"])
async def test_history_finds_a_callers_past_calls_whatever_the_privacy_policy(target: Path | str, policy: Policy) -> None:
    store = await CallStore.open(target, privacy_policy=policy, salt="pepper")
    try:
        last_week, yesterday, long_ago = NOW - 7 * DAY, NOW - DAY, NOW - 40 * DAY
        store.call_started(started("week", "13800138000", last_week))
        store.call_ended(ended("week", at(200, last_week), (answered("1001", 150, last_week),)))
        store.call_started(started("yesterday", "008613800138000", yesterday))
        store.call_ended(ended("yesterday", at(60, yesterday), disposition=Disposition.SELF_SERVED, hung_up_by="caller"))
        store.call_started(started("old", "13800138000", long_ago))  # before `since`
        store.call_ended(ended("old", at(300, long_ago), (answered("1002", 250, long_ago),)))
        store.call_started(started("other", "+86 139 0013 8000", last_week))  # same last 4 digits, someone else
        store.call_ended(ended("other", at(200, last_week), (answered("1004", 150, last_week),)))
        store.call_started(started("now", CALLER, NOW))  # still open: the call asking
        await store.flush()

        past = await store.history(CALLER, NOW - 30 * DAY)
        assert [(p.ended_at, p.agent_id, p.talk_seconds) for p in past] == [
            (at(60, yesterday).timestamp(), None, 0.0),
            (at(200, last_week).timestamp(), "1001", 150.0),
        ]
        assert {p.caller for p in past} == {CALLER}
        # `since` as epoch seconds, as routing.service passes it; the boundary is inclusive.
        assert len(await store.history("13800138000", at(200, last_week).timestamp())) == 2
        assert len(await store.history("13800138000", at(201, last_week).timestamp())) == 1
        assert await store.history("anonymous", NOW - 30 * DAY) == []
    finally:
        await store.close()


async def test_history_of_a_masked_caller_found_by_number_not_by_mask(target: Path | str) -> None:
    store = await CallStore.open(target, privacy_policy="mask", salt="pepper")
    try:
        store.call_started(started("mine", "13800138000", NOW - DAY))
        store.call_ended(ended("mine", at(400, NOW - DAY), (answered("1003", 320, NOW - DAY),)))
        store.call_started(started("theirs", "13900138000", NOW - DAY))
        store.call_ended(ended("theirs", at(500, NOW - DAY), (answered("1004", 420, NOW - DAY),)))
        await store.flush()
        rows = {r.call_id: r.caller async for r in store.iter_calls()}
        assert rows["mine"] == rows["theirs"] == "*******8000"  # the stored numbers cannot tell them apart
        past = await store.history("+8613800138000", NOW - 30 * DAY)
        assert [(p.agent_id, p.talk_seconds) for p in past] == [("1003", 320.0)]
    finally:
        await store.close()


def test_caller_key_normalises_prefixes_and_depends_on_the_salt() -> None:
    key = caller_key("13800138000", "s")
    assert key is not None and len(key) == 64
    for spelled in ("+86 138 0013 8000", "008613800138000", "8613800138000", "013800138000"):
        assert caller_key(spelled, "s") == key
    assert caller_key("13800138000", "t") != key
    assert caller_key("13900138000", "s") != key
    assert caller_key("anonymous", "s") is None and caller_key("", "s") is None
