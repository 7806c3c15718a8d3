"""Call records in SQLite or PostgreSQL (SQLAlchemy Core), written without making a call wait.

The public write methods (`call_started`, `call_ended`, `set_hangup_cause`, `set_ami_times`,
`agent_event`) only enqueue; one writer task drains the queue in batches, each in one
transaction. `flush()` waits until everything enqueued so far is in the database; `close()`
flushes for up to `timeout` seconds and spools what it could not write.

When the database is unavailable (PostgreSQL down or refusing connections, SQLite locked
beyond its busy timeout), the writer appends what it holds to its spool file (JSON Lines,
fsync'ed: `ivr.records.spool`), logs once, and retries with back-off (at once on `flush()`);
while a spool is pending, new records go to its end, so the order is kept. Once the
database answers, the spool is replayed in batches and removed, and the recovery is logged
once. A spool left by a store that died or closed during an outage is replayed by the next
store opened on the same database. Every write is idempotent (`ivr.records.writes`), so a
record written twice never duplicates rows.

What a crash can lose: only records enqueued and neither committed nor spooled yet, that is
the batch being written (the writer drains continuously: the last few milliseconds of
calls), or, during an outage, the records enqueued since the writer's last spool append
(it appends as soon as it wakes up for them). Calls a crash left open are closed as
`interrupted` by `recover_interrupted` at the next start (in a store several controllers
share, by the controller that left them open). A record the database refuses
for its content (never expected) is set aside in `<name>-rejected.jsonl` beside the spool
and logged as an error, so that it cannot hold back the records after it.

A call's ACD queue legs are written with its end, in the same transaction. Every call also
gets a `caller_key`, HMAC-SHA256(salt, the caller's normalised digits), whatever the privacy
policy stores in `caller`: `history()` finds a caller's past calls by it (returning caller,
last agent) even when the stored number is masked or hashed.

What AMI saw wins over the controller's own inference (`ivr.records.ami_times`): the
DialEnd ANSWER time is stored as `calls.agent_answered_at` and becomes the answered_at of
the call's first answered queue leg, and the agent channel's time in the bridge
(`calls.bridge_seconds`) becomes its talk_seconds, whichever of the AMI event and the call's
end is written first.

One file past 600 lines: the writer, its spool and the reads share one connection and its
failure handling; split, the outage rules would be written twice.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import datetime as dt
import hashlib
import hmac
import logging
import operator
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    RowMapping,
    Select,
    and_,
    bindparam,
    case,
    desc,
    func,
    literal,
    null,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DatabaseError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

from ivr.records.database import (
    Target,
    describe,
    insert_ignoring,
    insert_replacing,
    open_engine,
    sqlite_file,
    unavailable,
)
from ivr.records.masking import Policy, mask_caller
from ivr.records.model import (
    AgentEvent,
    CallbackRequest,
    CallbackStatus,
    FUNNEL_KINDS,
    CallEnded,
    CallPath,
    CallRow,
    CallStarted,
    CallSummary,
    Disposition,
    EventKind,
    PathEvent,
    QueueLeg,
    StoredLeg,
    leg_transfers,
    node_path,
)
from ivr.records.schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    SchemaError,
    UtcTime,
    agent_events,
    call_events,
    callbacks,
    calls,
    duration_ms,
    migrate,
    queue_legs,
    utc_text_of,
    wrap_ups,
)
from ivr.records.causes import ended_by_cause
from ivr.records.spool import SpoolFile, spool_files
from ivr.records.writes import AmiTimes, HangupCause, Started, Write, encode
from ivr.records.wrapups import NO_CODE, PENDING
from routing.classify import PastCall, normalize_number

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "CallStore", "StoreError", "StoreUnavailable", "caller_key"]

log = logging.getLogger(__name__)

_BATCH = 2000  # records per transaction at most: a backlog drains in fewer, cheaper commits
_READ_BATCH = 2000  # calls per query of iter_calls


def caller_key(number: str, salt: str) -> str | None:
    """HMAC-SHA256(salt, normalised digits): the same for `+86 138...`, `0086138...`, `138...`;
    None for a withheld number (no digits). The salt: `ivr.records.keys.caller_salt`."""
    digits = normalize_number(number)
    if not digits:
        return None
    return hmac.new(salt.encode(), digits.encode(), hashlib.sha256).hexdigest()


class StoreError(Exception):
    """Records could not be written or read."""


def not_a_database(target: Target, exc: BaseException) -> StoreError | None:
    """The error to give when opening `target` failed with `exc` because the SQLite file is
    something else (SQLite: "file is not a database"); None for any other failure."""
    path = sqlite_file(target)
    if path is None or not isinstance(exc, DatabaseError):
        return None
    return StoreError(f"{path}: not a call-record database ({exc.orig or exc})")


class StoreUnavailable(StoreError):
    """The database cannot be reached now; records written meanwhile are spooled."""


@dataclass(frozen=True)
class _Marker:
    """A flush request: done when every record enqueued before it is in the database."""

    future: asyncio.Future[None]


_CALL_COLUMNS = (
    calls.c.call_id, calls.c.uniqueid, calls.c.channel, calls.c.dialed, calls.c.caller, calls.c.hotline,
    calls.c.language, calls.c.menu_version, calls.c.config_version, calls.c.started_at, calls.c.ended_at,
    calls.c.duration_ms, calls.c.disposition, calls.c.detail, calls.c.notice_played_at,
    calls.c.recording_started_at, calls.c.recording_file, calls.c.hung_up_by, calls.c.hangup_cause,
    calls.c.hangup_cause_txt, calls.c.agent_answered_at, calls.c.bridged_at, calls.c.hold_seconds,
)
# A batch's events and legs, for a list of call ids (one expanding parameter, not one per id).
_EVENTS_OF = (select(call_events.c.call_id, call_events.c.at, call_events.c.kind, call_events.c.node,
                     call_events.c.value)
              .where(call_events.c.call_id.in_(bindparam("ids", expanding=True)))
              .order_by(call_events.c.call_id, call_events.c.seq))
_NODES_OF = (select(call_events.c.call_id, call_events.c.node)
             .where(call_events.c.call_id.in_(bindparam("ids", expanding=True)),
                    call_events.c.kind == EventKind.NODE.value)
             .order_by(call_events.c.call_id, call_events.c.seq))
# QueueLeg's fields, in its order: the table's columns from the key to wrap_seconds.
_LEG_FIELDS = tuple(queue_legs.c[f.name] for f in dataclasses.fields(QueueLeg))
_LEGS_OF = (select(queue_legs.c.call_id, *_LEG_FIELDS).where(queue_legs.c.call_id.in_(bindparam("ids", expanding=True)))
            .order_by(queue_legs.c.call_id, queue_legs.c.seq))
# An answered leg's wrap-up (ivr.records.wrapups): its agent's row of the call, found by the
# table's key; its code, else no_code once the deadline is before `wrap_now`, else pending.
_WRAPPED = and_(wrap_ups.c.call_id == queue_legs.c.call_id, wrap_ups.c.agent_id == queue_legs.c.agent_id,
                queue_legs.c.outcome == "answered")
_WRAP_CODE = case((wrap_ups.c.code.is_not(None), wrap_ups.c.code),
                  (wrap_ups.c.deadline < bindparam("wrap_now", type_=UtcTime()), literal(NO_CODE)),
                  (wrap_ups.c.call_id.is_not(None), literal(PENDING)))
# The metrics' reads: one streamed query each, in call start order (ivr.records.model).
_LEG_COLUMNS = (
    queue_legs.c.call_id, calls.c.dialed, calls.c.agent_answered_at, calls.c.hold_seconds, queue_legs.c.seq,
    queue_legs.c.queue, queue_legs.c.enqueued_at, queue_legs.c.left_at, queue_legs.c.outcome,
    queue_legs.c.answered_at, queue_legs.c.agent_id, queue_legs.c.talk_seconds, queue_legs.c.overflow,
    queue_legs.c.wrap_seconds, queue_legs.c.transferred, queue_legs.c.first_estimate,
)
_CALL_LEGS = calls.join(queue_legs, queue_legs.c.call_id == calls.c.call_id)
_LEG_ORDER = (calls.c.started_at, calls.c.call_id, queue_legs.c.seq)
# Figures that need no wrap-up codes (intervals, agents) skip the join.
_STORED_LEGS = select(*_LEG_COLUMNS, null(), null()).select_from(_CALL_LEGS).order_by(*_LEG_ORDER)
_STORED_LEGS_WRAPPED = (select(*_LEG_COLUMNS, _WRAP_CODE, wrap_ups.c.note)
                        .select_from(_CALL_LEGS.outerjoin(wrap_ups, _WRAPPED)).order_by(*_LEG_ORDER))
_SUMMARY_LEG = 22  # where a summary row's leg columns start
_SUMMARIES = (
    select(calls.c.call_id, calls.c.dialed, calls.c.hotline, calls.c.caller, calls.c.language, calls.c.menu_version,
           calls.c.config_version, utc_text_of(calls.c.started_at), utc_text_of(calls.c.ended_at),
           calls.c.duration_ms, calls.c.disposition, calls.c.detail, calls.c.hung_up_by, calls.c.hangup_cause,
           calls.c.hangup_cause_txt, calls.c.node_path, utc_text_of(calls.c.agent_answered_at),
           calls.c.hold_seconds, utc_text_of(calls.c.bridged_at), utc_text_of(calls.c.notice_played_at),
           utc_text_of(calls.c.recording_started_at), calls.c.recording_file,
           queue_legs.c.queue, utc_text_of(queue_legs.c.enqueued_at), utc_text_of(queue_legs.c.left_at),
           queue_legs.c.outcome, utc_text_of(queue_legs.c.answered_at), queue_legs.c.agent_id, _WRAP_CODE,
           wrap_ups.c.note)
    .select_from(calls.outerjoin(queue_legs, queue_legs.c.call_id == calls.c.call_id).outerjoin(wrap_ups, _WRAPPED))
    .order_by(calls.c.started_at, calls.c.call_id, queue_legs.c.seq)
)
_PATHS = (
    select(calls.c.call_id, calls.c.dialed, calls.c.menu_version, utc_text_of(calls.c.started_at),
           calls.c.disposition, call_events.c.kind, call_events.c.node, call_events.c.value)
    # Outer: a call without such events still counts among its menu version's calls.
    .select_from(calls.outerjoin(call_events, and_(call_events.c.call_id == calls.c.call_id,
                                                   call_events.c.kind.in_([k.value for k in FUNNEL_KINDS]))))
    .order_by(calls.c.started_at, calls.c.call_id, call_events.c.seq)
)
_END_COLUMNS = ("ended_at", "duration_ms", "disposition", "detail", "language", "notice_played_at",
                "recording_started_at", "recording_file", "hung_up_by", "node_path")
_EVENT_KINDS = {kind.value: kind for kind in EventKind}
_DISPOSITIONS: dict[str | None, Disposition | None] = {d.value: d for d in Disposition}


def _callback(m: RowMapping) -> CallbackRequest:
    return CallbackRequest(
        callback_id=m["callback_id"], call_id=m["call_id"], caller=m["caller"], queue=m["queue"],
        language=m["language"], asterisk_language=m["asterisk_language"], hotline=m["hotline"],
        requested_at=m["requested_at"], status=m["status"], attempts=m["attempts"], last_error=m["last_error"],
        updated_at=m["updated_at"], next_attempt_at=m["next_attempt_at"],
    )


def _summary(call: Sequence[Any], legs: Sequence[Sequence[Any]]) -> CallSummary:
    """A _SUMMARIES row of a call and the leg parts of its rows (queue, enqueued_at, left_at,
    outcome, answered_at, agent_id, wrap code, wrap note), in leg order. The wrap-up is the
    last answered leg's: the agent who ended the call coded how it ended."""
    queues: tuple[str, ...] = ()
    entered = left = answered_at = agent = source = wrap_code = wrap_note = None
    if legs:
        first = legs[0]
        entered, left = first[1], legs[-1][2]
        if len(legs) == 1:
            queues, answered = (first[0],), first if first[3] == "answered" else None
        else:
            queues = tuple(leg[0] for leg in legs)
            answered = next((leg for leg in legs if leg[3] == "answered"), None)
        if answered is not None:
            ami = call[16]
            answered_at, agent = ami or answered[4], answered[5]
            source = "ami" if ami is not None else "controller"
            last = next(leg for leg in reversed(legs) if leg[3] == "answered")
            wrap_code, wrap_note = last[6], last[7]
    return CallSummary._make((
        *call[:10], _DISPOSITIONS.get(call[10]), *call[11:16], queues, entered, answered_at, source, agent, left,
        float(call[17]), call[18], call[19], call[20], call[21], wrap_code, wrap_note))


def _path(rows: Sequence[Sequence[Any]]) -> CallPath:
    """A call's _PATHS rows (one per funnel event, or one of NULLs) as a CallPath."""
    call, kinds = rows[0], _EVENT_KINDS
    steps = tuple((kinds[row[5]], row[6], row[7]) for row in rows if row[5] is not None)
    return CallPath(call[0], call[1], call[2], call[3], _DISPOSITIONS.get(call[4]), steps)


def _end_columns(end: CallEnded, started_at: dt.datetime, time: Callable[[dt.datetime | None], Any]) -> dict[str, Any]:
    """The calls columns a call's end sets (in the driver's form), its duration computed here
    (the call started in the same batch), to the millisecond as `duration_ms` does in SQL."""
    millisecond = dt.timedelta(milliseconds=1)
    return {
        "ended_at": time(end.ended_at), "duration_ms": (_whole_ms(end.ended_at) - _whole_ms(started_at)) // millisecond,
        "disposition": end.disposition.value, "detail": end.detail, "language": end.language,
        "notice_played_at": time(end.notice_played_at), "recording_started_at": time(end.recording_started_at),
        "recording_file": end.recording_file, "hung_up_by": end.hung_up_by, "node_path": node_path(end.events),
    }


def _whole_ms(moment: dt.datetime) -> dt.datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


# No call lasts a day, and no callback is dialed for an hour: a row open longer was left by a
# controller that stopped and has not come back, and any controller that starts closes it.
OPEN_LIMIT = dt.timedelta(days=1)
DIAL_LIMIT = dt.timedelta(hours=1)


def _memoized(convert: Callable[[dt.datetime | None], Any]) -> Callable[[dt.datetime | None], Any]:
    """`convert` remembering its answers for one batch: a call's events share their moments
    (a digit and the node it leads to; the queue node, its event and the enqueue), and
    formatting them was a quarter of the writer's time."""
    # Keyed on the wall time and its offset: datetimes of one zone that differ only in `fold`
    # (the repeated hour when clocks go back) compare and hash equal, yet are an hour apart.
    seen: dict[tuple[dt.datetime, dt.timedelta | None], Any] = {}

    def time(moment: dt.datetime | None) -> Any:
        if moment is None:
            return None
        key = (moment.replace(tzinfo=None), moment.utcoffset())
        value = seen.get(key)
        if value is None:
            value = seen[key] = convert(moment)
        return value

    return time


def _started_within(since: dt.datetime | None, until: dt.datetime | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if since is not None:
        conditions.append(calls.c.started_at >= since)
    if until is not None:
        conditions.append(calls.c.started_at < until)
    return conditions


class _Bulk:
    """A statement compiled once for the dialect, run as a DBAPI executemany on plain tuples.
    SQLAlchemy's per-row parameter handling costs more than SQLite's own insert, so the
    writer's hot statements take rows whose values are already in the driver's form."""

    def __init__(self, statement: ClauseElement, dialect: Dialect, keys: Sequence[str]) -> None:
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect, column_keys=list(keys)))
        assert compiled.positiontup is not None, "a positional paramstyle (qmark, numeric_dollar)"
        self.sql = str(compiled)
        names = list(compiled.positiontup)
        self._row = operator.itemgetter(*names) if len(names) > 1 else (lambda row: (row[names[0]],))

    async def run(self, conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
        await conn.exec_driver_sql(self.sql, [self._row(row) for row in rows])


_START_KEYS = ("call_id", "uniqueid", "channel", "dialed", "caller", "hotline", "language", "menu_version",
               "config_version", "started_at", "caller_key", "controller")


class _Statements:
    """The writer's statements for one dialect, built once."""

    def __init__(self, dialect: Dialect) -> None:
        name = dialect.name
        self.time = UtcTime().bind_processor(dialect)  # a datetime as the driver takes it
        self.start = _Bulk(insert_ignoring(name, calls, "call_id"), dialect, _START_KEYS)
        # A start and its end in one batch; a row already there (a replay) gets the end columns.
        self.whole = _Bulk(insert_replacing(name, calls, "call_id", only=_END_COLUMNS), dialect,
                           _START_KEYS + _END_COLUMNS)
        ended = bindparam("b_ended_at", type_=UtcTime())
        self.end = _Bulk(update(calls).where(calls.c.call_id == bindparam("b_call_id")).values(
            ended_at=ended, duration_ms=duration_ms(ended, calls.c.started_at),
            disposition=bindparam("b_disposition"), detail=bindparam("b_detail"),
            language=bindparam("b_language"), notice_played_at=bindparam("b_notice", type_=UtcTime()),
            recording_started_at=bindparam("b_recording", type_=UtcTime()),
            recording_file=bindparam("b_recording_file"), hung_up_by=bindparam("b_hung_up_by"),
            node_path=bindparam("b_node_path"),
        ), dialect, ())
        self.event = _Bulk(insert_replacing(name, call_events, "call_id", "seq"), dialect,
                           [c.name for c in call_events.c])
        self.leg = _Bulk(insert_replacing(name, queue_legs, "call_id", "seq"), dialect, [c.name for c in queue_legs.c])
        # A cause that says the PBX or the network ended the call (ivr.records.causes, `b_by`)
        # replaces the `caller` the FastAGI session could only assume; agent and ivr stay.
        self.cause = update(calls).where(calls.c.uniqueid == bindparam("b_uniqueid")).values(
            hangup_cause=bindparam("b_cause"), hangup_cause_txt=bindparam("b_text"),
            hung_up_by=case((calls.c.hung_up_by == "caller",
                             func.coalesce(bindparam("b_by", type_=calls.c.hung_up_by.type), calls.c.hung_up_by)),
                            else_=calls.c.hung_up_by))
        self.ami = update(calls).where(calls.c.uniqueid == bindparam("b_uniqueid")).values(
            agent_answered_at=func.coalesce(calls.c.agent_answered_at, bindparam("b_answered", type_=UtcTime())),
            bridged_at=func.coalesce(calls.c.bridged_at, bindparam("b_bridged", type_=UtcTime())),
            hold_seconds=func.coalesce(bindparam("b_hold", type_=calls.c.hold_seconds.type), calls.c.hold_seconds),
            bridge_seconds=func.coalesce(calls.c.bridge_seconds,
                                         bindparam("b_talk", type_=calls.c.bridge_seconds.type)),
        )
        self.agent = insert_ignoring(name, agent_events, "agent_id", "at", "presence")
        # The first answered leg takes AMI's answer time and bridge time (its talk): run after
        # either side is written.
        first = queue_legs.alias("first")
        first_answered = select(func.min(first.c.seq)).where(
            first.c.call_id == queue_legs.c.call_id, first.c.outcome == "answered").scalar_subquery()
        ami_answer = select(calls.c.agent_answered_at).where(
            calls.c.call_id == queue_legs.c.call_id).scalar_subquery()
        ami_talk = select(calls.c.bridge_seconds).where(calls.c.call_id == queue_legs.c.call_id).scalar_subquery()
        sync = update(queue_legs).values(
            answered_at=func.coalesce(ami_answer, queue_legs.c.answered_at),
            talk_seconds=func.coalesce(ami_talk, queue_legs.c.talk_seconds),
        ).where(queue_legs.c.outcome == "answered", queue_legs.c.seq == first_answered,
                or_(ami_answer.is_not(None), ami_talk.is_not(None)))
        self.ami_answered = select(calls.c.call_id).where(
            calls.c.call_id.in_(bindparam("ids", expanding=True)),
            or_(calls.c.agent_answered_at.is_not(None), calls.c.bridge_seconds.is_not(None)))
        self.sync_by_call = sync.where(queue_legs.c.call_id == bindparam("b_call_id"))
        self.sync_by_uniqueid = sync.where(queue_legs.c.call_id.in_(
            select(calls.c.call_id).where(calls.c.uniqueid == bindparam("b_uniqueid")).scalar_subquery()))


class CallStore:
    def __init__(
        self, engine: AsyncEngine, policy: Policy, salt: str, *, spool_dir: Path, name: str, target: str,
        controller: str | None = None, shared: bool = False, retry_min: float = 0.5, retry_max: float = 30.0,
    ) -> None:
        self.engine = engine
        self.target = target  # for log lines: the file, or the URL without its password
        self.controller = controller
        self._shared = shared  # other controllers write to this store: recover only our rows
        self._policy = policy
        self._salt = salt
        self._statements = _Statements(engine.dialect)
        self._spool_dir = spool_dir
        self._spool_prefix = f"{name}-spool"
        self._rejected = spool_dir / f"{name}-rejected.jsonl"
        self._retry_min = retry_min
        self._retry_max = retry_max
        self._delay = retry_min
        self._items: collections.deque[Write | _Marker] = collections.deque()
        self._wake = asyncio.Event()
        self._inflight: list[Write] = []  # taken off the queue, neither committed nor spooled
        self._spool: SpoolFile | None = None  # ours: written while the database was unavailable
        self._claimed: list[SpoolFile] = []  # left by stores that died or closed in an outage
        self._held: list[Write] = []  # neither the database nor the spool could take them
        self._schema_ready = False
        self._failing = False
        self._retry_at = 0.0
        self._writer: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls, target: Target, *, privacy_policy: Policy = "mask", salt: str = "", spool_dir: Path | None = None,
        controller: str | None = None, retry_min: float = 0.5, retry_max: float = 30.0, busy_timeout: float = 5.0,
    ) -> CallStore:
        """A SQLite file (a Path or a plain path) or a `postgresql://` URL. The spool goes beside
        the SQLite file, or into `spool_dir` (for PostgreSQL: `var/` unless given). Failed writes
        are retried after `retry_min` seconds, doubling up to `retry_max`; SQLite waits up to
        `busy_timeout` seconds for a lock another connection holds. `controller` names this
        controller on the calls it starts and the callbacks it dials (see `recover_interrupted`);
        unnamed, they are anyone's to recover.

        An unreachable PostgreSQL server does not stop the start: records are spooled until it
        answers, and reads raise StoreUnavailable meanwhile. A SQLite file that cannot be opened
        (or a schema newer than this program) raises."""
        path = sqlite_file(target)
        name = path.name if path is not None else "records"
        directory = spool_dir or (path.parent if path is not None else Path("var"))
        store = cls(open_engine(target, busy_timeout=busy_timeout), privacy_policy, salt, spool_dir=directory,
                    name=name, target=describe(target), controller=controller, shared=path is None,
                    retry_min=retry_min, retry_max=retry_max)
        try:
            await store._migrate()
        except Exception as exc:
            if path is not None or not unavailable(exc):
                await store.engine.dispose()
                if isinstance(exc, SchemaError):
                    raise StoreError(str(exc)) from exc
                refused = not_a_database(target, exc)
                if refused is not None:
                    raise refused from exc
                raise
            store._fail(exc)
        store._claimed = [claimed for found in spool_files(directory, store._spool_prefix)
                          if (claimed := SpoolFile.claim(found)) is not None]
        if store._claimed and not store._failing:
            await store._recover()
        store._writer = asyncio.create_task(store._write_loop(), name="call-record-writer")
        return store

    async def _migrate(self) -> None:
        async with self.engine.begin() as conn:
            await migrate(conn)
        self._schema_ready = True

    # --- writes: enqueue and return at once -------------------------------------------

    def call_started(self, call: CallStarted) -> None:
        masked = replace(call, caller=mask_caller(call.caller, self._policy, self._salt))
        self._put(Started(masked, caller_key(call.caller, self._salt), self.controller))

    def call_ended(self, call: CallEnded) -> None:
        self._put(call)

    def set_hangup_cause(self, uniqueid: str, cause: int, cause_txt: str) -> None:
        self._put(HangupCause(uniqueid, cause, cause_txt))

    def set_ami_times(
        self, uniqueid: str, *, agent_answered_at: dt.datetime | None = None, bridged_at: dt.datetime | None = None,
        hold_seconds: float | None = None, bridge_seconds: float | None = None,
    ) -> None:
        """What AMI saw of the call on channel `uniqueid`: the first answer, bridge and bridge
        time (the agent's talk) are kept, `hold_seconds` is the call's hold total so far (it
        replaces the stored one)."""
        self._put(AmiTimes(uniqueid, agent_answered_at, bridged_at, hold_seconds, bridge_seconds))

    def agent_event(self, event: AgentEvent) -> None:
        self._put(event)

    def _put(self, item: Write | _Marker) -> None:
        self._items.append(item)
        self._wake.set()

    async def flush(self) -> None:
        """Wait until everything enqueued so far is in the database. StoreUnavailable: it is
        not (the database is down); it is spooled and will be written when it answers."""
        if self._writer is None or self._writer.done():
            raise StoreError("the call-record writer has stopped")
        marker = _Marker(asyncio.get_running_loop().create_future())
        self._put(marker)
        await marker.future

    async def close(self, timeout: float = 5.0) -> None:
        """Flush for up to `timeout` seconds; spool whatever is still not written, then close."""
        try:
            await asyncio.wait_for(self.flush(), timeout)
        except (StoreError, TimeoutError) as exc:
            log.warning("closing the call-record store %s with records not written (%s): they stay in the spool "
                        "and are written at the next start", self.target, exc or "timed out")
        finally:
            if self._writer is not None:
                self._writer.cancel()
                await asyncio.gather(self._writer, return_exceptions=True)
            left = self._inflight + [item for item in self._items if not isinstance(item, _Marker)]
            self._inflight = []
            self._items.clear()
            if left:
                self._keep(left)
            if self._held:
                log.error("%d call records are lost: neither %s nor the spool in %s could take them",
                          len(self._held), self.target, self._spool_dir)
            for spool in (self._spool, *self._claimed):
                if spool is not None:
                    spool.release()
            await self.engine.dispose()

    # --- the writer -----------------------------------------------------------------------

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._items:
                self._wake.clear()
                if self._offline():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), max(self._retry_at - loop.time(), 0.0))
                else:
                    await self._wake.wait()
            batch: list[Write] = []
            markers: list[_Marker] = []
            while self._items and len(batch) < _BATCH:
                item = self._items.popleft()
                if isinstance(item, _Marker):
                    markers.append(item)
                else:
                    batch.append(item)
            problem: StoreError | None = None
            if self._offline():
                if batch:
                    self._keep(batch)
                if markers or loop.time() >= self._retry_at:
                    await self._recover()
                if self._offline():
                    problem = StoreUnavailable(f"the call-record store {self.target} is unavailable; records are "
                                               f"kept in {self._spool_dir} and written when it answers")
            elif batch:
                self._inflight = batch
                problem = await self._write_or_keep(batch)
                self._inflight = []
            for marker in markers:
                if not marker.future.done():
                    if problem is None:
                        marker.future.set_result(None)
                    else:
                        marker.future.set_exception(problem)

    def _offline(self) -> bool:
        return self._failing or self._spool is not None or bool(self._claimed) or bool(self._held)

    async def _write_or_keep(self, batch: Sequence[Write]) -> StoreError | None:
        try:
            return await self._write_checked(batch)
        except Exception as exc:
            if not unavailable(exc):
                raise
            self._keep(batch)
            self._fail(exc)
            return StoreUnavailable(f"the call-record store {self.target} is unavailable: {exc}")

    async def _write_checked(self, batch: Sequence[Write]) -> StoreError | None:
        """Write the batch; if the database refuses it for its content, write the records one
        by one and set aside the refused ones. Raises only when the database is unavailable."""
        try:
            await self._write(batch)
            return None
        except Exception as exc:
            if unavailable(exc):
                raise
            first = exc
        log.error("a batch of %d call records was refused (%s); writing them one by one", len(batch), first)
        refused = 0
        for write in batch:
            try:
                await self._write((write,))
            except Exception as exc:
                if unavailable(exc):
                    raise
                refused += 1
                log.error("call record set aside in %s: %s: %s", self._rejected, type(write).__name__, exc)
                self._rejected.parent.mkdir(parents=True, exist_ok=True)
                with open(self._rejected, "ab") as out:
                    out.write(encode(write))
        return StoreError(f"{refused} call records were refused (see {self._rejected})") if refused else None

    def _keep(self, writes: Sequence[Write]) -> None:
        """Spool records the database cannot take now. If the spool cannot be written either
        (a full disk), hold them in memory, after which later records queue up there too."""
        if not self._held:
            try:
                if self._spool is None:
                    self._spool = SpoolFile.create(self._spool_dir, self._spool_prefix)
                self._spool.append(writes)
                return
            except OSError as exc:
                log.error("cannot spool call records to %s (%s): holding them in memory", self._spool_dir, exc)
        self._held.extend(writes)

    def _fail(self, exc: BaseException) -> None:
        loop = asyncio.get_running_loop()
        if not self._failing:
            log.error("call-record store %s unavailable: %s; records are spooled to %s and written when it answers",
                      self.target, exc, self._spool_dir)
            self._failing = True
            self._delay = self._retry_min
        self._retry_at = loop.time() + self._delay
        self._delay = min(self._delay * 2, self._retry_max)

    async def _recover(self) -> None:
        """Replay every pending spool (oldest first), then what is held in memory; when all
        of it is in the database, the store is online again."""
        replayed = 0
        try:
            if not self._schema_ready:
                await self._migrate()
            for spool in [*self._claimed, *([self._spool] if self._spool is not None else [])]:
                for batch, offset in spool.batches(_BATCH):
                    if batch:
                        await self._write_checked(batch)
                    spool.mark_replayed(offset)
                    replayed += len(batch)
                spool.remove()
                if spool is self._spool:
                    self._spool = None
                else:
                    self._claimed.remove(spool)
            while self._held:
                batch = self._held[:_BATCH]
                await self._write_checked(batch)
                del self._held[:len(batch)]
                replayed += len(batch)
        except Exception as exc:
            if not unavailable(exc):
                log.exception("replaying spooled call records failed; retrying later")
            self._fail(exc)
            return
        if self._failing or replayed:
            log.warning("call-record store %s answers again: %d spooled records written", self.target, replayed)
        self._failing = False
        self._delay = self._retry_min

    async def _write(self, writes: Iterable[Write]) -> None:
        s = self._statements
        time = _memoized(s.time)
        starts: dict[str, tuple[dict[str, Any], dt.datetime]] = {}
        whole: list[dict[str, Any]] = []  # started and ended in this batch: one row, no UPDATE
        ends: list[CallEnded] = []  # their legs and events, and the ends of calls started earlier
        updates: list[dict[str, Any]] = []
        causes: list[dict[str, Any]] = []
        ami: list[dict[str, Any]] = []
        presence: list[dict[str, Any]] = []
        for write in writes:
            if isinstance(write, Started):
                c = write.call
                starts[c.call_id] = ({
                    "call_id": c.call_id, "uniqueid": c.uniqueid, "channel": c.channel, "dialed": c.dialed,
                    "caller": c.caller, "hotline": c.hotline, "language": c.language, "menu_version": c.menu_version,
                    "config_version": c.config_version, "started_at": time(c.started_at),
                    "caller_key": write.caller_key, "controller": write.controller,
                }, c.started_at)
            elif isinstance(write, CallEnded):
                ends.append(write)
                start = starts.pop(write.call_id, None)
                if start is not None:
                    whole.append(start[0] | _end_columns(write, start[1], time))
                else:
                    e = write
                    updates.append({
                        "b_call_id": e.call_id, "b_ended_at": time(e.ended_at), "b_disposition": e.disposition.value,
                        "b_detail": e.detail, "b_language": e.language, "b_notice": time(e.notice_played_at),
                        "b_recording": time(e.recording_started_at), "b_recording_file": e.recording_file,
                        "b_hung_up_by": e.hung_up_by, "b_node_path": node_path(e.events),
                    })
            elif isinstance(write, HangupCause):
                causes.append({"b_uniqueid": write.uniqueid, "b_cause": write.cause, "b_text": write.text,
                               "b_by": ended_by_cause(write.cause)})
            elif isinstance(write, AmiTimes):
                ami.append({"b_uniqueid": write.uniqueid, "b_answered": write.agent_answered_at,
                            "b_bridged": write.bridged_at, "b_hold": write.hold_seconds,
                            "b_talk": write.bridge_seconds})
            else:
                presence.append({"agent_id": write.agent_id, "at": write.at, "presence": write.presence})
        async with self.engine.begin() as conn:
            if whole:
                await s.whole.run(conn, whole)
            if starts:
                await s.start.run(conn, [row for row, _ in starts.values()])
            if updates:
                await s.end.run(conn, updates)
            if ends:
                await self._write_paths(conn, ends, time)
            if causes:
                await conn.execute(s.cause, causes)
            if ami:
                await conn.execute(s.ami, ami)
                answered = [{"b_uniqueid": a["b_uniqueid"]} for a in ami
                            if a["b_answered"] is not None or a["b_talk"] is not None]
                if answered:
                    await conn.execute(s.sync_by_uniqueid, answered)
            if presence:
                await conn.execute(s.agent, presence)

    async def _write_paths(self, conn: AsyncConnection, ends: Sequence[CallEnded],
                           time: Callable[[dt.datetime | None], Any]) -> None:
        """The ended calls' events and queue legs (replacing any written before)."""
        s = self._statements
        events = [{"call_id": e.call_id, "seq": seq, "at": time(ev.at), "kind": ev.kind.value, "node": ev.node,
                   "value": ev.value} for e in ends for seq, ev in enumerate(e.events)]
        if events:
            await s.event.run(conn, events)
        legs = [{"call_id": e.call_id, "seq": seq, "queue": leg.queue, "enqueued_at": time(leg.enqueued_at),
                 "left_at": time(leg.left_at), "outcome": leg.outcome, "answered_at": time(leg.answered_at),
                 "agent_id": leg.agent_id, "talk_seconds": leg.talk_seconds, "offers": leg.offers,
                 "overflow": leg.overflow, "first_estimate": leg.first_estimate, "priority": leg.priority,
                 "ended_by": leg.ended_by, "wrap_seconds": leg.wrap_seconds, "transferred": transferred}
                for e in ends if e.queue_legs
                for seq, (leg, transferred) in enumerate(zip(e.queue_legs, leg_transfers(e.events, e.queue_legs)))]
        if legs:
            await s.leg.run(conn, legs)
            answered = sorted({e.call_id for e in ends if any(leg.outcome == "answered" for leg in e.queue_legs)})
            # Only calls AMI's answer or bridge time reached first: one lookup, not an UPDATE per call.
            if answered and (known := (await conn.execute(s.ami_answered, {"ids": answered})).scalars().all()):
                await conn.execute(s.sync_by_call, [{"b_call_id": call_id} for call_id in known])

    # --- direct access (callbacks, reads): raise StoreUnavailable when the database is down ---

    @contextlib.asynccontextmanager
    async def _begin(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self.engine.begin() as conn:
                yield conn
        except Exception as exc:
            if unavailable(exc):
                raise StoreUnavailable(f"the call-record store {self.target} is unavailable: {exc}") from exc
            raise

    # --- callback requests: written at once (the caller is told it is stored) ------------

    async def add_callback(self, request: CallbackRequest) -> bool:
        """Store a pending request; False if one with that id exists already (unchanged)."""
        values = {
            "callback_id": request.callback_id, "call_id": request.call_id, "caller": request.caller,
            "queue": request.queue, "language": request.language, "asterisk_language": request.asterisk_language,
            "hotline": request.hotline, "status": request.status, "attempts": request.attempts,
            "last_error": request.last_error, "requested_at": request.requested_at,
            "updated_at": request.updated_at or request.requested_at,
            "next_attempt_at": request.next_attempt_at or request.requested_at,
        }
        async with self._begin() as conn:
            result = await conn.execute(insert_ignoring(conn.dialect.name, callbacks, "callback_id").values(values))
            return result.rowcount == 1

    async def due_callbacks(self, now: dt.datetime) -> list[CallbackRequest]:
        """Pending requests that may be offered at `now`, oldest request first."""
        async with self._begin() as conn:
            result = await conn.execute(
                select(callbacks).where(callbacks.c.status == "pending", callbacks.c.next_attempt_at <= now)
                .order_by(callbacks.c.requested_at, callbacks.c.callback_id))
            return [_callback(r._mapping) for r in result]

    async def claim_callback(self, callback_id: str, now: dt.datetime) -> CallbackRequest | None:
        """Atomically pending -> dialing, attempts + 1; None if it is not pending (any more)."""
        async with self._begin() as conn:
            result = await conn.execute(
                update(callbacks).where(callbacks.c.callback_id == callback_id, callbacks.c.status == "pending")
                .values(status="dialing", attempts=callbacks.c.attempts + 1, updated_at=now,
                        controller=self.controller))
        if result.rowcount != 1:
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
        # One statement: a read-then-write transaction could lose a race on SQLite (BUSY_SNAPSHOT).
        status = literal("done") if ok else case((callbacks.c.attempts >= max_attempts, "failed"), else_="pending")
        async with self._begin() as conn:
            result = await conn.execute(
                update(callbacks).where(callbacks.c.callback_id == callback_id, callbacks.c.status == "dialing")
                .values(status=status, last_error=func.coalesce(literal(error), callbacks.c.last_error),
                        updated_at=now, next_attempt_at=retry_at or now)
                .returning(callbacks.c.status))
            row = result.first()
        return None if row is None else row[0]

    async def recover_callbacks(self, now: dt.datetime) -> int:
        """Requests a crash left `dialing` go back to `pending` (run at start-up): this controller's
        (see `recover_interrupted`), and any other's not touched for DIAL_LIMIT."""
        ours = self._ours(callbacks.c.controller, callbacks.c.updated_at < now - DIAL_LIMIT)
        async with self._begin() as conn:
            result = await conn.execute(
                update(callbacks).where(callbacks.c.status == "dialing", *ours)
                .values(status="pending", updated_at=now, last_error="controller stopped while dialing"))
            return result.rowcount

    async def get_callback(self, callback_id: str) -> CallbackRequest | None:
        async with self._begin() as conn:
            row = (await conn.execute(select(callbacks).where(callbacks.c.callback_id == callback_id))).first()
        return None if row is None else _callback(row._mapping)

    async def callbacks(self) -> list[CallbackRequest]:
        """Every request, oldest first (tests, reports)."""
        async with self._begin() as conn:
            result = await conn.execute(select(callbacks).order_by(callbacks.c.requested_at, callbacks.c.callback_id))
            return [_callback(r._mapping) for r in result]

    # --- start-up and reads ----------------------------------------------------------

    def _ours(self, owner: ColumnElement[Any], stale: ColumnElement[bool]) -> list[ColumnElement[bool]]:
        """Rows this controller may recover. Every row of a SQLite file (one controller, whatever
        its name was); in a shared store its own, those of no one (written before v8), and those
        `stale` (left by a controller that did not come back)."""
        if not self._shared:
            return []
        return [or_(owner == self.controller, owner.is_(None), stale)]

    async def recover_interrupted(self, now: dt.datetime) -> int:
        """Close the calls a crash left open: those started before `now`, this run's start
        (calls of this run are live, even when a store that was down at start-up makes this
        run later). In a store several controllers share, only this controller's and those
        open for OPEN_LIMIT: another controller's live calls are not interrupted."""
        at = literal(now, UtcTime())
        ours = self._ours(calls.c.controller, calls.c.started_at < now - OPEN_LIMIT)
        async with self._begin() as conn:
            result = await conn.execute(
                update(calls).where(calls.c.disposition.is_(None), calls.c.started_at < at, *ours).values(
                    ended_at=at, disposition=Disposition.INTERRUPTED.value,
                    detail="controller stopped during the call", duration_ms=duration_ms(at, calls.c.started_at)))
            return result.rowcount

    async def get_call(self, call_id: str) -> CallRow | None:
        async with self._begin() as conn:
            found = await self._calls(conn, calls.c.call_id == call_id, limit=None)
        return found[0] if found else None

    async def queue_names(self) -> set[str]:
        """Every queue some leg was in (the index on queue_legs.queue answers it)."""
        async with self._begin() as conn:
            return {str(q) for q in (await conn.execute(select(queue_legs.c.queue).distinct())).scalars()}

    def key_of_number(self, number: str) -> str | None:
        """The caller key of a number, with this store's salt (see `caller_key`)."""
        return caller_key(number, self._salt)

    async def caller_key_of(self, call_id: str) -> str | None:
        """The call's caller key (see `caller_key`); None for an unknown call or a withheld number."""
        async with self._begin() as conn:
            key = (await conn.execute(select(calls.c.caller_key).where(calls.c.call_id == call_id))).scalar()
        return None if key is None else str(key)

    async def iter_calls(
        self, since: dt.datetime | None = None, until: dt.datetime | None = None, hotline: str | None = None,
        *, events: bool = True,
    ) -> AsyncIterator[CallRow]:
        """Calls that started in [since, until) on `hotline` (the dialed number), by start time.

        Streams: 2,000 calls per query, with their events and legs fetched for the whole batch,
        so memory stays flat however many calls there are. `events=False` leaves each row's
        events out (an export of call rows needs none: a third of the work)."""
        first = _started_within(since, until)
        # After the first batch the position alone is the lower bound: with `since` beside it
        # SQLite seeks the index from `since` and skips the rows read before, for every batch.
        later = _started_within(None, until)
        if hotline is not None:
            first.append(calls.c.dialed == hotline)
            later.append(calls.c.dialed == hotline)
        after: CallRow | None = None
        while True:
            rows = await self._batch(first if after is None else later, after, events)
            for row in rows:
                yield row
            if len(rows) < _READ_BATCH:
                return
            after = rows[-1]

    async def _batch(self, conditions: Sequence[ColumnElement[bool]], after: CallRow | None,
                     events: bool) -> list[CallRow]:
        """The next _READ_BATCH calls after `after` (in start order) that meet `conditions`."""
        where = list(conditions)
        if after is not None:
            where.append(tuple_(calls.c.started_at, calls.c.call_id)
                         > tuple_(literal(after.started_at, UtcTime()), literal(after.call_id)))
        async with self._begin() as conn:
            return await self._calls(conn, *where, limit=_READ_BATCH, events=events)

    async def _calls(
        self, conn: AsyncConnection, *where: ColumnElement[bool], limit: int | None, events: bool = True,
    ) -> list[CallRow]:
        query = select(*_CALL_COLUMNS).where(*where).order_by(calls.c.started_at, calls.c.call_id)
        rows = (await conn.execute(query if limit is None else query.limit(limit))).all()
        if not rows:
            return []
        ids = [r[0] for r in rows]
        paths: dict[str, list[PathEvent]] = collections.defaultdict(list)
        if events:
            result = await conn.execute(_EVENTS_OF, {"ids": ids})
            kinds = _EVENT_KINDS
            for call_id, at, kind, node, value in result.all():
                paths[call_id].append(PathEvent(at, kinds[kind], node, value))
        legs: dict[str, list[QueueLeg]] = collections.defaultdict(list)
        for leg in (await conn.execute(_LEGS_OF, {"ids": ids})).all():
            legs[leg[0]].append(QueueLeg(*leg[1:]))
        dispositions = _DISPOSITIONS
        # Positional, in _CALL_COLUMNS order (= CallRow's): an export builds millions of these.
        return [
            CallRow(*r[:12], dispositions.get(r[12]), *r[13:20], tuple(paths.get(r[0], ())),  # type: ignore[call-arg]
                    tuple(legs.get(r[0], ())), r[20], r[21], float(r[22]))
            for r in rows
        ]

    @contextlib.asynccontextmanager
    async def _streamed(self, query: Select[Any], params: Mapping[str, Any] | None = None,
                        ) -> AsyncIterator[AsyncIterator[Sequence[Sequence[Any]]]]:
        """The query's rows, _READ_BATCH at a time, from one cursor in one transaction: a
        consistent view however long the caller takes, and no query per batch."""
        async with self._begin() as conn:
            result = await conn.stream(query, params)
            try:
                yield result.partitions(_READ_BATCH)
            finally:
                await result.close()

    async def iter_legs(
        self, since: dt.datetime | None = None, until: dt.datetime | None = None, *, wrap_ups: bool = False,
        now: dt.datetime | None = None,
    ) -> AsyncGenerator[list[StoredLeg], None]:
        """Batches of the queue legs of the calls that started in [since, until), in call start
        order, each with what the metrics need of its call; with `wrap_ups`, the agent's wrap-up
        code too: no code is `no_code` when the deadline is before `now` (default: the time
        now), else `pending`."""
        query = (_STORED_LEGS_WRAPPED if wrap_ups else _STORED_LEGS).where(*_started_within(since, until))
        async with self._streamed(query, {"wrap_now": now or dt.datetime.now(dt.timezone.utc)}) as batches:
            async for rows in batches:
                yield [StoredLeg._make(row) for row in rows]

    async def iter_call_summaries(
        self, since: dt.datetime | None = None, until: dt.datetime | None = None, *, now: dt.datetime | None = None,
    ) -> AsyncGenerator[list[CallSummary], None]:
        """Batches of the calls that started in [since, until), by start time, without their
        events: the node path and the legs summed up (CallSummary); wrap-ups as `iter_legs`."""
        start = _SUMMARY_LEG
        query = _SUMMARIES.where(*_started_within(since, until))
        # Closed at once when the caller stops early, not at the loop's shutdown
        # (its cursor and connection then fail to close and log tracebacks).
        params = {"wrap_now": now or dt.datetime.now(dt.timezone.utc)}
        async with contextlib.aclosing(self._by_call(query, params)) as batches:
            async for batch in batches:
                yield [_summary(rows[0], [row[start:] for row in rows if row[start] is not None]) for rows in batch]

    async def iter_call_paths(
        self, since: dt.datetime | None = None, until: dt.datetime | None = None, queue: str | None = None,
    ) -> AsyncGenerator[list[CallPath], None]:
        """Batches of the calls that started in [since, until) (with a leg in `queue`), by start
        time, as the IVR funnel reads them (CallPath)."""
        query = _PATHS.where(*_started_within(since, until))
        if queue is not None:
            query = query.where(select(queue_legs.c.call_id).where(
                queue_legs.c.call_id == calls.c.call_id, queue_legs.c.queue == queue).exists())
        async with contextlib.aclosing(self._by_call(query)) as batches:
            async for batch in batches:
                yield [_path(rows) for rows in batch]

    async def _by_call(self, query: Select[Any], params: Mapping[str, Any] | None = None,
                       ) -> AsyncGenerator[list[list[Sequence[Any]]], None]:
        """The rows of `query` (a call's columns first, its call_id first of all, then one of
        its outer-joined rows), streamed, as batches of each call's rows: a call whose rows
        run on past a batch waits for the next."""
        current: list[Sequence[Any]] = []
        async with self._streamed(query, params) as batches:
            async for rows in batches:
                done: list[list[Sequence[Any]]] = []
                for row in rows:
                    if current and row[0] != current[0][0]:
                        done.append(current)
                        current = []
                    current.append(row)
                yield done
        if current:
            yield [current]

    async def agent_events(
        self, since: dt.datetime | None = None, until: dt.datetime | None = None
    ) -> list[AgentEvent]:
        """Presence changes in [since, until), oldest first (ties by agent)."""
        conditions: list[ColumnElement[bool]] = []
        if since is not None:
            conditions.append(agent_events.c.at >= since)
        if until is not None:
            conditions.append(agent_events.c.at < until)
        async with self._begin() as conn:
            result = await conn.execute(
                select(agent_events).where(*conditions).order_by(agent_events.c.at, agent_events.c.agent_id))
            return [AgentEvent(r.agent_id, r.at, r.presence) for r in result]

    async def history(self, caller_number: str, since: dt.datetime | float) -> list[PastCall]:
        """The caller's calls that ended at or after `since` (a datetime, or epoch seconds), newest
        first: when each ended, the agent who answered it (its last answered queue leg) and the talk time.

        Found by caller key, so a masked or hashed stored number does not matter; each PastCall's
        `caller` is `caller_number` as given. Calls still open (this one) are left out."""
        key = caller_key(caller_number, self._salt)
        if key is None:
            return []
        start = since if isinstance(since, dt.datetime) else dt.datetime.fromtimestamp(since, dt.timezone.utc)
        last = queue_legs.alias("last")

        def of_last_answered(column: str) -> Any:
            return (select(last.c[column]).where(last.c.call_id == calls.c.call_id, last.c.outcome == "answered")
                    .order_by(desc(last.c.seq)).limit(1).scalar_subquery())

        query = (
            select(calls.c.ended_at, of_last_answered("agent_id"), of_last_answered("talk_seconds"))
            .where(calls.c.caller_key == key, calls.c.ended_at.is_not(None), calls.c.ended_at >= start)
            .order_by(desc(calls.c.ended_at), desc(calls.c.call_id))
        )
        async with self._begin() as conn:
            result = await conn.execute(query)
            return [PastCall(caller_number, ended.timestamp(), agent, float(talk or 0.0))
                    for ended, agent, talk in result]

    async def count_calls(self, since: dt.datetime | None = None, until: dt.datetime | None = None) -> int:
        """How many calls started in [since, until) (a progress bar's total)."""
        async with self._begin() as conn:
            return int((await conn.execute(
                select(func.count()).select_from(calls).where(*_started_within(since, until)))).scalar_one())

    async def start_range(self, since: dt.datetime | None, until: dt.datetime | None,
                          ) -> tuple[dt.datetime | None, dt.datetime | None]:
        """The first and the last start of the calls started in [since, until) (None: no call)."""
        async with self._begin() as conn:
            first, last = (await conn.execute(select(func.min(calls.c.started_at), func.max(calls.c.started_at))
                                              .where(*_started_within(since, until)))).one()
        return first, last

    async def start_splits(self, since: dt.datetime | None, until: dt.datetime | None, parts: int) -> list[dt.datetime]:
        """Start times that cut the calls started in [since, until) into `parts` runs of about
        equal size (fewer when many calls share a start), ascending: where a long read is
        split between processes."""
        total = await self.count_calls(since, until)
        offsets = sorted({total * n // parts for n in range(1, parts)} - {0})
        cuts: list[dt.datetime] = []
        async with self._begin() as conn:
            for offset in offsets:
                found = (await conn.execute(select(calls.c.started_at).where(*_started_within(since, until))
                                            .order_by(calls.c.started_at).offset(offset).limit(1))).scalar()
                if found is not None and (not cuts or found > cuts[-1]) and (since is None or found > since):
                    cuts.append(found)
        return cuts

    async def repeated_calls(self, since: dt.datetime | None, until: dt.datetime | None, hours: int) -> frozenset[str]:
        """Ids of the calls started in [since, until) after which the same caller (caller key)
        called the same dialed number again within `hours` of the call's start (that later
        call may start up to `hours` after `until`). Counted on the earlier call: the one that
        did not settle the matter (a first-call-resolution proxy). A withheld number (no key)
        never repeats. The database pairs each call with the caller's next one (LEAD)."""
        window = _started_within(since, None if until is None else until + dt.timedelta(hours=hours))
        following = func.lead(calls.c.started_at).over(partition_by=(calls.c.caller_key, calls.c.dialed),
                                                       order_by=(calls.c.started_at, calls.c.call_id))
        paired = (select(calls.c.call_id, calls.c.started_at, following.label("next_start"))
                  .where(calls.c.caller_key.is_not(None), *window).subquery())
        query = select(paired.c.call_id).where(
            paired.c.next_start.is_not(None),
            duration_ms(paired.c.next_start, paired.c.started_at) <= hours * 3_600_000,
            *([] if until is None else [paired.c.started_at < until]))
        async with self._begin() as conn:
            return frozenset((await conn.execute(query)).scalars())

    async def last_agent_events(self, before: dt.datetime) -> list[AgentEvent]:
        """Each agent's last presence change before `before`: how the agent stood at that moment."""
        latest = (select(agent_events.c.agent_id, func.max(agent_events.c.at).label("at"))
                  .where(agent_events.c.at < before).group_by(agent_events.c.agent_id).subquery())
        async with self._begin() as conn:
            result = await conn.execute(
                select(agent_events).join(latest, and_(agent_events.c.agent_id == latest.c.agent_id,
                                                       agent_events.c.at == latest.c.at))
                .order_by(agent_events.c.at, agent_events.c.agent_id, agent_events.c.presence))
            return [AgentEvent(r.agent_id, r.at, r.presence) for r in result]

    async def disposition_counts(self) -> dict[str, int]:
        label = func.coalesce(calls.c.disposition, "open").label("disposition")
        count = func.count().label("calls")
        async with self._begin() as conn:
            result = await conn.execute(select(label, count).group_by(label).order_by(desc(count)))
            return {str(name): int(n) for name, n in result}


    async def node_paths(self, call_ids: Sequence[str]) -> dict[str, list[str]]:
        """The menu nodes each call entered, in order (its NODE path events): the path an export
        of call rows shows, at a fraction of the cost of reading every path event."""
        paths: dict[str, list[str]] = collections.defaultdict(list)
        async with self._begin() as conn:
            for call_id, node in (await conn.execute(_NODES_OF, {"ids": list(call_ids)})).all():
                paths[call_id].append(node)
        return paths
