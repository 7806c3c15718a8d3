"""Survey responses, their answers and follow-up items, in the call-record SQLite file.

The tables belong to the call-record schema (ivr/records/store.py, migration v5), so one
file holds a call and what its caller said about it. This store keeps a connection of its
own: a survey write is one small transaction per change and must not wait behind (or be
rolled back with) a batch of call records. WAL mode lets both connections work at once;
`busy_timeout` covers the moments one of them commits.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import aiosqlite

from ivr.records.store import iso_utc, migrate, parse_iso
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

_RESPONSE_COLUMNS = (
    "response_id, call_id, channel, survey, status, hotline, queue, agent, language, menu_version, "
    "menu_path, hung_up_by, caller_key, offered_at, started_at, ended_at, comment_file, comment_seconds, "
    "comment_text"
)
_FOLLOWUP_COLUMNS = (
    "item_id, response_id, call_id, category, urgency, owner, created_at, deadline, reasons, queue, agent, "
    "contact, status, assignee, assigned_at, resolution, closed_at"
)


def _required(text: object) -> dt.datetime:
    moment = parse_iso(cast(str, text))
    assert moment is not None  # a NOT NULL column
    return moment


def _followup(r: Sequence[object]) -> FollowUp:
    return FollowUp(
        item_id=cast(str, r[0]), response_id=cast(str, r[1]), call_id=cast(str, r[2]), category=cast(str, r[3]),
        urgency=cast(Urgency, r[4]), owner=cast(str, r[5]), created_at=_required(r[6]), deadline=_required(r[7]),
        reasons=tuple(json.loads(cast(str, r[8]))), queue=cast(str, r[9]), agent=cast(str, r[10]),
        contact=cast("str | None", r[11]), status=cast(FollowUpStatus, r[12]), assignee=cast("str | None", r[13]),
        assigned_at=parse_iso(cast("str | None", r[14])), resolution=cast("str | None", r[15]),
        closed_at=parse_iso(cast("str | None", r[16])),
    )


class SurveyStore:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        self._lock = asyncio.Lock()  # one transaction at a time on this connection

    @classmethod
    async def open(cls, path: Path) -> SurveyStore:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path)
        await db.execute("PRAGMA busy_timeout=5000")
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        await migrate(db)
        return cls(db)

    async def close(self) -> None:
        await self._db.close()

    # --- responses ---------------------------------------------------------------------

    async def save_response(self, response: SurveyResponse) -> None:
        """Insert or replace a response with all its answers, in one transaction."""
        r = response
        async with self._lock:
            try:
                await self._db.execute(
                    f"INSERT OR REPLACE INTO survey_responses ({_RESPONSE_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        r.response_id, r.call_id, r.channel, r.survey, r.status, r.hotline, r.queue, r.agent,
                        r.language, r.menu_version, r.menu_path, r.hung_up_by, r.caller_key,
                        iso_utc(r.offered_at), iso_utc(r.started_at), iso_utc(r.ended_at), r.comment_file,
                        r.comment_seconds, r.comment_text,
                    ),
                )
                await self._db.execute("DELETE FROM survey_answers WHERE response_id = ?", (r.response_id,))
                await self._db.executemany(
                    "INSERT INTO survey_answers (response_id, seq, question, kind, value, attempts, answered_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (r.response_id, seq, a.question, a.kind, a.value, a.attempts, iso_utc(a.answered_at))
                        for seq, a in enumerate(r.answers)
                    ],
                )
                await self._db.commit()
            except BaseException:
                await self._db.rollback()
                raise

    async def get_response(self, response_id: str) -> SurveyResponse | None:
        found = await self._responses("WHERE response_id = ?", (response_id,))
        return found[0] if found else None

    async def responses_for_call(self, call_id: str) -> list[SurveyResponse]:
        return await self._responses("WHERE call_id = ? ORDER BY offered_at", (call_id,))

    async def last_offered(self, caller_key: str) -> dt.datetime | None:
        cursor = await self._db.execute(
            "SELECT MAX(offered_at) FROM survey_responses WHERE caller_key = ?", (caller_key,)
        )
        row = await cursor.fetchone()
        return parse_iso(row[0]) if row is not None else None

    async def responses(
        self, *, since: dt.datetime | None = None, until: dt.datetime | None = None
    ) -> list[SurveyResponse]:
        """Responses offered in [since, until), oldest first."""
        clauses: list[str] = []
        args: list[object] = []
        if since is not None:
            clauses.append("offered_at >= ?")
            args.append(iso_utc(since))
        if until is not None:
            clauses.append("offered_at < ?")
            args.append(iso_utc(until))
        where = f"WHERE {' AND '.join(clauses)} " if clauses else ""
        return await self._responses(f"{where}ORDER BY offered_at, response_id", tuple(args))

    async def _responses(self, tail: str, args: tuple[object, ...]) -> list[SurveyResponse]:
        cursor = await self._db.execute(f"SELECT {_RESPONSE_COLUMNS} FROM survey_responses {tail}", args)
        rows = list(await cursor.fetchall())
        if not rows:
            return []
        answers: dict[str, list[Answer]] = {str(r[0]): [] for r in rows}
        ids = list(answers)
        for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit
            chunk = ids[start:start + 500]
            cursor = await self._db.execute(
                "SELECT response_id, question, kind, value, attempts, answered_at FROM survey_answers "
                f"WHERE response_id IN ({','.join('?' * len(chunk))}) ORDER BY response_id, seq",
                chunk,
            )
            for response_id, question, kind, value, attempts, answered_at in await cursor.fetchall():
                answers[response_id].append(
                    Answer(question, cast(QuestionKind, kind), value, attempts, parse_iso(answered_at))
                )
        return [
            SurveyResponse(
                response_id=r[0], call_id=r[1], channel=cast(Channel, r[2]), survey=r[3],
                status=cast(ResponseStatus, r[4]), hotline=r[5], queue=r[6], agent=r[7], language=r[8],
                menu_version=r[9], menu_path=r[10], hung_up_by=r[11], caller_key=r[12],
                offered_at=_required(r[13]), started_at=parse_iso(r[14]), ended_at=parse_iso(r[15]),
                answers=tuple(answers[r[0]]), comment_file=r[16], comment_seconds=r[17], comment_text=r[18],
            )
            for r in rows
        ]

    # --- follow-up items -----------------------------------------------------------------

    async def save_followup(self, item: FollowUp) -> None:
        """Insert or replace an item (one per response)."""
        i = item
        async with self._lock:
            try:
                await self._db.execute(
                    f"INSERT OR REPLACE INTO followups ({_FOLLOWUP_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        i.item_id, i.response_id, i.call_id, i.category, i.urgency, i.owner, iso_utc(i.created_at),
                        iso_utc(i.deadline), json.dumps(list(i.reasons), ensure_ascii=False), i.queue, i.agent,
                        i.contact, i.status, i.assignee, iso_utc(i.assigned_at), i.resolution, iso_utc(i.closed_at),
                    ),
                )
                await self._db.commit()
            except BaseException:
                await self._db.rollback()
                raise

    async def get_followup(self, item_id: str) -> FollowUp | None:
        found = await self._followups("WHERE item_id = ?", (item_id,))
        return found[0] if found else None

    async def followup_for_response(self, response_id: str) -> FollowUp | None:
        found = await self._followups("WHERE response_id = ?", (response_id,))
        return found[0] if found else None

    async def followups(
        self, *, status: FollowUpStatus | None = None, owner: str | None = None
    ) -> list[FollowUp]:
        """Items, earliest deadline first."""
        clauses: list[str] = []
        args: list[object] = []
        if status is not None:
            clauses.append("status = ?")
            args.append(status)
        if owner is not None:
            clauses.append("(owner = ? OR assignee = ?)")
            args += [owner, owner]
        where = f"WHERE {' AND '.join(clauses)} " if clauses else ""
        return await self._followups(f"{where}ORDER BY deadline, item_id", tuple(args))

    async def _followups(self, tail: str, args: tuple[object, ...]) -> list[FollowUp]:
        cursor = await self._db.execute(f"SELECT {_FOLLOWUP_COLUMNS} FROM followups {tail}", args)
        return [_followup(r) for r in await cursor.fetchall()]
