"""Wrap-up codes in the call-record store (SQLite and PostgreSQL): open, code, too late, unknown,
pending after a reload, and "no code" once the deadline passed."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivr.records.store import CallStore
from ivr.records.wrapups import NO_CODE, PENDING, WrapUpOutcome, WrapUpStore

UTC = dt.timezone.utc
END = dt.datetime(2026, 3, 16, 10, 0, 0, tzinfo=UTC)
DEADLINE = END + dt.timedelta(seconds=120)


def at(seconds: float) -> dt.datetime:
    return END + dt.timedelta(seconds=seconds)


@pytest.fixture
async def wrapups(target: Path | str) -> AsyncIterator[WrapUpStore]:
    calls = await CallStore.open(target, privacy_policy="mask")
    try:
        yield WrapUpStore(calls.engine)
    finally:
        await calls.close()


async def test_a_code_picked_in_time_is_stored_once(wrapups: WrapUpStore) -> None:
    await wrapups.open("c1", "1001", "billing", END, DEADLINE)
    await wrapups.open("c1", "1001", "billing", at(5), at(500))  # a replayed end keeps the first row
    assert await wrapups.set_code("c1", "1001", "billing/refund/approved", "refund sent", at=at(30),
                                  by="alice") is WrapUpOutcome.STORED
    # The same pick again (a retried request) is fine; another one is refused.
    assert await wrapups.set_code("c1", "1001", "billing/refund/approved", "refund sent", at=at(31),
                                  by="alice") is WrapUpOutcome.STORED
    assert await wrapups.set_code("c1", "1001", "other", None, at=at(40), by="alice") is WrapUpOutcome.ALREADY_CODED
    found = await wrapups.get("c1", "1001")
    assert found is not None
    assert (found.queue, found.ended_at, found.deadline) == ("billing", END, DEADLINE)
    assert (found.code, found.note, found.coded_at, found.coded_by) == (
        "billing/refund/approved", "refund sent", at(30), "alice")
    assert found.effective_code(at(1000)) == "billing/refund/approved"


async def test_after_the_deadline_the_call_stays_without_a_code(wrapups: WrapUpStore) -> None:
    await wrapups.open("c1", "1001", "billing", END, DEADLINE)
    assert await wrapups.set_code("c1", "1001", "other", None, at=DEADLINE, by="alice") is WrapUpOutcome.STORED
    await wrapups.open("c2", "1001", "billing", END, DEADLINE)
    assert await wrapups.set_code("c2", "1001", "other", None, at=at(121), by="alice") is WrapUpOutcome.TOO_LATE
    late = await wrapups.get("c2", "1001")
    assert late is not None and late.code is None
    assert late.effective_code(at(60)) == PENDING
    assert late.effective_code(at(121)) == NO_CODE


async def test_a_code_for_a_call_never_opened_is_refused(wrapups: WrapUpStore) -> None:
    await wrapups.open("c1", "1001", "billing", END, DEADLINE)
    assert await wrapups.set_code("c9", "1001", "other", None, at=at(1), by="alice") is WrapUpOutcome.UNKNOWN_CALL
    # Another agent's call is not this agent's to code.
    assert await wrapups.set_code("c1", "1002", "other", None, at=at(1), by="bob") is WrapUpOutcome.UNKNOWN_CALL
    assert await wrapups.get("c9", "1001") is None


async def test_pending_lists_the_agents_uncoded_calls_still_in_time(wrapups: WrapUpStore) -> None:
    await wrapups.open("old", "1001", "billing", at(-500), at(-380))  # deadline passed: no code
    await wrapups.open("b", "1001", "billing", at(10), at(130))
    await wrapups.open("a", "1001", "technical", END, DEADLINE)
    await wrapups.open("coded", "1001", "billing", END, DEADLINE)
    await wrapups.open("other-agent", "1002", "billing", END, DEADLINE)
    await wrapups.set_code("coded", "1001", "other", None, at=at(1), by="alice")
    assert [w.call_id for w in await wrapups.pending("1001", at(20))] == ["a", "b"]
    assert [w.call_id for w in await wrapups.pending("1001", at(125))] == ["b"]


async def test_for_calls_gives_each_agents_wrap_up_of_a_transferred_call(wrapups: WrapUpStore) -> None:
    await wrapups.open("c1", "1001", "billing", END, DEADLINE)
    await wrapups.open("c1", "1002", "technical", at(60), at(180))
    await wrapups.open("c2", "1001", "billing", END, DEADLINE)
    await wrapups.set_code("c1", "1002", "solved", "fixed it", at=at(90), by="bob")
    found = await wrapups.for_calls(["c1", "c3", "c1"])
    assert sorted(found) == [("c1", "1001"), ("c1", "1002")]
    assert found["c1", "1002"].code == "solved" and found["c1", "1001"].code is None
    assert await wrapups.for_calls([]) == {}
