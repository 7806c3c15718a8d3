"""The admin interface, client side: what `ivr agents` and `ivr queues` run.

A blocking client (the CLI is synchronous) for the JSON-lines protocol of `ivr.admin`, the
socket path from the configuration directory, and the rich tables a supervisor reads.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ivr.admin import (
    AgentsResponse,
    AgentView,
    ErrorResponse,
    PresenceOp,
    PresenceResponse,
    QueuesResponse,
    QueueView,
    Response,
    decode_response,
)
from ivr.config.models import ServerConfig
from ivr.config.problems import Problem

# Longest response line read, in bytes (10,000 agents are about 3 MB).
MAX_RESPONSE = 64 * 1024 * 1024


class AdminUnavailable(Exception):
    """No controller answers on the admin socket."""


class AdminRefused(Exception):
    """The controller answered with an error."""

    def __init__(self, response: ErrorResponse) -> None:
        super().__init__(response.error)
        self.response = response


class ConfigProblems(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def server_settings(config_dir: Path) -> ServerConfig:
    """server.yaml alone (the other files need not be valid to talk to a running controller)."""
    from ivr.config.typecheck import validate_document
    from ivr.config.yamlsource import parse

    path = config_dir / "server.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ServerConfig()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigProblems([Problem.whole_file("server.yaml", f"cannot read: {exc}")]) from exc
    doc = parse(text, "server.yaml")
    problems = [Problem.at(e.mark, e.path, e.message) for e in doc.errors]
    settings: ServerConfig | None = None
    if not problems:
        settings, problems = validate_document(ServerConfig, doc, empty={})
    if settings is None or problems:
        raise ConfigProblems(problems)
    return settings


def socket_path(config_dir: Path) -> Path:
    """The admin socket of the controller serving `config_dir`."""
    path = server_settings(config_dir).admin_socket
    return path if path.is_absolute() else config_dir / path


class AdminClient:
    """One connection to a controller's admin socket; requests are answered in order."""

    def __init__(self, path: Path, *, timeout: float = 10.0) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        self._buffer = bytearray()
        try:
            self._sock.connect(str(path))
        except FileNotFoundError:
            self._sock.close()
            raise AdminUnavailable(f"no running controller: {path} does not exist") from None
        except PermissionError:
            self._sock.close()
            raise AdminUnavailable(f"cannot connect to {path}: permission denied (the socket is mode 0660: "
                                   "run as the controller's user or a member of its group)") from None
        except ConnectionRefusedError:
            self._sock.close()
            raise AdminUnavailable(f"no running controller on {path} (connection refused)") from None
        except OSError as exc:
            self._sock.close()
            raise AdminUnavailable(f"no running controller on {path} ({exc.strerror or exc})") from None

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()

    def request(self, request: dict[str, str]) -> Response:
        """Send one request, read its response; an error response raises `AdminRefused`."""
        try:
            self._sock.sendall(json.dumps(request).encode() + b"\n")
            line = self._read_line()
        except OSError as exc:
            raise AdminUnavailable(f"the controller on {self.path} went away ({exc.strerror or exc})") from None
        try:
            response = decode_response(line)
        except ValueError as exc:
            raise AdminUnavailable(f"the controller on {self.path} answered garbage: {exc}") from None
        if isinstance(response, ErrorResponse):
            raise AdminRefused(response)
        return response

    def _read_line(self) -> bytes:
        while True:
            newline = self._buffer.find(b"\n")
            if newline >= 0:
                line = bytes(self._buffer[:newline])
                del self._buffer[: newline + 1]
                return line
            if len(self._buffer) > MAX_RESPONSE:
                raise OSError(f"response longer than {MAX_RESPONSE} bytes")
            data = self._sock.recv(65536)
            if not data:
                raise OSError("connection closed")
            self._buffer += data

    def agents(self) -> AgentsResponse:
        response = self.request({"op": "agents"})
        assert isinstance(response, AgentsResponse)
        return response

    def queues(self) -> QueuesResponse:
        response = self.request({"op": "queues"})
        assert isinstance(response, QueuesResponse)
        return response

    def presence(self, op: PresenceOp, agent_id: str, *, reason: str | None = None) -> PresenceResponse:
        """`reason`: a pause's (None: the controller's default, `supervisor`)."""
        request = {"op": op, "agent": agent_id}
        if reason is not None:
            request["reason"] = reason
        response = self.request(request)
        assert isinstance(response, PresenceResponse)
        return response


# --- rendering ------------------------------------------------------------------------------------


PRESENCE_STYLE = {"ready": "green", "paused": "yellow", "not_ready": "red", "logged_out": "dim"}
ACTIVITY_STYLE = {"idle": "green", "reserved": "magenta", "on_call": "cyan", "wrap_up": "blue"}


def duration(seconds: float | None) -> str:
    """12s, 4m05s, 2h03m; "-" for unknown."""
    if seconds is None:
        return "-"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def agents_table(response: AgentsResponse) -> Table:
    table = Table(title=f"Agents ({sum(a.presence != 'logged_out' for a in response.agents)} logged in)",
                  title_justify="left")
    for column in ("id", "name", "endpoint", "presence", "for", "activity", "device", "call",
                   "calls/1h", "missed", "wrap-up"):
        table.add_column(column, justify="right" if column in ("for", "calls/1h", "missed", "wrap-up") else "left")
    for agent in response.agents:
        table.add_row(*_agent_cells(agent))
    return table


def _agent_cells(agent: AgentView) -> list[RenderableType]:
    activity = agent.activity.value
    if agent.activity == "idle" and agent.presence == "logged_out":
        activity = ""
    elif agent.activity == "idle" and agent.idle_for is not None and agent.presence == "ready":
        activity = f"idle {duration(agent.idle_for)}"
    return [
        agent.id,
        agent.name or Text("(not in routing.yaml)", style="dim"),
        agent.endpoint,
        _presence_cell(agent),
        duration(agent.presence_for),
        Text(activity, style=ACTIVITY_STYLE.get(agent.activity.value, "")),
        agent.device.value,
        agent.call_id or "",
        str(agent.calls_last_hour),
        str(agent.missed) if agent.missed else "",
        duration(agent.wrap_up_remaining) if agent.wrap_up_remaining > 0 else "",
    ]


def _shown_presence(agent: AgentView) -> str:
    return f"{agent.presence.value} ({agent.pause_reason})" if agent.pause_reason else agent.presence.value


def _presence_cell(agent: AgentView) -> Text:
    return Text(_shown_presence(agent), style=PRESENCE_STYLE.get(agent.presence.value, ""))


def queues_view(response: QueuesResponse) -> RenderableType:
    summary = Table(title="ACD queues", title_justify="left")
    for column in ("queue", "waiting", "longest", "ready", "busy", "paused"):
        summary.add_column(column, justify="right" if column in ("waiting", "longest") else "left")
    for queue in response.queues:
        summary.add_row(
            queue.name if queue.configured else Text(f"{queue.name} (not in routing.yaml)", style="dim"),
            str(len(queue.waiting)),
            duration(queue.longest_wait) if queue.waiting else "",
            Text(", ".join(queue.ready), style="green"),
            ", ".join(queue.busy),
            Text(", ".join(queue.paused), style="yellow"),
        )
    parts: list[RenderableType] = [summary]
    callers = [queue for queue in response.queues if queue.waiting]
    if callers:
        parts.append(_callers_table(callers))
    return Group(*parts)


def _callers_table(queues: list[QueueView]) -> Table:
    table = Table(title="Waiting callers", title_justify="left")
    for column in ("queue", "#", "call", "waited", "priority", "flags", "step", "estimate", "language"):
        table.add_column(column, justify="right" if column in ("#", "waited", "priority", "estimate") else "left")
    for queue in queues:
        for caller in queue.waiting:
            flags = " ".join(flag for flag, on in (("vip", caller.vip), ("returning", caller.returning),
                                                   (f"affinity={caller.affinity_agent}", caller.affinity_agent))
                             if on)
            table.add_row(
                queue.name, str(caller.position), caller.call_id, duration(caller.waited), str(caller.priority),
                flags, "-" if caller.step is None else f"{caller.step}/{caller.steps}",
                duration(caller.estimate), caller.language,
            )
    return table


def presence_line(response: PresenceResponse) -> str:
    agent = response.agent
    who = f"{agent.id} ({agent.name})" if agent.name else agent.id
    if not response.changed:
        return f"{who}: already {_shown_presence(agent)}"
    return f"{who}: {response.before.value} -> {_shown_presence(agent)}"
