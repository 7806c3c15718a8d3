"""Redis going away under a steady call load through `ivr serve` (state.backend: redis, a
redis-server of the test's own, no persistence as deployed): killed and restarted empty,
and paused with SIGSTOP then resumed. Conversations of 0.3 to 4 s span the fault.

What a user would notice, and is asserted: offers to agents resume within 2 s of Redis
answering again; once the calls are over no caller is left in the shared queue (a ghost
blocks routing) and no agent is left reserved or on a call; no agent's phone was rung for
two calls at once (the PBX's own view of the Dials, and the queue legs written); every call
placed has exactly one call record, closed; and every caller was served somewhere (an
agent, the queue's dialplan place, voicemail), none dropped.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from conftest import Figures
from faultkit import Load, Serve, failed_calls, fault_config, log_in_agents, record_figures, sqlite_rows
from redisserver import RedisServer, answers_ping
from routing.config import StateSettings
from routing.model import Activity
from routing.redis_state import RedisState

pytestmark = pytest.mark.faults

PREFIX = "faults:"
CALLS, EVERY = 36, 0.2  # 7.2 s of arrivals, about 3 agents' worth of calls
FAULT_AT, OUTAGE = 2.5, 2.5  # seconds into the load; how long Redis is away


async def _live(redis: RedisServer) -> RedisState:
    return await RedisState.connect(StateSettings(backend="redis", redis_url=redis.url, key_prefix=PREFIX))


async def _left_behind(redis: RedisServer, within: float) -> tuple[list[str], list[str], float]:
    """Ghost callers and stuck agents once every call is over; polled for up to `within`
    seconds (a clean-up refused during the fault is retried every 2 s at most)."""
    state = await _live(redis)
    started = time.monotonic()
    try:
        while True:
            ghosts = [c.call_id for c in await state.waiting()]
            stuck = [f"{a.agent_id} {a.activity.value} {a.call_id}" for a in (await state.agents()).values()
                     if a.activity in (Activity.RESERVED, Activity.ON_CALL)]
            if not ghosts and not stuck or time.monotonic() - started > within:
                return ghosts, stuck, time.monotonic() - started
            await asyncio.sleep(0.1)
    finally:
        await state.close()


def _leg_overlaps(config: Path) -> list[str]:
    """From the queue legs written: two answered legs of one agent overlapping in time."""
    with sqlite3.connect(config / "var" / "calls.sqlite") as db:
        legs = list(db.execute("SELECT agent_id, answered_at, talk_seconds, call_id FROM queue_legs "
                               "WHERE outcome = 'answered' ORDER BY agent_id, answered_at"))
    found = []
    for before, after in zip(legs, legs[1:]):
        if before[0] == after[0]:
            from datetime import datetime

            ended = datetime.fromisoformat(before[1]).timestamp() + before[2]
            if datetime.fromisoformat(after[1]).timestamp() < ended - 0.05:  # 50 ms: clock rounding
                found.append(f"{before[0]}: {before[3]} and {after[3]}")
    return found


async def _through_a_fault(tmp_path: Path, redis: RedisServer, figures: Figures,
                           fault: Callable[[], None], recover: Callable[[], None]) -> None:
    config = fault_config(tmp_path, redis_url=redis.url, key_prefix=PREFIX)
    served = await Serve(config).started()
    try:
        await log_in_agents(redis.url, PREFIX)

        load = Load(served.port, CALLS, EVERY)
        load.start()
        await asyncio.sleep(FAULT_AT)
        rung_before = len(load.observer.rings)
        faulted = time.monotonic()
        fault()
        await asyncio.sleep(OUTAGE)
        recover()
        while not answers_ping(redis.port):
            await asyncio.sleep(0.01)
        back = time.monotonic()
        results = await load.finished()
        resumed = load.observer.first_ring_after(back)
        ghosts, stuck, settled = await _left_behind(redis, within=6.0)
        code = await served.stop()
    finally:
        served.kill()
    output = served.output()
    lost, duplicated, open_rows = record_figures(results, sqlite_rows(config))
    doubles = load.observer.double_rings()
    leg_doubles = _leg_overlaps(config)

    spanning = sum(1 for r in load.observer.rings if r.start < faulted and (r.end is None or r.end > back))
    answered = sum(1 for r in results if r.hung_up_by == "caller")
    fallback = sum(1 for r in results if r.location is not None and r.location[0] == "ivr-queue")
    figures(f"{len(results)} calls: {answered} talked to an agent, {fallback} to the dialplan queue during the fault, "
            f"{len(results) - answered - fallback} to voicemail; {rung_before} Dials before the fault, "
            f"{len(load.observer.rings)} in all, {spanning} conversations spanning the whole fault")
    figures(f"first offer {resumed * 1000:.0f} ms after Redis answered again" if resumed is not None
            else "no offer after Redis answered again")
    figures(f"ghost callers {len(ghosts)}, stuck agents {len(stuck)} (settled {settled:.1f} s after the last call)")
    figures(f"double assignments {len(doubles)} (Dials), {len(leg_doubles)} (queue legs); "
            f"records lost {lost}, duplicated {duplicated}, left open {open_rows}")

    assert spanning >= 1  # an agent still talking when Redis came back: must not be offered another call
    assert failed_calls(results) == []
    assert resumed is not None and resumed < 2.0, f"first offer {resumed} s after Redis came back"
    assert ghosts == [] and stuck == [], (ghosts, stuck)
    assert doubles == [] and leg_doubles == [], (doubles, leg_doubles)
    assert (lost, duplicated, open_rows) == (0, 0, 0)
    assert code == 0 and "Traceback" not in output, output[-3000:]
    assert "ACD dispatcher stopped" not in output


async def test_redis_killed_and_restarted_empty_mid_calls(tmp_path: Path, redis: RedisServer, figures: Figures) -> None:
    await _through_a_fault(tmp_path, redis, figures, redis.stop, redis.start)


async def test_redis_paused_and_resumed_mid_calls(tmp_path: Path, redis: RedisServer, figures: Figures) -> None:
    def pause() -> None:
        assert redis.process is not None
        redis.process.send_signal(signal.SIGSTOP)

    def resume() -> None:
        assert redis.process is not None
        redis.process.send_signal(signal.SIGCONT)

    await _through_a_fault(tmp_path, redis, figures, pause, resume)
