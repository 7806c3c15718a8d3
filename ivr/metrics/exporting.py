"""Writing one export (`ivr export`, benchmarks/metrics.py): in this process, or, for many
calls, in several processes at once.

Reading a million calls and making their rows is Python work that one process does at one
core's speed. From PARALLEL_FROM calls on, a calls, legs or intervals export is cut into
parts that worker processes write side by side, each on its own connection to the store
(spawned, not forked: a child must not inherit the event loop or the connection pool):

- calls and legs: the call starts read are cut where the calls divide evenly
  (`CallStore.start_splits`); each part writes its rows, without a header, to a file of its
  own, and the files are joined in order: the same bytes as one process writes.
- intervals: the local days are cut instead, so that every interval lies whole in one part
  (its wait percentiles need all its waits); the parts' tables are merged in key order.
- ivr: cut as calls; each part counts its calls' funnel, and the counts are added up
  (`FunnelCounts`: every figure is a count of calls). The report's funnel is counted so too.

agents stay in one process: an agent's occupancy needs the agent's presence all along.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING

from ivr.config.models import MetricsSettings
from ivr.metrics import export as rows
from ivr.metrics.intervals import IntervalTable, queue_intervals
from ivr.metrics.ivr_funnel import Funnel, FunnelCounts, count_funnel, funnel_of, ivr_funnel
from ivr.metrics.model import ExportKind, QueueInterval, WaitPercentile, Width
from ivr.metrics.source import Hotlines, Scope, Source, Window, bulk_reading, consume
from survey_engine.model import SurveyResponse

if TYPE_CHECKING:
    from multiprocessing.sharedctypes import Synchronized
    from zoneinfo import ZoneInfo

    from routing.config import RoutingConfig

PARALLEL_KINDS: frozenset[ExportKind] = frozenset({"calls", "legs", "intervals"})  # ivr: read_funnel
# Below this many calls, starting processes costs more than it saves.
PARALLEL_FROM = 100_000


def cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Job:
    """One export as plain data: what a worker process needs to write its part of it."""

    target: Path | str  # the store: a SQLite file or a postgresql:// URL
    zones: Mapping[str, ZoneInfo]  # Hotlines.zones
    settings: MetricsSettings
    scope: Scope
    kind: ExportKind
    fmt: str = "csv"
    width: Width = 15
    unmasked: bool = False
    zone: ZoneInfo | None = None  # Source.zone: every call on this clock (the HTML report's funnel)
    now: dt.datetime | None = None  # wrap-ups past their deadline by then are no_code (None: the time now)


@dataclass(frozen=True)
class Part:
    job: Job
    scope: Scope  # intervals: some of the job's days; else the job's scope
    within: Window = (None, None)  # calls, legs: some of the call starts
    path: Path | None = None  # calls, legs: where the rows go; ivr: none (counts come back)
    responses: tuple[SurveyResponse, ...] = ()  # intervals: every response of the job


@dataclass(frozen=True)
class PartDone:
    rows: int
    table: IntervalTable | None
    unknown: frozenset[str]  # dialed numbers not in hotlines.yaml
    funnel: FunnelCounts | None = None


async def write_export(
    job: Job, source: Source, out: IO[str], *, jobs: int = 1, queue: str | None = None,
    routing: RoutingConfig | None = None, now: dt.datetime | None = None, scratch: Path | None = None,
    parallel_from: int = PARALLEL_FROM,
) -> int:
    """Write one export of the source's scope (`job` says what and how); returns the number of
    rows. Up to `jobs` processes write a calls, legs or intervals export of `parallel_from`
    calls or more, with part files in `scratch` (default: the temporary directory). Agent
    figures are cut at `now`."""
    if job.kind == "ivr":
        return write_funnel(job, await read_funnel(job, source, jobs=jobs, parallel_from=parallel_from), out)
    if jobs > 1 and job.kind in PARALLEL_KINDS and await source.count() >= parallel_from:
        with tempfile.TemporaryDirectory(prefix="ivr-export-", dir=scratch) as directory:
            parts = await plan(job, source, jobs, Path(directory))
            if len(parts) > 1:
                return await write_parts(job, parts, out, source.hotlines, source.on_read)
    return await write_here(job, source, out, queue=queue, routing=routing,
                            now=now or job.now or dt.datetime.now(dt.timezone.utc))


async def write_here(
    job: Job, source: Source, out: IO[str], *, header: bool = True, queue: str | None = None,
    routing: RoutingConfig | None = None, now: dt.datetime,
) -> int:
    """Write the export in this process (the rows of `source`, which may be one part); the IVR
    funnel is `write_export`'s (`read_funnel`)."""
    from ivr.metrics.agents import agent_intervals

    kind, fmt, settings = job.kind, job.fmt, job.settings
    if kind == "calls":
        writer = rows.writer_for(fmt, out, rows.CALL_COLUMNS, header=header)
        return await consume(source.summaries(now=now), lambda calls: rows.write_all(
            writer, (rows.call_row(call, unmasked=job.unmasked) for call in calls)))
    if kind == "legs":
        writer = rows.writer_for(fmt, out, rows.LEG_COLUMNS, header=header)
        count = 0
        async for legs in source.legs(wrap_ups=True, now=now):
            count += rows.write_all(writer, map(rows.row_of, legs))
        return count
    if kind == "intervals":
        responses = await source.responses()
        table = await consume(source.legs(), lambda legs: queue_intervals(legs, settings, job.width, responses))
        return write_intervals(job, table, out)
    assert kind == "agents", kind
    from ivr.metrics.history import queues_of

    zone = source.hotlines.planning_zone(source.scope.hotline)
    events, since, until = await source.agent_events(zone, now)
    agents = await consume(source.legs(), lambda legs: agent_intervals(legs, events, zone, since, until, job.width))
    if queue is not None and routing is not None:
        serving = {agent for agent, queues in queues_of(routing).items() if queue in queues}
        agents = [row for row in agents if row.agent_id in serving]
    writer = rows.writer_for(fmt, out, rows.AGENT_COLUMNS)
    return rows.write_all(writer, map(rows.row_of, agents))


async def read_funnel(job: Job, source: Source, *, jobs: int = 1, parallel_from: int = PARALLEL_FROM) -> Funnel:
    """The IVR funnel of the source's scope: counted by up to `jobs` processes from
    `parallel_from` calls on (`job` says where the store is; its kind does not matter)."""
    if jobs > 1 and await source.count() >= parallel_from:
        parts = await plan(replace(job, kind="ivr"), source, jobs, None)
        if len(parts) > 1:
            counts = FunnelCounts()
            for done in await run_parts(parts, source.hotlines, source.on_read):
                assert done.funnel is not None
                counts.add(done.funnel)
            return funnel_of(counts)
    return await consume(source.paths(), ivr_funnel)


def write_funnel(job: Job, funnel: Funnel, out: IO[str]) -> int:
    return rows.write_all(rows.writer_for(job.fmt, out, rows.IVR_COLUMNS), rows.ivr_rows(funnel))


def write_intervals(job: Job, table: IntervalTable, out: IO[str]) -> int:
    percentiles = job.settings.wait_percentiles
    writer = rows.writer_for(job.fmt, out, rows.interval_columns(percentiles))
    return rows.write_all(writer, rows.interval_rows(table, job.width, percentiles))


async def plan(job: Job, source: Source, jobs: int, directory: Path | None) -> list[Part]:
    """The job cut into up to `jobs` parts of about equal numbers of calls (calls and legs:
    each writing a file in `directory`)."""
    store = source.store
    if job.kind == "intervals":
        responses = tuple(await source.responses())
        return [Part(job, scope, responses=responses) for scope in await _day_parts(job.scope, source, jobs)]
    start, end = source.reads(legs=job.kind == "legs")
    bounds = [start, *await store.start_splits(start, end, jobs), end]
    return [Part(job, job.scope, (low, high), None if directory is None else directory / f"part-{n}")
            for n, (low, high) in enumerate(zip(bounds, bounds[1:]))]


async def _day_parts(scope: Scope, source: Source, jobs: int) -> list[Scope]:
    """The scope's days (an open end: to the day of the first or last call, in the planning
    zone) in up to `jobs` runs of equal length: a contact centre's days are alike enough."""
    first, last = scope.since, scope.until
    if first is None or last is None:
        zone = source.hotlines.planning_zone(scope.hotline)
        earliest, latest = await source.store.start_range(*source.reads(legs=True))
        if earliest is None or latest is None:
            return [scope]
        first = first or earliest.astimezone(zone).date()
        last = last or latest.astimezone(zone).date()
    days = (last - first).days + 1
    return split_days(scope, [first + dt.timedelta(days=days * n // jobs) for n in range(1, jobs)])


def split_days(scope: Scope, firsts: list[dt.date]) -> list[Scope]:
    """The scope's days cut before each of `firsts` (those strictly inside it, in order)."""
    inside = sorted({day for day in firsts if (scope.since is None or day > scope.since)
                     and (scope.until is None or day <= scope.until)})
    starts = [scope.since, *inside]
    ends = [day - dt.timedelta(days=1) for day in inside] + [scope.until]
    return [replace(scope, since=since, until=until) for since, until in zip(starts, ends)]


async def write_parts(job: Job, parts: list[Part], out: IO[str], hotlines: Hotlines,
                      on_read: Callable[[int], None]) -> int:
    """Run the parts in worker processes and write their rows in order."""
    done = await run_parts(parts, hotlines, on_read)
    if job.kind == "intervals":
        tables = [result.table for result in done if result.table is not None]
        return write_intervals(job, merge_tables(tables), out)
    rows.writer_for(job.fmt, out, rows.CALL_COLUMNS if job.kind == "calls" else rows.LEG_COLUMNS)  # the header
    for part in parts:
        assert part.path is not None
        with open(part.path, encoding="utf-8", newline="") as written:
            shutil.copyfileobj(written, out, 1 << 20)
    return sum(result.rows for result in done)


async def run_parts(parts: list[Part], hotlines: Hotlines, on_read: Callable[[int], None]) -> list[PartDone]:
    """Run the parts in worker processes, telling `on_read` the calls they read as they go;
    the dialed numbers they did not know go into `hotlines.unknown`."""
    context = multiprocessing.get_context("spawn")
    counter = context.Value("q", 0)
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(len(parts), mp_context=context, initializer=_count_into, initargs=(counter,)) as pool:
        running = asyncio.gather(*(loop.run_in_executor(pool, run_part, part) for part in parts))
        told = 0
        try:
            while not running.done():
                await asyncio.wait([running], timeout=0.25)
                read = counter.value
                on_read(read - told)
                told = read
            done = running.result()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    for result in done:
        hotlines.unknown |= result.unknown
    return done


def merge_tables(tables: list[IntervalTable]) -> IntervalTable:
    """The tables of disjoint intervals as one, in `queue_intervals` order (queue, zone, start;
    a sort that keeps each interval's percentiles in their order)."""
    def key(row: QueueInterval | WaitPercentile) -> tuple[str, str, dt.datetime]:
        return row.queue, row.timezone, row.interval_start

    return IntervalTable(sorted((row for table in tables for row in table.rows), key=key),
                         sorted((p for table in tables for p in table.percentiles), key=key))


# What a worker process counts the calls it read into (set when the process starts: a shared
# value can only be handed over then).
_counter: list[Synchronized[int]] = []


def _count_into(counter: Synchronized[int]) -> None:
    _counter.append(counter)


def _count(calls: int) -> None:
    for counter in _counter:
        with counter.get_lock():
            counter.value += calls


def run_part(part: Part) -> PartDone:
    """A worker process's whole task: one part of an export."""
    with bulk_reading():
        return asyncio.run(_run_part(part))


async def _run_part(part: Part) -> PartDone:
    from ivr.records.store import CallStore

    job = part.job
    store = await CallStore.open(job.target)
    try:
        hotlines = Hotlines(job.zones)
        source = Source(store, hotlines, job.settings, part.scope, zone=job.zone, on_read=_count, within=part.within)
        if job.kind == "intervals":
            table = await consume(source.legs(), lambda legs: queue_intervals(legs, job.settings, job.width,
                                                                              part.responses))
            return PartDone(len(table.rows), table, frozenset(hotlines.unknown))
        if job.kind == "ivr":
            counts = await consume(source.paths(), count_funnel)
            return PartDone(0, None, frozenset(hotlines.unknown), counts)
        assert part.path is not None
        with open(part.path, "w", encoding="utf-8", newline="") as out:
            count = await write_here(job, source, out, header=False, now=job.now or dt.datetime.now(dt.timezone.utc))
        return PartDone(count, None, frozenset(hotlines.unknown))
    finally:
        await store.close()
