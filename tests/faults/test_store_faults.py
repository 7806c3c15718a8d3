"""PostgreSQL unreachable under a steady call load through `ivr serve`: the call store's
connection goes through a TCP proxy the test cuts (every connection reset, the port closed)
and restores 3 s later. Callers must not notice: every call is served as before (agents,
voicemail) and answered promptly; the records written meanwhile are spooled and arrive once
the database answers, each call exactly once, closed."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

import pgkit
from conftest import Figures
from faultkit import Load, Serve, failed_calls, fault_config, log_in_agents, record_figures
from redisserver import RedisServer
from tcpproxy import TcpProxy

pytestmark = pytest.mark.faults

CALLS, EVERY = 30, 0.2
CUT_AT, OUTAGE = 1.5, 3.0


@pytest.fixture
def pg_url() -> Iterator[str]:
    url = pgkit.create_database()
    try:
        yield url
    finally:
        pgkit.drop_database(url)


def _port_of(url: str) -> int:
    return int(url.split("://", 1)[1].rpartition("@")[2].split("/")[0].split(":")[1])


def _through(url: str, port: int) -> str:
    scheme, rest = url.split("://", 1)
    credentials, _, location = rest.rpartition("@")
    return f"{scheme}://{credentials}@127.0.0.1:{port}/{location.split('/', 1)[1]}"


async def _rows(url: str) -> list[tuple[str, str | None]]:
    connection = await asyncpg.connect(url, timeout=5)
    try:
        return [(r["uniqueid"], r["disposition"]) for r in await connection.fetch("SELECT uniqueid, disposition FROM calls")]
    finally:
        await connection.close()


def _logged_at(log: str, text: str) -> float:
    """Epoch seconds of the first log line holding `text` (the controller logs local time)."""
    line = next((line for line in log.splitlines() if text in line), None)
    assert line is not None, f"{text!r} not logged:\n{log[-3000:]}"
    return dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


async def test_postgresql_cut_off_mid_calls_loses_and_duplicates_no_record(
    tmp_path: Path, pg_url: str, redis: RedisServer, figures: Figures
) -> None:
    proxy = TcpProxy(_port_of(pg_url))
    await proxy.start()
    config = fault_config(tmp_path, redis_url=redis.url, store_url=_through(pg_url, proxy.port))
    served = await Serve(config).started()
    try:
        await log_in_agents(redis.url)

        load = Load(served.port, CALLS, EVERY)
        load.start()
        await asyncio.sleep(CUT_AT)
        before = len(load.observer.rings)
        await proxy.cut()
        cut = time.monotonic()
        await asyncio.sleep(OUTAGE)
        await proxy.restore()
        back, back_wall = time.monotonic(), time.time()
        results = await load.finished()
        replayed = _logged_at(served.output(), "answers again") - back_wall
        code = await served.stop()
    finally:
        served.kill()
        await proxy.close()
    output = served.output()
    rows = await _rows(pg_url)
    lost, duplicated, open_rows = record_figures(results, rows)
    during = [r for r in results if r.turnarounds and cut <= load.observer.started[r.uniqueid] <= back]
    slowest = max((r.turnarounds[0][1] for r in during), default=0.0)

    answered = sum(1 for r in results if r.hung_up_by == "caller")
    figures(f"{len(results)} calls, {len(during)} placed while PostgreSQL was cut off for {OUTAGE:.0f} s: "
            f"{answered} talked to an agent, {len(failed_calls(results))} failed; "
            f"{len(load.observer.rings) - before} agents rung during and after the cut")
    figures(f"first AGI command of a call placed during the cut: within {slowest * 1000:.0f} ms")
    figures(f"records: the spool written {replayed:.1f} s after PostgreSQL answered again; {len(rows)} rows, "
            f"lost {lost}, duplicated {duplicated}, left open {open_rows}")

    assert failed_calls(results) == [] and during
    assert len(load.observer.rings) > before  # agents went on being offered calls
    assert (lost, duplicated, open_rows) == (0, 0, 0)
    # The store retries 0.5 s after a failure, doubling: after a 3 s outage the spool is written within 5 s.
    assert 0 < replayed < 5.0, served.output()[-3000:]
    assert code == 0 and "Traceback" not in output, output[-3000:]
    assert "unavailable" in output and "answers again" in output  # the outage was real and seen

