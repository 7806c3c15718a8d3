"""Per queue and interval: what was offered and what became of it.

Each leg counts in the interval it entered the queue in, in its hotline's time zone. Wider
intervals (30 minutes, hours, days) are computed from the legs again rather than from the
15-minute rows: counts and sums would add up the same, but means and percentiles of waits
cannot be combined from interval figures.

Formulas (all over the legs of the queue entering in the interval):
- offered = legs = answered + abandoned + overflowed (an overflow on arrival, queue full or
  nobody logged in, is offered too: the caller asked this queue for service).
- short abandon: abandoned with wait < short_abandon_seconds. Short abandons stay in
  `abandoned` and `abandoned_within_t`, and leave the service-level denominator.
- service level = answered within T / (offered - short abandons); "within T" is wait <= T.
  Overflowed and abandoned legs are calls not answered within T. Variants from the raw
  counts: e.g. answered within T / answered, or (answered + abandoned within T) / offered.
- ASA = mean wait of answered legs; average wait = mean wait of all legs; percentiles of
  both by nearest rank (stats.nearest_rank).
- AHT = (talk + hold + wrap-up) / answered (see legs.py for talk and hold).
- transfers = legs after which the call went on to another queue or a transfer node.
- repeat calls = answered legs whose caller called the same hotline again within
  repeat_hours (on the earlier call); 1 - repeat calls / answered is the FCR proxy.
- CSAT = answers 4 or 5 / answered 1-5 scale questions, over survey responses on the call
  and queue of a leg in the interval (whichever answer kind the survey asked).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from ivr.config.models import MetricsSettings
from ivr.metrics.buckets import IntervalStarts, interval_end, minutes_between
from ivr.metrics.model import LegRow, QueueInterval, WaitPercentile, Waits, Width
from ivr.metrics.stats import mean, nearest_rank, share
from routing.model import OverflowCause
from survey_engine.model import SurveyResponse

# What a CSAT answer is: a 1-5 scale answer of 4 or 5.
SATISFIED = 4


@dataclass(frozen=True)
class IntervalTable:
    rows: list[QueueInterval]  # by queue, then time
    percentiles: list[WaitPercentile]  # the same order, answered waits before all waits


@dataclass
class _Tally:
    start: dt.datetime
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    short_abandons: int = 0
    overflows: dict[OverflowCause, int] = field(default_factory=lambda: dict.fromkeys(OverflowCause, 0))
    answered_within_t: int = 0
    abandoned_within_t: int = 0
    answered_waits: list[float] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)
    talk: float = 0.0
    hold: float = 0.0
    wrap: float = 0.0
    transfers: int = 0
    repeat_calls: int = 0
    csat_answers: int = 0
    csat_satisfied: int = 0

    def add(self, leg: LegRow) -> None:
        self.offered += 1
        self.waits.append(leg.wait_seconds)
        self.transfers += leg.transferred
        if leg.outcome == "answered":
            self.answered += 1
            self.answered_waits.append(leg.wait_seconds)
            self.answered_within_t += leg.answered_within_t
            self.talk += leg.talk_seconds
            self.hold += leg.hold_seconds
            self.wrap += leg.wrap_seconds
            self.repeat_calls += leg.repeated
        elif leg.outcome == "abandoned":
            self.abandoned += 1
            self.short_abandons += leg.short_abandon
            self.abandoned_within_t += leg.abandoned_within_t
        else:
            assert leg.overflow is not None  # legs.call_legs refuses a cause-less overflow
            self.overflows[OverflowCause(leg.overflow)] += 1

    def add_survey(self, response: SurveyResponse) -> None:
        for answer in response.answers:
            if answer.kind == "scale" and answer.value is not None:
                self.csat_answers += 1
                self.csat_satisfied += answer.value >= SATISFIED


Key = tuple[str, str, dt.datetime]  # queue, time zone, interval start in UTC


def queue_intervals(
    legs: Iterable[LegRow],
    settings: MetricsSettings,
    minutes: Width | None = None,
    responses: Iterable[SurveyResponse] = (),
) -> IntervalTable:
    """Figures per queue and interval of `minutes` (default: the configured base interval),
    from legs made by `legs.call_legs` with the same settings. Only intervals with legs get
    a row. Survey responses whose call and queue are not among the legs are left out."""
    tallies = IntervalTallies(settings, minutes, responses)
    add = tallies.add
    for leg in legs:
        add(leg)
    return tallies.table()


class IntervalTallies:
    """`queue_intervals` a leg at a time, for a reader that makes several tables in one pass
    over the legs (the report: its intervals and its days) rather than keep them all.

    What it keeps per leg is its wait (the percentiles need them all); a response counts in
    the interval of the last leg of its call in its queue."""

    def __init__(self, settings: MetricsSettings, minutes: Width | None = None,
                 responses: Iterable[SurveyResponse] = ()) -> None:
        self.settings = settings
        self.width: Width = settings.interval_minutes if minutes is None else minutes
        self._tallies: dict[Key, _Tally] = {}
        self._starts = IntervalStarts(self.width)
        self._zones: dict[str, ZoneInfo] = {}
        self._responses: dict[tuple[str, str], list[SurveyResponse]] = {}
        for response in responses:
            self._responses.setdefault((response.call_id, response.queue), []).append(response)
        self._surveyed: dict[tuple[str, str], Key] = {}  # (call, queue) of a response -> its last leg's key

    def add(self, leg: LegRow) -> None:
        tz = self._zones.get(leg.timezone)
        if tz is None:
            tz = self._zones[leg.timezone] = ZoneInfo(leg.timezone)
        start, start_utc = self._starts(leg.enqueued_at, tz)
        key = (leg.queue, leg.timezone, start_utc)
        tally = self._tallies.get(key)
        if tally is None:
            tally = self._tallies[key] = _Tally(start)
        tally.add(leg)
        if self._responses and (leg.call_id, leg.queue) in self._responses:
            self._surveyed[leg.call_id, leg.queue] = key

    def table(self) -> IntervalTable:
        """The figures of the legs added (once they all are: this adds the survey answers)."""
        tallies, settings, width = self._tallies, self.settings, self.width
        for surveyed, key in self._surveyed.items():
            for response in self._responses[surveyed]:
                tallies[key].add_survey(response)
        rows: list[QueueInterval] = []
        percentiles: list[WaitPercentile] = []
        for key in sorted(tallies):
            queue, zone, _ = key
            tally = tallies[key]
            rows.append(_row(queue, zone, width, tally, settings))
            by_kind: tuple[tuple[Waits, list[float]], ...] = (("answered", tally.answered_waits), ("all", tally.waits))
            for waits, values in by_kind:
                ordered = sorted(values)
                percentiles.extend(
                    WaitPercentile(queue, zone, tally.start, width, waits, p, nearest_rank(ordered, p), len(ordered))
                    for p in settings.wait_percentiles
                )
        return IntervalTable(rows, percentiles)


def _row(queue: str, zone: str, width: Width, tally: _Tally, settings: MetricsSettings) -> QueueInterval:
    handle = tally.talk + tally.hold + tally.wrap
    overflows = tally.overflows
    end = interval_end(tally.start, width)
    return QueueInterval(
        queue=queue,
        timezone=zone,
        interval_start=tally.start,
        interval_end=end,
        interval_minutes=minutes_between(tally.start, end),
        offered=tally.offered,
        answered=tally.answered,
        abandoned=tally.abandoned,
        short_abandons=tally.short_abandons,
        overflowed=sum(overflows.values()),
        overflowed_timeout=overflows[OverflowCause.TIMEOUT],
        overflowed_no_agents=overflows[OverflowCause.NO_AGENTS],
        overflowed_full=overflows[OverflowCause.FULL],
        overflowed_state_down=overflows[OverflowCause.STATE_DOWN],
        service_level_seconds=settings.service_level_seconds,
        answered_within_t=tally.answered_within_t,
        abandoned_within_t=tally.abandoned_within_t,
        service_level=share(tally.answered_within_t, tally.offered - tally.short_abandons),
        asa_seconds=mean(tally.answered_waits),
        average_wait_seconds=mean(tally.waits),
        talk_seconds=tally.talk,
        hold_seconds=tally.hold,
        wrap_seconds=tally.wrap,
        handle_seconds=handle,
        aht_seconds=handle / tally.answered if tally.answered else None,
        transfers=tally.transfers,
        repeat_calls=tally.repeat_calls,
        csat_answers=tally.csat_answers,
        csat_satisfied=tally.csat_satisfied,
        csat=share(tally.csat_satisfied, tally.csat_answers),
    )

