"""Fixtures for the ACD's live state: a real `redis-server` on a loopback port, a fake clock,
and "controllers" (views of one shared state) for both backends.

Without the `redis-server` binary the Redis tests skip, except when CI=true: then they
fail, so that CI never passes without having run them.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest

from redisserver import RedisServer, free_port, redis_server_binary
from routing.config import StateSettings
from routing.memory_state import MemoryState
from routing.redis_state import RedisState
from routing.state import LiveState

@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One server for the whole session; tests keep apart by key prefix."""
    binary = redis_server_binary()
    with tempfile.TemporaryDirectory(prefix="ivr-redis-") as workdir:
        server = RedisServer(binary, free_port(), workdir)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def own_redis_server() -> Iterator[RedisServer]:
    """A server for one test, which may kill and restart it."""
    binary = redis_server_binary()
    with tempfile.TemporaryDirectory(prefix="ivr-redis-") as workdir:
        server = RedisServer(binary, free_port(), workdir)
        server.start()
        try:
            yield server
        finally:
            server.stop()


def unique_prefix() -> str:
    return f"test:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def key_prefix() -> str:
    """A key prefix of this test's own, so tests sharing a server never see each other."""
    return unique_prefix()


class FakeClock:
    """Epoch seconds that only move when told to."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@dataclass
class Controllers:
    """Controllers sharing one live state. Memory: one controller, so every `new()` is the
    same object. Redis: every `new()` is another connection (another controller) on the
    same key prefix. All share `clock`."""

    kind: str
    clock: FakeClock
    reservation_ttl: float
    redis_url: str = ""
    prefix: str = ""
    opened: list[LiveState] = field(default_factory=list)

    async def new(self) -> LiveState:
        if self.kind == "memory":
            if not self.opened:
                self.opened.append(MemoryState(self.reservation_ttl, clock=self.clock))
            return self.opened[0]
        settings = StateSettings(
            backend="redis", redis_url=self.redis_url, key_prefix=self.prefix, reservation_ttl=self.reservation_ttl
        )
        state = await RedisState.connect(settings, clock=self.clock)
        self.opened.append(state)
        return state

    async def close(self) -> None:
        for state in self.opened:
            await state.close()
        leaked = [t for t in asyncio.all_tasks() if t.get_name().startswith("redis-state-") and not t.done()]
        assert not leaked, f"background tasks left running: {leaked}"


RESERVATION_TTL = 30.0


@pytest.fixture(params=["memory", "redis"])
async def controllers(request: pytest.FixtureRequest) -> AsyncIterator[Controllers]:
    if request.param == "memory":
        ctl = Controllers("memory", FakeClock(), RESERVATION_TTL)
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        ctl = Controllers("redis", FakeClock(), RESERVATION_TTL, redis_url=server.url, prefix=unique_prefix())
    try:
        yield ctl
    finally:
        await ctl.close()


@pytest.fixture
async def state(controllers: Controllers) -> LiveState:
    return await controllers.new()
