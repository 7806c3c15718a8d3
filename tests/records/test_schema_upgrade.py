"""A v5 SQLite file (the last release before the metrics store) and a v6 PostgreSQL database (the
first release on PostgreSQL) upgrade in place with their rows, and end up with the same schema as
a database created fresh."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import aiosqlite
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from ivr.records.model import CallEnded, CallStarted, Disposition, EventKind, PathEvent, QueueLeg
from ivr.records.schema import MIGRATIONS
from ivr.records.store import SCHEMA_VERSION, CallStore

# What v10 added (sealed follow-up contacts and their reveals) and v11 (the agent desktop's
# tables): gone from a store of before.
V10_ADDED = ("ALTER TABLE followups DROP COLUMN contact_sealed", "DROP TABLE contact_reveals",
             "DROP TABLE wrap_ups", "DROP TABLE desk_accounts", "DROP TABLE frontline_feedback")
from survey_engine.store import SurveyStore

UTC = dt.timezone.utc


async def v5_file(path: Path) -> None:
    """What release v5 left behind: every step up to v5, one answered ACD call with a survey,
    and a pending callback."""
    async with aiosqlite.connect(path) as db:
        await db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        await db.execute("INSERT INTO schema_version (version) VALUES (5)")
        for step in MIGRATIONS[:5]:
            for statement in step:
                await db.execute(statement)
        await db.execute(
            "INSERT INTO calls (call_id, uniqueid, channel, dialed, caller, hotline, language, menu_version,"
            " config_version, started_at, ended_at, duration_ms, disposition, detail, hung_up_by, hangup_cause,"
            " hangup_cause_txt, caller_key) VALUES ('old', 'u-old', 'PJSIP/t', '4008001234', '*******8000',"
            " '4008001234', 'zh-CN', '2026.1', 'cfg-old', '2026-03-01T09:00:00.000+00:00',"
            " '2026-03-01T09:05:00.500+00:00', 300500, 'answered', 'billing: 1002', 'agent', 16, 'Normal Clearing',"
            " 'key-old')")
        # The billing queue, then (the agent sent the caller on) the flow's transfer node.
        await db.executemany(
            "INSERT INTO call_events (call_id, seq, at, kind, node, value) VALUES ('old', ?, ?, ?, ?, ?)", [
                (0, "2026-03-01T09:00:00.000+00:00", "node", "welcome", "play"),
                (1, "2026-03-01T09:00:30.000+00:00", "node", "billing-queue", "queue"),
                (2, "2026-03-01T09:00:30.000+00:00", "enqueued", "billing-queue", "billing priority=0"),
                (3, "2026-03-01T09:05:00.000+00:00", "node", "to-operator", "transfer"),
                (4, "2026-03-01T09:05:00.000+00:00", "transfer", "to-operator", "PJSIP/operator"),
            ])
        await db.execute(
            "INSERT INTO queue_legs (call_id, seq, queue, enqueued_at, left_at, outcome, answered_at, agent_id,"
            " talk_seconds, offers, priority, ended_by) VALUES ('old', 0, 'billing', '2026-03-01T09:00:30.000+00:00',"
            " '2026-03-01T09:05:00.500+00:00', 'answered', '2026-03-01T09:00:50.000+00:00', '1002', 250.5, 1, 0,"
            " 'agent')")
        await db.execute(
            "INSERT INTO callbacks (callback_id, call_id, caller, queue, language, asterisk_language, hotline,"
            " requested_at, updated_at, next_attempt_at) VALUES ('cb-x', 'x', '13700000001', 'billing', 'en-US', 'en',"
            " '4008001234', '2026-03-01T10:00:00.000+00:00', '2026-03-01T10:00:00.000+00:00',"
            " '2026-03-01T10:00:00.000+00:00')")
        await db.execute(
            "INSERT INTO survey_responses (response_id, call_id, channel, survey, status, hotline, queue, agent,"
            " language, menu_version, menu_path, hung_up_by, caller_key, offered_at) VALUES ('r-old', 'old', 'voice',"
            " 'standard', 'completed', '4008001234', 'billing', '1002', 'zh-CN', '2026.1', 'billing-queue', 'agent',"
            " 'key-old', '2026-03-01T09:05:01.000+00:00')")
        await db.execute(
            "INSERT INTO survey_answers (response_id, seq, question, kind, value, attempts, answered_at)"
            " VALUES ('r-old', 0, 'speed', 'scale', 5, 1, '2026-03-01T09:05:04.000+00:00')")
        await db.commit()


async def assert_v7_filled_in(store: CallStore) -> None:
    """v7 worked out, from the events of the one call (welcome, the billing queue answered by
    1002, then the transfer node), what the exports read: its path and the leg's transfer."""
    (summary,) = [call async for batch in store.iter_call_summaries() for call in batch]
    assert (summary.node_path, summary.queues, summary.agent_id) == (
        "welcome>billing-queue>to-operator", ("billing",), "1002")
    (stored,) = [leg async for batch in store.iter_legs() for leg in batch]
    assert (stored.queue, stored.transferred) == ("billing", True)


async def test_a_v5_file_upgrades_in_place_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "calls.sqlite"
    await v5_file(path)
    store = await CallStore.open(path)
    surveys = SurveyStore(store.engine)
    try:
        row = await store.get_call("old")
        assert row is not None
        assert (row.disposition, row.duration_ms, row.hangup_cause, row.caller) == (
            Disposition.ANSWERED, 300500, 16, "*******8000")
        assert row.ended_at == dt.datetime(2026, 3, 1, 9, 5, 0, 500000, tzinfo=UTC)
        assert [e.kind for e in row.events] == [EventKind.NODE, EventKind.NODE, EventKind.ENQUEUED, EventKind.NODE,
                                                EventKind.TRANSFER]
        (leg,) = row.queue_legs
        # v6 column: unknown. v9 left the talk: no longer than the answer (09:00:50) to the end.
        assert (leg.agent_id, leg.talk_seconds, leg.wrap_seconds) == ("1002", 250.5, None)
        assert (row.agent_answered_at, row.bridged_at, row.hold_seconds) == (None, None, 0.0)
        assert [c.callback_id for c in await store.callbacks()] == ["cb-x"]
        (response,) = await surveys.responses_for_call("old")
        assert [(a.question, a.value) for a in response.answers] == [("speed", 5)]
        assert await store.agent_events() == []
        await assert_v7_filled_in(store)
    finally:
        await store.close()
    async with aiosqlite.connect(path) as db:
        cursor = await db.execute("SELECT version FROM schema_version")
        assert await cursor.fetchall() == [(SCHEMA_VERSION,)] == [(11,)]


async def schema_of(path: Path) -> dict[str, object]:
    """Each table's columns (name, type affinity, not null, default, key) and each index's columns.
    A key column counts as not null either way (old releases left SQLite's NULL keys possible)."""
    async with aiosqlite.connect(path) as db:
        cursor = await db.execute("SELECT name, type FROM sqlite_master WHERE type IN ('table', 'index') ORDER BY name")
        schema: dict[str, object] = {}
        for name, kind in await cursor.fetchall():
            if kind == "table":
                info = await (await db.execute(f"PRAGMA table_info({name})")).fetchall()
                schema[name] = sorted(
                    (col, "TEXT" if "CHAR" in ctype or ctype == "TEXT" else "REAL" if ctype in ("REAL", "FLOAT")
                     else "INTEGER", notnull or pk, str(default).strip("'") if default is not None else None, pk)
                    for _cid, col, ctype, notnull, default, pk in info)
            elif not name.startswith("sqlite_autoindex"):
                info = await (await db.execute(f"PRAGMA index_info({name})")).fetchall()
                unique = (await (await db.execute(
                    "SELECT sql LIKE 'CREATE UNIQUE%' FROM sqlite_master WHERE name = ?", (name,))).fetchone())
                schema[name] = ([col for _seq, _cid, col in info], unique)
        return schema


async def test_a_fresh_database_gets_the_schema_an_upgraded_one_ends_with(tmp_path: Path) -> None:
    old, fresh = tmp_path / "old.sqlite", tmp_path / "fresh.sqlite"
    await v5_file(old)
    for path in (old, fresh):
        await (await CallStore.open(path)).close()
    upgraded = await schema_of(old)
    assert upgraded == await schema_of(fresh)
    assert ("hold_seconds", "REAL", 1, "0", 0) in upgraded["calls"]  # type: ignore[operator]
    assert upgraded["agent_events_at"] == (["at"], (0,))


async def columns_of(conn: AsyncConnection) -> dict[str, list[tuple[str, str, str, str | None]]]:
    """Each PostgreSQL table's columns: name, type, nullable, default."""
    result = await conn.exec_driver_sql(
        "SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns"
        " WHERE table_schema = current_schema() ORDER BY table_name, column_name")
    tables: dict[str, list[tuple[str, str, str, str | None]]] = {}
    for table, *column in result:
        tables.setdefault(table, []).append(tuple(column))  # type: ignore[arg-type]
    return tables


async def test_a_v6_postgresql_database_upgrades_in_place_and_fills_in_what_v7_keeps(
        pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    at = dt.datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    second = dt.timedelta(seconds=1)
    store = await CallStore.open(pg_url)
    try:
        async with store.engine.begin() as conn:
            fresh = await columns_of(conn)
        store.call_started(CallStarted("old", "u-old", "PJSIP/t", "4008001234", "13800138000", "4008001234",
                                       "zh-CN", "2026.1", "cfg-old", at))
        leg = QueueLeg("billing", at + 30 * second, at + 300 * second, "answered", answered_at=at + 40 * second,
                       agent_id="1002", talk_seconds=260.0, offers=1, ended_by="agent")
        store.call_ended(CallEnded("old", at + 300 * second, Disposition.TRANSFERRED, "", "zh-CN", None, None, None,
                                   "agent", (
                                       PathEvent(at, EventKind.NODE, "welcome", "play"),
                                       PathEvent(at + 30 * second, EventKind.NODE, "billing-queue", "queue"),
                                       PathEvent(at + 30 * second, EventKind.ENQUEUED, "billing-queue", "billing"),
                                       PathEvent(at + 300 * second, EventKind.NODE, "to-operator", "transfer"),
                                       PathEvent(at + 300 * second, EventKind.TRANSFER, "to-operator", "PJSIP/op"),
                                   ), (leg,)))
        await store.flush()
        # Back to what a v6 release left: no path, no transfer flag, no controller.
        async with store.engine.begin() as conn:
            for ddl in ("ALTER TABLE calls DROP COLUMN node_path", "ALTER TABLE calls DROP COLUMN controller",
                        "ALTER TABLE calls DROP COLUMN bridge_seconds",
                        "ALTER TABLE queue_legs DROP COLUMN transferred", "ALTER TABLE callbacks DROP COLUMN controller",
                        *V10_ADDED, "UPDATE schema_version SET version = 6"):
                await conn.exec_driver_sql(ddl)
    finally:
        await store.close()

    with caplog.at_level(logging.WARNING, logger="ivr.records.schema"):
        store = await CallStore.open(pg_url)
    # The upgrade can take minutes on a large store: the log says why the start is slow.
    assert "filling in the menu path of 1 calls" in caplog.text and "1 calls filled in" in caplog.text
    try:
        async with store.engine.begin() as conn:
            assert await columns_of(conn) == fresh
            assert (await conn.exec_driver_sql("SELECT version FROM schema_version")).all() == [(SCHEMA_VERSION,)]
        await assert_v7_filled_in(store)
    finally:
        await store.close()


async def test_a_v8_store_gets_talk_time_from_the_bridge_not_the_callers_time_since_its_answer(
        target: Path | str, caplog: pytest.LogCaptureFixture) -> None:
    """Up to v8 talk_seconds was ANSWEREDTIME: the caller's time since the IVR answered it. v9
    recomputes it from the AMI bridge where there is one, else cuts it to the answer-to-end time;
    without AMI that keeps the agent's ring time (it cannot be told apart), and says so."""
    t0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

    def at(seconds: float) -> dt.datetime:
        return t0 + dt.timedelta(seconds=seconds)

    store = await CallStore.open(target)
    try:
        # Each caller spent 60 s in the IVR and the queue, then talked; ANSWEREDTIME counts all of it.
        calls = {  # call: (answered_at, talk_seconds as v8 stored it, left_at)
            "bridged": (at(62), 120.0, at(120)),  # AMI: DialEnd at 62, BridgeEnter at 62.25
            "ami-answer": (at(70), 131.0, at(130)),  # AMI saw the answer but not the bridge
            "no-ami": (at(55), 140.0, at(140)),  # the controller's answer time: the Dial's start
            "short": (at(55), 20.0, at(140)),  # not inflated (Dial answered the caller): kept
        }
        for call_id, (answered_at, talk, left_at) in calls.items():
            store.call_started(CallStarted(call_id, f"u-{call_id}", "PJSIP/t", "4008001234", "13800138000",
                                           "4008001234", "en-US", "2026.1", "cfg", t0))
            leg = QueueLeg("billing", at(50), left_at, "answered", answered_at=answered_at, agent_id="1002",
                           talk_seconds=talk, offers=1, ended_by="agent")
            store.call_ended(CallEnded(call_id, left_at, Disposition.ANSWERED, "", "en-US", None, None, None, "agent",
                                       (), (leg,)))
        store.set_ami_times("u-bridged", agent_answered_at=at(62), bridged_at=at(62.25))
        store.set_ami_times("u-ami-answer", agent_answered_at=at(70))
        await store.flush()
        async with store.engine.begin() as conn:  # back to what v8 left
            for ddl in ("ALTER TABLE calls DROP COLUMN bridge_seconds", *V10_ADDED, "UPDATE schema_version SET version = 8"):
                await conn.exec_driver_sql(ddl)
            for call_id, (_, talk, _) in calls.items():
                await conn.exec_driver_sql(
                    "UPDATE queue_legs SET talk_seconds = %s WHERE call_id = '%s'" % (talk, call_id))
    finally:
        await store.close()

    with caplog.at_level(logging.WARNING, logger="ivr.records.schema"):
        store = await CallStore.open(target)
    try:
        talk = {}
        for call_id in calls:
            row = await store.get_call(call_id)
            assert row is not None
            talk[call_id] = row.queue_legs[0].talk_seconds
        assert talk == {"bridged": 57.75, "ami-answer": 60.0, "no-ami": 85.0, "short": 20.0}
    finally:
        await store.close()
    assert "1 recomputed from the AMI bridge, 1 cut to the AMI answer-to-end time, 1 cut to the Dial's length" \
        in caplog.text
    assert "ring time stays in" in caplog.text
