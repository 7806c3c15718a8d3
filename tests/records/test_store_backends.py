"""SQLite and PostgreSQL hold the same records: the same calls, survey answers and presence
changes written to both read back identical, and the export read path streams in batches."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import ivr.records.store as store_module
from ivr.records.model import (
    FUNNEL_KINDS,
    AgentEvent,
    CallEnded,
    CallRow,
    CallStarted,
    Disposition,
    EventKind,
    PathEvent,
    QueueLeg,
    call_path,
)
from ivr.records.store import CallStore, caller_key
from survey_engine.model import Answer, FollowUp, SurveyResponse
from survey_engine.store import SurveyStore

UTC = dt.timezone.utc
BEIJING = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2026, 3, 16, 10, 0, 0, tzinfo=UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def start(call_id: str, when: dt.datetime, hotline: str = "4008001234", caller: str = "13800138000") -> CallStarted:
    return CallStarted(call_id, f"u-{call_id}", f"PJSIP/trunk-{call_id}", hotline, caller, hotline, "zh-CN", "2026.1",
                       "cfg-7", when)


def scripted_calls() -> list[CallStarted | CallEnded | tuple[str, int, str] | AgentEvent]:
    """An overflowed-then-answered call, an IVR abandon, a call still open, and presence changes;
    one start given in Beijing time and one with microseconds, which both backends store
    to the millisecond, in UTC."""
    billing = QueueLeg("billing", at(30), at(210), "overflowed", offers=2, overflow="timeout", first_estimate=45.0,
                       priority=10)
    general = QueueLeg("general", at(210), at(337.25), "answered", answered_at=at(222.5), agent_id="1003",
                       talk_seconds=114.75, offers=1, first_estimate=20.0, priority=10, ended_by="agent",
                       wrap_seconds=15.0)
    events = (
        PathEvent(at(1), EventKind.NODE, "main-menu", ""),
        PathEvent(at(4.125), EventKind.DIGIT, "main-menu", "2"),
        PathEvent(at(30), EventKind.ENQUEUED, "billing-queue", "billing priority=10 vip"),
        PathEvent(at(210), EventKind.OVERFLOW, "billing-queue", "timeout -> queue general"),
        PathEvent(at(222.5), EventKind.CONNECTED, "billing-queue", "1003"),
    )
    return [
        start("answered", T0.astimezone(BEIJING)),
        CallEnded("answered", at(337.25), Disposition.ANSWERED, "general: 1003", "zh-CN", at(2), at(8), "rec-1",
                  "agent", events, (billing, general)),
        ("u-answered", 16, "Normal Clearing"),
        start("abandon", at(100) + dt.timedelta(microseconds=123456), caller="+86 139 0013 9000"),
        CallEnded("abandon", at(112), Disposition.ABANDONED, "main-menu", "en-US", None, None, None, "caller",
                  (PathEvent(at(101), EventKind.TIMEOUT, "main-menu", ""),)),
        start("open", at(200), hotline="4008005678", caller="anonymous"),
        AgentEvent("1003", at(-60), "ready"),
        AgentEvent("1003", at(400), "paused"),
        AgentEvent("1001", at(400), "not_ready"),
    ]


async def write(store: CallStore, script: list[CallStarted | CallEnded | tuple[str, int, str] | AgentEvent]) -> None:
    for item in script:
        if isinstance(item, CallStarted):
            store.call_started(item)
        elif isinstance(item, CallEnded):
            store.call_ended(item)
        elif isinstance(item, AgentEvent):
            store.agent_event(item)
        else:
            store.set_hangup_cause(*item)
    store.set_ami_times("u-answered", agent_answered_at=at(222.75), bridged_at=at(222.8), hold_seconds=31.5)
    await store.flush()


async def everything(target: Path | str) -> tuple[list[CallRow], list[AgentEvent]]:
    store = await CallStore.open(target, privacy_policy="mask", salt="pepper")
    try:
        await write(store, scripted_calls())
        return [row async for row in store.iter_calls()], await store.agent_events()
    finally:
        await store.close()


async def test_the_same_calls_read_back_identical_from_sqlite_and_postgresql(tmp_path: Path, pg_url: str) -> None:
    lite_rows, lite_presence = await everything(tmp_path / "calls.sqlite")
    pg_rows, pg_presence = await everything(pg_url)
    assert pg_rows == lite_rows
    assert pg_presence == lite_presence

    answered, abandon, still_open = lite_rows
    assert [row.call_id for row in lite_rows] == ["answered", "abandon", "open"]
    assert answered.started_at == T0 and answered.started_at.tzinfo == UTC
    assert (answered.duration_ms, answered.hangup_cause, answered.hangup_cause_txt) == (337250, 16, "Normal Clearing")
    assert [leg.queue for leg in answered.queue_legs] == ["billing", "general"]
    # AMI's answer wins over the controller's on the answered leg; the bridge and hold are kept.
    assert answered.queue_legs[1].answered_at == answered.agent_answered_at == at(222.75)
    assert (answered.bridged_at, answered.hold_seconds, answered.queue_legs[1].wrap_seconds) == (at(222.8), 31.5, 15.0)
    assert answered.events[1] == PathEvent(at(4.125), EventKind.DIGIT, "main-menu", "2")
    assert abandon.started_at == at(100.123)  # to the millisecond
    assert (abandon.caller, abandon.duration_ms, abandon.hold_seconds) == ("*" * 13 + "9000", 11877, 0.0)
    assert (still_open.ended_at, still_open.disposition, still_open.caller) == (None, None, "anonymous")
    assert [(e.agent_id, e.at, e.presence) for e in lite_presence] == [
        ("1003", at(-60), "ready"), ("1001", at(400), "not_ready"), ("1003", at(400), "paused")]


def survey_response(response_id: str, offered_at: dt.datetime) -> SurveyResponse:
    return SurveyResponse(
        response_id=response_id, call_id="answered", channel="voice", survey="standard", status="completed",
        hotline="4008001234", queue="general", agent="1003", language="zh-CN", menu_version="2026.1",
        menu_path="main-menu>billing-queue", hung_up_by="agent", caller_key=caller_key("13800138000", "pepper"),
        offered_at=offered_at, started_at=offered_at + dt.timedelta(seconds=4),
        ended_at=offered_at + dt.timedelta(seconds=30),
        answers=(Answer("speed", "scale", 4, 1, offered_at + dt.timedelta(seconds=4)), Answer("nps", "nps", None, 2)),
        comment_file="/var/spool/asterisk/ivr-survey/answered", comment_seconds=7.5,
    )


async def surveys_of(target: Path | str) -> tuple[list[SurveyResponse], list[FollowUp], dt.datetime | None]:
    calls = await CallStore.open(target)
    surveys = SurveyStore(calls.engine)  # as the controller does: one engine for both
    try:
        await surveys.save_response(survey_response("r1", at(340)))
        await surveys.save_response(survey_response("r2", at(86400)))
        await surveys.save_followup(FollowUp("f1", "r1", "answered", "detractor", "urgent", "cs-lead", at(341),
                                             at(341 + 86400), ("nps = 3 (<= 6)", "说明"), "general", "1003"))
        return (await surveys.responses(since=at(0)), await surveys.followups(status="open"),
                await surveys.last_offered(caller_key("13800138000", "pepper") or ""))
    finally:
        await surveys.close()
        await calls.close()


async def test_survey_responses_read_back_identical_from_sqlite_and_postgresql(tmp_path: Path, pg_url: str) -> None:
    lite = await surveys_of(tmp_path / "calls.sqlite")
    assert await surveys_of(pg_url) == lite
    responses, items, last = lite
    assert responses == [survey_response("r1", at(340)), survey_response("r2", at(86400))]
    assert [i.reasons for i in items] == [("nps = 3 (<= 6)", "说明")]
    assert last == at(86400)


async def test_survey_store_opens_a_postgresql_url_of_its_own(pg_url: str) -> None:
    store = await SurveyStore.open(pg_url)
    try:
        await store.save_response(survey_response("r1", at(340)))
        assert await store.get_response("r1") == survey_response("r1", at(340))
    finally:
        await store.close()


async def test_iter_calls_streams_in_batches_in_start_order_with_filters(
    target: Path | str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "_READ_BATCH", 3)  # 10 calls: four queries, ties across a boundary
    store = await CallStore.open(target)
    try:
        for n in range(10):
            call_id = f"c{9 - n}"  # ids against the time order: the order is by start, then id
            store.call_started(start(call_id, at(60 * (n // 2)), hotline="4008005678" if n % 3 == 0 else "4008001234"))
            store.call_ended(CallEnded(call_id, at(60 * (n // 2) + 30), Disposition.SELF_SERVED, "", "zh-CN", None,
                                       None, None, "caller",
                                       (PathEvent(at(60 * (n // 2) + 1), EventKind.NODE, "welcome"),)))
        await store.flush()
        rows = [row async for row in store.iter_calls()]
        assert [row.call_id for row in rows] == ["c8", "c9", "c6", "c7", "c4", "c5", "c2", "c3", "c0", "c1"]
        assert all(len(row.events) == 1 for row in rows)
        window = [row.call_id async for row in store.iter_calls(since=at(60), until=at(180))]
        assert window == ["c6", "c7", "c4", "c5"]  # [since, until): the calls at 180 s are out
        on_5678 = [row.call_id async for row in store.iter_calls(hotline="4008005678")]
        assert on_5678 == ["c9", "c6", "c3", "c0"]
        bare = [row async for row in store.iter_calls(events=False)]
        assert [row.call_id for row in bare] == [row.call_id for row in rows] and all(r.events == () for r in bare)
    finally:
        await store.close()


async def test_counts_calls_and_each_agents_last_presence_before_a_moment(target: Path | str) -> None:
    store = await CallStore.open(target, salt="pepper")
    try:
        await write(store, scripted_calls())
        assert await store.count_calls() == 3
        assert await store.count_calls(at(100), at(200)) == 1  # [since, until)
        store.agent_event(AgentEvent("1001", at(-30), "ready"))
        await store.flush()
        assert await store.last_agent_events(at(400)) == [  # by time: 1003 logged in first
            AgentEvent("1003", at(-60), "ready"), AgentEvent("1001", at(-30), "ready")]
        assert await store.last_agent_events(at(401)) == [
            AgentEvent("1001", at(400), "not_ready"), AgentEvent("1003", at(400), "paused")]
        assert await store.last_agent_events(at(-60)) == []
    finally:
        await store.close()


async def test_call_paths_are_the_funnel_steps_of_the_stored_calls_across_read_batches(
    target: Path | str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `ivr export ivr` and the report's funnel read: per call its node, digit, timeout and
    invalid steps in order, streamed 3 rows at a time so that calls run across batches."""
    monkeypatch.setattr(store_module, "_READ_BATCH", 3)
    store = await CallStore.open(target, salt="pepper")
    try:
        await write(store, scripted_calls())
        store.call_started(start("bare", at(500)))  # no path events yet: still one of the calls
        await store.flush()
        rows = [row async for row in store.iter_calls()]
        paths = [path async for batch in store.iter_call_paths() for path in batch]
        assert paths == [call_path(row) for row in rows]
        assert [len(path.steps) for path in paths] == [len([e for e in row.events if e.kind in FUNNEL_KINDS])
                                                       for row in rows]
        assert any(path.steps for path in paths) and paths[-1].steps == ()
        billing = [path.call_id async for batch in store.iter_call_paths(queue="billing") for path in batch]
        assert billing == [row.call_id for row in rows if any(leg.queue == "billing" for leg in row.queue_legs)] != []
        window = [path.call_id async for batch in store.iter_call_paths(at(100), at(600)) for path in batch]
        assert window == [row.call_id for row in rows if at(100) <= row.started_at < at(600)]
    finally:
        await store.close()
