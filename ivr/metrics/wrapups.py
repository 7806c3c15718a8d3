"""Calls by wrap-up code per queue and interval (`ivr report wrapups`, the HTML report's table).

Answered legs count in the interval they entered the queue in, as every interval figure does
(ivr.metrics.intervals). Code compliance is coded / answered: an answered call whose agent
was never asked for a code (no desk, a queue given codes since) counts as not coded, so a
queue where agents skip the desk shows it. Pure: the legs come from `Source.legs`.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from ivr.metrics.buckets import IntervalStarts, interval_end, minutes_between
from ivr.metrics.model import LegRow, Width
from ivr.metrics.stats import share
from ivr.records.wrapups import NO_CODE, PENDING


@dataclass(frozen=True, slots=True)
class WrapUpInterval:
    """One queue in one interval: its answered calls and the codes their agents picked."""

    queue: str
    timezone: str
    interval_start: dt.datetime
    interval_end: dt.datetime
    interval_minutes: int
    answered: int
    coded: int  # a code was picked
    no_code: int  # asked, and the deadline passed with none
    pending: int  # asked, and there is still time
    codes: tuple[tuple[str, int], ...]  # (code, calls), most calls first, then by code

    @property
    def compliance(self) -> float | None:
        """The share of answered calls coded."""
        return share(self.coded, self.answered)


@dataclass
class _Tally:
    start: dt.datetime
    answered: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)  # codes, no_code, pending


def wrap_up_intervals(legs: Iterable[LegRow], width: Width, queues: Collection[str] = ()) -> list[WrapUpInterval]:
    """Per queue and interval of `width` minutes, by queue, zone and time: the answered legs of
    the queues in `queues` (those with wrap-up codes in routing.yaml) and of any queue where a
    wrap-up was asked (legs read with their codes: `Source.legs(wrap_ups=True)`). Only
    intervals with answered calls get a row."""
    tallies = WrapUpTallies(width, queues)
    for leg in legs:
        tallies.add(leg)
    return tallies.rows()


class WrapUpTallies:
    """`wrap_up_intervals` a leg at a time (the HTML report counts in its one pass over the legs)."""

    def __init__(self, width: Width, queues: Collection[str] = ()) -> None:
        self.width = width
        self._starts = IntervalStarts(width)
        self._zones: dict[str, ZoneInfo] = {}
        self._tallies: dict[tuple[str, str, dt.datetime], _Tally] = {}
        self._asked: set[str] = set(queues)

    def add(self, leg: LegRow) -> None:
        if leg.outcome != "answered":
            return
        zone = self._zones.get(leg.timezone)
        if zone is None:
            zone = self._zones[leg.timezone] = ZoneInfo(leg.timezone)
        start, start_utc = self._starts(leg.enqueued_at, zone)
        key = (leg.queue, leg.timezone, start_utc)
        tally = self._tallies.get(key)
        if tally is None:
            tally = self._tallies[key] = _Tally(start)
        tally.answered += 1
        if leg.wrap_code is not None:
            self._asked.add(leg.queue)
            tally.outcomes[leg.wrap_code] += 1

    def rows(self) -> list[WrapUpInterval]:
        rows = []
        for (queue, zone_name, _), tally in sorted(self._tallies.items()):
            if queue not in self._asked:
                continue
            end = interval_end(tally.start, self.width)
            codes = sorted(((code, n) for code, n in tally.outcomes.items() if code not in (NO_CODE, PENDING)),
                           key=lambda item: (-item[1], item[0]))
            rows.append(WrapUpInterval(
                queue, zone_name, tally.start, end, minutes_between(tally.start, end), tally.answered,
                sum(n for _, n in codes), tally.outcomes[NO_CODE], tally.outcomes[PENDING], tuple(codes)))
        return rows


def flat_rows(rows: Iterable[WrapUpInterval]) -> list[tuple[WrapUpInterval, str, int]]:
    """(interval, code, calls): one per code picked, then no_code and pending when any; an
    interval with neither codes nor no_code (nobody asked) gets one row with code "" and 0."""
    out: list[tuple[WrapUpInterval, str, int]] = []
    for row in rows:
        lines = [*row.codes, *((name, n) for name, n in ((NO_CODE, row.no_code), (PENDING, row.pending)) if n)]
        out += [(row, code, n) for code, n in lines] or [(row, "", 0)]
    return out
