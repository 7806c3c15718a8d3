"""Survey responses, their answers and follow-up items, in the call-record database.

The tables belong to the call-record schema (ivr/records/schema.py), so one database holds a
call and what its caller said about it, on SQLite or PostgreSQL alike. A survey write is one
small transaction per change, on a pooled connection of its own: it never waits behind (or
is rolled back with) a batch of call records. The store either shares the call store's
engine (`SurveyStore(calls.engine)`, what the controller does) or opens its own
(`SurveyStore.open(path_or_url)`, what the command-line tools do).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import cast

from sqlalchemy import ColumnElement, RowMapping, delete, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.records.database import Target, insert_replacing, open_engine
from ivr.records.schema import contact_reveals, followups, migrate, survey_answers, survey_responses
from ivr.records.store import not_a_database
from survey_engine.model import (
    Answer,
    Channel,
    FollowUp,
    FollowUpStatus,
    QuestionKind,
    ResponseStatus,
    SurveyResponse,
    Urgency,
)


def _followup(m: RowMapping) -> FollowUp:
    return FollowUp(
        item_id=m["item_id"], response_id=m["response_id"], call_id=m["call_id"], category=m["category"],
        urgency=cast(Urgency, m["urgency"]), owner=m["owner"], created_at=m["created_at"], deadline=m["deadline"],
        reasons=tuple(json.loads(m["reasons"])), queue=m["queue"], agent=m["agent"], contact=m["contact"],
        status=cast(FollowUpStatus, m["status"]), assignee=m["assignee"], assigned_at=m["assigned_at"],
        resolution=m["resolution"], closed_at=m["closed_at"],
    )


class SurveyStore:
    def __init__(self, engine: AsyncEngine, *, owns_engine: bool = False) -> None:
        self.engine = engine
        self._owns_engine = owns_engine

    @classmethod
    async def open(cls, target: Target) -> SurveyStore:
        """A store on an engine of its own (a SQLite file or a postgresql:// URL), schema brought up to date."""
        engine = open_engine(target)
        try:
            async with engine.begin() as conn:
                await migrate(conn)
        except BaseException as exc:
            await engine.dispose()
            refused = not_a_database(target, exc)
            if refused is not None:
                raise refused from exc
            raise
        return cls(engine, owns_engine=True)

    async def close(self) -> None:
        if self._owns_engine:
            await self.engine.dispose()

    # --- responses ---------------------------------------------------------------------

    async def save_response(self, response: SurveyResponse) -> None:
        """Insert or replace a response with all its answers, in one transaction."""
        r = response
        async with self.engine.begin() as conn:
            await conn.execute(insert_replacing(conn.dialect.name, survey_responses, "response_id").values(
                response_id=r.response_id, call_id=r.call_id, channel=r.channel, survey=r.survey, status=r.status,
                hotline=r.hotline, queue=r.queue, agent=r.agent, language=r.language, menu_version=r.menu_version,
                menu_path=r.menu_path, hung_up_by=r.hung_up_by, caller_key=r.caller_key, offered_at=r.offered_at,
                started_at=r.started_at, ended_at=r.ended_at, comment_file=r.comment_file,
                comment_seconds=r.comment_seconds, comment_text=r.comment_text,
            ))
            await conn.execute(delete(survey_answers).where(survey_answers.c.response_id == r.response_id))
            if r.answers:
                await conn.execute(survey_answers.insert(), [
                    {"response_id": r.response_id, "seq": seq, "question": a.question, "kind": a.kind,
                     "value": a.value, "attempts": a.attempts, "answered_at": a.answered_at}
                    for seq, a in enumerate(r.answers)
                ])

    async def get_response(self, response_id: str) -> SurveyResponse | None:
        found = await self._responses(survey_responses.c.response_id == response_id)
        return found[0] if found else None

    async def responses_for_call(self, call_id: str) -> list[SurveyResponse]:
        return await self._responses(survey_responses.c.call_id == call_id)

    async def last_offered(self, caller_key: str) -> dt.datetime | None:
        async with self.engine.connect() as conn:
            newest: dt.datetime | None = (await conn.execute(
                select(func.max(survey_responses.c.offered_at)).where(survey_responses.c.caller_key == caller_key)
            )).scalar()
        return newest

    async def responses(
        self, *, since: dt.datetime | None = None, until: dt.datetime | None = None
    ) -> list[SurveyResponse]:
        """Responses offered in [since, until), oldest first."""
        where: list[ColumnElement[bool]] = []
        if since is not None:
            where.append(survey_responses.c.offered_at >= since)
        if until is not None:
            where.append(survey_responses.c.offered_at < until)
        return await self._responses(*where)

    async def _responses(self, *where: ColumnElement[bool]) -> list[SurveyResponse]:
        """Matching responses by offer time (then id), each with its answers in order."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(
                select(survey_responses).where(*where)
                .order_by(survey_responses.c.offered_at, survey_responses.c.response_id)
            )).mappings().all()
            if not rows:
                return []
            answers: dict[str, list[Answer]] = {r["response_id"]: [] for r in rows}
            ids = list(answers)
            for start in range(0, len(ids), 2000):  # keeps each IN list well inside both backends' limits
                chunk = ids[start:start + 2000]
                result = await conn.execute(
                    select(survey_answers).where(survey_answers.c.response_id.in_(chunk))
                    .order_by(survey_answers.c.response_id, survey_answers.c.seq))
                for a in result.mappings():
                    answers[a["response_id"]].append(Answer(
                        a["question"], cast(QuestionKind, a["kind"]), a["value"], a["attempts"], a["answered_at"]))
        return [
            SurveyResponse(
                response_id=r["response_id"], call_id=r["call_id"], channel=cast(Channel, r["channel"]),
                survey=r["survey"], status=cast(ResponseStatus, r["status"]), hotline=r["hotline"], queue=r["queue"],
                agent=r["agent"], language=r["language"], menu_version=r["menu_version"], menu_path=r["menu_path"],
                hung_up_by=r["hung_up_by"], caller_key=r["caller_key"], offered_at=r["offered_at"],
                started_at=r["started_at"], ended_at=r["ended_at"], answers=tuple(answers[r["response_id"]]),
                comment_file=r["comment_file"], comment_seconds=r["comment_seconds"], comment_text=r["comment_text"],
            )
            for r in rows
        ]

    # --- follow-up items -----------------------------------------------------------------

    async def save_followup(self, item: FollowUp, *, sealed: str | None = None) -> None:
        """Insert or replace an item (one per response). `sealed`: the number to call back,
        sealed (survey_engine.contacts), given when the item is made; a later save (assign,
        close) keeps it."""
        i = item
        kept = [c.name for c in followups.c if c.name not in ("item_id", "contact_sealed")]
        async with self.engine.begin() as conn:
            upsert = insert_replacing(conn.dialect.name, followups, "item_id",
                                      only=kept if sealed is None else None)  # fmt: skip
            await conn.execute(upsert.values(
                item_id=i.item_id, response_id=i.response_id, call_id=i.call_id, category=i.category,
                urgency=i.urgency, owner=i.owner, created_at=i.created_at, deadline=i.deadline,
                reasons=json.dumps(list(i.reasons), ensure_ascii=False), queue=i.queue, agent=i.agent,
                contact=i.contact, status=i.status, assignee=i.assignee, assigned_at=i.assigned_at,
                resolution=i.resolution, closed_at=i.closed_at, contact_sealed=sealed,
            ))

    async def reveal_contact(self, item_id: str, *, by: str, reason: str, at: dt.datetime) -> tuple[str | None, str | None]:
        """The item's (shown, sealed) contact, and a record that `by` asked for it and why.
        An unknown item: (None, None), nothing recorded."""
        async with self.engine.begin() as conn:
            found = (await conn.execute(select(followups.c.contact, followups.c.contact_sealed)
                                        .where(followups.c.item_id == item_id))).first()
            if found is None:
                return None, None
            await conn.execute(insert(contact_reveals).values(item_id=item_id, revealed_at=at, revealed_by=by,
                                                              reason=reason))
            return found[0], found[1]

    async def contact_reveals(self, item_id: str) -> list[tuple[dt.datetime, str, str]]:
        """(when, who, why) of every time the item's contact was opened."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(contact_reveals.c.revealed_at, contact_reveals.c.revealed_by,
                                              contact_reveals.c.reason)
                                       .where(contact_reveals.c.item_id == item_id)
                                       .order_by(contact_reveals.c.revealed_at))).all()
        return [(r[0], r[1], r[2]) for r in rows]

    async def get_followup(self, item_id: str) -> FollowUp | None:
        found = await self._followups((followups.c.item_id == item_id,))
        return found[0] if found else None

    async def followup_for_response(self, response_id: str) -> FollowUp | None:
        found = await self._followups((followups.c.response_id == response_id,))
        return found[0] if found else None

    async def followups(
        self, *, status: FollowUpStatus | None = None, owner: str | None = None
    ) -> list[FollowUp]:
        """Items, earliest deadline first."""
        where: list[ColumnElement[bool]] = []
        if status is not None:
            where.append(followups.c.status == status)
        if owner is not None:
            where.append(or_(followups.c.owner == owner, followups.c.assignee == owner))
        return await self._followups(where)

    async def _followups(self, where: Sequence[ColumnElement[bool]]) -> list[FollowUp]:
        async with self.engine.connect() as conn:
            result = await conn.execute(
                select(followups).where(*where).order_by(followups.c.deadline, followups.c.item_id))
            return [_followup(r) for r in result.mappings()]
