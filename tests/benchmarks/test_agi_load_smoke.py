"""Smoke test of benchmarks/agi_load.py: a small run completes every call and produces figures.

Timing is never asserted here: the benchmark prints its figures, the target is for humans.
"""

from __future__ import annotations

from benchload import load_benchmark

def test_twenty_calls_all_complete_with_figures(capsys) -> None:  # type: ignore[no-untyped-def]
    bench = load_benchmark("agi_load")
    report = bench.main(["--calls", "20", "--concurrency", "20", "--time-scale", "0", "--ramp", "0"])
    assert report.calls == 20 and report.completed == 20, report.failures
    assert report.failures == [] and report.ok
    (only,) = report.rounds
    assert sum(only.records.values()) == 20  # one call record per call
    verbs = report.per_verb()
    assert {"ANSWER", "STREAM FILE", "SET CONTEXT"} <= {verb.split(" (")[0] for verb in verbs}
    assert verbs["ANSWER"].count == 20
    assert report.overall().count == sum(stat.count for stat in verbs.values())
    assert only.calls_per_second > 0
    seen = report.latency_per_verb()  # what the PBX side measured, one sample per command
    assert seen["ANSWER"].count == 20 and report.latency().count == report.overall().count
    printed = capsys.readouterr().out
    assert "calls/s" in printed and "Latency as Asterisk sees it" in printed and "replies at once" in printed
