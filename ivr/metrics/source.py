"""The one place the metrics read the store: the calls, queue legs, agent presence and survey
responses of a scope of local days, for the exports, the HTML report and `ivr staffing`.

Days are local to each call's hotline (hotlines.yaml `timezone`), inclusive at both ends, as in
`ivr report survey`. A call belongs to the days it started on; a queue leg to the day of the
interval it entered the queue in, so the interval figures of a day are complete even for a
call that started just before midnight (calls up to LEG_PAD before the first day are read
for that). Repeat calls look repeat_hours past the last day, where the later call may be.

The pure functions of ivr.metrics consume plain iterables; `consume` feeds them the store's
batches from a worker thread, so a million legs stream through them without being held.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from zoneinfo import ZoneInfo

from ivr.config.loader import hotline_number
from ivr.config.models import MetricsSettings
from ivr.metrics.buckets import IntervalStarts
from ivr.metrics.legs import leg_rows
from ivr.metrics.model import LegRow
from ivr.records.model import AgentEvent, CallPath, CallSummary, UtcText, utc_text
from survey_engine.model import SurveyResponse

if TYPE_CHECKING:
    from ivr.config.loader import LoadedConfig
    from ivr.records.store import CallStore
    from survey_engine.store import SurveyStore

UTC = ZoneInfo("UTC")
# How long before its first day a call may have started and still have a leg that day.
LEG_PAD = dt.timedelta(hours=4)
# Survey answers arrive after the call (the web form much later): read this far past the days.
RESPONSE_PAD = dt.timedelta(days=7)
Window = tuple[dt.datetime | None, dt.datetime | None]  # UTC [start, end); None: open

_T = TypeVar("_T")
_R = TypeVar("_R")


@contextlib.contextmanager
def bulk_reading() -> Iterator[None]:
    """Fewer runs of the cyclic garbage collector while a command reads many calls. Each batch
    makes tens of thousands of short-lived objects (rows, path events) that reference counting
    frees; with the default thresholds the collector also walks every batch still being used,
    which made reading a million calls for interval figures half again as slow."""
    thresholds = gc.get_threshold()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


class NoDatabase(Exception):
    """There is no call-record database where the configuration says (the message says where)."""


def store_target(loaded: LoadedConfig, db: str | None = None, *, must_exist: bool = True) -> Path | str:
    """`db` (a SQLite path or a postgresql:// URL), else server.yaml's store.url, else its
    store.sqlite_path against the configuration directory, as `ivr serve` uses it. A missing
    SQLite file is an error (opening it would create an empty database and report nothing),
    unless `must_exist` is off: a command that writes (`ivr users add`) creates it."""
    if db is not None and "://" in db:
        return db
    if db is None and loaded.server.store.url is not None:
        return loaded.server.store.url
    if db is None:
        path = loaded.server.store.sqlite_path
        path = path if path.is_absolute() else loaded.config_dir / path
    else:
        path = Path(db)
    if must_exist and not path.is_file():
        raise NoDatabase(f"no call-record database at {path} (give --db, or the --config `ivr serve` uses)")
    return path


class Hotlines:
    """Dialed numbers to the configured hotline (trunk prefixes removed) and its time zone.
    A number not in hotlines.yaml (a hotline since removed) counts in UTC and is remembered
    in `unknown`, so that the command can say so."""

    def __init__(self, zones: Mapping[str, ZoneInfo]) -> None:
        self.zones = dict(zones)
        self._numbers: dict[str, str | None] = {}
        self.unknown: set[str] = set()

    @classmethod
    def from_config(cls, loaded: LoadedConfig) -> Hotlines:
        return cls({number: ZoneInfo(h.timezone) for number, h in loaded.directory.hotlines.items()})

    def number(self, dialed: str) -> str | None:
        if dialed not in self._numbers:
            self._numbers[dialed] = hotline_number(dialed, self.zones)
        return self._numbers[dialed]

    def zone_of(self, dialed: str) -> ZoneInfo:
        number = self.number(dialed)
        if number is None:
            self.unknown.add(dialed)
            return UTC
        return self.zones[number]

    def planning_zone(self, hotline: str | None) -> ZoneInfo:
        """The one zone of results that are not per hotline (agent intervals, staffing): the
        given hotline's; else the hotlines' common zone; else the first hotline's."""
        if hotline is not None:
            return self.zone_of(hotline)
        zones = list(self.zones.values())
        return zones[0] if zones else UTC


@dataclass(frozen=True)
class Scope:
    """Which records: local days `since`..`until` (inclusive; None: open), one queue, one
    hotline (a dialed number, matched after trunk prefixes are removed)."""

    since: dt.date | None = None
    until: dt.date | None = None
    queue: str | None = None
    hotline: str | None = None

    def __post_init__(self) -> None:
        if self.since is not None and self.until is not None and self.until < self.since:
            raise ValueError(f"the last day {self.until} is before the first day {self.since}")

    def holds(self, day: dt.date) -> bool:
        return (self.since is None or day >= self.since) and (self.until is None or day <= self.until)

    def window(self, zones: Sequence[ZoneInfo]) -> tuple[dt.datetime | None, dt.datetime | None]:
        """UTC bounds [start, end) that hold the scope's days in every one of `zones`."""
        every = [*zones, UTC]
        start = None if self.since is None else min(_midnight(self.since, zone) for zone in every)
        end = None if self.until is None else max(_midnight(self.until + dt.timedelta(days=1), zone) for zone in every)
        return start, end

    def bounds(self, zone: ZoneInfo) -> tuple[dt.datetime | None, dt.datetime | None]:
        """The scope's days in one zone: [first midnight, midnight after the last day)."""
        return (None if self.since is None else _midnight(self.since, zone),
                None if self.until is None else _midnight(self.until + dt.timedelta(days=1), zone))


def _midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(dt.timezone.utc)


def _minus(moment: dt.datetime | None, delta: dt.timedelta) -> dt.datetime | None:
    return None if moment is None else moment - delta


def _plus(moment: dt.datetime | None, delta: dt.timedelta) -> dt.datetime | None:
    return None if moment is None else moment + delta


@dataclass
class Source:
    """The records of one scope in one call-record store (and its survey responses)."""

    store: CallStore
    hotlines: Hotlines
    settings: MetricsSettings
    scope: Scope
    surveys: SurveyStore | None = None
    # Count every call in this zone instead of its hotline's (staffing plans on one clock).
    zone: ZoneInfo | None = None
    # Told how many stored calls were read, a batch at a time (a progress bar).
    on_read: Callable[[int], None] = lambda calls: None
    # Only calls that started in this UTC window [start, end): one part of an export that
    # several processes write (ivr.metrics.exporting).
    within: Window = (None, None)
    _window: Window = field(init=False)
    _hotline: str | None = field(init=False)
    _days: dict[ZoneInfo, tuple[UtcText | None, UtcText | None]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        hotline = self.scope.hotline
        if self.zone is not None:
            zones = [self.zone]
        elif hotline is not None:
            zones = [self.hotlines.zone_of(hotline)]
        else:
            zones = list(self.hotlines.zones.values())
        self._window = self.scope.window(zones)
        self._hotline = None if hotline is None else (self.hotlines.number(hotline) or hotline)

    def zone_of(self, dialed: str) -> ZoneInfo:
        return self.zone if self.zone is not None else self.hotlines.zone_of(dialed)

    def _on_hotline(self, dialed: str) -> bool:
        return self._hotline is None or (self.hotlines.number(dialed) or dialed) == self._hotline

    def reads(self, *, legs: bool = False) -> Window:
        """The UTC window of call starts that `summaries` (or `legs`, LEG_PAD earlier) reads."""
        start, end = self._window
        if legs:
            start = _minus(start, LEG_PAD)
        low, high = self.within
        return (low if start is None or (low is not None and low > start) else start,
                high if end is None or (high is not None and high < end) else end)

    async def count(self) -> int:
        """Calls stored in the UTC window of the scope: an upper bound for a progress bar."""
        return await self.store.count_calls(*self.reads())

    async def paths(self) -> AsyncIterator[list[CallPath]]:
        """Batches of the calls that started on the scope's days (in their hotline's zone), of
        its hotline, with a leg in its queue, by start time: what the IVR funnel reads."""
        # Closed at once when the caller stops early, not at the loop's shutdown
        # (its cursor and connection then fail to close and log tracebacks).
        async with contextlib.aclosing(self.store.iter_call_paths(*self.reads(), self.scope.queue)) as batches:
            async for stored in batches:
                self.on_read(len(stored))
                yield [call for call in stored if self._in_scope(call.dialed, call.started_at)]

    async def repeated(self) -> frozenset[str]:
        """The calls `legs` reads whose caller called the same hotline again within repeat_hours."""
        return await self.store.repeated_calls(*self.reads(legs=True), self.settings.repeat_hours)

    async def summaries(self, *, now: dt.datetime | None = None) -> AsyncIterator[list[CallSummary]]:
        """Batches of the scope's calls as `calls` selects them, without their events (a wrap-up
        with no code is no_code when its deadline is before `now`, default the time now)."""
        async with contextlib.aclosing(self.store.iter_call_summaries(*self.reads(), now=now)) as batches:
            async for stored in batches:
                self.on_read(len(stored))
                yield [call for call in stored if self._wanted(call.dialed, call.started_at, call.queues)]

    def _wanted(self, dialed: str, started_at: UtcText, queues: Iterable[str]) -> bool:
        return self._in_scope(dialed, started_at) and (self.scope.queue is None or self.scope.queue in queues)

    def _in_scope(self, dialed: str, started_at: UtcText) -> bool:
        """On the scope's hotline and days (in the hotline's zone)."""
        if not self._on_hotline(dialed):
            return False
        zone = self.zone_of(dialed)
        days = self._days.get(zone)
        if days is None:
            first, end = self.scope.bounds(zone)
            days = self._days[zone] = (None if first is None else utc_text(first), None if end is None else utc_text(end))
        return (days[0] is None or started_at >= days[0]) and (days[1] is None or started_at < days[1])

    async def legs(self, *, wrap_ups: bool = False, now: dt.datetime | None = None) -> AsyncIterator[list[LegRow]]:
        """Batches of the queue legs (of the scope's hotline and queue) whose base interval
        starts on the scope's days, repeats marked; with `wrap_ups`, their codes as in `summaries`."""
        repeated = await self.repeated()
        queue = self.scope.queue
        starts = IntervalStarts(self.settings.interval_minutes)
        holds = self.scope.holds
        async with contextlib.aclosing(self.store.iter_legs(*self.reads(legs=True), wrap_ups=wrap_ups, now=now)) as batches:
            async for stored in batches:
                self.on_read(len(stored))
                wanted = [leg for leg in stored if (queue is None or leg.queue == queue) and self._on_hotline(leg.dialed)]
                yield [leg for leg in leg_rows(wanted, self.zone_of, self.settings, repeated, starts)
                       if holds(leg.interval_start.date())]

    async def agent_events(self, zone: ZoneInfo, now: dt.datetime) -> tuple[list[AgentEvent], dt.datetime, dt.datetime]:
        """Presence changes for agent intervals in `zone`, with the grid's [since, until): the
        scope's days, cut at `now` (presence holds until the next event, so it must not run
        into the future); open ends: the day of the first event, and the later of the last
        event's and the last call's. The last event of
        each agent before `since` comes too: it says how the agent started."""
        since, until = self.scope.bounds(zone)
        events = await self.store.agent_events(since, until)
        if since is None:
            first = events[0].at if events else now
            since = _midnight(first.astimezone(zone).date(), zone)
        else:
            events = await self.store.last_agent_events(since) + events
        if until is None:
            # Presence holds until the next event: an agent logged in on one day who answers
            # calls the next is still logged in then. The grid runs to the end of the day of
            # the last event or the last call, whichever is later.
            _, last_call = await self.store.start_range(None, None)
            latest = [t for t in (events[-1].at if events else None, last_call) if t is not None]
            last = max(latest) if latest else now
            until = _midnight(last.astimezone(zone).date() + dt.timedelta(days=1), zone)
        return events, since, max(since, min(until, now))

    async def responses(self) -> list[SurveyResponse]:
        if self.surveys is None:
            return []
        start, end = self._window
        return await self.surveys.responses(since=_minus(start, LEG_PAD), until=_plus(end, RESPONSE_PAD))


@dataclass(frozen=True)
class _End:
    error: BaseException | None = None


async def consume(batches: AsyncIterator[list[_T]], consumer: Callable[[Iterator[_T]], _R], *,
                  ahead: int = 2) -> _R:
    """Run `consumer` (a pure function over an iterable) in a worker thread on the items of
    `batches`, which the event loop reads up to `ahead` batches in advance meanwhile: reading
    the store and computing overlap (the database works outside the interpreter lock)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[list[_T] | _End] = asyncio.Queue(maxsize=ahead)

    stopping = False

    async def produce() -> None:
        try:
            async for batch in batches:
                if stopping:
                    break
                await queue.put(batch)
        except Exception as exc:  # handed to the consumer, which raises it in its thread
            await queue.put(_End(exc))
        else:
            await queue.put(_End())

    def items() -> Iterator[_T]:
        while True:
            batch = asyncio.run_coroutine_threadsafe(queue.get(), loop).result()
            if isinstance(batch, _End):
                if batch.error is not None:
                    raise batch.error
                return
            yield from batch

    producer = asyncio.create_task(produce(), name="metrics-reader")
    try:
        return await asyncio.to_thread(consumer, items())
    finally:
        # The consumer stopped early (e.g. a closed pipe): let the reader finish the batch it
        # is fetching rather than cancel it mid-fetch (the driver then fails to close its
        # cursor and logs a traceback), taking what it queues until it is done.
        stopping = True
        while not producer.done():
            while not queue.empty():
                queue.get_nowait()
            await asyncio.wait({producer}, timeout=0.05)
        await asyncio.gather(producer, return_exceptions=True)
        aclose = getattr(batches, "aclose", None)
        if aclose is not None:
            await aclose()
