"""Fixtures for the ACD's live state: a real `redis-server` on a loopback port, a fake clock,
and "controllers" (views of one shared state) for both backends.

Without the `redis-server` binary the Redis tests skip, except when CI=true: then they
fail, so that CI never passes without having run them.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest

from routing.config import StateSettings
from routing.memory_state import MemoryState
from routing.redis_state import RedisState
from routing.state import LiveState

REDIS_MISSING = "redis-server not found on PATH: install it (Debian/Ubuntu: apt-get install redis-server)"


def redis_server_binary() -> str:
    """The path of `redis-server`; skips the test, or fails it when CI=true, if missing."""
    path = shutil.which("redis-server")
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{REDIS_MISSING}; CI=true, so the Redis tests must run")
        pytest.skip(REDIS_MISSING)
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One `redis-server` process on 127.0.0.1, no persistence; can be killed and restarted."""

    def __init__(self, binary: str, port: int, workdir: str) -> None:
        self.binary = binary
        self.port = port
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.process is None, "already running"
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--daemonize", "no",
                "--dir", self.workdir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while not answers_ping(self.port):
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                self.process = None
                raise RuntimeError(f"redis-server on port {self.port} exited: {err}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server on port {self.port} does not answer PING")
            time.sleep(0.02)

    def stop(self) -> None:
        """Kill it (SIGKILL: a crash, not a clean shutdown)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            if self.process.stderr is not None:
                self.process.stderr.close()
            self.process = None


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
