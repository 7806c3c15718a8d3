"""Smoke test of benchmarks/metrics.py: a tiny run ingests, exports and plans, and prints every
figure next to its target. Timing is never asserted: the targets are for humans."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from benchload import load_benchmark


def test_tiny_run_ingests_exports_and_plans(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bench = load_benchmark("metrics")
    report = bench.main(["--ingest", "300", "--calls", "600", "--queues", "3", "--intervals", "4",
                         "--keep", str(tmp_path)])
    assert report.ingest_calls == 300 and report.ingest_seconds > 0
    calls_rows, _ = report.exports["calls"]
    intervals_rows, _ = report.exports["intervals"]
    assert calls_rows == 600
    with open(tmp_path / "calls.csv", newline="") as exported:
        rows = list(csv.DictReader(exported))
    assert len(rows) == 600 and rows[0]["path"].startswith("welcome > choose-language > main-menu")
    # 600 calls over 10 days of 16 hours in 3 queues: more intervals than a day holds.
    assert intervals_rows > 96
    assert report.staffing_rows == 12 and set(report.staffing) == {"erlang_c", "erlang_a"}
    printed = capsys.readouterr().out
    for heading in ("Ingest: 300 calls", "Export calls: 600 calls -> 600 rows", "Export intervals: 600 calls",
                    "Staffing erlang_c: 4 intervals x 3 queues", "Staffing erlang_a", "target"):
        assert heading in printed
