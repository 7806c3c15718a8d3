"""Rows of `ivr export`: lists of plain cells in fixed columns per kind, and the writers
for CSV and JSON Lines. Pure: the command reads the store and calls these.

Cells: instants in ISO 8601 with their offset (UTC for call and leg times, the hotline's zone
for interval starts), to the millisecond only when they have milliseconds; floats rounded to
4 decimal places; a mean or share over nothing is empty (CSV) or null (JSON), never 0;
booleans are `true`/`false` in both formats.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from enum import Enum
from typing import IO, TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

from ivr.metrics.buckets import intervals, minutes_between, utc
from ivr.metrics.intervals import IntervalTable
from ivr.metrics.ivr_funnel import Funnel
from ivr.metrics.model import AgentInterval, FunnelNode, LegRow, QueueInterval, Waits, Width
from ivr.records.masking import mask_caller
from ivr.records.model import PATH_SEPARATOR as STORED_SEPARATOR
from ivr.records.model import CallSummary, UtcText

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Cell = str | int | float | bool | None
Row = list[Cell]  # the cells of one record, in its kind's column order
PLACES = 4


def instant(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat(timespec="milliseconds" if value.microsecond else "seconds")


def instant_text(value: UtcText | None) -> str | None:
    """A stored instant as `instant` writes the same moment: milliseconds only when nonzero."""
    if value is None:
        return None
    return value[:19] + value[23:] if value[19:23] == ".000" else value


def cell(value: object) -> Cell:
    if isinstance(value, Enum):
        return str(value.value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return round(value, PLACES)
    if isinstance(value, dt.datetime):
        return instant(value)
    raise TypeError(f"no export cell for {type(value).__name__}")


def columns_of(row_type: type[DataclassInstance]) -> list[str]:
    return [f.name for f in dataclasses.fields(row_type)]


def row_of(result: DataclassInstance) -> Row:
    """A result row (a dataclass of plain fields) as cells, in field order."""
    return [cell(getattr(result, f.name)) for f in dataclasses.fields(result)]


# --- calls -------------------------------------------------------------------------------------

CALL_COLUMNS = (
    "call_id", "hotline", "hotline_name", "caller", "language", "menu_version", "config_version",
    "started_at", "ended_at", "duration_seconds", "disposition", "detail", "hung_up_by",
    "hangup_cause", "hangup_cause_txt", "path", "queues", "enqueued_at", "answered_at", "answer_source",
    "agent_id", "left_queue_at", "hold_seconds", "bridged_at", "notice_played_at", "recording_started_at",
    "recording_file", "wrap_code", "wrap_note",
)
PATH_SEPARATOR = " > "


def call_row(call: CallSummary, *, unmasked: bool) -> Row:
    """One call: its menu path (the nodes it entered, in order), its queues, and when it entered
    the first queue, was answered (AMI's DialEnd time when seen) and left the last one, and
    the wrap-up code of its last answered leg (ivr.records.store._summary). The
    stored caller is what the privacy policy kept; it is masked to its last 4 digits unless
    `unmasked`. Written field by field: an export formats millions of these."""
    caller = call.caller if unmasked or call.caller.startswith("sha256:") else mask_caller(call.caller, "mask")
    return [
        call.call_id, call.dialed, call.hotline, caller, call.language, call.menu_version, call.config_version,
        instant_text(call.started_at), instant_text(call.ended_at),
        None if call.duration_ms is None else call.duration_ms / 1000,
        None if call.disposition is None else call.disposition.value, call.detail, call.hung_up_by,
        call.hangup_cause, call.hangup_cause_txt,
        "" if call.node_path is None else call.node_path.replace(STORED_SEPARATOR, PATH_SEPARATOR),
        PATH_SEPARATOR.join(call.queues), instant_text(call.enqueued_at), instant_text(call.answered_at),
        call.answer_source, call.agent_id, instant_text(call.left_queue_at), round(call.hold_seconds, PLACES),
        instant_text(call.bridged_at), instant_text(call.notice_played_at), instant_text(call.recording_started_at),
        call.recording_file, call.wrap_code, call.wrap_note,
    ]


# --- legs and agents -----------------------------------------------------------------------------

LEG_COLUMNS = columns_of(LegRow)
AGENT_COLUMNS = columns_of(AgentInterval)


# --- intervals: wait percentiles as columns, gaps filled with zero rows ---------------------------


def percentile_column(waits: Waits, percentile: int) -> str:
    return f"p{percentile}_answered_wait_seconds" if waits == "answered" else f"p{percentile}_wait_seconds"


def interval_columns(percentiles: Sequence[int]) -> list[str]:
    return columns_of(QueueInterval) + [percentile_column(waits, p) for waits in ("answered", "all") for p in percentiles]


def empty_interval(like: QueueInterval, start: dt.datetime, end: dt.datetime) -> QueueInterval:
    """A row for an interval of the queue in which no call entered it."""
    return QueueInterval(
        queue=like.queue, timezone=like.timezone, interval_start=start, interval_end=end,
        interval_minutes=minutes_between(start, end), offered=0, answered=0, abandoned=0, short_abandons=0,
        overflowed=0, overflowed_timeout=0, overflowed_no_agents=0, overflowed_full=0, overflowed_state_down=0,
        service_level_seconds=like.service_level_seconds, answered_within_t=0, abandoned_within_t=0,
        service_level=None, asa_seconds=None, average_wait_seconds=None, talk_seconds=0.0, hold_seconds=0.0,
        wrap_seconds=0.0, handle_seconds=0.0, aht_seconds=None, transfers=0, repeat_calls=0, csat_answers=0,
        csat_satisfied=0, csat=None,
    )


def filled(rows: Sequence[QueueInterval], width: Width) -> Iterator[QueueInterval]:
    """The rows (by queue, zone, then time, as queue_intervals gives them) with a zero row for
    every interval between a queue's first and last row that had no call."""
    previous: QueueInterval | None = None
    for row in rows:
        if previous is not None and (previous.queue, previous.timezone) == (row.queue, row.timezone):
            zone = row.interval_start.tzinfo
            assert isinstance(zone, ZoneInfo)
            for start, end in intervals(previous.interval_end, row.interval_start, zone, width):
                yield empty_interval(row, start, end)
        yield row
        previous = row


def interval_rows(table: IntervalTable, width: Width, percentiles: Sequence[int]) -> Iterator[Row]:
    """One row per queue interval (zero rows filled in), with its wait percentiles."""
    found = {(p.queue, p.timezone, utc(p.interval_start), percentile_column(p.waits, p.percentile)): p.wait_seconds
             for p in table.percentiles}
    names = [percentile_column(waits, p) for waits in ("answered", "all") for p in percentiles]
    for row in filled(table.rows, width):
        key = (row.queue, row.timezone, utc(row.interval_start))
        yield row_of(row) + [cell(found.get((*key, name))) for name in names]


# --- the IVR funnel: node rows, each followed by its option rows -----------------------------------

IVR_COLUMNS = ("kind", "hotline", "menu_version", "node", "node_type", "option", "calls", "reached", "pressed",
               "timed_out", "invalid", "gave_up", "ended_by_ivr", "contained")


def ivr_rows(funnel: Funnel) -> Iterator[Row]:
    """kind `node`: a menu node's callers (reached, timed out, ...); kind `option`: the callers
    who pressed one choice there (`pressed`), right after its node."""
    options: dict[tuple[str, str, str], list[Row]] = {}
    for option in funnel.options:
        cells: dict[str, Cell] = {"kind": "option", "hotline": option.hotline, "menu_version": option.menu_version,
                                  "node": option.node, "option": option.option, "pressed": option.callers}
        options.setdefault((option.hotline, option.menu_version, option.node), []).append(
            [cells.get(name) for name in IVR_COLUMNS])
    for node in funnel.nodes:
        cells = dict(zip(columns_of(FunnelNode), row_of(node)))
        cells["kind"] = "node"
        yield [cells.get(name) for name in IVR_COLUMNS]
        yield from options.get((node.hotline, node.menu_version, node.node), ())


# --- writers ---------------------------------------------------------------------------------------


class RowWriter(Protocol):
    def write(self, row: Row) -> None: ...


_BOOLEANS: dict[bool, str] = {True: "true", False: "false"}
# Besides the delimiter, what makes csv quote a field (QUOTE_MINIMAL, line terminator "\n").
_QUOTED = re.compile(r'["\r\n]')


class CsvWriter:
    """RFC 4180 CSV with a header row (unless `header` is False); empty for None, true/false for
    booleans.

    A row with nothing to quote, nearly every row of an export, is joined here: the same bytes
    as csv.writer gives (checked in the tests), at a third of its cost, which scans every
    character. Any other row goes through csv.writer."""

    def __init__(self, out: IO[str], columns: Sequence[str], *, header: bool = True) -> None:
        self._out = out
        self._writer = csv.writer(out, lineterminator="\n")  # writes None as an empty field
        self._separators = len(columns) - 1
        if header:
            self._writer.writerow(columns)

    def write(self, row: Row) -> None:
        cells = [value if value.__class__ is str else "" if value is None
                 else _BOOLEANS[value] if value is True or value is False else str(value) for value in row]
        line = ",".join(cells)
        # A comma inside a cell shows as one comma too many.
        if line.count(",") == self._separators and _QUOTED.search(line) is None:
            self._out.write(line + "\n")
        else:
            self._writer.writerow(cells)


class JsonlWriter:
    """One JSON object per line, keys in column order, UTF-8 text as is."""

    def __init__(self, out: IO[str], columns: Sequence[str]) -> None:
        self._out = out
        self._columns = list(columns)
        self._encode = json.JSONEncoder(ensure_ascii=False).encode

    def write(self, row: Row) -> None:
        self._out.write(self._encode(dict(zip(self._columns, row))) + "\n")


def writer_for(fmt: str, out: IO[str], columns: Sequence[str], *, header: bool = True) -> RowWriter:
    """A CSV writer (with its header row unless `header` is False) or a JSON Lines writer."""
    return CsvWriter(out, columns, header=header) if fmt == "csv" else JsonlWriter(out, columns)


def write_all(writer: RowWriter, rows: Iterable[Row]) -> int:
    count = 0
    for row in rows:
        writer.write(row)
        count += 1
    return count
