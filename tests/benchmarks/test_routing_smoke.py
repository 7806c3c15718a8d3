"""Smoke test of benchmarks/acd_routing.py: a --quick run produces every figure and finds no double
assignment among 4 controller processes racing on a real redis-server.

Timing is never asserted here: the benchmark prints its figures, the targets are for humans.
Without `redis-server` the test skips, except when CI=true: then it fails.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
import pytest

from benchload import load_benchmark
from redisserver import RedisServer, free_port, redis_server_binary

@pytest.fixture
def redis_url() -> Iterator[str]:
    """A redis-server of this test's own on a free loopback port."""
    with tempfile.TemporaryDirectory(prefix="ivr-redis-") as workdir:
        server = RedisServer(redis_server_binary(), free_port(), workdir)
        server.start()
        try:
            yield server.url
        finally:
            server.stop()


def test_quick_run_produces_figures_and_no_double_assignment(
    redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load_benchmark("acd_routing")
    report = bench.main(["--quick", "--sizes", "10,50", "--redis-url", redis_url])
    assert report.ok, (report.problems, report.double_assignments, report.contention.problems)

    # In-process decisions, per size and strategy, plus the per-cycle costs.
    assert [f.size for f in report.decisions] == [10, 50]
    for figures in report.decisions:
        assert figures.decisions == 400 and figures.assigned > 0
        assert set(figures.warm) | set(figures.cold) == set(bench.STRATEGIES)
        assert figures.all_cold(), "some decisions built their queue step's order"
        assert figures.build and figures.cycle and figures.eligibility > 0

    # Fed from Redis: the snapshot came back equal (a problem otherwise) and was timed.
    assert [f.size for f in report.redis_decisions] == [10, 50]
    for figures in report.redis_decisions:
        assert len(figures.fetch) == 3 and figures.decisions > 0

    reservations = report.reservations
    assert reservations is not None and reservations.failures == 0
    assert len(reservations.reserve) == len(reservations.pair) == 200

    contention = report.contention
    assert contention is not None and len(contention.controllers) == 4
    assert all(int(c["won"]) > 0 for c in contention.controllers), "every controller reserved something"
    assert contention.won == sum(len(c["reservations"]) for c in contention.controllers)
    assert contention.attempts == contention.won + contention.lost
    assert contention.double_assignments == [] and contention.problems == []

    printed = capsys.readouterr().out
    for heading in ("In-process decision", "Decision fed from Redis", "Redis reservation latency",
                    "Contention: 4 controller processes", "no double assignment"):
        assert heading in printed


def test_overlapping_holds_of_one_agent_are_reported() -> None:
    bench = load_benchmark("acd_routing")
    clean = [("a1", "c1", 1.0, 2.0, 0), ("a1", "c2", 2.5, 3.0, 1), ("a2", "c3", 1.0, 3.0, 2)]
    assert bench.find_double_assignments(clean) == []
    overlapping = [*clean, ("a1", "c4", 2.9, 4.0, 3)]
    (found,) = bench.find_double_assignments(overlapping)
    assert found.startswith("a1: c4 (controller 3)") and "c2" in found
