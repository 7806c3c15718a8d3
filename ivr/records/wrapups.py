"""Wrap-up codes in the call-record database (schema v11 `wrap_ups`): one row per answered agent
leg of a queue with wrap-up codes, opened when the call ends, coded by the agent desktop.

The store works on the call store's engine (`WrapUpStore(calls.engine)`), SQLite or PostgreSQL
alike; every write is one small transaction of its own, as survey writes are.

The first pick wins: a code is taken while the row has none and the deadline has not passed.
Sending the same code and note again (a desk page that retried its request) is `stored` again;
a different one is `already_coded`, so two tabs cannot overwrite each other's pick.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import RowMapping, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.records.database import insert_ignoring
from ivr.records.schema import wrap_ups

NO_CODE = "no_code"  # the deadline passed with no code picked
PENDING = "pending"  # no code yet, and there is still time
_IN_LIST = 2000  # ids per IN list: well inside both backends' limits


class WrapUpOutcome(enum.Enum):
    STORED = "stored"
    TOO_LATE = "too_late"  # the deadline had passed: the call stays "no code"
    UNKNOWN_CALL = "unknown_call"  # no wrap-up was opened for this call and agent
    ALREADY_CODED = "already_coded"  # another code was picked first


@dataclass(frozen=True)
class WrapUp:
    call_id: str
    agent_id: str
    queue: str
    ended_at: dt.datetime  # the call's end: the wrap-up's start
    deadline: dt.datetime  # codes are taken until then (inclusive)
    code: str | None = None  # the leaf's path, e.g. "billing/refund/approved"
    note: str | None = None
    coded_at: dt.datetime | None = None
    coded_by: str | None = None  # the desk account that picked it

    def effective_code(self, now: dt.datetime) -> str:
        """The code; else NO_CODE once the deadline has passed; else PENDING."""
        if self.code is not None:
            return self.code
        return NO_CODE if now > self.deadline else PENDING


def _wrap_up(m: RowMapping) -> WrapUp:
    return WrapUp(m["call_id"], m["agent_id"], m["queue"], m["ended_at"], m["deadline"], m["code"], m["note"],
                  m["coded_at"], m["coded_by"])


class WrapUpStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def open(self, call_id: str, agent_id: str, queue: str, ended_at: dt.datetime,
                   deadline: dt.datetime) -> None:
        """Start the wrap-up of an agent's call. A second open of the same call and agent (a
        replayed end) keeps the first row, its deadline and any code picked."""
        async with self.engine.begin() as conn:
            await conn.execute(insert_ignoring(conn.dialect.name, wrap_ups, "call_id", "agent_id").values(
                call_id=call_id, agent_id=agent_id, queue=queue, ended_at=ended_at, deadline=deadline))

    async def set_code(self, call_id: str, agent_id: str, code: str, note: str | None, *, at: dt.datetime,
                       by: str) -> WrapUpOutcome:
        """Store the agent's pick made `at` (by the desk account `by`); see the module for which wins.
        The caller checks that `code` is a leaf of the queue's tree (routing.wrapup.is_leaf)."""
        if not code:
            raise ValueError("a wrap-up code is a leaf's path, not empty")
        key = (wrap_ups.c.call_id == call_id, wrap_ups.c.agent_id == agent_id)
        async with self.engine.begin() as conn:
            # One conditional update: two requests at once cannot both store a code.
            done = await conn.execute(update(wrap_ups).where(
                *key, wrap_ups.c.code.is_(None), wrap_ups.c.deadline >= at,
            ).values(code=code, note=note, coded_at=at, coded_by=by))
            if done.rowcount == 1:
                return WrapUpOutcome.STORED
            row = (await conn.execute(select(wrap_ups.c.code, wrap_ups.c.note).where(*key))).first()
        if row is None:
            return WrapUpOutcome.UNKNOWN_CALL
        if row.code is None:
            return WrapUpOutcome.TOO_LATE
        return WrapUpOutcome.STORED if (row.code, row.note) == (code, note) else WrapUpOutcome.ALREADY_CODED

    async def get(self, call_id: str, agent_id: str) -> WrapUp | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(wrap_ups).where(
                wrap_ups.c.call_id == call_id, wrap_ups.c.agent_id == agent_id))).mappings().first()
        return None if row is None else _wrap_up(row)

    async def for_calls(self, call_ids: Iterable[str]) -> dict[tuple[str, str], WrapUp]:
        """The wrap-ups of these calls, by (call_id, agent_id): a call transferred between agents has one per agent."""
        ids = list(dict.fromkeys(call_ids))
        found: dict[tuple[str, str], WrapUp] = {}
        async with self.engine.connect() as conn:
            for start in range(0, len(ids), _IN_LIST):
                result = await conn.execute(select(wrap_ups).where(wrap_ups.c.call_id.in_(ids[start:start + _IN_LIST])))
                for row in result.mappings():
                    found[row["call_id"], row["agent_id"]] = _wrap_up(row)
        return found

    async def pending(self, agent_id: str, now: dt.datetime) -> list[WrapUp]:
        """The agent's wrap-ups with no code whose deadline is still ahead, oldest call first:
        what the desk shows again after a reload."""
        async with self.engine.connect() as conn:
            result = await conn.execute(
                select(wrap_ups).where(wrap_ups.c.agent_id == agent_id, wrap_ups.c.code.is_(None),
                                       wrap_ups.c.deadline >= now)
                .order_by(wrap_ups.c.ended_at, wrap_ups.c.call_id))
            return [_wrap_up(row) for row in result.mappings()]
