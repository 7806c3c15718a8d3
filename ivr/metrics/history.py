"""`ivr staffing` from the call history: what each queue was offered per interval, its AHT and
its callers' patience, next to the agents who were logged in.

Per queue and interval (legs by the interval they entered the queue in, on the clock of the
planning zone: `Hotlines.planning_zone`):
- offered: the interval's offered legs (answered + abandoned + overflowed);
- AHT: the interval's (talk + hold + wrap-up) / answered; an interval that answered nothing
  takes the queue's AHT over all the days read (its handle time / its answered legs); a
  queue that answered nothing at all cannot be planned and is named in `unplanned`;
- patience: one estimate per queue over all the days read (erlang.estimate_patience: the
  time all callers waited / abandons), pooled because 15 minutes hold too few abandons;
  short abandons are left out (callers who hang up at once say little about patience),
  answered and overflowed legs are censored waits;
- logged in: the mean number of agents who serve the queue (routing.yaml skills and groups,
  any language) logged in during the interval; 0 when nobody was; unknown (None) without
  an ACD (no routing.yaml: agents are Asterisk's, their presence is not recorded).
Intervals where agents were logged in but no call came are planned too (0 agents needed).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ivr.metrics.agents import agent_intervals, staffed_intervals
from ivr.metrics.buckets import utc
from ivr.metrics.erlang import estimate_patience
from ivr.metrics.intervals import queue_intervals
from ivr.metrics.model import LegRow, QueueInterval, StaffedInterval, Width
from ivr.metrics.source import Hotlines, NoDatabase, Scope, Source, bulk_reading, consume, store_target
from ivr.metrics.staffing import IntervalLoad
from routing.config import RoutingConfig
from routing.decision import can_serve
from routing.model import Caller

if TYPE_CHECKING:
    from ivr.cli.staffing import HistoryRequest

WIDTHS: tuple[Width, ...] = (15, 30, 60, 1440)


def queues_of(routing: RoutingConfig) -> dict[str, frozenset[str]]:
    """Agent -> the queues the agent may serve at some routing step, whatever the caller's
    language (skills and groups decide)."""
    served: dict[str, frozenset[str]] = {}
    for agent_id, agent in routing.agents.items():
        served[agent_id] = frozenset(
            name for name, queue in routing.queues.items()
            if any(can_serve(agent_id, agent, Caller("", name, 0.0), queue, step, 0.0)
                   for step in range(len(queue.steps)))
        )
    return served


@dataclass
class QueueHistory:
    """A queue's legs over all the days read, pooled."""

    abandon_waits: list[float] = field(default_factory=list)  # short abandons left out
    censored_waits: list[float] = field(default_factory=list)  # answered and overflowed legs
    handle_seconds: float = 0.0
    answered: int = 0

    @property
    def aht_seconds(self) -> float | None:
        return self.handle_seconds / self.answered if self.answered else None

    @property
    def patience_seconds(self) -> float | None:
        return estimate_patience(self.abandon_waits, self.censored_waits)


def pooled(legs: Iterable[LegRow], queues: dict[str, QueueHistory]) -> Iterator[LegRow]:
    """The legs, unchanged, each also added to its queue's history in `queues`."""
    for leg in legs:
        history = queues.setdefault(leg.queue, QueueHistory())
        if leg.outcome == "abandoned":
            if not leg.short_abandon:
                history.abandon_waits.append(leg.wait_seconds)
        else:
            history.censored_waits.append(leg.wait_seconds)
        if leg.outcome == "answered":
            history.answered += 1
            history.handle_seconds += leg.handle_seconds
        yield leg


@dataclass(frozen=True)
class History:
    loads: list[IntervalLoad]
    unplanned: list[str]  # queues with calls but no answered call: no AHT to plan with


def interval_loads(
    rows: Sequence[QueueInterval],
    queues: Mapping[str, QueueHistory],
    staffed: Sequence[StaffedInterval] | None,
) -> History:
    """IntervalLoads from interval rows and staffed rows of the same width and zone (see the
    module docstring)."""
    logged_in = {(row.queue, utc(row.interval_start)): row for row in staffed or () if row.queue is not None}
    loads: list[IntervalLoad] = []
    unplanned: set[str] = set()
    seen: set[tuple[str, dt.datetime]] = set()
    for row in rows:
        history = queues.get(row.queue, QueueHistory())
        aht = row.aht_seconds if row.aht_seconds is not None else history.aht_seconds
        if aht is None:
            unplanned.add(row.queue)
            continue
        key = (row.queue, utc(row.interval_start))
        seen.add(key)
        agents = logged_in.get(key)
        loads.append(IntervalLoad(
            queue=row.queue, start=row.interval_start, offered=row.offered, aht_seconds=aht,
            patience_seconds=history.patience_seconds,
            staffed_agents=None if staffed is None else agents.agents_staffed if agents is not None else 0.0,
        ))
    for key, agents in logged_in.items():
        queue = key[0]
        if key in seen or queue in unplanned:
            continue
        history = queues.get(queue, QueueHistory())
        loads.append(IntervalLoad(
            queue=queue, start=agents.interval_start, offered=0, aht_seconds=history.aht_seconds or 0.0,
            patience_seconds=history.patience_seconds, staffed_agents=agents.agents_staffed,
        ))
    loads.sort(key=lambda load: (load.queue, utc(load.start)))
    return History(loads, sorted(unplanned))


async def read_history(source: Source, routing: RoutingConfig | None, width: Width, now: dt.datetime) -> History:
    """Read the source's legs (twice: for the queues, then for the agents) and bridge them."""
    zone = source.zone or source.hotlines.planning_zone(source.scope.hotline)
    queues: dict[str, QueueHistory] = {}
    settings = source.settings
    table = await consume(source.legs(), lambda legs: queue_intervals(pooled(legs, queues), settings, width))
    staffed = None
    if routing is not None:
        events, since, until = await source.agent_events(zone, now)
        agents = await consume(source.legs(), lambda legs: agent_intervals(legs, events, zone, since, until, width))
        staffed = staffed_intervals(agents, queues_of(routing))
    return interval_loads(table.rows, queues, staffed)


def history_loader(echo: Callable[[str], None], now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc)
                   ) -> Callable[[HistoryRequest], Sequence[IntervalLoad]]:
    """The HistoryLoader `ivr staffing` runs: the store named by the request's configuration,
    days in the planning zone. Queues it cannot plan are reported through `echo`."""
    from ivr.cli.staffing import HistoryUnavailable
    from ivr.records.store import CallStore, StoreError

    def load(request: HistoryRequest) -> Sequence[IntervalLoad]:
        if request.interval_minutes not in WIDTHS:
            raise HistoryUnavailable(f"history is counted in intervals of 15, 30, 60 or 1440 minutes, "
                                     f"not {request.interval_minutes}")
        width: Width = request.interval_minutes  # one of WIDTHS
        loaded = request.config
        try:
            target = store_target(loaded, request.db)
        except NoDatabase as exc:
            raise HistoryUnavailable(str(exc)) from exc
        hotlines = Hotlines.from_config(loaded)
        zone = hotlines.planning_zone(None)

        async def run() -> History:
            store = await CallStore.open(target)
            try:
                source = Source(store, hotlines, loaded.server.metrics, Scope(request.since, request.until), zone=zone)
                return await read_history(source, loaded.routing, width, now())
            finally:
                await store.close()

        try:
            with bulk_reading():
                history = asyncio.run(run())
        except StoreError as exc:
            raise HistoryUnavailable(str(exc)) from exc
        loads = [load for load in history.loads if not request.queues or load.queue in request.queues]
        for queue in history.unplanned:
            if not request.queues or queue in request.queues:
                echo(f"queue {queue}: no call was answered in these days, so there is no AHT to plan with")
        echo(f"intervals in {zone.key}" + (f"; dialed numbers not in hotlines.yaml: {', '.join(sorted(hotlines.unknown))}"
                                           if hotlines.unknown else ""))
        return loads

    return load
