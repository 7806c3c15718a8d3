"""The numbers of `ivr report html` as the page shows them: the summary at the top and the rows
of its tables, each cell a string (a mean or share over nothing is "-", never 0)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ivr.metrics.buckets import utc
from ivr.metrics.erlang import Model
from ivr.metrics.model import FunnelNode, QueueInterval
from ivr.metrics.report_staffing import StaffingFigures
from ivr.metrics.stats import share
from ivr.metrics.wrapups import WrapUpInterval

Row = list[str]
P90 = Mapping[tuple[str, dt.datetime], float | None]  # (queue, UTC interval start) -> p90 answered wait
MODEL_NAMES: dict[Model, str] = {"erlang_c": "Erlang C", "erlang_a": "Erlang A"}


def number(value: float | None, places: int = 1) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:,.{places}f}"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


@dataclass(frozen=True)
class Summary:
    """All selected queues over the whole period: sums of the queues' counts."""

    offered: int
    answered: int
    abandoned: int
    short_abandons: int
    answered_within_t: int
    handle_seconds: float

    @property
    def service_level(self) -> float | None:
        return share(self.answered_within_t, self.offered - self.short_abandons)

    @property
    def abandon_rate(self) -> float | None:
        return share(self.abandoned, self.offered)

    @property
    def aht_seconds(self) -> float | None:
        return self.handle_seconds / self.answered if self.answered else None

    def cards(self, seconds: int) -> list[tuple[str, str, str]]:
        """(name, value, how it is counted) for the top of the page."""
        return [
            ("Offered", f"{self.offered:,}", "calls that entered a queue"),
            ("Answered", f"{self.answered:,}", percent(share(self.answered, self.offered)) + " of offered"),
            ("Service level", percent(self.service_level),
             f"answered within {seconds} s / (offered - short abandons)"),
            ("Abandon rate", percent(self.abandon_rate),
             f"abandoned / offered ({self.short_abandons:,} short abandons included)"),
            ("AHT", number(self.aht_seconds, 0) + (" s" if self.aht_seconds is not None else ""),
             "talk + hold + wrap-up per answered call"),
        ]


def summary(rows: Iterable[QueueInterval]) -> Summary:
    items = list(rows)
    return Summary(
        offered=sum(row.offered for row in items), answered=sum(row.answered for row in items),
        abandoned=sum(row.abandoned for row in items), short_abandons=sum(row.short_abandons for row in items),
        answered_within_t=sum(row.answered_within_t for row in items),
        handle_seconds=sum(row.handle_seconds for row in items),
    )


DAY_HEADERS = ["queue", "day", "offered", "answered", "abandoned (short)", "overflowed", "service level", "ASA s",
               "p90 answered wait s", "AHT s", "transfers", "repeat calls", "CSAT"]


def day_rows(rows: Sequence[QueueInterval], p90: P90) -> list[Row]:
    """One row per queue and day (the rows are all on the report's clock)."""
    return [
        [row.queue, row.interval_start.strftime("%a %Y-%m-%d"), f"{row.offered:,}", f"{row.answered:,}",
         f"{row.abandoned:,} ({row.short_abandons:,})", f"{row.overflowed:,}", percent(row.service_level),
         number(row.asa_seconds), number(p90.get((row.queue, utc(row.interval_start)))), number(row.aht_seconds),
         f"{row.transfers:,}", f"{row.repeat_calls:,}", percent(row.csat)]
        for row in rows
    ]


INTERVAL_HEADERS = ["queue", "interval start", "offered", "answered", "abandoned (short)", "overflowed",
                    "service level", "ASA s", "p90 answered wait s", "AHT s"]


def interval_rows(rows: Sequence[QueueInterval], p90: P90) -> list[Row]:
    """One row per queue and interval that had calls."""
    return [
        [row.queue, row.interval_start.strftime("%a %Y-%m-%d %H:%M"), f"{row.offered:,}", f"{row.answered:,}",
         f"{row.abandoned:,} ({row.short_abandons:,})", f"{row.overflowed:,}", percent(row.service_level),
         number(row.asa_seconds), number(p90.get((row.queue, utc(row.interval_start)))), number(row.aht_seconds)]
        for row in rows
    ]


STAFFING_HEADERS = ["queue", "interval start", "offered", "AHT s", "Erlangs", "model", "agents needed", "scheduled",
                    "logged in", "difference", "occupancy"]


def staffing_rows(figures: StaffingFigures) -> list[Row]:
    """`ivr staffing`'s columns for the same history (offered, AHT to whole seconds, Erlangs,
    model, agents, scheduled, logged in and its difference to one place), and the measured
    occupancy of the agents who serve the queue."""
    return [
        [row.queue, row.start.strftime("%a %Y-%m-%d %H:%M"), f"{row.offered:g}", f"{row.aht_seconds:.0f}",
         f"{row.load_erlangs:.2f}", MODEL_NAMES[row.model], str(row.agents), str(row.scheduled),
         "" if row.staffed_agents is None else f"{row.staffed_agents:.1f}",
         "" if row.difference is None else f"{row.difference:+.1f}", percent(figures.occupancy_of(row))]
        for row in figures.rows
    ]


WRAP_UP_HEADERS = ["queue", "interval start", "codes picked", "answered", "coded", "no code", "pending",
                   "code compliance"]


def codes_cell(row: WrapUpInterval) -> str:
    """"billing/refund/approved 12, other 3": the codes picked, most calls first."""
    return ", ".join(f"{code} {calls:,}" for code, calls in row.codes)


def wrap_up_rows(rows: Iterable[WrapUpInterval]) -> list[Row]:
    return [[row.queue, row.interval_start.strftime("%a %Y-%m-%d %H:%M"), codes_cell(row), f"{row.answered:,}",
             f"{row.coded:,}", f"{row.no_code:,}", f"{row.pending:,}", percent(row.compliance)] for row in rows]


FUNNEL_HEADERS = ["hotline", "menu version", "node", "type", "reached", "timed out", "invalid", "gave up", "contained"]


def funnel_rows(nodes: Iterable[FunnelNode]) -> list[Row]:
    return [[node.hotline, node.menu_version, node.node, node.node_type, f"{node.reached:,}", f"{node.timed_out:,}",
             f"{node.invalid:,}", f"{node.gave_up:,}", f"{node.contained:,}"] for node in nodes]
