"""An export that several processes write is the file one process writes, byte for byte, on
SQLite and on PostgreSQL: the planner cannot tell how it was made. The hand-made calls are cut
into parts (the cut-off for going parallel set to 0), which must really be several.

PostgreSQL: a database of this module's own (tests/pgkit.py); when the server cannot be
reached the test skips, except under CI=true, where it fails."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import pgkit
from exportkit import write_handcalls
from handcalls import H1, H2
from ivr.config.models import MetricsSettings
from ivr.metrics.exporting import Job, plan, split_days, write_export
from ivr.metrics.model import ExportKind
from ivr.metrics.source import Hotlines, Scope, Source
from ivr.records.store import CallStore
from survey_engine.store import SurveyStore

ZONES = {H1: ZoneInfo("Asia/Shanghai"), H2: ZoneInfo("Europe/London")}
SETTINGS = MetricsSettings(wait_percentiles=[50, 90])
SCOPE = Scope(dt.date(2026, 11, 25), dt.date(2026, 11, 26))
KINDS: tuple[ExportKind, ...] = ("calls", "legs", "intervals", "ivr")


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    url = pgkit.create_database()
    yield url
    pgkit.drop_database(url)


async def export_both_ways(target: Path | str, kind: ExportKind, fmt: str, scratch: Path) -> tuple[str, str, int]:
    """(one process's file, several processes' file, how many parts there were)."""
    store = await CallStore.open(target)
    try:
        job = Job(target, ZONES, SETTINGS, SCOPE, kind, fmt)
        files: list[str] = []
        read: list[list[int]] = [[], []]
        for jobs, counts in ((1, read[0]), (3, read[1])):
            source = Source(store, Hotlines(ZONES), SETTINGS, SCOPE, surveys=SurveyStore(store.engine),
                            on_read=counts.append)
            out = io.StringIO()
            rows = await write_export(job, source, out, jobs=jobs, scratch=scratch, parallel_from=0)
            assert rows > 0
            files.append(out.getvalue())
        # The progress bar is told of every row read either way (interval parts read a few
        # hours before their first day: some twice).
        assert sum(read[1]) == sum(read[0]) > 0 if kind != "intervals" else sum(read[1]) >= sum(read[0]) > 0
        parts = await plan(job, Source(store, Hotlines(ZONES), SETTINGS, SCOPE), 3, scratch)
        return files[0], files[1], len(parts)
    finally:
        await store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_parallel_exports_are_byte_identical(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    target: Path | str = tmp_path / "calls.sqlite" if backend == "sqlite" else request.getfixturevalue("pg_url")
    asyncio.run(write_handcalls(target))
    for kind in KINDS:
        for fmt in ("csv", "jsonl"):
            alone, together, parts = asyncio.run(export_both_ways(target, kind, fmt, tmp_path))
            assert parts >= 2, (kind, fmt)
            assert alone.count("\n") > 2, (kind, fmt)
            assert together == alone, (kind, fmt)
    assert not list(tmp_path.glob("ivr-export-*")), "part files are removed"


def test_days_are_cut_before_each_first_day_inside_the_scope() -> None:
    day = dt.date(2026, 11, 25)
    week = Scope(day, day + dt.timedelta(days=6), queue="billing")
    assert split_days(week, [day + dt.timedelta(days=3), day, day + dt.timedelta(days=9)]) == [
        Scope(day, day + dt.timedelta(days=2), queue="billing"),
        Scope(day + dt.timedelta(days=3), day + dt.timedelta(days=6), queue="billing"),
    ]
    assert split_days(Scope(), [day, day]) == [Scope(None, day - dt.timedelta(days=1)), Scope(day, None)]
