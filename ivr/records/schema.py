"""The call-record schema, one definition for SQLite and PostgreSQL (SQLAlchemy Core).

A fresh database gets `METADATA` at once (`create_all`) and is stamped `SCHEMA_VERSION`.
An existing one moves up step by step: `MIGRATIONS` are the SQLite steps every earlier
release ran (v1..v5, kept verbatim: never edit a released step), then `_v6` and later steps
are written against the metadata so that they run on either backend. PostgreSQL support
starts at v6, so a PostgreSQL database is never older than that.

Timestamps are `UtcTime`: ISO-8601 text in UTC with milliseconds on SQLite (what every
release wrote: text order is time order, and old rows read back unchanged) and
`TIMESTAMP WITH TIME ZONE` on PostgreSQL, both cut to the millisecond, so the same call
reads back as the same `CallRow` from either backend.

There are no foreign keys: SQLite never enforced the ones v1 declared, and on PostgreSQL a
row whose parent is missing would make its whole batch fail forever instead of being kept.

One file past 600 lines: the tables and every migration step stay in one place, so a
schema change and its upgrade are reviewed together.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    TIMESTAMP,
    BigInteger,
    Boolean,
    Column,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    TypeDecorator,
    and_,
    bindparam,
    case,
    false,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, ColumnElement, FunctionElement
from sqlalchemy.types import TypeEngine

from ivr.records.model import EventKind, PathEvent, QueueLeg, leg_transfers, node_path, utc_text

UTC = dt.timezone.utc


class SchemaError(Exception):
    """The database's schema is newer than this program, or cannot be brought up to date."""


def _to_utc_ms(value: dt.datetime) -> dt.datetime:
    moment = value.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _to_iso(value: dt.datetime | None) -> str | None:
    return None if value is None else utc_text(value)


def _from_iso(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value)


class UtcTime(TypeDecorator[dt.datetime]):
    """An aware moment in UTC to the millisecond (see the module docstring).

    The processors are given directly rather than through process_bind_param and
    process_result_value: a million-call export converts tens of millions of values, and the
    extra call per value that TypeDecorator adds is a quarter of the read time."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(TIMESTAMP(timezone=True))
        return dialect.type_descriptor(Text())

    def bind_processor(self, dialect: Dialect) -> Callable[[dt.datetime | None], Any]:
        if dialect.name == "postgresql":
            return lambda value: None if value is None else _to_utc_ms(value)
        return _to_iso

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], dt.datetime | None] | None:
        if dialect.name == "postgresql":
            return None  # asyncpg gives aware datetimes in UTC for TIMESTAMP WITH TIME ZONE
        return _from_iso


class duration_ms(FunctionElement[int]):  # noqa: N801 - a SQL function, named like one
    """Whole milliseconds from `start` to `end` (two UtcTime expressions), rounded."""

    type = BigInteger()
    name = "duration_ms"
    inherit_cache = True

    def __init__(self, end: ColumnElement[Any], start: ColumnElement[Any]) -> None:
        super().__init__(end, start)


@compiles(duration_ms, "sqlite")
def _duration_sqlite(element: duration_ms, compiler: SQLCompiler, **kw: Any) -> str:
    end, start = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"CAST(ROUND((julianday({end}) - julianday({start})) * 86400000) AS INTEGER)"


@compiles(duration_ms, "postgresql")
def _duration_postgresql(element: duration_ms, compiler: SQLCompiler, **kw: Any) -> str:
    end, start = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"CAST(ROUND(EXTRACT(EPOCH FROM ({end} - {start})) * 1000) AS BIGINT)"


class utc_text_of(FunctionElement[str]):  # noqa: N801 - a SQL function, named like one
    """A UtcTime expression as model.UtcText, from either backend."""

    type = Text()
    name = "utc_text_of"
    inherit_cache = True

    def __init__(self, moment: ColumnElement[Any]) -> None:
        super().__init__(moment)


@compiles(utc_text_of, "sqlite")
def _utc_text_sqlite(element: utc_text_of, compiler: SQLCompiler, **kw: Any) -> str:
    (moment,) = element.clauses
    return compiler.process(moment, **kw)  # stored so


@compiles(utc_text_of, "postgresql")
def _utc_text_postgresql(element: utc_text_of, compiler: SQLCompiler, **kw: Any) -> str:
    (moment,) = element.clauses
    return f"""to_char({compiler.process(moment, **kw)} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"+00:00"')"""


log = logging.getLogger(__name__)

METADATA = MetaData()

schema_version = Table("schema_version", METADATA, Column("version", Integer, nullable=False))

calls = Table(
    "calls", METADATA,
    Column("call_id", Text, primary_key=True),
    Column("uniqueid", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("dialed", Text, nullable=False),
    Column("caller", Text, nullable=False),
    Column("hotline", Text, nullable=False),
    Column("language", Text, nullable=False),
    Column("menu_version", Text, nullable=False),
    Column("config_version", Text, nullable=False),
    Column("started_at", UtcTime, nullable=False),
    Column("ended_at", UtcTime),
    Column("duration_ms", BigInteger),
    Column("disposition", Text),
    Column("detail", Text, nullable=False, server_default=""),
    Column("notice_played_at", UtcTime),
    Column("recording_started_at", UtcTime),
    Column("recording_file", Text),
    Column("hung_up_by", Text),
    Column("hangup_cause", Integer),  # v2
    Column("hangup_cause_txt", Text),
    Column("caller_key", Text),  # v3
    Column("agent_answered_at", UtcTime),  # v6: what AMI saw (ivr.records.ami_times)
    Column("bridged_at", UtcTime),
    Column("hold_seconds", Float, nullable=False, server_default="0"),
    Column("node_path", Text),  # v7: model.node_path of the call's events, written with its end
    Column("controller", Text),  # v8: who started it (CallStore.controller); NULL before v8
    # v9: the agent's channel's BridgeEnter..BridgeLeave (AMI): the answered leg's talk time.
    Column("bridge_seconds", Float),
    Index("calls_started", "started_at"),
    Index("calls_uniqueid", "uniqueid"),
    Index("calls_hotline_started", "dialed", "started_at"),
    Index("calls_caller_key", "caller_key", "ended_at"),
)

call_events = Table(
    "call_events", METADATA,
    Column("call_id", Text, primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("at", UtcTime, nullable=False),
    Column("kind", Text, nullable=False),
    Column("node", Text, nullable=False),
    Column("value", Text, nullable=False),
)

queue_legs = Table(
    "queue_legs", METADATA,
    Column("call_id", Text, primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("queue", Text, nullable=False),
    Column("enqueued_at", UtcTime, nullable=False),
    Column("left_at", UtcTime, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("answered_at", UtcTime),
    Column("agent_id", Text),
    Column("talk_seconds", Float),
    Column("offers", Integer, nullable=False, server_default="0"),
    Column("overflow", Text),
    Column("first_estimate", Float),
    Column("priority", Integer, nullable=False, server_default="0"),
    Column("ended_by", Text),
    Column("wrap_seconds", Float),  # v6
    # v7: model.leg_transfers: the call went on elsewhere after this leg.
    Column("transferred", Boolean(create_constraint=False), nullable=False, server_default=false()),
    Index("queue_legs_queue_enqueued", "queue", "enqueued_at"),
    Index("queue_legs_agent", "agent_id"),
)

callbacks = Table(
    "callbacks", METADATA,
    Column("callback_id", Text, primary_key=True),
    Column("call_id", Text, nullable=False),
    Column("caller", Text, nullable=False),
    Column("queue", Text, nullable=False),
    Column("language", Text, nullable=False),
    Column("asterisk_language", Text, nullable=False),
    Column("hotline", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text),
    Column("requested_at", UtcTime, nullable=False),
    Column("updated_at", UtcTime, nullable=False),
    Column("next_attempt_at", UtcTime, nullable=False),
    Column("controller", Text),  # v8: who dialed it last
    Index("callbacks_status_queue", "status", "queue", "requested_at"),
)

survey_responses = Table(
    "survey_responses", METADATA,
    Column("response_id", Text, primary_key=True),
    Column("call_id", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("survey", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("hotline", Text, nullable=False),
    Column("queue", Text, nullable=False),
    Column("agent", Text, nullable=False),
    Column("language", Text, nullable=False),
    Column("menu_version", Text, nullable=False),
    Column("menu_path", Text, nullable=False),
    Column("hung_up_by", Text, nullable=False),
    Column("caller_key", Text),
    Column("offered_at", UtcTime, nullable=False),
    Column("started_at", UtcTime),
    Column("ended_at", UtcTime),
    Column("comment_file", Text),
    Column("comment_seconds", Float),
    Column("comment_text", Text),
    Index("survey_responses_call", "call_id"),
    Index("survey_responses_offered", "offered_at"),
    Index("survey_responses_caller", "caller_key", "offered_at"),
)

survey_answers = Table(
    "survey_answers", METADATA,
    Column("response_id", Text, primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("question", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("value", Integer),
    Column("attempts", Integer, nullable=False),
    Column("answered_at", UtcTime),
)

followups = Table(
    "followups", METADATA,
    Column("item_id", Text, primary_key=True),
    Column("response_id", Text, nullable=False),
    Column("call_id", Text, nullable=False),
    Column("category", Text, nullable=False),
    Column("urgency", Text, nullable=False),
    Column("owner", Text, nullable=False),
    Column("created_at", UtcTime, nullable=False),
    Column("deadline", UtcTime, nullable=False),
    Column("reasons", Text, nullable=False),  # a JSON list of strings
    Column("queue", Text, nullable=False),
    Column("agent", Text, nullable=False),
    Column("contact", Text),  # shown: as received under `full`, masked under `mask`, none under `hash`
    Column("status", Text, nullable=False),
    Column("assignee", Text),
    Column("assigned_at", UtcTime),
    Column("resolution", Text),
    Column("closed_at", UtcTime),
    Index("followups_status_deadline", "status", "deadline"),
    Index("followups_response", "response_id", unique=True),
    # v10: the number to call back, sealed with the contact key (survey_engine.contacts), under
    # the `mask` and `hash` policies.
    Column("contact_sealed", Text),
)

# v10: every time a sealed contact was opened (`ivr followups contact`): who, when, why.
contact_reveals = Table(
    "contact_reveals", METADATA,
    Column("item_id", Text, nullable=False),
    Column("revealed_at", UtcTime, nullable=False),
    Column("revealed_by", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Index("contact_reveals_item", "item_id"),
)

# v6: agents' presence over time (routing.recording_state), for occupancy and logged-in staffing.
# The key makes a record written twice (a spool replayed after a partial write) one row.
agent_events = Table(
    "agent_events", METADATA,
    Column("agent_id", Text, primary_key=True),
    Column("at", UtcTime, primary_key=True),
    Column("presence", Text, primary_key=True),
    Index("agent_events_at", "at"),
)

# v11: the agent desktop (desk/). One row per answered agent leg once the call ended: the
# wrap-up code the agent picked (NULL until then; still NULL after `deadline`: "no code").
wrap_ups = Table(
    "wrap_ups", METADATA,
    Column("call_id", Text, primary_key=True),
    Column("agent_id", Text, primary_key=True),
    Column("queue", Text, nullable=False),
    Column("ended_at", UtcTime, nullable=False),  # the call's end: the wrap-up's start
    Column("deadline", UtcTime, nullable=False),  # codes are taken until then
    Column("code", Text),  # the path in the queue's code tree, e.g. "billing/refund/approved"
    Column("note", Text),
    Column("coded_at", UtcTime),
    Column("coded_by", Text),  # the account that picked it
    Index("wrap_ups_queue_ended", "queue", "ended_at"),
)

# v11: who may use the web application, and as what.
desk_accounts = Table(
    "desk_accounts", METADATA,
    Column("username", Text, primary_key=True),
    Column("password_hash", Text, nullable=False),  # argon2id (argon2-cffi's encoded form)
    Column("role", Text, nullable=False),  # agent | supervisor | admin
    Column("agent_id", Text),  # the ACD agent an agent account works as
    Column("language", Text, nullable=False),  # zh-CN | en-US: the pages' language
    Column("created_at", UtcTime, nullable=False),
    Column("disabled", Boolean(create_constraint=False), nullable=False, server_default=false()),
    # Raised on a password change or disable: every session issued before is refused.
    Column("session_epoch", Integer, nullable=False, server_default="0"),
)

# v11: what a frontline agent heard from the customer that the company should hear, tied to a
# call; each one opens a follow-up item (`item_id`) in the same loop as a low survey score.
frontline_feedback = Table(
    "frontline_feedback", METADATA,
    Column("feedback_id", Text, primary_key=True),
    Column("call_id", Text, nullable=False),
    Column("agent_id", Text),
    Column("username", Text, nullable=False),
    Column("kind", Text, nullable=False),  # complaint | suggestion | praise | defect | process
    Column("urgency", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", UtcTime, nullable=False),
    Column("item_id", Text),
    Index("frontline_feedback_call", "call_id"),
)


# The SQLite steps of the releases before v6, as they ran (tests build old files from them).
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


def _add_columns(sync: Connection, table: Table, *names: str) -> None:
    """ALTER TABLE ... ADD COLUMN for columns of the metadata, in the connection's dialect."""
    preparer = sync.dialect.identifier_preparer
    for name in names:
        column = table.c[name]
        ddl = f"ALTER TABLE {preparer.format_table(table)} ADD COLUMN {preparer.format_column(column)} " \
              f"{column.type.compile(dialect=sync.dialect)}"
        if not column.nullable:
            ddl += " NOT NULL"
        if column.server_default is not None:
            default = column.server_default.arg  # type: ignore[attr-defined]
            if isinstance(default, ClauseElement):  # false(): FALSE on PostgreSQL, 0 on SQLite, as create_all has it
                default = default.compile(dialect=sync.dialect)
            ddl += f" DEFAULT {default}"
        sync.exec_driver_sql(ddl)


def _v6(sync: Connection) -> None:
    """v6: AMI's times on the call, the agent's wrap-up on the leg, and presence history."""
    _add_columns(sync, calls, "agent_answered_at", "bridged_at", "hold_seconds")
    _add_columns(sync, queue_legs, "wrap_seconds")
    agent_events.create(sync)


def _v7(sync: Connection) -> None:
    """v7: what every export reads of a call's events, kept with it: its node path and, per
    queue leg, whether the call went on elsewhere after it. Reading them from the events
    was two thirds of the time of a month's export. Calls already ended get them here."""
    _add_columns(sync, calls, "node_path")
    _add_columns(sync, queue_legs, "transferred")
    total = sync.execute(select(func.count()).select_from(calls).where(calls.c.ended_at.is_not(None))).scalar_one()
    if total:  # a long silence at start-up would look like a hang
        log.warning("upgrading the call store to schema v7: filling in the menu path of %d calls, once", total)
    began = time.monotonic()
    ended = select(calls.c.call_id).where(calls.c.ended_at.is_not(None)).order_by(calls.c.call_id)
    after = ""
    while ids := list(sync.execute(ended.where(calls.c.call_id > after).limit(_BACKFILL)).scalars()):
        after = ids[-1]
        events: dict[str, list[PathEvent]] = {call_id: [] for call_id in ids}
        for call_id, at, kind, node, value in sync.execute(
                select(call_events.c.call_id, call_events.c.at, call_events.c.kind, call_events.c.node,
                       call_events.c.value)
                .where(call_events.c.call_id.in_(ids)).order_by(call_events.c.call_id, call_events.c.seq)):
            events[call_id].append(PathEvent(at, EventKind(kind), node, value))
        legs: dict[str, list[QueueLeg]] = {}
        for call_id, queue, enqueued_at, left_at, outcome in sync.execute(
                select(queue_legs.c.call_id, queue_legs.c.queue, queue_legs.c.enqueued_at, queue_legs.c.left_at,
                       queue_legs.c.outcome)
                .where(queue_legs.c.call_id.in_(ids)).order_by(queue_legs.c.call_id, queue_legs.c.seq)):
            legs.setdefault(call_id, []).append(QueueLeg(queue, enqueued_at, left_at, outcome))
        sync.execute(update(calls).where(calls.c.call_id == bindparam("b_call_id"))
                     .values(node_path=bindparam("b_path")),
                     [{"b_call_id": call_id, "b_path": node_path(path)} for call_id, path in events.items()])
        moved = [{"b_call_id": call_id, "b_seq": seq}
                 for call_id, stays in legs.items()
                 for seq, transferred in enumerate(leg_transfers(events[call_id], stays)) if transferred]
        if moved:
            sync.execute(update(queue_legs).where(queue_legs.c.call_id == bindparam("b_call_id"),
                                                  queue_legs.c.seq == bindparam("b_seq")).values(transferred=True),
                         moved)
    if total:
        log.warning("schema v7: %d calls filled in in %.0f s", total, time.monotonic() - began)


def _v8(sync: Connection) -> None:
    """v8: the controller that started each call and dialed each callback, so that with several
    controllers on one store a restarted one closes only what it left open."""
    _add_columns(sync, calls, "controller")
    _add_columns(sync, callbacks, "controller")


def _v9(sync: Connection) -> None:
    """v9: talk time from the bridge. Up to v8 an answered leg's talk_seconds was Asterisk's
    ANSWEREDTIME, which is the caller's time since its own answer (app_dial sets it on the
    caller's channel), so it counted the IVR and the queue wait too. From v9 the store keeps
    the agent channel's BridgeEnter..BridgeLeave from AMI (`calls.bridge_seconds`), else the
    controller's length of the Dial. Legs already stored get the nearest truth they allow:

    - the call's first answered leg with an AMI BridgeEnter (`calls.bridged_at`): from it to
      the leg's left_at, the controller's moment just after the Dial returned;
    - any other answered leg: at most its answered_at to left_at. That is the talk when the
      answer time came from AMI (DialEnd); when it was the controller's (no AMI link), it was
      the Dial's start, so the talk left is the Dial's length, ring time included: the ring
      time cannot be told apart from what was stored, as with the controller's talk time now.
    """
    _add_columns(sync, calls, "bridge_seconds")
    first = queue_legs.alias("first")
    first_answered = select(func.min(first.c.seq)).where(
        first.c.call_id == queue_legs.c.call_id, first.c.outcome == "answered").scalar_subquery()
    of_call = calls.c.call_id == queue_legs.c.call_id
    bridged = select(calls.c.bridged_at).where(of_call).scalar_subquery()
    ami_answer = select(calls.c.agent_answered_at).where(of_call).scalar_subquery()
    answered = and_(queue_legs.c.outcome == "answered", queue_legs.c.talk_seconds.is_not(None))
    from_bridge = and_(queue_legs.c.seq == first_answered, bridged.is_not(None))

    def seconds(start: ColumnElement[Any]) -> ColumnElement[float]:
        span = duration_ms(queue_legs.c.left_at, start) / 1000.0
        return case((span < 0, 0.0), else_=span)

    capped: dict[str, int] = {}
    for name, source in (("ami", ami_answer.is_not(None)), ("controller", ami_answer.is_(None))):
        capped[name] = sync.execute(
            update(queue_legs).values(talk_seconds=seconds(queue_legs.c.answered_at))
            .where(answered, ~from_bridge, source, queue_legs.c.answered_at.is_not(None),
                   queue_legs.c.talk_seconds > seconds(queue_legs.c.answered_at))).rowcount
    recomputed = sync.execute(update(queue_legs).values(talk_seconds=seconds(bridged))
                              .where(answered, from_bridge)).rowcount
    if recomputed or capped["ami"] or capped["controller"]:
        log.warning(
            "upgrading the call store to schema v9: talk time of answered queue legs was the caller's time since "
            "its own answer (IVR included); %d recomputed from the AMI bridge, %d cut to the AMI answer-to-end "
            "time, %d cut to the Dial's length (no AMI times: the agent's ring time stays in, it cannot be "
            "told apart)", recomputed, capped["ami"], capped["controller"])


_BACKFILL = 2000  # calls per batch of _v7
def _v10(sync: Connection) -> None:
    """v10: follow-up contacts under the privacy policy: the number to call back sealed
    (`contact_sealed`), and a record of every time one was opened. Items stored before keep
    the number they have in `contact` (under `mask` and `hash` it was the full number:
    `ivr followups list` shows it as it is until the item is closed)."""
    _add_columns(sync, followups, "contact_sealed")
    contact_reveals.create(sync, checkfirst=True)


def _v11(sync: Connection) -> None:
    """v11: the agent desktop: wrap-up codes, web accounts, frontline feedback."""
    for table in (wrap_ups, desk_accounts, frontline_feedback):
        table.create(sync, checkfirst=True)


_STEPS = (_v6, _v7, _v8, _v9, _v10, _v11)  # after the legacy SQLite steps, on either backend
SCHEMA_VERSION = len(MIGRATIONS) + len(_STEPS)


async def migrate(conn: AsyncConnection) -> int:
    """Bring the schema to SCHEMA_VERSION (in the caller's transaction); return the old version
    (0 for a fresh database, which gets the whole schema at once)."""
    tables = set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
    current = 0
    if "schema_version" in tables:
        current = (await conn.execute(select(schema_version.c.version))).scalar_one_or_none() or 0
    if current > SCHEMA_VERSION:
        raise SchemaError(f"call-record database is at schema {current}, newer than this program ({SCHEMA_VERSION})")
    if current == SCHEMA_VERSION:
        return current
    if current == 0 and not tables - {"schema_version"}:
        await conn.run_sync(METADATA.create_all)
        await conn.execute(schema_version.delete())
        await conn.execute(insert(schema_version).values(version=SCHEMA_VERSION))
        return 0
    if conn.dialect.name != "sqlite" and current < len(MIGRATIONS):
        raise SchemaError(f"a {conn.dialect.name} call-record database at schema {current}: only SQLite files "
                          f"predate v{len(MIGRATIONS) + 1}")
    if "schema_version" not in tables:
        await conn.run_sync(lambda sync: schema_version.create(sync))
    if (await conn.execute(select(func.count()).select_from(schema_version))).scalar_one() == 0:
        await conn.execute(insert(schema_version).values(version=0))
    for version in range(current, SCHEMA_VERSION):
        if version < len(MIGRATIONS):
            for statement in MIGRATIONS[version]:
                await conn.exec_driver_sql(statement)
        else:
            await conn.run_sync(_STEPS[version - len(MIGRATIONS)])
        await conn.execute(update(schema_version).values(version=version + 1))
    return current
