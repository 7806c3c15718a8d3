"""The controller's admin interface, server side: JSON lines over a Unix-domain socket.

`ivr agents` and `ivr queues` (client: `ivr.admin_client`) ask a running `ivr serve` for the
ACD's live state and log agents in and out. One request per line, one response per line,
in order, on a connection that stays open until the client closes it:

    -> {"op": "agents"}
    <- {"op": "agents", "at": 1767225600.0, "agents": [{"id": "1001", "presence": "ready", ...}]}
    -> {"op": "queues"}
    <- {"op": "queues", "at": 1767225600.0, "queues": [{"name": "billing", "waiting": [...], ...}]}
    -> {"op": "pause", "agent": "1001"}
    <- {"op": "pause", "before": "ready", "changed": true, "agent": {"id": "1001", "presence": "paused", ...}}
    -> {"op": "pause", "agent": "1001", "reason": "lunch"}
    <- {"op": "pause", "before": "ready", "changed": true, "agent": {..., "presence": "paused", "pause_reason": "lunch"}}
    -> {"op": "pause", "agent": "9999"}
    <- {"error": "unknown agent '9999'; expected one of: 1001, 1002", "known_agents": ["1001", "1002"]}
    -> {"op": "pause", "agent": "1001", "reason": "nap"}
    <- {"error": "unknown pause reason 'nap'; expected one of: ...", "known_reasons": ["break", ...]}
    -> not json
    <- {"error": "not JSON: Expecting value (column 1)"}

Ops: `agents`, `queues`, `login`, `logout`, `pause`, `unpause` (the last four with `agent`).
`pause` takes an optional `reason`, a code of routing.yaml `pause_reasons` or a built-in one
(default `supervisor`); pausing a paused agent with another reason changes the reason.
A response is either the op's answer (it has `op`) or `{"error": ...}`; an error never
closes the connection. Blank lines are ignored; a line longer than `MAX_LINE` bytes is
answered with an error and skipped up to its end.

Layers, as for AGI: `LineFramer` splits bytes into lines (sans-IO); `parse_request` turns a
line into a typed request or an error (pure); `agent_views`/`queue_views` build the answers
from a snapshot of the live state (pure, no clock: `now` is passed in); `AdminService` takes
the snapshot from the ACD and applies presence changes; `AdminServer` is the thin asyncio
shell (socket file, connections).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Protocol, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from ivr.config.models import MAX_SOCKET_PATH
from ivr.config.problems import one_of
from routing import decision
from routing.config import SUPERVISOR_PAUSE, RoutingConfig
from routing.model import Activity, AgentState, Caller, Device, Presence
from routing.state import LiveState, StateUnavailable

log = logging.getLogger(__name__)

IDLE_TIMEOUT = 10.0  # seconds a connection may send nothing before it is closed
# Longest request line accepted, in bytes (requests are a few dozen bytes).
MAX_LINE = 4096
# Answers count calls handled in this window ("calls in the last hour").
HANDLED_WINDOW = 3600.0
SOCKET_MODE = 0o660
# sun_path is 108 bytes on Linux, including the terminating NUL.
READ_CHUNK = 65536
# Admin connections at once (supervisors' `--watch` each hold one); more are answered with
# an error and closed, so that a runaway script cannot use up the controller's descriptors.
MAX_CONNECTIONS = 64


# --- framing (sans-IO) -----------------------------------------------------------------------


class Overlong:
    """A line longer than the framer's limit (its bytes were dropped)."""

    def __repr__(self) -> str:
        return "OVERLONG"


OVERLONG = Overlong()


class LineFramer:
    """Splits a byte stream into lines: feed bytes, get complete lines (without the newline
    and a trailing CR) and `OVERLONG` for each line over `max_line` bytes, reported as soon
    as the limit is passed; the rest of that line, up to its newline, is dropped. At most
    `max_line` bytes are ever buffered. Bytes after the last newline stay `pending`; at EOF
    they are an unfinished line, which the caller drops."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        if max_line < 1:
            raise ValueError("max_line must be positive")
        self.max_line = max_line
        self._buffer = bytearray()
        self._skipping = False  # inside an over-long line, dropping up to its newline

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes | Overlong]:
        out: list[bytes | Overlong] = []
        start = 0
        while start <= len(data):
            newline = data.find(b"\n", start)
            end = len(data) if newline < 0 else newline
            if not self._skipping:
                self._buffer += data[start:end]
                if len(self._buffer) > self.max_line:
                    out.append(OVERLONG)
                    self._buffer.clear()
                    self._skipping = True
            if newline < 0:
                break
            if self._skipping:
                self._skipping = False
            else:
                out.append(bytes(self._buffer).removesuffix(b"\r"))
                self._buffer.clear()
            start = newline + 1
        return out


# --- protocol models ----------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


AgentId = Annotated[str, Field(min_length=1, max_length=200)]
PresenceOp = Literal["login", "logout", "pause", "unpause"]


class AgentsRequest(_Model):
    op: Literal["agents"]


class QueuesRequest(_Model):
    op: Literal["queues"]


class PresenceRequest(_Model):
    op: Literal["login", "logout", "unpause"]
    agent: AgentId


class PauseRequest(_Model):
    op: Literal["pause"]
    agent: AgentId
    reason: Annotated[str, Field(min_length=1, max_length=200)] | None = None  # None: `supervisor`


AnyRequest = AgentsRequest | QueuesRequest | PresenceRequest | PauseRequest
Request = Annotated[Union[AgentsRequest, QueuesRequest, PresenceRequest, PauseRequest], Field(discriminator="op")]
OPS = ("agents", "queues", "login", "logout", "pause", "unpause")
_REQUEST: TypeAdapter[AnyRequest] = TypeAdapter(Request)


class AgentView(_Model):
    id: str
    name: str  # "" for an agent in the live state but no longer in routing.yaml
    endpoint: str
    configured: bool  # in routing.yaml
    presence: Presence
    pause_reason: str = ""  # why it is paused ("" when not paused, or paused from Asterisk's side)
    # An agent whose wrap-up is over is shown idle (the ACD treats it as free).
    activity: Activity
    device: Device
    call_id: str | None
    available: bool  # the ACD may offer it a call now
    presence_for: float | None  # seconds in its presence (None: never changed)
    idle_for: float | None  # seconds since it became free, when idle (None otherwise or never)
    calls_last_hour: int
    missed: int  # consecutive offers not answered
    wrap_up_remaining: float  # seconds; 0 unless in wrap-up


class CallerView(_Model):
    call_id: str
    position: int  # 1 = next in its queue
    waited: float  # seconds
    priority: int
    vip: bool
    returning: bool
    step: int | None  # 1-based routing step; None for a queue no longer in routing.yaml
    steps: int
    estimate: float | None  # seconds still to wait (None: no recent answers to estimate from)
    language: str
    affinity_agent: str | None


class QueueView(_Model):
    name: str
    configured: bool
    waiting: list[CallerView]  # in service order
    longest_wait: float  # seconds; 0 with nobody waiting
    # Agents who could serve the queue at one of its steps (skills, groups; any language):
    ready: list[str]  # available now
    busy: list[str]  # ready, but reserved, on a call, in wrap-up or on a busy device
    paused: list[str]  # paused or not ready (missed offers)


class AgentsResponse(_Model):
    op: Literal["agents"] = "agents"
    at: float  # the ACD's epoch seconds when the snapshot was taken
    agents: list[AgentView]


class QueuesResponse(_Model):
    op: Literal["queues"] = "queues"
    at: float
    queues: list[QueueView]


class PresenceResponse(_Model):
    op: PresenceOp
    before: Presence
    changed: bool
    agent: AgentView


class ErrorResponse(_Model):
    error: str
    known_agents: list[str] | None = None
    known_reasons: list[str] | None = None  # an unknown pause reason: the ones there are


Response = Union[AgentsResponse, QueuesResponse, PresenceResponse, ErrorResponse]


def parse_request(line: bytes) -> AnyRequest | ErrorResponse:
    """One request line -> a typed request, or the error to answer with."""
    try:
        data = json.loads(line)
    except UnicodeDecodeError:
        return ErrorResponse(error="not UTF-8 text")
    except json.JSONDecodeError as exc:
        return ErrorResponse(error=f"not JSON: {exc.msg} (column {exc.colno})")
    if not isinstance(data, dict):
        return ErrorResponse(error=f'expected a JSON object such as {{"op": "agents"}}, got {type(data).__name__}')
    op = data.get("op")
    if not isinstance(op, str) or op not in OPS:
        shown = "missing" if op is None else repr(op)
        return ErrorResponse(error=f"op {shown}: {one_of(OPS, op if isinstance(op, str) else None)}")
    try:
        return _REQUEST.validate_python(data)
    except ValidationError as exc:
        return ErrorResponse(error=f"{op}: " + "; ".join(_message(err) for err in exc.errors()))


def _message(err: Mapping[str, object]) -> str:
    loc = err.get("loc")
    # The discriminated union puts the tag first (("pause", "agent")): keep the field names.
    where = ".".join(str(part) for part in loc[1:]) if isinstance(loc, tuple) else ""
    return f"{where}: {err.get('msg')}" if where else str(err.get("msg"))


def encode_response(response: Response) -> bytes:
    """One response line (compact JSON, UTF-8, newline-terminated; None fields of errors left out)."""
    exclude_none = isinstance(response, ErrorResponse)
    return response.model_dump_json(exclude_none=exclude_none).encode() + b"\n"


def decode_response(line: bytes) -> Response:
    """The client's side of `encode_response`. Raises ValueError on a line that is neither."""
    data = json.loads(line)
    if not isinstance(data, dict):
        raise ValueError("a response is a JSON object")
    if "error" in data:
        return ErrorResponse.model_validate(data)
    model: type[AgentsResponse | QueuesResponse | PresenceResponse]
    op = data.get("op")
    if op == "agents":
        model = AgentsResponse
    elif op == "queues":
        model = QueuesResponse
    elif op in ("login", "logout", "pause", "unpause"):
        model = PresenceResponse
    else:
        raise ValueError(f"unexpected response op {op!r}")
    return model.model_validate(data)


# --- views (pure) ----------------------------------------------------------------------------------


def _since(now: float, at: float) -> float | None:
    return round(max(0.0, now - at), 3) if at > 0 else None


def agent_view(agent_id: str, routing: RoutingConfig, state: AgentState, now: float) -> AgentView:
    config = routing.agents.get(agent_id)
    wrap_up_remaining = max(0.0, state.wrap_up_until - now) if state.activity is Activity.WRAP_UP else 0.0
    activity = Activity.IDLE if state.activity is Activity.WRAP_UP and wrap_up_remaining == 0 else state.activity
    return AgentView(
        id=agent_id,
        name=config.name if config is not None else "",
        endpoint=config.endpoint if config is not None else "",
        configured=config is not None,
        presence=state.presence,
        pause_reason=state.pause_reason,
        activity=activity,
        device=state.device,
        call_id=state.call_id,
        available=state.available(now),
        presence_for=_since(now, state.presence_since),
        idle_for=_since(now, state.free_since()) if activity is Activity.IDLE else None,
        calls_last_hour=state.calls_since(now - HANDLED_WINDOW),
        missed=state.missed,
        wrap_up_remaining=round(wrap_up_remaining, 3),
    )


def agent_views(routing: RoutingConfig, states: Mapping[str, AgentState], now: float) -> list[AgentView]:
    """Every agent of routing.yaml in its order (logged out if never seen), then agents the
    live state still knows but routing.yaml no longer lists, by id."""
    ids = [*routing.agents, *sorted(set(states) - set(routing.agents))]
    return [agent_view(agent_id, routing, states.get(agent_id, AgentState(agent_id)), now) for agent_id in ids]


def queue_views(
    routing: RoutingConfig, states: Mapping[str, AgentState], waiting: Sequence[Caller], now: float
) -> list[QueueView]:
    """Every ACD queue of routing.yaml in its order, then queues callers still wait in that
    routing.yaml no longer lists."""
    by_queue: dict[str, list[Caller]] = {name: [] for name in routing.queues}
    for caller in decision.service_order(waiting):
        by_queue.setdefault(caller.queue, []).append(caller)
    views = []
    for name, callers in by_queue.items():
        queue = routing.queues.get(name)
        shown = []
        for caller in callers:
            shown.append(CallerView(
                call_id=caller.call_id,
                position=decision.position(caller, waiting),
                waited=round(max(0.0, now - caller.enqueued_at), 3),
                priority=caller.priority,
                vip=caller.vip,
                returning=caller.returning,
                step=None if queue is None else decision.current_step(queue, now - caller.enqueued_at) + 1,
                steps=0 if queue is None else len(queue.steps),
                estimate=_rounded(decision.estimate_wait(caller, waiting, routing.agents, states, routing.queues, now)),
                language=caller.language,
                affinity_agent=caller.affinity_agent,
            ))
        ready: list[str] = []
        busy: list[str] = []
        paused: list[str] = []
        if queue is not None:
            anyone = Caller(call_id="", queue=name, enqueued_at=now)  # no language: any agent's
            for agent_id, agent in routing.agents.items():
                if not any(decision.can_serve(agent_id, agent, anyone, queue, step, now)
                           for step in range(len(queue.steps))):
                    continue
                state = states.get(agent_id, AgentState(agent_id))
                if state.available(now):
                    ready.append(agent_id)
                elif state.presence is Presence.READY:
                    busy.append(agent_id)
                elif state.presence in (Presence.PAUSED, Presence.NOT_READY):
                    paused.append(agent_id)
        views.append(QueueView(
            name=name,
            configured=queue is not None,
            waiting=shown,
            longest_wait=max((c.waited for c in shown), default=0.0),
            ready=ready,
            busy=busy,
            paused=paused,
        ))
    return views


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


# --- the service -----------------------------------------------------------------------------------


class AcdView(Protocol):
    """What the admin service needs of the ACD (`routing.service.Acd`)."""

    @property
    def config(self) -> RoutingConfig: ...

    @property
    def state(self) -> LiveState: ...

    @property
    def clock(self) -> Callable[[], float]: ...


# presence op -> (presences it may start from (None: any), presence it sets)
_TRANSITIONS: dict[str, tuple[frozenset[Presence] | None, Presence]] = {
    "login": (None, Presence.READY),
    "logout": (None, Presence.LOGGED_OUT),
    "pause": (frozenset({Presence.READY, Presence.PAUSED, Presence.NOT_READY}), Presence.PAUSED),
    "unpause": (frozenset({Presence.READY, Presence.PAUSED, Presence.NOT_READY}), Presence.READY),
}

NO_ACD = "no ACD in this controller: routing.yaml is missing from its configuration directory"


class AdminService:
    """Answers typed requests from the ACD's live state. `acd` is read on every request, so
    a reload (new routing.yaml) is seen at once; None: the controller has no ACD."""

    def __init__(self, acd: Callable[[], AcdView | None]) -> None:
        self._acd = acd

    async def handle(self, request: AnyRequest) -> Response:
        acd = self._acd()
        if acd is None:
            return ErrorResponse(error=NO_ACD)
        try:
            if isinstance(request, AgentsRequest):
                states = await acd.state.agents()
                now = acd.clock()
                return AgentsResponse(at=now, agents=agent_views(acd.config, states, now))
            if isinstance(request, QueuesRequest):
                states = await acd.state.agents()
                waiting = await acd.state.waiting()
                now = acd.clock()
                return QueuesResponse(at=now, queues=queue_views(acd.config, states, waiting, now))
            return await self._presence(acd, request)
        except StateUnavailable as exc:
            return ErrorResponse(error=f"the ACD's live state is unreachable: {exc}")

    async def _presence(self, acd: AcdView, request: PresenceRequest | PauseRequest) -> Response:
        routing = acd.config
        if request.agent not in routing.agents:
            known = list(routing.agents)
            return ErrorResponse(error=f"unknown agent {request.agent!r}; {one_of(known, request.agent)}",
                                 known_agents=known)
        reason = ""
        if isinstance(request, PauseRequest):
            reason = request.reason or SUPERVISOR_PAUSE
            reasons = routing.pause_reason_codes()
            if reason not in reasons:
                return ErrorResponse(error=f"unknown pause reason {reason!r}; {one_of(reasons, reason)}",
                                     known_reasons=reasons)
        allowed, target = _TRANSITIONS[request.op]
        before = await acd.state.agent(request.agent)
        if allowed is not None and before.presence not in allowed:
            return ErrorResponse(error=f"agent {request.agent} is {before.presence.value}: log in first")
        now = acd.clock()
        after = await acd.state.set_presence(request.agent, target, now, reason=reason)
        changed = (after.presence, after.pause_reason) != (before.presence, before.pause_reason)
        if changed:
            log.info("admin: agent %s %s (%s -> %s)", request.agent, request.op,
                     _shown(before), _shown(after))
        return PresenceResponse(op=request.op, before=before.presence, changed=changed,
                                agent=agent_view(request.agent, routing, after, now))


def _shown(state: AgentState) -> str:
    """paused (lunch), ready: a presence with its reason."""
    return f"{state.presence.value} ({state.pause_reason})" if state.pause_reason else state.presence.value


async def answer(service: AdminService, line: bytes) -> bytes:
    """One request line -> one response line. Never raises but for cancellation: an
    unexpected failure is logged and answered as an error."""
    request = parse_request(line)
    if isinstance(request, ErrorResponse):
        return encode_response(request)
    try:
        response = await service.handle(request)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("admin: %s failed", request.op)
        response = ErrorResponse(error=f"{request.op} failed: {type(exc).__name__}: {exc}")
    return encode_response(response)


def overlong_response(max_line: int) -> bytes:
    return encode_response(ErrorResponse(error=f"request line longer than {max_line} bytes"))


# --- the socket server --------------------------------------------------------------------------------


class AdminSocketError(Exception):
    """The admin socket cannot be set up (in use by a live controller, not a socket, too long)."""


def claim_socket_path(path: Path) -> None:
    """Make `path` free for a new socket: create its directory; remove a stale socket (one
    nobody listens on, left by a crashed run). A live socket or any other file is refused."""
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise AdminSocketError(f"{path}: longer than {MAX_SOCKET_PATH} bytes, the limit of a Unix socket path; "
                               "set admin_socket in server.yaml to a shorter path")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise AdminSocketError(f"{path} exists and is not a socket: remove it or set admin_socket elsewhere")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        log.warning("admin socket %s was left by a previous run: replaced", path)
        path.unlink(missing_ok=True)
        return
    except OSError as exc:
        raise AdminSocketError(f"{path}: cannot tell whether it is in use: {exc}") from exc
    finally:
        probe.close()
    raise AdminSocketError(f"{path} is in use: another controller serves this configuration directory")


@dataclass(frozen=True)
class _Bound:
    device: int
    inode: int


class AdminServer:
    """The admin socket of one controller: JSON lines, one task per connection."""

    def __init__(self, path: Path, service: AdminService, *, max_line: int = MAX_LINE,
                 max_connections: int = MAX_CONNECTIONS, idle_timeout: float = IDLE_TIMEOUT) -> None:
        self.path = path
        self.service = service
        self.max_line = max_line
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self._server: asyncio.AbstractServer | None = None
        self._bound: _Bound | None = None
        self._connections: set[asyncio.Task[object]] = set()

    @property
    def connections(self) -> int:
        return len(self._connections)

    async def start(self) -> None:
        claim_socket_path(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(self.path))
            # Not listening yet: nobody can connect before the mode is set.
            os.chmod(self.path, SOCKET_MODE)
            st = os.stat(self.path)
            self._bound = _Bound(st.st_dev, st.st_ino)
            sock.setblocking(False)
            self._server = await asyncio.start_unix_server(self._connection, sock=sock)
        except BaseException:
            sock.close()
            self._unlink()
            raise
        log.info("admin socket on %s", self.path)

    async def close(self) -> None:
        """Stop accepting, end every connection, remove the socket file (if still ours)."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()
        self._unlink()

    def _unlink(self) -> None:
        bound, self._bound = self._bound, None
        if bound is None:
            return
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return
        if (st.st_dev, st.st_ino) == (bound.device, bound.inode):
            self.path.unlink(missing_ok=True)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._connections) >= self.max_connections:
            log.warning("admin: %d connections already open; one more refused", len(self._connections))
            writer.write(encode_response(ErrorResponse(error=f"too many admin connections ({self.max_connections})")))
            writer.close()
            return
        self._connections.add(task)
        framer = LineFramer(self.max_line)
        try:
            while True:
                try:
                    async with asyncio.timeout(self.idle_timeout):
                        data = await reader.read(READ_CHUNK)
                except TimeoutError:
                    # An idle client must not hold one of the few connections `ivr agents` needs.
                    writer.write(encode_response(ErrorResponse(error=f"idle for {self.idle_timeout:g} s: closed")))
                    break
                if not data:
                    if framer.pending:
                        log.debug("admin client left in the middle of a line (%d bytes dropped)", framer.pending)
                    break
                for line in framer.feed(data):
                    if isinstance(line, Overlong):
                        reply = overlong_response(self.max_line)
                    elif not line.strip():
                        continue
                    else:
                        reply = await answer(self.service, line)
                    writer.write(reply)
                    await writer.drain()
        except (ConnectionError, BrokenPipeError) as exc:
            log.debug("admin client gone: %s", exc)
        except Exception:
            log.exception("admin connection failed")
        finally:
            self._connections.discard(task)
            writer.close()
