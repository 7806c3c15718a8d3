"""Survey responses and follow-ups survive a round trip through SQLite, beside the call records."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import aiosqlite

from ivr.records.store import SCHEMA_VERSION, CallStore
from survey_engine.model import Answer, FollowUp, SurveyResponse
from survey_engine.store import SurveyStore

T0 = dt.datetime(2026, 11, 25, 2, 30, tzinfo=dt.timezone.utc)


def response(response_id: str, offered_at: dt.datetime, **changes: object) -> SurveyResponse:
    base = SurveyResponse(
        response_id=response_id, call_id=f"call-{response_id}", channel="voice", survey="standard",
        status="completed", hotline="4008001234", queue="billing", agent="1002", language="zh-CN",
        menu_version="v7", menu_path="language>main-menu>billing-menu>billing-queue", hung_up_by="agent",
        caller_key="key-a", offered_at=offered_at, started_at=offered_at + dt.timedelta(seconds=4),
        ended_at=offered_at + dt.timedelta(seconds=40),
        answers=(
            Answer("speed", "scale", 4, 1, offered_at + dt.timedelta(seconds=4)),
            Answer("resolved", "yes_no", 0, 2, offered_at + dt.timedelta(seconds=12)),
            Answer("nps", "nps", None, 2, None),
        ),
        comment_file="/var/spool/asterisk/ivr-survey/call-r1", comment_seconds=7.5,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


async def test_a_response_reads_back_as_written_with_answers_in_order(tmp_path: Path) -> None:
    store = await SurveyStore.open(tmp_path / "calls.sqlite")
    written = response("r1", T0)
    await store.save_response(written)
    assert await store.get_response("r1") == written
    assert await store.responses_for_call("call-r1") == [written]
    await store.close()


async def test_saving_again_replaces_the_partial_row_and_its_answers(tmp_path: Path) -> None:
    store = await SurveyStore.open(tmp_path / "calls.sqlite")
    partial = response("r1", T0, status="partial", answers=(Answer("speed", "scale", 2, 1, T0),), ended_at=None)
    await store.save_response(partial)
    final = response("r1", T0)
    await store.save_response(final)
    assert await store.get_response("r1") == final
    assert len(await store.responses()) == 1
    await store.close()


async def test_last_offered_is_the_newest_offer_to_that_caller_only(tmp_path: Path) -> None:
    store = await SurveyStore.open(tmp_path / "calls.sqlite")
    await store.save_response(response("r1", T0))
    await store.save_response(response("r2", T0 + dt.timedelta(days=3)))
    await store.save_response(response("r3", T0 + dt.timedelta(days=9), caller_key="key-b"))
    assert await store.last_offered("key-a") == T0 + dt.timedelta(days=3)
    assert await store.last_offered("key-unknown") is None
    await store.close()


async def test_responses_filter_on_a_half_open_range(tmp_path: Path) -> None:
    store = await SurveyStore.open(tmp_path / "calls.sqlite")
    for n in range(4):
        await store.save_response(response(f"r{n}", T0 + dt.timedelta(days=n)))
    found = await store.responses(since=T0 + dt.timedelta(days=1), until=T0 + dt.timedelta(days=3))
    assert [r.response_id for r in found] == ["r1", "r2"]
    await store.close()


async def test_followups_list_by_deadline_and_filter_by_status_and_owner(tmp_path: Path) -> None:
    store = await SurveyStore.open(tmp_path / "calls.sqlite")
    late = FollowUp("f1", "r1", "call-r1", "detractor", "routine", "cs-lead", T0, T0 + dt.timedelta(days=7),
                    ("nps = 3 (<= 6)",), "billing", "1002", contact="13800138000")
    soon = FollowUp("f2", "r2", "call-r2", "unresolved", "urgent", "billing-lead", T0, T0 + dt.timedelta(hours=24),
                    ("resolved = no",), "billing", "1001")
    await store.save_followup(late)
    await store.save_followup(soon)
    assert [i.item_id for i in await store.followups()] == ["f2", "f1"]
    assert await store.followups(owner="cs-lead") == [late]
    closed = dataclasses.replace(soon, status="closed", resolution="refund sent", closed_at=T0 + dt.timedelta(hours=3))
    await store.save_followup(closed)
    assert await store.followups(status="open") == [late]
    assert await store.get_followup("f2") == closed
    assert await store.followup_for_response("r1") == late
    await store.close()


async def test_the_call_store_and_the_survey_store_share_one_schema(tmp_path: Path) -> None:
    path = tmp_path / "calls.sqlite"
    calls = await CallStore.open(path)
    surveys = await SurveyStore.open(path)
    await surveys.save_response(response("r1", T0))
    await calls.close()
    await surveys.close()
    async with aiosqlite.connect(path) as db:
        cursor = await db.execute("SELECT version FROM schema_version")
        assert await cursor.fetchone() == (SCHEMA_VERSION,)
        cursor = await db.execute("SELECT question, value FROM survey_answers ORDER BY seq")
        assert await cursor.fetchall() == [("speed", 4), ("resolved", 0), ("nps", None)]
