"""The ACD dispatcher through a Redis outage (a real `redis-server`, killed and restarted
empty): it keeps running, tells its waiting callers to take the fallback, and when Redis
answers again it offers agents to new callers at once, with the agents it lost logged in
again as they were."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import TYPE_CHECKING

import pytest

from routing.config import RoutingConfig, StateSettings
from routing.decision import Assignment
from routing.dispatch import Dispatcher, Signal
from routing.memory_state import MemoryState
from routing.model import AgentState, Caller, Device, Presence
from routing.redis_state import RedisState

if TYPE_CHECKING:
    from redisserver import RedisServer

CONFIG = RoutingConfig.model_validate({
    "agents": {"1001": {"name": "Ann", "endpoint": "PJSIP/1001", "skills": {"billing": 3}}},
    "queues": {"billing": {"skills": {"billing": 1}, "strategy": "linear", "max_wait": 600}},
})


async def _inbox(dispatcher: Dispatcher, call_id: str, within: float) -> Assignment | Signal:
    return await asyncio.wait_for(dispatcher.waiters[call_id].inbox.get(), within)


async def test_offers_resume_after_redis_restarts_empty_with_the_agents_logged_in_again(
    own_redis_server: RedisServer, key_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = StateSettings(backend="redis", redis_url=own_redis_server.url, key_prefix=key_prefix, reservation_ttl=30)
    state = await RedisState.connect(settings, socket_timeout=0.2)
    dispatcher = Dispatcher(lambda: CONFIG, state, time.time, random.Random(1), max_idle=0.2, retry_after=1.0)
    try:
        await state.set_presence("1001", Presence.READY, time.time())
        await state.set_device("1001", Device.NOT_INUSE)
        dispatcher.start()
        await asyncio.sleep(0.3)  # a matching or two: the dispatcher has seen 1001 ready

        dispatcher.register("before")
        own_redis_server.stop()
        assert await _inbox(dispatcher, "before", 5) is Signal.STATE_DOWN  # to the dialplan's fallback
        await asyncio.sleep(1.5)  # a few failed rounds
        own_redis_server.start()  # the same port, nothing in it
        back = time.monotonic()

        await state.enqueue(Caller("after", "billing", time.time()))
        dispatcher.register("after")
        offer = await _inbox(dispatcher, "after", 5)
        resumed = time.monotonic() - back
    finally:
        await dispatcher.stop()
        await state.close()

    assert isinstance(offer, Assignment) and offer.agent_id == "1001"
    assert resumed < 2.0, f"the first offer came {resumed:.1f} s after Redis answered again"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage()[:32] for r in errors] == ["ACD: live state unreachable, ret"]  # once per outage
    assert any("without agents 1001: restored as they were (1001 ready)" in r.getMessage() for r in caplog.records)


class _SwallowsCancellation(MemoryState):
    """A live state whose read loses a cancellation, as a client library under load can."""

    async def agents(self) -> dict[str, AgentState]:
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            pass
        return await super().agents()


async def test_stop_ends_the_dispatcher_even_when_a_cancellation_is_lost() -> None:
    """`ivr serve` hung on SIGTERM when this happened: the dispatcher went on matching."""
    dispatcher = Dispatcher(lambda: CONFIG, _SwallowsCancellation(30.0), time.time, random.Random(1), max_idle=0.01)
    dispatcher.start()
    await asyncio.sleep(0.1)
    stopping = asyncio.ensure_future(dispatcher.stop())
    done, _ = await asyncio.wait({stopping}, timeout=5)  # not wait_for: its cancel would hang too
    assert stopping in done, "stop() did not end the dispatcher"
    assert not dispatcher.running
