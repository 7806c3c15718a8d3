"""Call records in SQLite (aiosqlite), written without making a call wait on the disk.

The public write methods only enqueue; one writer task drains the queue in batches,
each in one transaction. `flush()` waits for everything enqueued so far; `close()`
flushes. A crash loses at most the batch being written (about 20 ms of calls), and
rows a crash left open are closed as `interrupted` at the next start.

A call's ACD queue legs are written with its end, in the same transaction. Every call also
gets a `caller_key`, HMAC-SHA256(salt, the caller's normalised digits), whatever the privacy
policy stores in `caller`: `history()` finds a caller's past calls by it (returning caller,
last agent) even when the stored number is masked or hashed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from ivr.records.masking import Policy, mask_caller
from ivr.records.model import (
    CallbackRequest,
    CallbackStatus,
    CallEnded,
    CallRow,
    CallStarted,
    Disposition,
    EventKind,
    PathEvent,
    QueueLeg,
)
from routing.classify import PastCall, normalize_number

log = logging.getLogger(__name__)

# Each step moves the schema one version up; never edit a released step, add one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE calls (
            call_id TEXT PRIMARY KEY,
            uniqueid TEXT NOT NULL,
            channel TEXT NOT NULL,
            dialed TEXT NOT NULL,
            caller TEXT NOT NULL,
            hotline TEXT NOT NULL,
            language TEXT NOT NULL,
            menu_version TEXT NOT NULL,
            config_version TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at TEXT,
            duration_ms INTEGER,
            disposition TEXT,
            detail TEXT NOT NULL DEFAULT '',
            notice_played_at TEXT,
            recording_started_at TEXT,
            recording_file TEXT,
            hung_up_by TEXT
        )""",
        """CREATE TABLE call_events (
            call_id TEXT NOT NULL REFERENCES calls(call_id),
            seq INTEGER NOT NULL,
            at TEXT NOT NULL,
            kind TEXT NOT NULL,
            node TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (call_id, seq)
        )""",
        "CREATE INDEX calls_started ON calls(started_at)",
    ),
    (
        # v2: the AMI link supplies why Asterisk ended the channel.
        "ALTER TABLE calls ADD COLUMN hangup_cause INTEGER",
        "ALTER TABLE calls ADD COLUMN hangup_cause_txt TEXT",
        "CREATE INDEX calls_uniqueid ON calls(uniqueid)",
        "CREATE INDEX calls_hotline_started ON calls(dialed, started_at)",
    ),
    (
        # v3: the engine's ACD: one row per stay in a queue, and a caller key for history look-ups.
        """CREATE TABLE queue_legs (
            call_id TEXT NOT NULL REFERENCES calls(call_id),
            seq INTEGER NOT NULL,
            queue TEXT NOT NULL,
            enqueued_at TEXT NOT NULL,
            left_at TEXT NOT NULL,
            outcome TEXT NOT NULL,
            answered_at TEXT,
            agent_id TEXT,
            talk_seconds REAL,
            offers INTEGER NOT NULL DEFAULT 0,
            overflow TEXT,
            first_estimate REAL,
            priority INTEGER NOT NULL DEFAULT 0,
            ended_by TEXT,
            PRIMARY KEY (call_id, seq)
        )""",
        "CREATE INDEX queue_legs_queue_enqueued ON queue_legs(queue, enqueued_at)",
        "CREATE INDEX queue_legs_agent ON queue_legs(agent_id)",
        # Rows written before v3 have none: their callers are unknown to history().
        "ALTER TABLE calls ADD COLUMN caller_key TEXT",
        "CREATE INDEX calls_caller_key ON calls(caller_key, ended_at)",
    ),
    (
        # v4: callback requests left on a callback-offer overflow (routing.callbacks works them off).
        """CREATE TABLE callbacks (
            callback_id TEXT PRIMARY KEY,
            call_id TEXT NOT NULL,
            caller TEXT NOT NULL,
            queue TEXT NOT NULL,
            language TEXT NOT NULL,
            asterisk_language TEXT NOT NULL,
            hotline TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            requested_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            next_attempt_at TEXT NOT NULL
        )""",
        "CREATE INDEX callbacks_status_queue ON callbacks(status, queue, requested_at)",
    ),
    (
        # v5: post-call surveys (survey_engine.store): one row per offer, its answers, and the
        # follow-up items low scores open.
        """CREATE TABLE survey_responses (
            response_id TEXT PRIMARY KEY,
            call_id TEXT NOT NULL,
            channel TEXT NOT NULL,
            survey TEXT NOT NULL,
            status TEXT NOT NULL,
            hotline TEXT NOT NULL,
            queue TEXT NOT NULL,
            agent TEXT NOT NULL,
            language TEXT NOT NULL,
            menu_version TEXT NOT NULL,
            menu_path TEXT NOT NULL,
            hung_up_by TEXT NOT NULL,
            caller_key TEXT,
            offered_at TEXT NOT NULL,
            started_at TEXT,
            ended_at TEXT,
            comment_file TEXT,
            comment_seconds REAL,
            comment_text TEXT
        )""",
        "CREATE INDEX survey_responses_call ON survey_responses(call_id)",
        "CREATE INDEX survey_responses_offered ON survey_responses(offered_at)",
        "CREATE INDEX survey_responses_caller ON survey_responses(caller_key, offered_at)",
        """CREATE TABLE survey_answers (
            response_id TEXT NOT NULL REFERENCES survey_responses(response_id),
            seq INTEGER NOT NULL,
            question TEXT NOT NULL,
            kind TEXT NOT NULL,
            value INTEGER,
            attempts INTEGER NOT NULL,
            answered_at TEXT,
            PRIMARY KEY (response_id, seq)
        )""",
        """CREATE TABLE followups (
            item_id TEXT PRIMARY KEY,
            response_id TEXT NOT NULL,
            call_id TEXT NOT NULL,
            category TEXT NOT NULL,
            urgency TEXT NOT NULL,
            owner TEXT NOT NULL,
            created_at TEXT NOT NULL,
            deadline TEXT NOT NULL,
            reasons TEXT NOT NULL,
            queue TEXT NOT NULL,
            agent TEXT NOT NULL,
            contact TEXT,
            status TEXT NOT NULL,
            assignee TEXT,
            assigned_at TEXT,
            resolution TEXT,
            closed_at TEXT
        )""",
        "CREATE INDEX followups_status_deadline ON followups(status, deadline)",
        "CREATE UNIQUE INDEX followups_response ON followups(response_id)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
_BATCH = 500


def iso_utc(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds")


def parse_iso(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text)


def caller_key(number: str, salt: str) -> str | None:
    """HMAC-SHA256(salt, normalised digits): the same for `+86 138...`, `0086138...`, `138...`;
    None for a withheld number (no digits). The salt is `privacy.hash_salt`."""
    digits = normalize_number(number)
    if not digits:
        return None
    return hmac.new(salt.encode(), digits.encode(), hashlib.sha256).hexdigest()


_LEG_COLUMNS = (
    "queue, enqueued_at, left_at, outcome, answered_at, agent_id, talk_seconds, offers, overflow,"
    " first_estimate, priority, ended_by"
)


def _leg_row(call_id: str, seq: int, leg: QueueLeg) -> tuple[object, ...]:
    return (
        call_id, seq, leg.queue, iso_utc(leg.enqueued_at), iso_utc(leg.left_at), leg.outcome, iso_utc(leg.answered_at),
        leg.agent_id, leg.talk_seconds, leg.offers, leg.overflow, leg.first_estimate, leg.priority, leg.ended_by,
    )


def _leg(r: Sequence[object]) -> QueueLeg:
    queue, enqueued_at, left_at, outcome, answered_at, agent_id, talk, offers, overflow, estimate, priority, by = r
    return QueueLeg(
        queue=str(queue),
        enqueued_at=dt.datetime.fromisoformat(str(enqueued_at)),
        left_at=dt.datetime.fromisoformat(str(left_at)),
        outcome=outcome,  # type: ignore[arg-type]  # written from the Literal
        answered_at=parse_iso(answered_at if isinstance(answered_at, str) else None),
        agent_id=agent_id if isinstance(agent_id, str) else None,
        talk_seconds=float(talk) if isinstance(talk, int | float) else None,
        offers=int(offers) if isinstance(offers, int) else 0,
        overflow=overflow if isinstance(overflow, str) else None,
        first_estimate=float(estimate) if isinstance(estimate, int | float) else None,
        priority=int(priority) if isinstance(priority, int) else 0,
        ended_by=by,  # type: ignore[arg-type]  # written from the Literal
    )


@dataclass(frozen=True)
class _HangupCause:
    uniqueid: str
    cause: int
    text: str


_CALLBACK_COLUMNS = (
    "callback_id, call_id, caller, queue, language, asterisk_language, hotline, status, attempts, last_error,"
    " requested_at, updated_at, next_attempt_at"
)


def _callback(r: Sequence[object]) -> CallbackRequest:
    cid, call_id, caller, queue, language, ast_language, hotline, status, attempts, error, requested, updated, due = r
    return CallbackRequest(
        callback_id=str(cid), call_id=str(call_id), caller=str(caller), queue=str(queue), language=str(language),
        asterisk_language=str(ast_language), hotline=str(hotline),
        requested_at=dt.datetime.fromisoformat(str(requested)),
        status=status,  # type: ignore[arg-type]  # written from the Literal
        attempts=int(attempts) if isinstance(attempts, int) else 0,
        last_error=error if isinstance(error, str) else None,
        updated_at=parse_iso(updated if isinstance(updated, str) else None),
        next_attempt_at=parse_iso(due if isinstance(due, str) else None),
    )


_Item = CallStarted | CallEnded | _HangupCause | asyncio.Future[None]


class StoreError(Exception):
    """Records could not be written."""


class CallStore:
    def __init__(self, db: aiosqlite.Connection, policy: Policy, salt: str) -> None:
        self._db = db
        self._policy = policy
        self._salt = salt
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._failure: BaseException | None = None
        # One connection: a callback write must not land inside (or be rolled back with) a batch.
        self._lock = asyncio.Lock()
        self._writer = asyncio.create_task(self._write_loop(), name="call-record-writer")

    @classmethod
    async def open(cls, path: Path, *, privacy_policy: Policy = "mask", salt: str = "") -> CallStore:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path)
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        await migrate(db)
        return cls(db, privacy_policy, salt)

    # --- writes: enqueue and return at once -------------------------------------------

    def call_started(self, call: CallStarted) -> None:
        self._queue.put_nowait(call)

    def call_ended(self, call: CallEnded) -> None:
        self._queue.put_nowait(call)

    def set_hangup_cause(self, uniqueid: str, cause: int, cause_txt: str) -> None:
        self._queue.put_nowait(_HangupCause(uniqueid, cause, cause_txt))

    async def flush(self) -> None:
        marker: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(marker)
        if self._writer.done():
            raise StoreError("the call-record writer has stopped") from self._failure
        await marker

    async def close(self) -> None:
        try:
            await self.flush()
        finally:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
            await self._db.close()

    async def _write_loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < _BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            markers = [item for item in batch if isinstance(item, asyncio.Future)]
            records = [item for item in batch if not isinstance(item, asyncio.Future)]
            error: BaseException | None = None
            for attempt in (1, 2):
                async with self._lock:
                    try:
                        await self._write(records)
                        error = None
                        break
                    except Exception as exc:  # a locked or full disk: retry once, then report
                        error = exc
                        log.error("writing %d call records failed (attempt %d): %s", len(records), attempt, exc)
                        await self._db.rollback()
            for marker in markers:
                if marker.done():
                    continue
                if error is None:
                    marker.set_result(None)
                else:
                    marker.set_exception(StoreError(f"call records were not written: {error}"))

    async def _write(self, records: Sequence[CallStarted | CallEnded | _HangupCause]) -> None:
        for item in records:
            if isinstance(item, CallStarted):
                await self._db.execute(
                    "INSERT OR IGNORE INTO calls (call_id, uniqueid, channel, dialed, caller, hotline, language,"
                    " menu_version, config_version, started_at, caller_key) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        item.call_id, item.uniqueid, item.channel, item.dialed,
                        mask_caller(item.caller, self._policy, self._salt), item.hotline, item.language,
                        item.menu_version, item.config_version, iso_utc(item.started_at),
                        caller_key(item.caller, self._salt),
                    ),
                )
            elif isinstance(item, CallEnded):
                await self._db.execute(
                    "UPDATE calls SET ended_at=?, duration_ms=CAST(ROUND((julianday(?) - julianday(started_at))"
                    " * 86400000) AS INTEGER), disposition=?, detail=?, language=?, notice_played_at=?,"
                    " recording_started_at=?, recording_file=?, hung_up_by=? WHERE call_id=?",
                    (
                        iso_utc(item.ended_at), iso_utc(item.ended_at), item.disposition.value, item.detail,
                        item.language, iso_utc(item.notice_played_at), iso_utc(item.recording_started_at),
                        item.recording_file, item.hung_up_by, item.call_id,
                    ),
                )
                await self._db.executemany(
                    "INSERT OR REPLACE INTO call_events (call_id, seq, at, kind, node, value) VALUES (?,?,?,?,?,?)",
                    [
                        (item.call_id, seq, iso_utc(event.at), event.kind.value, event.node, event.value)
                        for seq, event in enumerate(item.events)
                    ],
                )
                await self._db.executemany(
                    f"INSERT OR REPLACE INTO queue_legs (call_id, seq, {_LEG_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    [_leg_row(item.call_id, seq, leg) for seq, leg in enumerate(item.queue_legs)],
                )
            else:
                await self._db.execute(
                    "UPDATE calls SET hangup_cause=?, hangup_cause_txt=? WHERE uniqueid=?",
                    (item.cause, item.text, item.uniqueid),
                )
        await self._db.commit()

    # --- callback requests: written at once (the caller is told it is stored) ------------

    async def add_callback(self, request: CallbackRequest) -> bool:
        """Store a pending request; False if one with that id exists already (unchanged)."""
        async with self._lock:
            cursor = await self._db.execute(
                f"INSERT OR IGNORE INTO callbacks ({_CALLBACK_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    request.callback_id, request.call_id, request.caller, request.queue, request.language,
                    request.asterisk_language, request.hotline, request.status, request.attempts,
                    request.last_error, iso_utc(request.requested_at), iso_utc(request.updated_at or request.requested_at),
                    iso_utc(request.next_attempt_at or request.requested_at),
                ),
            )
            await self._db.commit()
            return cursor.rowcount == 1

    async def due_callbacks(self, now: dt.datetime) -> list[CallbackRequest]:
        """Pending requests that may be offered at `now`, oldest request first."""
        cursor = await self._db.execute(
            f"SELECT {_CALLBACK_COLUMNS} FROM callbacks WHERE status = 'pending' AND next_attempt_at <= ?"
            " ORDER BY requested_at, callback_id",
            (iso_utc(now),),
        )
        return [_callback(r) for r in await cursor.fetchall()]

    async def claim_callback(self, callback_id: str, now: dt.datetime) -> CallbackRequest | None:
        """Atomically pending -> dialing, attempts + 1; None if it is not pending (any more)."""
        async with self._lock:
            cursor = await self._db.execute(
                "UPDATE callbacks SET status = 'dialing', attempts = attempts + 1, updated_at = ?"
                " WHERE callback_id = ? AND status = 'pending'",
                (iso_utc(now), callback_id),
            )
            await self._db.commit()
        if cursor.rowcount != 1:
            return None
        return await self.get_callback(callback_id)

    async def claim_oldest_callback(self, queue: str, now: dt.datetime) -> CallbackRequest | None:
        """The oldest due pending request of `queue`, claimed (see `claim_callback`)."""
        for request in await self.due_callbacks(now):
            if request.queue == queue:
                claimed = await self.claim_callback(request.callback_id, now)
                if claimed is not None:
                    return claimed
        return None

    async def finish_callback(
        self, callback_id: str, now: dt.datetime, *, ok: bool, error: str | None = None,
        max_attempts: int = 3, retry_at: dt.datetime | None = None,
    ) -> CallbackStatus | None:
        """A dialing request's attempt ended: `done`; or, failed, back to `pending` (not before
        `retry_at`) until `max_attempts` attempts, then `failed`. Returns the new status."""
        async with self._lock:
            cursor = await self._db.execute(
                "SELECT attempts FROM callbacks WHERE callback_id = ? AND status = 'dialing'", (callback_id,))
            row = await cursor.fetchone()
            if row is None:
                return None
            status: CallbackStatus = "done" if ok else ("failed" if int(row[0]) >= max_attempts else "pending")
            await self._db.execute(
                "UPDATE callbacks SET status = ?, last_error = COALESCE(?, last_error), updated_at = ?,"
                " next_attempt_at = ? WHERE callback_id = ?",
                (status, error, iso_utc(now), iso_utc(retry_at or now), callback_id),
            )
            await self._db.commit()
            return status

    async def recover_callbacks(self, now: dt.datetime) -> int:
        """Requests a crash left `dialing` go back to `pending` (run at start-up)."""
        async with self._lock:
            cursor = await self._db.execute(
                "UPDATE callbacks SET status = 'pending', updated_at = ?,"
                " last_error = 'controller stopped while dialing' WHERE status = 'dialing'",
                (iso_utc(now),),
            )
            await self._db.commit()
            return cursor.rowcount

    async def get_callback(self, callback_id: str) -> CallbackRequest | None:
        cursor = await self._db.execute(
            f"SELECT {_CALLBACK_COLUMNS} FROM callbacks WHERE callback_id = ?", (callback_id,))
        row = await cursor.fetchone()
        return None if row is None else _callback(row)

    async def callbacks(self) -> list[CallbackRequest]:
        """Every request, oldest first (tests, reports)."""
        cursor = await self._db.execute(
            f"SELECT {_CALLBACK_COLUMNS} FROM callbacks ORDER BY requested_at, callback_id")
        return [_callback(r) for r in await cursor.fetchall()]

    # --- start-up and reads ----------------------------------------------------------

    async def recover_interrupted(self, now: dt.datetime) -> int:
        """Close rows a crash left open; run once at start-up, before calls arrive."""
        cursor = await self._db.execute(
            "UPDATE calls SET ended_at=?, disposition=?, detail='controller stopped during the call',"
            " duration_ms=CAST(ROUND((julianday(?) - julianday(started_at)) * 86400000) AS INTEGER)"
            " WHERE disposition IS NULL",
            (iso_utc(now), Disposition.INTERRUPTED.value, iso_utc(now)),
        )
        await self._db.commit()
        return cursor.rowcount

    async def get_call(self, call_id: str) -> CallRow | None:
        async for row in self._rows("WHERE call_id = ?", (call_id,)):
            return row
        return None

    async def caller_key_of(self, call_id: str) -> str | None:
        """The call's caller key (see `caller_key`); None for an unknown call or a withheld number."""
        cursor = await self._db.execute("SELECT caller_key FROM calls WHERE call_id = ?", (call_id,))
        row = await cursor.fetchone()
        return None if row is None or row[0] is None else str(row[0])

    async def iter_calls(
        self, since: dt.datetime | None = None, until: dt.datetime | None = None, hotline: str | None = None
    ) -> AsyncIterator[CallRow]:
        clauses, args = [], []
        if since is not None:
            clauses.append("started_at >= ?")
            args.append(iso_utc(since))
        if until is not None:
            clauses.append("started_at < ?")
            args.append(iso_utc(until))
        if hotline is not None:
            clauses.append("dialed = ?")
            args.append(hotline)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        async for row in self._rows(where + " ORDER BY started_at, call_id", tuple(args)):
            yield row

    async def history(self, caller_number: str, since: dt.datetime | float) -> list[PastCall]:
        """The caller's calls that ended at or after `since` (a datetime, or epoch seconds), newest
        first: when each ended, the agent who answered it (its last answered queue leg) and the talk time.

        Found by caller key, so a masked or hashed stored number does not matter; each PastCall's
        `caller` is `caller_number` as given. Calls still open (this one) are left out."""
        key = caller_key(caller_number, self._salt)
        if key is None:
            return []
        start = since if isinstance(since, dt.datetime) else dt.datetime.fromtimestamp(since, dt.timezone.utc)
        cursor = await self._db.execute(
            "SELECT c.ended_at,"
            " (SELECT agent_id FROM queue_legs l WHERE l.call_id = c.call_id AND l.outcome = 'answered'"
            "  ORDER BY l.seq DESC LIMIT 1),"
            " (SELECT talk_seconds FROM queue_legs l WHERE l.call_id = c.call_id AND l.outcome = 'answered'"
            "  ORDER BY l.seq DESC LIMIT 1)"
            " FROM calls c WHERE c.caller_key = ? AND c.ended_at IS NOT NULL AND c.ended_at >= ?"
            " ORDER BY c.ended_at DESC, c.call_id DESC",
            (key, iso_utc(start)),
        )
        return [
            PastCall(caller_number, dt.datetime.fromisoformat(ended).timestamp(), agent, float(talk or 0.0))
            for ended, agent, talk in await cursor.fetchall()
        ]

    async def disposition_counts(self) -> dict[str, int]:
        cursor = await self._db.execute(
            "SELECT COALESCE(disposition, 'open'), COUNT(*) FROM calls GROUP BY 1 ORDER BY 2 DESC"
        )
        return {str(name): int(count) for name, count in await cursor.fetchall()}

    async def _rows(self, where: str, args: tuple[object, ...]) -> AsyncIterator[CallRow]:
        cursor = await self._db.execute(
            "SELECT call_id, uniqueid, channel, dialed, caller, hotline, language, menu_version, config_version,"
            " started_at, ended_at, duration_ms, disposition, detail, notice_played_at, recording_started_at,"
            " recording_file, hung_up_by, hangup_cause, hangup_cause_txt FROM calls " + where,
            args,
        )
        for r in await cursor.fetchall():
            events_cursor = await self._db.execute(
                "SELECT at, kind, node, value FROM call_events WHERE call_id = ? ORDER BY seq", (r[0],)
            )
            events = tuple(
                PathEvent(dt.datetime.fromisoformat(at), EventKind(kind), node, value)
                for at, kind, node, value in await events_cursor.fetchall()
            )
            legs_cursor = await self._db.execute(
                f"SELECT {_LEG_COLUMNS} FROM queue_legs WHERE call_id = ? ORDER BY seq", (r[0],)
            )
            legs = tuple(_leg(leg) for leg in await legs_cursor.fetchall())
            yield CallRow(
                call_id=r[0], uniqueid=r[1], channel=r[2], dialed=r[3], caller=r[4], hotline=r[5],
                language=r[6], menu_version=r[7], config_version=r[8], started_at=dt.datetime.fromisoformat(r[9]),
                ended_at=parse_iso(r[10]), duration_ms=r[11],
                disposition=Disposition(r[12]) if r[12] is not None else None, detail=r[13],
                notice_played_at=parse_iso(r[14]), recording_started_at=parse_iso(r[15]), recording_file=r[16],
                hung_up_by=r[17], hangup_cause=r[18], hangup_cause_txt=r[19], events=events, queue_legs=legs,
            )


async def migrate(db: aiosqlite.Connection) -> int:
    """Bring the schema to SCHEMA_VERSION step by step, recording each step; return the old version."""
    await db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    cursor = await db.execute("SELECT version FROM schema_version")
    row = await cursor.fetchone()
    current = int(row[0]) if row else 0
    if row is None:
        await db.execute("INSERT INTO schema_version (version) VALUES (0)")
    if current > SCHEMA_VERSION:
        raise StoreError(f"call-record database is at schema {current}, newer than this program ({SCHEMA_VERSION})")
    for version in range(current, SCHEMA_VERSION):
        for statement in MIGRATIONS[version]:
            await db.execute(statement)
        await db.execute("UPDATE schema_version SET version = ?", (version + 1,))
        await db.commit()
    await db.commit()
    return current
