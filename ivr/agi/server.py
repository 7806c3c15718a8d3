"""Asyncio FastAGI server: accepts Asterisk's connections and runs one handler per script.

A boundary around every session: garbage, a half-sent environment, a peer that vanishes
or a failing handler closes that session only and is logged; the server keeps serving.
Scripts are routed by the path of the AGI URL (`agi://host:4573/ivr?...` -> `ivr`)
through an explicit registry that refuses duplicates at start-up.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from ivr.agi.codec import NEED_DATA, AgiParser, ConnectionClosed, Environment
from ivr.agi.errors import AgiError, AgiHangup, AgiProtocolError
from ivr.agi.session import AgiSession, TurnaroundHook

log = logging.getLogger(__name__)

Handler = Callable[[AgiSession], Awaitable[None]]


class Router:
    """Explicit map of FastAGI script names to handlers."""

    def __init__(self) -> None:
        self._routes: dict[str, Handler] = {}
        self._interrupted_on_stop: set[str] = set()

    def add(self, script: str, handler: Handler, *, interrupt_on_stop: bool = False) -> None:
        """`interrupt_on_stop`: a stopping server cancels this script's sessions at once (the
        handler hands its caller over) instead of letting them finish within the grace time."""
        name = script.strip("/")
        if name in self._routes:
            raise ValueError(f"FastAGI script {name!r} is registered twice")
        self._routes[name] = handler
        if interrupt_on_stop:
            self._interrupted_on_stop.add(name)

    def resolve(self, script: str) -> Handler | None:
        return self._routes.get(script.strip("/"))

    def interrupted_on_stop(self, script: str) -> bool:
        return script.strip("/") in self._interrupted_on_stop

    @property
    def scripts(self) -> list[str]:
        return sorted(self._routes)


class HostAllowList:
    """FastAGI has no authentication: only these addresses or networks may connect."""

    def __init__(self, entries: Iterable[str]) -> None:
        self._networks = [ipaddress.ip_network(entry, strict=False) for entry in entries]

    def allows(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self._networks)


@dataclass(frozen=True)
class ServerLimits:
    max_sessions: int = 2000
    max_line: int = 8192
    idle_timeout: float = 30.0
    media_timeout: float = 600.0


@dataclass
class ServerStats:
    accepted: int = 0
    refused_host: int = 0
    refused_busy: int = 0
    protocol_errors: int = 0
    handler_errors: int = 0
    completed: int = 0


class FastAgiServer:
    def __init__(
        self,
        router: Router,
        *,
        host: str = "127.0.0.1",
        port: int = 4573,
        allow: Iterable[str] = ("127.0.0.1", "::1"),
        limits: ServerLimits = ServerLimits(),
        on_turnaround: TurnaroundHook | None = None,
    ) -> None:
        self.router = router
        self.host = host
        self.port = port
        self.allow = HostAllowList(allow)
        self.limits = limits
        self.stats = ServerStats()
        self._on_turnaround = on_turnaround
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()
        self._interruptible: set[asyncio.Task[None]] = set()  # sessions cancelled at once on stop

    @property
    def active_sessions(self) -> int:
        return len(self._sessions)

    @property
    def bound_port(self) -> int:
        if self._server is None or not self._server.sockets:
            raise RuntimeError("server is not started")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self.host, self.port, limit=self.limits.max_line * 2, backlog=1024
        )
        log.info("FastAGI listening on %s:%d", self.host, self.bound_port)

    async def close(self, grace: float = 5.0) -> None:
        """Stop accepting (Asterisk's next AGI() fails: the dialplan's fallback); cancel the
        sessions of scripts interrupted on stop (their handlers hand the callers over), give
        the others `grace` seconds, then cancel them."""
        if self._server is not None:
            self._server.close()
        for task in self._interruptible:
            task.cancel()
        pending = set(self._sessions)
        if pending:
            _, still = await asyncio.wait(pending, timeout=grace)
            for task in still:
                task.cancel()
            if still:
                await asyncio.wait(still)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        peer = writer.get_extra_info("peername")
        host = str(peer[0]) if peer else ""
        if not self.allow.allows(host):
            self.stats.refused_host += 1
            log.warning("FastAGI connection from %s refused: not in the allow-list", host)
            await _close(writer)
            return
        if len(self._sessions) >= self.limits.max_sessions:
            # Closing at once makes Asterisk set AGISTATUS=FAILURE, and the dialplan's
            # fallback sends the caller to a queue instead of waiting on us.
            self.stats.refused_busy += 1
            log.error("FastAGI connection from %s refused: %d sessions active", host, len(self._sessions))
            await _close(writer)
            return
        self._sessions.add(task)
        self.stats.accepted += 1
        try:
            await self._serve(reader, writer, host)
        except asyncio.CancelledError:
            # The server is stopping. The task ends normally: asyncio 3.11's stream callback
            # would log a cancelled connection task as "Exception in callback" with a traceback.
            log.debug("FastAGI session from %s ended: the server is stopping", host)
        finally:
            self._sessions.discard(task)
            await _close(writer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        parser = AgiParser(max_line=self.limits.max_line)
        try:
            env = await asyncio.wait_for(_read_environment(reader, parser), self.limits.idle_timeout)
        except TimeoutError:
            self.stats.protocol_errors += 1
            log.warning("FastAGI peer %s sent no complete environment within %gs", host, self.limits.idle_timeout)
            return
        except AgiError as exc:
            self.stats.protocol_errors += 1
            log.warning("FastAGI peer %s: %s", host, exc)
            return
        handler = self.router.resolve(env.script_path)
        task = asyncio.current_task()
        if task is not None and self.router.interrupted_on_stop(env.script_path):
            self._interruptible.add(task)
            task.add_done_callback(self._interruptible.discard)
        if handler is None:
            self.stats.protocol_errors += 1
            log.error(
                "FastAGI script %r requested by %s (%s) has no handler; known: %s",
                env.script_path, env.channel, host, ", ".join(self.router.scripts),
            )
            return
        session = AgiSession(
            reader,
            writer,
            parser,
            env,
            idle_timeout=self.limits.idle_timeout,
            media_timeout=self.limits.media_timeout,
            on_turnaround=self._on_turnaround,
        )
        try:
            await handler(session)
            self.stats.completed += 1
        except AgiHangup:
            # Handlers catch hang-ups themselves; one escaping is still a normal end.
            self.stats.completed += 1
        except AgiError as exc:
            self.stats.protocol_errors += 1
            log.warning("FastAGI session %s (%s): %s", env.uniqueid, env.channel, exc)
        except Exception:
            self.stats.handler_errors += 1
            log.exception("FastAGI handler for %r failed on %s", env.script_path, env.uniqueid)
        finally:
            await session.close()


async def _read_environment(reader: asyncio.StreamReader, parser: AgiParser) -> Environment:
    while True:
        event = parser.next_event()
        if isinstance(event, Environment):
            return event
        if isinstance(event, ConnectionClosed):
            raise AgiProtocolError(
                "connection closed before the AGI environment ended"
                + (f" ({len(event.partial)} bytes pending)" if event.partial else "")
            )
        if event is NEED_DATA:
            try:
                data = await reader.read(65536)
            except ConnectionError:
                data = b""
            parser.receive_data(data)
            continue
        raise AgiProtocolError(f"unexpected {event!r} before the environment")


async def _close(writer: asyncio.StreamWriter) -> None:
    if writer.is_closing():
        return
    writer.close()
    try:
        await writer.wait_closed()
    except (ConnectionError, OSError):
        pass
