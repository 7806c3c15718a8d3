"""Metrics benchmark: call records ingested per second, exporting a million calls, and staffing
for 96 intervals x 50 queues.

    .venv/bin/python benchmarks/metrics.py [--ingest 100000] [--calls 1000000] [--queues 50]
                                          [--intervals 96] [--jobs 0] [--keep DIR [--reuse]]
                                          [--seed 400]

What is measured (every figure is printed next to its target, never asserted):

- Ingest: `CallStore.call_started` + `call_ended` (9 path events, one queue leg each) for
  --ingest synthetic calls (made before the clock starts) into a fresh SQLite file, timed
  from the first enqueue until `flush()` returns: everything is committed. Target: 10,000
  calls/s.
- Export: --calls synthetic calls (written through the same store, untimed: that is the
  ingest figure again) over 10 days, then the `ivr export` code path (`write_export`, CSV
  into a file, --jobs processes as `ivr export --jobs`, default one per CPU): `calls` (one
  row per call, with its menu path), `intervals` (15-minute figures: repeat calls, legs,
  wait percentiles, zero rows) and `ivr` (the menu funnel, from every call's menu steps).
  Target: 1 million calls exported in under 20 s.
- Staffing: `ivr.metrics.staffing.plan` for --intervals x --queues interval loads (offered
  10-400 calls per 15 minutes, AHT 150-330 s, patience 40-240 s: up to 150 Erlangs), once
  with Erlang C, once with Erlang A. Target: under 1 s each.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ivr.config.models import MetricsSettings  # noqa: E402
from ivr.metrics.erlang import StaffingTarget  # noqa: E402
from ivr.metrics.exporting import Job, cpus, write_export  # noqa: E402
from ivr.metrics.model import ExportKind  # noqa: E402
from ivr.metrics.source import Hotlines, Scope, Source, bulk_reading  # noqa: E402
from ivr.metrics.staffing import IntervalLoad, StaffingPolicy, plan  # noqa: E402
from ivr.records.model import CallEnded, CallStarted, Disposition, EventKind, PathEvent, QueueLeg  # noqa: E402
from ivr.records.store import CallStore  # noqa: E402

HOTLINE = "4008001234"
ZONE = ZoneInfo("Asia/Shanghai")
FIRST_DAY = dt.date(2026, 3, 2)
DAYS = 10
QUEUES = ("billing", "technical", "general")
INGEST_TARGET = 10_000.0  # calls/s
EXPORT_TARGET = 20.0  # seconds for 1 million calls
STAFFING_TARGET = 1.0  # seconds


@dataclass
class Report:
    ingest_calls: int = 0
    ingest_seconds: float = 0.0
    export_calls: int = 0
    exports: dict[str, tuple[int, float]] = field(default_factory=dict)  # kind -> (rows, seconds)
    staffing_rows: int = 0
    staffing: dict[str, float] = field(default_factory=dict)  # model -> seconds

    @property
    def ingest_rate(self) -> float:
        return self.ingest_calls / self.ingest_seconds if self.ingest_seconds else 0.0


def synthetic_calls(count: int, seed: int) -> Iterator[tuple[CallStarted, CallEnded]]:
    """Calls spread over DAYS days, 07:00-23:00 local: the main menu to one of three queues;
    80% answered, 15% abandoned, 5% overflowed on timeout; a few thousand callers."""
    rng = random.Random(seed)
    start = dt.datetime.combine(FIRST_DAY, dt.time(7), tzinfo=ZONE).astimezone(dt.timezone.utc)
    spread = DAYS * 86400 / count
    for n in range(count):
        day, moment = divmod(n * spread, 86400)
        at = start + dt.timedelta(days=day, seconds=moment * 16 / 24)
        call_id = f"bench-{n:08d}"
        queue = QUEUES[n % 3]
        second = dt.timedelta(seconds=1)
        events = (
            PathEvent(at, EventKind.NODE, "welcome", "play"),
            PathEvent(at + 4 * second, EventKind.NODE, "choose-language", "language"),
            PathEvent(at + 7 * second, EventKind.DIGIT, "choose-language", "1"),
            PathEvent(at + 7 * second, EventKind.NODE, "main-menu", "menu"),
            PathEvent(at + 12 * second, EventKind.DIGIT, "main-menu", "1"),
            PathEvent(at + 12 * second, EventKind.NODE, f"{queue}-menu", "menu"),
            PathEvent(at + 16 * second, EventKind.DIGIT, f"{queue}-menu", "2"),
            PathEvent(at + 16 * second, EventKind.NODE, f"{queue}-queue", "queue"),
            PathEvent(at + 16 * second, EventKind.QUEUE, f"{queue}-queue", f"{queue} (acd)"),
        )
        enqueued = at + 16 * second
        wait = dt.timedelta(seconds=rng.expovariate(1 / 25))
        draw = rng.random()
        if draw < 0.80:
            talk = rng.uniform(60, 400)
            leg = QueueLeg(queue, enqueued, enqueued + wait + dt.timedelta(seconds=talk), "answered",
                           answered_at=enqueued + wait, agent_id=f"agent-{rng.randrange(120)}", talk_seconds=talk,
                           offers=1, ended_by="caller", wrap_seconds=10.0)
            disposition = Disposition.ANSWERED
        elif draw < 0.95:
            leg = QueueLeg(queue, enqueued, enqueued + wait, "abandoned")
            disposition = Disposition.QUEUE_ABANDONED
        else:
            leg = QueueLeg(queue, enqueued, enqueued + dt.timedelta(seconds=180), "overflowed", overflow="timeout")
            disposition = Disposition.OVERFLOWED
        started = CallStarted(call_id, f"u-{n}", f"PJSIP/trunk-{n}", HOTLINE, f"1380000{rng.randrange(5000):04d}",
                              "Example Co.", "zh-CN", "2026.1", "cfg-bench", at)
        ended = CallEnded(call_id, leg.left_at + second, disposition, "", "zh-CN", None, None, None, "caller",
                          events, (leg,))
        yield started, ended


async def fill(path: Path, count: int, seed: int, *, timed: bool) -> float:
    """Write `count` synthetic calls through the store; seconds from the first enqueue until
    all are committed. Timed, the records are made before the clock starts (only the store
    is measured, not the generator), which holds them all in memory."""
    records: Iterable[tuple[CallStarted, CallEnded]] = synthetic_calls(count, seed)
    if timed:
        records = list(records)
    store = await CallStore.open(path, salt="bench")
    try:
        began = time.perf_counter()
        pending = 0
        for started, ended in records:
            store.call_started(started)
            store.call_ended(ended)
            pending += 1
            if pending == 5000:  # let the writer drain, as a live controller's loop would
                pending = 0
                await asyncio.sleep(0)
        await store.flush()
        return time.perf_counter() - began
    finally:
        await store.close()


async def export(path: Path, kinds: Sequence[ExportKind], out_dir: Path, jobs: int) -> dict[str, tuple[int, float]]:
    """Each export as `ivr export KIND --format csv --output FILE --jobs JOBS` writes it."""
    store = await CallStore.open(path)
    zones = {HOTLINE: ZONE}
    scope = Scope(FIRST_DAY, FIRST_DAY + dt.timedelta(days=DAYS))
    figures: dict[str, tuple[int, float]] = {}
    try:
        for kind in kinds:
            job = Job(path, zones, MetricsSettings(), scope, kind)
            source = Source(store, Hotlines(zones), job.settings, scope)
            with open(out_dir / f"{kind}.csv", "w", encoding="utf-8", newline="") as out:
                began = time.perf_counter()
                rows = await write_export(job, source, out, jobs=jobs, scratch=out_dir)
                figures[kind] = (rows, time.perf_counter() - began)
    finally:
        await store.close()
    return figures


def staffing_loads(queues: int, intervals: int, seed: int) -> list[IntervalLoad]:
    rng = random.Random(seed)
    start = dt.datetime.combine(FIRST_DAY, dt.time(0), tzinfo=ZONE)
    return [
        IntervalLoad(f"queue-{q:02d}", start + dt.timedelta(minutes=15 * i), rng.uniform(10, 400),
                     rng.uniform(150, 330), rng.uniform(40, 240), None)
        for q in range(queues) for i in range(intervals)
    ]


def time_staffing(queues: int, intervals: int, seed: int) -> tuple[int, dict[str, float]]:
    loads = staffing_loads(queues, intervals, seed)
    figures: dict[str, float] = {}
    for model in ("erlang_c", "erlang_a"):
        policy = StaffingPolicy(model=model, target=StaffingTarget())  # type: ignore[arg-type]
        began = time.perf_counter()
        rows = plan(loads, policy)
        figures[model] = time.perf_counter() - began
        assert len(rows) == len(loads)
    return len(loads), figures


def run(args: argparse.Namespace) -> Report:
    report = Report()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="ivr-metrics-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        ingest_db = work / "ingest.sqlite"
        ingest_db.unlink(missing_ok=True)
        report.ingest_calls = args.ingest
        report.ingest_seconds = asyncio.run(fill(ingest_db, args.ingest, args.seed, timed=True))
        export_db = work / "export.sqlite"
        if not (args.reuse and export_db.is_file()):
            export_db.unlink(missing_ok=True)
            asyncio.run(fill(export_db, args.calls, args.seed + 1, timed=False))
        report.export_calls = args.calls
        with bulk_reading():  # as `ivr export` runs
            report.exports = asyncio.run(export(export_db, ("calls", "intervals", "ivr"), work, args.jobs or cpus()))
        report.staffing_rows, report.staffing = time_staffing(args.queues, args.intervals, args.seed)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return report


def print_report(report: Report, args: argparse.Namespace) -> None:
    def verdict(ok: bool) -> str:
        return "meets the target" if ok else "MISSES the target"

    print("Metrics benchmark (SQLite)")
    print(f"  machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    rate = report.ingest_rate
    print(f"Ingest: {report.ingest_calls:,} calls (9 path events, 1 queue leg each) in {report.ingest_seconds:.2f} s "
          f"= {rate:,.0f} calls/s; target {INGEST_TARGET:,.0f} calls/s: {verdict(rate >= INGEST_TARGET)}")
    scale = 1_000_000 / report.export_calls if report.export_calls else 0.0
    for kind, (rows, seconds) in report.exports.items():
        per_million = seconds * scale
        print(f"Export {kind}: {report.export_calls:,} calls -> {rows:,} rows in {seconds:.2f} s "
              f"({report.export_calls / seconds:,.0f} calls/s; {per_million:.1f} s per million calls); "
              f"target under {EXPORT_TARGET:.0f} s per million: {verdict(per_million < EXPORT_TARGET)}")
    for model, seconds in report.staffing.items():
        print(f"Staffing {model}: {args.intervals} intervals x {args.queues} queues = {report.staffing_rows:,} "
              f"recommendations in {seconds:.3f} s; target under {STAFFING_TARGET:.0f} s: "
              f"{verdict(seconds < STAFFING_TARGET)}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--ingest", type=int, default=100_000, help="calls to time the ingest with")
    parser.add_argument("--calls", type=int, default=1_000_000, help="calls to export")
    parser.add_argument("--queues", type=int, default=50)
    parser.add_argument("--intervals", type=int, default=96)
    parser.add_argument("--seed", type=int, default=400)
    parser.add_argument("--jobs", type=int, default=0, help="processes per export, as `ivr export --jobs` (0: one per CPU)")
    parser.add_argument("--keep", default=None, metavar="DIR",
                        help="work in DIR and keep its databases and CSV files (default: a temporary directory)")
    parser.add_argument("--reuse", action="store_true",
                        help="with --keep: export the calls of DIR/export.sqlite, if there, instead of making them again")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> Report:
    args = parse_args(argv)
    report = run(args)
    print_report(report, args)
    return report


if __name__ == "__main__":
    main()
