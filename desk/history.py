"""A caller's last calls and open follow-up items, for the screen pop.

Four small indexed queries (calls by caller key, then their legs, wrap-up codes, survey
answers and open items by call id), so a pop costs milliseconds on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

from sqlalchemy import desc, select
from sqlalchemy.ext.asyncio import AsyncEngine

from desk.pop import OpenItem, PastContact
from ivr.records.schema import calls, followups, queue_legs, survey_answers, survey_responses, wrap_ups

LAST_CALLS = 5


class CallerHistory:
    def __init__(self, engine: AsyncEngine, key_of_number: Callable[[str], str | None]) -> None:
        self.engine = engine
        self.key_of_number = key_of_number

    async def of_number(self, number: str, now: dt.datetime, *, limit: int = LAST_CALLS
                        ) -> tuple[list[PastContact], list[OpenItem]]:
        key = self.key_of_number(number)
        if key is None:
            return [], []
        async with self.engine.connect() as conn:
            rows = (await conn.execute(
                select(calls.c.call_id, calls.c.ended_at, calls.c.disposition)
                .where(calls.c.caller_key == key, calls.c.ended_at.is_not(None))
                .order_by(desc(calls.c.ended_at)).limit(limit))).all()
            ids = [row.call_id for row in rows]
            if not ids:
                return [], []
            legs: dict[str, tuple[str, str | None]] = {}
            for call_id, queue, agent_id, outcome in await conn.execute(
                    select(queue_legs.c.call_id, queue_legs.c.queue, queue_legs.c.agent_id, queue_legs.c.outcome)
                    .where(queue_legs.c.call_id.in_(ids)).order_by(queue_legs.c.call_id, queue_legs.c.seq)):
                if outcome == "answered" or call_id not in legs:  # the last answered leg, else the first
                    legs[call_id] = (queue, agent_id)
            codes: dict[str, str] = {}
            for call_id, code, deadline in await conn.execute(
                    select(wrap_ups.c.call_id, wrap_ups.c.code, wrap_ups.c.deadline).where(wrap_ups.c.call_id.in_(ids))):
                codes[call_id] = code if code is not None else ("no_code" if deadline < now else "pending")
            scores: dict[str, list[tuple[str, int]]] = {}
            for call_id, question, value in await conn.execute(
                    select(survey_responses.c.call_id, survey_answers.c.question, survey_answers.c.value)
                    .join(survey_answers, survey_answers.c.response_id == survey_responses.c.response_id)
                    .where(survey_responses.c.call_id.in_(ids), survey_answers.c.value.is_not(None))
                    .order_by(survey_answers.c.response_id, survey_answers.c.seq)):
                scores.setdefault(call_id, []).append((question, int(value)))
            items = (await conn.execute(
                select(followups.c.item_id, followups.c.call_id, followups.c.category, followups.c.urgency,
                       followups.c.deadline, followups.c.reasons)
                .where(followups.c.call_id.in_(ids), followups.c.status != "closed")
                .order_by(followups.c.deadline))).all()
        history: list[PastContact] = []
        for row in rows:
            queue, agent_id = legs.get(row.call_id, (None, None))
            history.append(PastContact(call_id=row.call_id, ended_at=row.ended_at, queue=queue, agent_id=agent_id,
                                       disposition=row.disposition, wrap_code=codes.get(row.call_id),
                                       scores=tuple(scores.get(row.call_id, ()))))
        open_items = [OpenItem(item_id=i.item_id, call_id=i.call_id, category=i.category, urgency=i.urgency,
                               deadline=i.deadline, reasons=tuple(json.loads(i.reasons)), overdue=i.deadline < now)
                      for i in items]
        return history, open_items


    async def handled(self, call_id: str, agent_id: str) -> bool:
        """Whether the agent answered the call (its leg, or the wrap-up asked of it)."""
        async with self.engine.connect() as conn:
            leg = (await conn.execute(select(queue_legs.c.call_id).where(
                queue_legs.c.call_id == call_id, queue_legs.c.agent_id == agent_id,
                queue_legs.c.outcome == "answered").limit(1))).first()
            if leg is not None:
                return True
            wrap = (await conn.execute(select(wrap_ups.c.call_id).where(
                wrap_ups.c.call_id == call_id, wrap_ups.c.agent_id == agent_id))).first()
        return wrap is not None
