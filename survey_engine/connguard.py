"""Bounds on a public HTTP server's connections, in front of aiohttp's protocol.

aiohttp has no header timeout and no connection cap. The feedback form shares its process
(and its file descriptors) with FastAGI and AMI, so a crowd of clients that trickle their
headers or body, or just connect and wait, must not exhaust descriptors or keep the event
loop busy. `ConnectionGuard` wraps the server's protocol factory: at most `limit`
connections at once (one more is closed on arrival), each open at most `lifetime` seconds
(a form's request takes milliseconds; a browser opens a new connection when it needs one).
Refusals and cut-offs are counted and logged at most once per LOG_EVERY seconds.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections.abc import Callable

from aiohttp import web

log = logging.getLogger(__name__)

LOG_EVERY = 10.0  # seconds between two log lines about refused or cut-off connections


def default_limit() -> int:
    """A share of the descriptor limit small enough to leave most of it to FastAGI and AMI."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(16, min(256, soft // 8))


class ConnectionGuard:
    def __init__(self, limit: int, lifetime: float) -> None:
        self.limit = limit
        self.lifetime = lifetime
        self.open = 0
        self.refused = 0  # connections closed on arrival: `limit` were open
        self.expired = 0  # connections cut off after `lifetime`
        self._logged_at = 0.0
        self._logged = (0, 0)

    def factory(self, inner: Callable[[], asyncio.BaseProtocol]) -> Callable[[], asyncio.Protocol]:
        return lambda: _Guarded(self, inner)

    def note(self) -> None:
        now = time.monotonic()
        if now - self._logged_at < LOG_EVERY:
            return
        refused, expired = self.refused - self._logged[0], self.expired - self._logged[1]
        if refused or expired:
            log.warning("web: %d connection(s) refused (%d open, the limit) and %d cut off after %g s since the last report",
                        refused, self.limit, expired, self.lifetime)
            self._logged_at, self._logged = now, (self.refused, self.expired)


class _Guarded(asyncio.Protocol):
    """The inner (aiohttp) protocol is made only for a connection let in: making one for each
    connection refused cost the event loop, FastAGI's too, up to 330 ms at a time under a
    crowd of clients reconnecting (tests/faults/test_web_attack.py)."""

    def __init__(self, guard: ConnectionGuard, inner: Callable[[], asyncio.BaseProtocol]) -> None:
        self._guard = guard
        self._make_inner = inner
        self._inner: asyncio.BaseProtocol | None = None
        self._counted = False
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        guard = self._guard
        if guard.open >= guard.limit:
            guard.refused += 1
            guard.note()
            transport.abort()  # type: ignore[attr-defined]  # a socket transport
            return
        guard.open += 1
        self._counted = True
        self._timer = asyncio.get_running_loop().call_later(guard.lifetime, self._expire, transport)
        self._inner = self._make_inner()
        self._inner.connection_made(transport)

    def _expire(self, transport: asyncio.BaseTransport) -> None:
        self._guard.expired += 1
        self._guard.note()
        transport.abort()  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._counted:
            return
        self._counted = False
        self._guard.open -= 1
        if self._timer is not None:
            self._timer.cancel()
        assert self._inner is not None
        self._inner.connection_lost(exc)

    # A refused connection is aborted at once: nothing more reaches it (no inner protocol).

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)  # type: ignore[attr-defined]

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None  # type: ignore[attr-defined]

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()


class GuardedSite:
    """An aiohttp app served behind a ConnectionGuard (`start_guarded`): its port and guard."""

    def __init__(self, runner: web.AppRunner, server: asyncio.Server, port: int, guard: ConnectionGuard) -> None:
        self._runner = runner
        self._server = server
        self.port = port
        self.guard = guard

    async def close(self) -> None:
        self._server.close()
        await self._runner.cleanup()  # ends the open connections
        await self._server.wait_closed()


async def start_guarded(app: web.Application, guard: ConnectionGuard, *, host: str, port: int, backlog: int,
                        shutdown_timeout: float = 60.0) -> GuardedSite:
    """Serve `app` on host:port (0: any free port, see `.port`) behind `guard`, with no access
    log (the form's URLs carry tokens). OSError: the port is taken or the address not this host's."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    assert runner.server is not None  # set by setup()
    try:
        server = await asyncio.get_running_loop().create_server(guard.factory(runner.server), host, port,
                                                                backlog=backlog)
    except OSError:
        await runner.cleanup()
        raise
    return GuardedSite(runner, server, int(server.sockets[0].getsockname()[1]), guard)
