"""Staffing per queue and interval: offered calls and AHT (from history or a forecast file) in,
agents needed out, next to the agents that were logged in.

Offered load of an interval = offered calls x AHT / interval length. The recommendation for
each interval comes from `ivr.metrics.erlang.recommend`; with the Erlang A model an interval
without a patience estimate takes the policy's default patience, and without one either it is
planned with Erlang C (the row says which model it got).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ivr.config.models import StaffingSettings
from ivr.metrics.erlang import Model, StaffingTarget, recommend

FORECAST_COLUMNS = ("queue", "interval_start", "offered", "aht_seconds")
FORECAST_OPTIONAL = ("patience_seconds",)


@dataclass(frozen=True)
class IntervalLoad:
    """One queue in one interval: what was (or will be) offered, and who was logged in."""

    queue: str
    start: dt.datetime  # with its UTC offset
    offered: float  # calls offered (a forecast may be fractional)
    aht_seconds: float  # talk + hold + wrap-up per answered call
    patience_seconds: float | None = None  # mean caller patience (erlang.estimate_patience)
    staffed_agents: float | None = None  # agents logged in on average; None for a forecast

    def __post_init__(self) -> None:
        if self.start.utcoffset() is None:
            raise ValueError(f"{self.queue}: interval start {self.start} has no UTC offset")
        if not self.offered >= 0 or not math.isfinite(self.offered):
            raise ValueError(f"{self.queue} {self.start}: offered calls must not be negative")
        if self.offered > 0 and (not self.aht_seconds > 0 or not math.isfinite(self.aht_seconds)):
            raise ValueError(f"{self.queue} {self.start}: calls were offered, so AHT must be positive seconds")
        if self.patience_seconds is not None and not self.patience_seconds > 0:
            raise ValueError(f"{self.queue} {self.start}: patience must be positive seconds")


@dataclass(frozen=True)
class StaffingPolicy:
    model: Model = "erlang_a"
    target: StaffingTarget = StaffingTarget()
    # Patience for intervals without an estimate (Erlang A only); None: plan those with Erlang C.
    default_patience_seconds: float | None = None
    interval: dt.timedelta = dt.timedelta(minutes=15)

    def __post_init__(self) -> None:
        if self.interval <= dt.timedelta(0):
            raise ValueError("the interval must be longer than zero")
        if self.default_patience_seconds is not None and not self.default_patience_seconds > 0:
            raise ValueError("the default patience must be positive seconds")


def policy_of(
    settings: StaffingSettings, minutes: int, *, model: Model | None = None, sl_target: float | None = None,
    sl_seconds: float | None = None, asa_target: float | None = None, max_occupancy: float | None = None,
    shrinkage: float | None = None, patience: float | None = None,
) -> StaffingPolicy:
    """The policy of server.yaml's `staffing:` with intervals of `minutes`, each given value
    replacing its default (what `ivr staffing` and the HTML report plan with). A service-level
    value given plans for the service level even when asa_target_seconds is set.
    Raises ValueError for a value out of range."""
    if asa_target is None and sl_target is None and sl_seconds is None:
        asa_target = settings.asa_target_seconds
    return StaffingPolicy(
        model=model or settings.model,
        target=StaffingTarget(
            service_level=sl_target if sl_target is not None else settings.service_level_target,
            service_level_seconds=sl_seconds if sl_seconds is not None else settings.service_level_seconds,
            asa_seconds=asa_target,
            max_occupancy=max_occupancy if max_occupancy is not None else settings.max_occupancy,
            shrinkage=shrinkage if shrinkage is not None else settings.shrinkage,
        ),
        default_patience_seconds=patience,
        interval=dt.timedelta(minutes=minutes),
    )


@dataclass(frozen=True)
class StaffingRow:
    queue: str
    start: dt.datetime
    offered: float
    aht_seconds: float
    load_erlangs: float
    model: Model  # erlang_c when Erlang A had no patience to work with
    patience_seconds: float | None  # the patience Erlang A used
    agents: int  # recommended agents taking calls
    scheduled: int  # recommended head count with shrinkage
    service_level: float  # predicted with `agents`: answered within T / offered
    asa_seconds: float
    abandon_rate: float
    occupancy: float
    staffed_agents: float | None  # logged in on average
    difference: float | None  # staffed_agents - agents: negative means short of agents


def plan(loads: Iterable[IntervalLoad], policy: StaffingPolicy) -> list[StaffingRow]:
    """One row per interval and queue, ordered by queue, then time."""
    seconds = policy.interval.total_seconds()
    rows = []
    for load in sorted(loads, key=lambda item: (item.queue, item.start)):
        patience = None
        if policy.model == "erlang_a":
            patience = load.patience_seconds if load.patience_seconds is not None else policy.default_patience_seconds
        erlangs = load.offered * load.aht_seconds / seconds if load.offered > 0 else 0.0
        advice = recommend(erlangs, load.aht_seconds, policy.target, patience)
        rows.append(
            StaffingRow(
                queue=load.queue,
                start=load.start,
                offered=load.offered,
                aht_seconds=load.aht_seconds,
                load_erlangs=erlangs,
                model=advice.model,
                patience_seconds=patience,
                agents=advice.agents,
                scheduled=advice.scheduled,
                service_level=advice.service_level,
                asa_seconds=advice.asa_seconds,
                abandon_rate=advice.abandon_rate,
                occupancy=advice.occupancy,
                staffed_agents=load.staffed_agents,
                difference=None if load.staffed_agents is None else load.staffed_agents - advice.agents,
            )
        )
    return rows


# --- the forecast file -----------------------------------------------------------------------


class ForecastError(Exception):
    """The forecast cannot be used; `problems` lists every reason, each with its line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def _number(text: str, column: str, where: str, problems: list[str]) -> float | None:
    try:
        value = float(text)
    except ValueError:
        problems.append(f"{where}: {column}: expected a number, got {text!r}")
        return None
    if not math.isfinite(value):
        problems.append(f"{where}: {column}: expected a finite number, got {text!r}")
        return None
    return value


def read_forecast(text: str, source: str) -> list[IntervalLoad]:
    """Parse a forecast CSV: queue, interval_start (ISO 8601 with a UTC offset), offered,
    aht_seconds and optionally patience_seconds (empty: none). Raises ForecastError listing
    every problem, `source` naming the file in each."""
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip() for name in reader.fieldnames or ()]
    problems = []
    missing = [name for name in FORECAST_COLUMNS if name not in header]
    unknown = [name for name in header if name not in FORECAST_COLUMNS + FORECAST_OPTIONAL]
    if missing:
        problems.append(f"{source}:1: missing column(s): {', '.join(missing)}")
    if unknown:
        expected = ", ".join(FORECAST_COLUMNS + FORECAST_OPTIONAL)
        problems.append(f"{source}:1: unknown column(s): {', '.join(unknown)} (expected {expected})")
    if problems:
        raise ForecastError(problems)
    reader.fieldnames = header
    loads: list[IntervalLoad] = []
    seen: dict[tuple[str, dt.datetime], int] = {}
    for record in reader:
        line = reader.line_num
        where = f"{source}:{line}"
        if None in record:
            problems.append(f"{where}: more fields than columns")
            continue
        cells = {key: (value or "").strip() for key, value in record.items()}
        before = len(problems)
        queue = cells["queue"]
        if not queue:
            problems.append(f"{where}: queue: empty")
        start = None
        try:
            start = dt.datetime.fromisoformat(cells["interval_start"])
        except ValueError:
            problems.append(f"{where}: interval_start: expected ISO 8601 like 2025-03-03T09:00:00+01:00, "
                            f"got {cells['interval_start']!r}")
        if start is not None and start.utcoffset() is None:
            problems.append(f"{where}: interval_start: {cells['interval_start']!r} has no UTC offset (add e.g. +01:00)")
        offered = _number(cells["offered"], "offered", where, problems)
        if offered is not None and offered < 0:
            problems.append(f"{where}: offered: must not be negative")
        aht = _number(cells["aht_seconds"], "aht_seconds", where, problems)
        if aht is not None and offered is not None and (aht < 0 or (offered > 0 and aht == 0)):
            problems.append(f"{where}: aht_seconds: must be positive when calls are offered")
        patience = None
        if cells.get("patience_seconds"):
            patience = _number(cells["patience_seconds"], "patience_seconds", where, problems)
            if patience is not None and patience <= 0:
                problems.append(f"{where}: patience_seconds: must be positive (leave it empty for none)")
        if len(problems) > before or start is None or offered is None or aht is None:
            continue
        key = (queue, start)
        if key in seen:
            problems.append(f"{where}: queue {queue} at {cells['interval_start']} is already on line {seen[key]}")
            continue
        seen[key] = line
        loads.append(IntervalLoad(queue, start, offered, aht, patience))
    if problems:
        raise ForecastError(problems)
    return loads


# --- exports ----------------------------------------------------------------------------------

EXPORT_COLUMNS = (
    "queue", "interval_start", "offered", "aht_seconds", "load_erlangs", "model", "patience_seconds",
    "agents", "scheduled", "service_level", "asa_seconds", "abandon_rate", "occupancy",
    "staffed_agents", "difference",
)
Cell = str | int | float | None


def _rounded(value: float | None, places: int) -> float | None:
    return None if value is None else round(value, places)


def export_values(row: StaffingRow) -> tuple[Cell, ...]:
    """A row's cells in EXPORT_COLUMNS order: shares to 4 places, seconds and Erlangs to 2."""
    return (
        row.queue,
        row.start.isoformat(),
        int(row.offered) if float(row.offered).is_integer() else row.offered,
        _rounded(row.aht_seconds, 2),
        _rounded(row.load_erlangs, 4),
        row.model,
        _rounded(row.patience_seconds, 2),
        row.agents,
        row.scheduled,
        _rounded(row.service_level, 4),
        _rounded(row.asa_seconds, 2),
        _rounded(row.abandon_rate, 4),
        _rounded(row.occupancy, 4),
        _rounded(row.staffed_agents, 2),
        _rounded(row.difference, 2),
    )


def short_intervals(rows: Sequence[StaffingRow]) -> int:
    """Intervals whose logged-in agents fell short of the recommendation."""
    return sum(1 for row in rows if row.difference is not None and row.difference < 0)
