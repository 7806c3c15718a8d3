"""Per agent and interval: calls, handle time, logged-in time and occupancy; and the mean
number of agents logged in per interval, which `ivr staffing` puts beside its recommendation.

Presence comes from the agent events: each holds from its `at` until the agent's next event
(or `until`); before an agent's first event the agent counts as logged out, so pass the
last event before `since` too. Staffed (logged in) = ready + paused + not ready.

Busy time of an answered leg: connected from its answer time for its talk_seconds (hold
is spread evenly over it: AMI gives its total, not when it happened), then wrap-up. Each
span counts in the intervals it overlaps, for the part inside each.

Occupancy = busy time / (busy time + ready time without a call) in the interval: the share
of the time an agent was either working a call or waiting for one that went to calls.
Paused and not-ready time (the ACD sets not ready after missed offers: the agent is not
taking calls) are left out, unless a call was being handled then. It is never above 1.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from ivr.metrics.buckets import intervals, minutes_between, seconds_between, utc
from ivr.metrics.model import AgentInterval, LegRow, StaffedInterval, Width
from ivr.records.model import AgentEvent

Span = tuple[dt.datetime, dt.datetime]  # UTC


@dataclass
class _Slot:
    calls: int = 0
    talk: float = 0.0
    hold: float = 0.0
    wrap: float = 0.0
    presence: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    busy: list[Span] = field(default_factory=list)
    ready: list[Span] = field(default_factory=list)


class _Grid:
    """The intervals of [since, until) and the slots (agent, interval) that have something."""

    def __init__(self, since: dt.datetime, until: dt.datetime, zone: ZoneInfo, minutes: Width) -> None:
        self.zone = zone
        self.bounds = list(intervals(since, until, zone, minutes))
        self.starts = [utc(start) for start, _ in self.bounds]
        self.since, self.until = utc(since), utc(until)
        self.slots: dict[tuple[str, int], _Slot] = defaultdict(_Slot)

    def pieces(self, start: dt.datetime, end: dt.datetime) -> Iterable[tuple[int, Span]]:
        """The parts of [start, end) inside [since, until), one per interval it overlaps."""
        start, end = max(utc(start), self.since), min(utc(end), self.until)
        if start >= end:
            return
        index = bisect.bisect_right(self.starts, start) - 1
        while index < len(self.bounds) and self.starts[index] < end:
            piece_start = max(start, self.starts[index])
            piece_end = min(end, utc(self.bounds[index][1]))
            if piece_start < piece_end:
                yield index, (piece_start, piece_end)
            index += 1

    def slot_at(self, agent_id: str, at: dt.datetime) -> _Slot | None:
        moment = utc(at)
        if not self.since <= moment < self.until:
            return None
        return self.slots[agent_id, bisect.bisect_right(self.starts, moment) - 1]


def agent_intervals(
    legs: Iterable[LegRow],
    events: Iterable[AgentEvent],
    zone: ZoneInfo,
    since: dt.datetime,
    until: dt.datetime,
    minutes: Width,
) -> list[AgentInterval]:
    """Rows for each agent and interval of [since, until) in `zone` in which the agent was
    logged in or handled a call; by agent, then time."""
    grid = _Grid(since, until, zone, minutes)
    for agent_id, spans in _presence(events, until).items():
        for start, end, presence in spans:
            if presence == "logged_out":
                continue
            for index, piece in grid.pieces(start, end):
                slot = grid.slots[agent_id, index]
                slot.presence[presence] += seconds_between(*piece)
                if presence == "ready":
                    slot.ready.append(piece)
    for leg in legs:
        if leg.agent_id is None or leg.answered_at is None:
            continue
        answered = grid.slot_at(leg.agent_id, leg.answered_at)
        if answered is not None:
            answered.calls += 1
        connected = leg.talk_seconds + leg.hold_seconds
        hung_up = leg.answered_at + dt.timedelta(seconds=connected)
        for index, piece in grid.pieces(leg.answered_at, hung_up):
            slot = grid.slots[leg.agent_id, index]
            part = seconds_between(*piece) / connected
            slot.talk += leg.talk_seconds * part
            slot.hold += leg.hold_seconds * part
            slot.busy.append(piece)
        for index, piece in grid.pieces(hung_up, hung_up + dt.timedelta(seconds=leg.wrap_seconds)):
            slot = grid.slots[leg.agent_id, index]
            slot.wrap += seconds_between(*piece)
            slot.busy.append(piece)
    return [_agent_row(agent_id, grid, index, minutes, slot) for (agent_id, index), slot in sorted(grid.slots.items())]


def _presence(events: Iterable[AgentEvent], until: dt.datetime) -> dict[str, list[tuple[dt.datetime, dt.datetime, str]]]:
    by_agent: dict[str, list[AgentEvent]] = defaultdict(list)
    for event in events:
        by_agent[event.agent_id].append(event)
    spans: dict[str, list[tuple[dt.datetime, dt.datetime, str]]] = {}
    for agent_id, history in by_agent.items():
        history.sort(key=lambda event: utc(event.at))
        ends = [utc(event.at) for event in history[1:]] + [utc(until)]
        spans[agent_id] = [(utc(event.at), end, event.presence) for event, end in zip(history, ends)]
    return spans


def _agent_row(agent_id: str, grid: _Grid, index: int, minutes: Width, slot: _Slot) -> AgentInterval:
    start, end = grid.bounds[index]
    busy = _measure(slot.busy)
    presence = slot.presence
    return AgentInterval(
        agent_id=agent_id,
        timezone=grid.zone.key,
        interval_start=start,
        interval_end=end,
        interval_minutes=minutes_between(start, end),
        calls_answered=slot.calls,
        talk_seconds=slot.talk,
        hold_seconds=slot.hold,
        wrap_seconds=slot.wrap,
        handle_seconds=slot.talk + slot.hold + slot.wrap,
        staffed_seconds=presence["ready"] + presence["paused"] + presence["not_ready"],
        ready_seconds=presence["ready"],
        paused_seconds=presence["paused"],
        not_ready_seconds=presence["not_ready"],
        occupancy=busy / worked if (worked := _measure(slot.busy + slot.ready)) > 0 else None,
    )


def _measure(spans: Sequence[Span]) -> float:
    """Seconds covered by the union of the spans."""
    total = 0.0
    current: Span | None = None
    for start, end in sorted(spans):
        if current is None or start > current[1]:
            if current is not None:
                total += seconds_between(*current)
            current = (start, end)
        elif end > current[1]:
            current = (current[0], end)
    if current is not None:
        total += seconds_between(*current)
    return total


def staffed_intervals(
    rows: Iterable[AgentInterval], queues_of: Mapping[str, Collection[str]] | None = None
) -> list[StaffedInterval]:
    """Mean agents logged in (and ready) per interval: their seconds / the interval's seconds.
    An interval nobody was logged in has no row (0 agents). Without `queues_of`, one row per interval for all agents (queue None); with it (agent ->
    the queues the agent serves, from routing.yaml skills), one row per queue and interval,
    an agent serving two queues counting in both."""
    totals: dict[tuple[str | None, dt.datetime], list[float]] = {}
    firsts: dict[tuple[str | None, dt.datetime], AgentInterval] = {}
    for row in rows:
        for queue in (None,) if queues_of is None else queues_of.get(row.agent_id, ()):
            key = (queue, utc(row.interval_start))
            sums = totals.setdefault(key, [0.0, 0.0])
            firsts.setdefault(key, row)
            sums[0] += row.staffed_seconds
            sums[1] += row.ready_seconds
    result = []
    for key in sorted(totals, key=lambda k: (k[0] or "", k[1])):
        first = firsts[key]
        length = seconds_between(first.interval_start, first.interval_end)
        staffed, ready = totals[key]
        result.append(StaffedInterval(
            queue=key[0], timezone=first.timezone, interval_start=first.interval_start,
            interval_end=first.interval_end, interval_minutes=first.interval_minutes,
            agents_staffed=staffed / length, agents_ready=ready / length,
        ))
    return result


def queue_occupancy(
    rows: Iterable[AgentInterval], queues_of: Mapping[str, Collection[str]]
) -> dict[tuple[str, dt.datetime], float | None]:
    """Occupancy of the agents who serve each queue, per interval (key: queue, UTC start): their
    busy time / their busy or ready time, all such agents together (an agent serving two
    queues counts in both). It is the agents' occupancies weighted by that worked time, which
    each row gives as busy / occupancy (busy: the handle time), or its ready time when it had
    no call. None when none of them was busy or ready."""
    sums: dict[tuple[str, dt.datetime], list[float]] = {}
    for row in rows:
        if row.occupancy is None:
            worked = busy = 0.0
        elif row.occupancy > 0:
            busy = row.handle_seconds
            worked = busy / row.occupancy
        else:
            busy, worked = 0.0, row.ready_seconds
        for queue in queues_of.get(row.agent_id, ()):
            total = sums.setdefault((queue, utc(row.interval_start)), [0.0, 0.0])
            total[0] += busy
            total[1] += worked
    return {key: busy / worked if worked > 0 else None for key, (busy, worked) in sums.items()}
