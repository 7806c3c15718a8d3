"""The admin interface, server side: framing, parsing, the service against an in-process live
state with a small routing.yaml, and the Unix-socket server in this process."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ivr.admin import (
    OVERLONG,
    AdminServer,
    AdminService,
    AdminSocketError,
    AgentsRequest,
    AgentsResponse,
    ErrorResponse,
    LineFramer,
    PauseRequest,
    PresenceRequest,
    PresenceResponse,
    QueuesRequest,
    QueuesResponse,
    answer,
    decode_response,
    parse_request,
)
from routing.config import AgentConfig, PauseReason, QueueConfig, RoutingConfig, StateSettings, Step
from routing.memory_state import MemoryState
from routing.model import Activity, Caller, OfferOutcome, Presence
from routing.redis_state import RedisState
from routing.state import LiveState

T0 = 1_800_000_000.0


# --- framing -------------------------------------------------------------------------------------


def test_framer_joins_lines_split_across_reads_and_strips_crlf() -> None:
    framer = LineFramer(100)
    assert framer.feed(b'{"op": "ag') == []
    assert framer.pending == 10
    assert framer.feed(b'ents"}\r\n{"op": "queues"}\n{"op"') == [b'{"op": "agents"}', b'{"op": "queues"}']
    assert framer.pending == 5


def test_framer_reports_an_overlong_line_once_and_resumes_after_its_newline() -> None:
    framer = LineFramer(8)
    assert framer.feed(b"12345") == []
    assert framer.feed(b"67890") == [OVERLONG]
    assert framer.pending == 0  # never buffers more than the limit
    assert framer.feed(b"x" * 1000) == []
    assert framer.feed(b"tail\nok\n") == [b"ok"]
    assert framer.feed(b"123456789\n12345678\n") == [OVERLONG, b"12345678"]


# --- parsing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("line", "expected"), [
    (b"not json", "not JSON"),
    (b'{"op": "agents"', "not JSON"),
    (b"\xff\xfe\x00", "not"),
    (b"[1, 2]", "expected a JSON object"),
    (b"{}", "op missing: expected one of: agents, login, logout, pause, queues, unpause"),
    (b'{"op": "agentz"}', "did you mean 'agents'?"),
    (b'{"op": 3}', "op 3"),
    (b'{"op": "pause"}', "pause: agent: Field required"),
    (b'{"op": "pause", "agent": 1001}', "pause: agent: Input should be a valid string"),
    (b'{"op": "pause", "agent": ""}', "pause: agent:"),
    (b'{"op": "agents", "verbose": true}', "agents: verbose: Extra inputs are not permitted"),
    (b'{"op": "login", "agent": "1001", "reason": "lunch"}', "login: reason: Extra inputs are not permitted"),
    (b'{"op": "pause", "agent": "1001", "reason": ""}', "pause: reason:"),
])
def test_a_bad_request_line_is_an_error_saying_why(line: bytes, expected: str) -> None:
    parsed = parse_request(line)
    assert isinstance(parsed, ErrorResponse)
    assert expected in parsed.error


def test_good_request_lines_parse_to_typed_requests() -> None:
    assert parse_request(b'{"op": "agents"}') == AgentsRequest(op="agents")
    assert parse_request(b' {"op": "queues"} ') == QueuesRequest(op="queues")
    assert parse_request('{"op": "unpause", "agent": "1001"}'.encode()) == PresenceRequest(op="unpause", agent="1001")
    assert parse_request(b'{"op": "pause", "agent": "1001", "reason": "lunch"}') == \
        PauseRequest(op="pause", agent="1001", reason="lunch")


# --- the service against a MemoryState ---------------------------------------------------------------------


def routing_config() -> RoutingConfig:
    return RoutingConfig(
        agents={
            "a1": AgentConfig(name="Ann", endpoint="PJSIP/a1", skills={"billing": 5}, languages=("en-US",), wrap_up=30),
            "a2": AgentConfig(name="Bob", endpoint="PJSIP/a2", skills={"billing": 2, "tech": 4}, languages=("zh-CN",)),
            "a3": AgentConfig(name="Cy", endpoint="PJSIP/a3", skills={"tech": 5}),
        },
        queues={
            "billing": QueueConfig(skills={"billing": 1}, steps=(Step(skills={"billing": 4}, **{"for": 20}), Step()),
                                   max_wait=120),
            "tech": QueueConfig(skills={"tech": 3}, language=None),
        },
    )


@dataclass
class FakeAcd:
    config: RoutingConfig
    state: LiveState
    now: list[float] = field(default_factory=lambda: [T0])

    @property
    def clock(self) -> Callable[[], float]:
        return lambda: self.now[0]


@pytest.fixture
def acd() -> FakeAcd:
    fake = FakeAcd(routing_config(), MemoryState(60))
    fake.state = MemoryState(60, clock=fake.clock)
    return fake


@pytest.fixture
def service(acd: FakeAcd) -> AdminService:
    return AdminService(lambda: acd)


async def ask(service: AdminService, request: dict[str, Any]) -> Any:
    """Through the whole pure path: line -> request -> service -> response line -> response."""
    line = await answer(service, json.dumps(request).encode())
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    return decode_response(line)


async def test_agents_lists_every_configured_agent_logged_out_until_seen(service: AdminService) -> None:
    response = await ask(service, {"op": "agents"})
    assert isinstance(response, AgentsResponse) and response.at == T0
    assert [(a.id, a.name, a.endpoint, a.presence, a.available) for a in response.agents] == [
        ("a1", "Ann", "PJSIP/a1", Presence.LOGGED_OUT, False),
        ("a2", "Bob", "PJSIP/a2", Presence.LOGGED_OUT, False),
        ("a3", "Cy", "PJSIP/a3", Presence.LOGGED_OUT, False),
    ]
    assert all(a.presence_for is None and a.calls_last_hour == 0 for a in response.agents)


async def test_login_pause_unpause_logout_change_the_live_state(service: AdminService, acd: FakeAcd) -> None:
    login = await ask(service, {"op": "login", "agent": "a1"})
    assert isinstance(login, PresenceResponse)
    assert (login.before, login.agent.presence, login.changed) == (Presence.LOGGED_OUT, Presence.READY, True)
    assert (await acd.state.agent("a1")).presence is Presence.READY

    again = await ask(service, {"op": "login", "agent": "a1"})
    assert isinstance(again, PresenceResponse) and not again.changed

    acd.now[0] += 90
    paused = await ask(service, {"op": "pause", "agent": "a1"})
    assert isinstance(paused, PresenceResponse) and paused.agent.presence is Presence.PAUSED
    assert paused.agent.presence_for == 0
    acd.now[0] += 12
    listed = await ask(service, {"op": "agents"})
    assert listed.agents[0].presence is Presence.PAUSED and listed.agents[0].presence_for == 12

    unpaused = await ask(service, {"op": "unpause", "agent": "a1"})
    assert isinstance(unpaused, PresenceResponse) and unpaused.agent.presence is Presence.READY
    logout = await ask(service, {"op": "logout", "agent": "a1"})
    assert isinstance(logout, PresenceResponse) and logout.agent.presence is Presence.LOGGED_OUT
    assert (await acd.state.agent("a1")).presence is Presence.LOGGED_OUT


async def test_pause_with_a_reason_is_shown_and_a_new_reason_is_a_change(service: AdminService, acd: FakeAcd) -> None:
    await ask(service, {"op": "login", "agent": "a1"})
    lunch = await ask(service, {"op": "pause", "agent": "a1", "reason": "lunch"})
    assert isinstance(lunch, PresenceResponse) and lunch.changed
    assert (lunch.agent.presence, lunch.agent.pause_reason) == (Presence.PAUSED, "lunch")
    again = await ask(service, {"op": "pause", "agent": "a1", "reason": "lunch"})
    assert isinstance(again, PresenceResponse) and not again.changed
    acd.now[0] += 30
    training = await ask(service, {"op": "pause", "agent": "a1", "reason": "training"})
    assert isinstance(training, PresenceResponse) and training.changed and training.before is Presence.PAUSED
    shown = (await ask(service, {"op": "agents"})).agents[0]
    assert (shown.presence, shown.pause_reason, shown.presence_for) == (Presence.PAUSED, "training", 0)

    # No reason: a supervisor's pause.
    supervisor = await ask(service, {"op": "pause", "agent": "a1"})
    assert isinstance(supervisor, PresenceResponse) and supervisor.agent.pause_reason == "supervisor"
    unpaused = await ask(service, {"op": "unpause", "agent": "a1"})
    assert isinstance(unpaused, PresenceResponse) and unpaused.agent.pause_reason == ""
    assert (await acd.state.agent("a1")).pause_reason == ""


async def test_an_unknown_pause_reason_is_an_error_listing_the_known_ones(service: AdminService, acd: FakeAcd) -> None:
    await ask(service, {"op": "login", "agent": "a1"})
    refused = await ask(service, {"op": "pause", "agent": "a1", "reason": "lnch"})
    assert isinstance(refused, ErrorResponse)
    assert refused.error.startswith("unknown pause reason 'lnch'; did you mean 'lunch'?")
    assert refused.known_reasons == ["break", "lunch", "training", "meeting", "coaching", "phone", "supervisor"]
    assert (await acd.state.agent("a1")).presence is Presence.READY

    # The reasons are routing.yaml's (read on every request, as after a reload).
    acd.config = acd.config.model_copy(update={"pause_reasons": (PauseReason(code="1on1", label={"en-US": "1:1"}),)})
    refused = await ask(service, {"op": "pause", "agent": "a1", "reason": "lunch"})
    assert isinstance(refused, ErrorResponse) and refused.known_reasons == ["1on1", "phone", "supervisor"]
    paused = await ask(service, {"op": "pause", "agent": "a1", "reason": "1on1"})
    assert isinstance(paused, PresenceResponse) and paused.agent.pause_reason == "1on1"


async def test_pause_or_unpause_of_a_logged_out_agent_is_refused(service: AdminService, acd: FakeAcd) -> None:
    for op in ("pause", "unpause"):
        refused = await ask(service, {"op": op, "agent": "a2"})
        assert isinstance(refused, ErrorResponse) and refused.error == "agent a2 is logged_out: log in first"
    assert (await acd.state.agent("a2")).presence is Presence.LOGGED_OUT


async def test_unpause_clears_not_ready_after_missed_offers(service: AdminService, acd: FakeAcd) -> None:
    await acd.state.set_presence("a2", Presence.READY, T0)
    assert await acd.state.reserve("a2", "c1", T0)
    await acd.state.offer_ended("a2", "c1", OfferOutcome.NO_ANSWER, T0 + 15, misses_before_not_ready=1)
    shown = (await ask(service, {"op": "agents"})).agents[1]
    assert (shown.presence, shown.missed) == (Presence.NOT_READY, 1)
    unpaused = await ask(service, {"op": "unpause", "agent": "a2"})
    assert isinstance(unpaused, PresenceResponse)
    assert (unpaused.before, unpaused.agent.presence, unpaused.agent.missed) == (Presence.NOT_READY, Presence.READY, 0)


async def test_an_unknown_agent_is_an_error_listing_the_known_ids(service: AdminService, acd: FakeAcd) -> None:
    for op in ("login", "logout", "pause", "unpause"):
        refused = await ask(service, {"op": op, "agent": "a9"})
        assert isinstance(refused, ErrorResponse)
        assert refused.error.startswith("unknown agent 'a9'") and "a1, a2, a3" in refused.error
        assert refused.known_agents == ["a1", "a2", "a3"]
    assert "a9" not in await acd.state.agents()


async def test_agents_show_call_wrap_up_and_calls_in_the_last_hour(service: AdminService, acd: FakeAcd) -> None:
    state = acd.state
    await state.set_presence("a1", Presence.READY, T0 - 7200)
    for answered in (T0 - 3900, T0 - 600):  # the first leaves the last hour at T0 - 300
        assert await state.reserve("a1", f"c{answered}", answered - 5)
        await state.offer_ended("a1", f"c{answered}", OfferOutcome.ANSWERED, answered, misses_before_not_ready=2)
        await state.call_ended("a1", f"c{answered}", answered + 100, wrap_up=30, keep_after=0)
    await state.set_presence("a2", Presence.READY, T0 - 60)
    assert await state.reserve("a2", "c-now", T0 - 3)
    acd.now[0] = T0 - 600 + 110  # 10 s into a1's 30 s wrap-up
    a1, a2, a3 = (await ask(service, {"op": "agents"})).agents
    assert (a1.activity, a1.wrap_up_remaining, a1.available, a1.calls_last_hour) == (Activity.WRAP_UP, 20, False, 2)
    assert (a2.activity, a2.call_id, a2.available, a2.idle_for) == (Activity.RESERVED, "c-now", False, None)
    assert a3.presence is Presence.LOGGED_OUT

    acd.now[0] = T0
    a1 = (await ask(service, {"op": "agents"})).agents[0]
    # The wrap-up is over: shown idle since the call ended; the older call has left the hour.
    assert (a1.activity, a1.wrap_up_remaining, a1.available, a1.calls_last_hour) == (Activity.IDLE, 0, True, 1)
    assert a1.idle_for == 600 - 130


async def test_queues_show_callers_in_service_order_with_steps_estimates_and_agents(
        service: AdminService, acd: FakeAcd) -> None:
    state = acd.state
    for agent_id in ("a1", "a2", "a3"):
        await state.set_presence(agent_id, Presence.READY, T0 - 3600)
    # a2 answered 3 calls in the last 15 minutes and is on a call now; a3 is paused.
    for i, at in enumerate((T0 - 800, T0 - 500, T0 - 200)):
        assert await state.reserve("a2", f"old{i}", at)
        await state.offer_ended("a2", f"old{i}", OfferOutcome.ANSWERED, at, misses_before_not_ready=2)
        if i < 2:
            await state.call_ended("a2", f"old{i}", at + 60, wrap_up=0, keep_after=0)
    await state.set_presence("a3", Presence.PAUSED, T0 - 10)
    await state.enqueue(Caller("early", "billing", T0 - 45, language="zh-CN"))
    await state.enqueue(Caller("vip", "billing", T0 - 5, language="en-US", priority=10, vip=True, returning=True))
    await state.enqueue(Caller("t1", "tech", T0 - 2))
    await state.enqueue(Caller("gone", "old-queue", T0 - 1))

    response = await ask(service, {"op": "queues"})
    assert isinstance(response, QueuesResponse)
    billing, tech, old = response.queues
    assert [q.name for q in response.queues] == ["billing", "tech", "old-queue"]
    assert [(c.call_id, c.position, c.waited, c.priority, c.vip, c.returning, c.step, c.steps)
            for c in billing.waiting] == [
        ("vip", 1, 5, 10, True, True, 1, 2),
        ("early", 2, 45, 0, False, False, 2, 2),  # past the first step's 20 s
    ]
    assert billing.longest_wait == 45
    # Billing agents: a1 (billing 5) free, a2 (billing 2) on a call; a3 has no billing skill.
    assert (billing.ready, billing.busy, billing.paused) == (["a1"], ["a2"], [])
    assert (tech.ready, tech.busy, tech.paused) == ([], ["a2"], ["a3"])
    # The estimate counts only the answers of agents who could serve that caller: for "early"
    # (step 2, zh-CN: a2 only, 3 answers in 900 s) at position 2: 2 / (3 / 900) = 600 s.
    assert billing.waiting[1].estimate == 600
    assert billing.waiting[0].estimate is None  # en-US: only a1 (a2 speaks zh-CN), who answered nothing
    assert [(c.call_id, c.step) for c in old.waiting] == [("gone", None)] and not old.configured


async def test_without_an_acd_every_op_says_so() -> None:
    service = AdminService(lambda: None)
    for request in ({"op": "agents"}, {"op": "queues"}, {"op": "login", "agent": "a1"}):
        refused = await ask(service, request)
        assert isinstance(refused, ErrorResponse) and "no ACD" in refused.error and "routing.yaml" in refused.error


async def test_an_unreachable_live_state_is_an_error_not_a_crash() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    state = RedisState.offline(StateSettings(backend="redis", redis_url=f"redis://127.0.0.1:{port}/0"))
    service = AdminService(lambda: FakeAcd(routing_config(), state))
    try:
        for request in ({"op": "agents"}, {"op": "queues"}, {"op": "pause", "agent": "a1"}):
            refused = await ask(service, request)
            assert isinstance(refused, ErrorResponse)
            assert refused.error.startswith("the ACD's live state is unreachable: ")
            assert f"127.0.0.1:{port}" in refused.error
    finally:
        await state.close()


async def test_a_reload_is_seen_by_the_next_request(service: AdminService, acd: FakeAcd) -> None:
    await acd.state.set_presence("a3", Presence.READY, T0)
    config = routing_config()
    acd.config = config.model_copy(update={"agents": {k: v for k, v in config.agents.items() if k != "a3"}})
    agents = (await ask(service, {"op": "agents"})).agents
    assert [(a.id, a.configured, a.name) for a in agents] == [("a1", True, "Ann"), ("a2", True, "Bob"), ("a3", False, "")]
    refused = await ask(service, {"op": "login", "agent": "a3"})
    assert isinstance(refused, ErrorResponse) and refused.known_agents == ["a1", "a2"]


# --- the socket server -----------------------------------------------------------------------------


@pytest.fixture
async def served(tmp_path: Path, acd: FakeAcd) -> AsyncIterator[AdminServer]:
    server = AdminServer(tmp_path / "var" / "ivr.sock", AdminService(lambda: acd), max_line=512)
    await server.start()
    yield server
    await server.close()


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, path: Path) -> Client:
        return cls(*await asyncio.open_unix_connection(str(path)))

    async def ask(self, line: bytes) -> dict[str, Any]:
        self.writer.write(line + b"\n")
        await self.writer.drain()
        answer: dict[str, Any] = json.loads(await asyncio.wait_for(self.reader.readline(), 5))
        return answer

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def wait_for(condition: Callable[[], bool]) -> None:
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_the_socket_is_group_only_and_removed_on_close(tmp_path: Path, acd: FakeAcd) -> None:
    path = tmp_path / "var" / "ivr.sock"
    server = AdminServer(path, AdminService(lambda: acd))
    await server.start()
    assert stat.S_ISSOCK(path.lstat().st_mode) and stat.S_IMODE(path.stat().st_mode) == 0o660
    client = await Client.connect(path)
    assert (await client.ask(b'{"op": "agents"}'))["op"] == "agents"
    await server.close()  # ends the idle connection too
    assert await asyncio.wait_for(client.reader.read(), 5) == b""
    await client.close()
    assert not path.exists() and server.connections == 0


async def test_two_clients_are_answered_each_in_its_own_order(served: AdminServer, acd: FakeAcd) -> None:
    one, two = await Client.connect(served.path), await Client.connect(served.path)
    assert (await one.ask(b'{"op": "login", "agent": "a1"}'))["agent"]["presence"] == "ready"
    assert (await two.ask(b'{"op": "pause", "agent": "a1"}'))["agent"]["presence"] == "paused"
    # Two requests in one write, answered in order on the same connection.
    one.writer.write(b'{"op": "unpause", "agent": "a1"}\n{"op": "agents"}\n')
    first = json.loads(await one.reader.readline())
    second = json.loads(await one.reader.readline())
    assert first["op"] == "unpause" and second["agents"][0]["presence"] == "ready"
    assert (await two.ask(b'{"op": "queues"}'))["op"] == "queues"
    await one.close()
    await two.close()
    await wait_for(lambda: served.connections == 0)


async def test_a_bad_line_gets_an_error_and_the_connection_stays_usable(served: AdminServer) -> None:
    client = await Client.connect(served.path)
    assert (await client.ask(b"hello"))["error"].startswith("not JSON")
    assert "did you mean" in (await client.ask(b'{"op": "queue"}'))["error"]
    client.writer.write(b"\n\r\n")  # blank lines are ignored, not answered
    assert (await client.ask(b'{"op": "agents"}'))["op"] == "agents"
    await client.close()


async def test_an_overlong_line_is_refused_and_the_next_line_answered(served: AdminServer) -> None:
    client = await Client.connect(served.path)
    reply = await client.ask(b'{"op": "agents", "pad": "' + b"x" * 5000 + b'"}')
    assert reply == {"error": "request line longer than 512 bytes"}
    assert (await client.ask(b'{"op": "agents"}'))["op"] == "agents"
    await client.close()


async def test_a_client_that_vanishes_mid_line_does_not_stop_the_server(served: AdminServer) -> None:
    gone = await Client.connect(served.path)
    gone.writer.write(b'{"op": "age')
    await gone.writer.drain()
    await gone.close()
    # One that sends requests and leaves without reading the answers.
    rude = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    rude.connect(str(served.path))
    rude.sendall(b'{"op": "agents"}\n' * 200)
    rude.close()
    await wait_for(lambda: served.connections == 0)
    client = await Client.connect(served.path)
    assert (await client.ask(b'{"op": "agents"}'))["op"] == "agents"
    await client.close()


async def test_a_stale_socket_from_a_crashed_run_is_replaced(tmp_path: Path, acd: FakeAcd) -> None:
    path = tmp_path / "ivr.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))  # bound, never listening, then abandoned: what a crash leaves
    stale.close()
    server = AdminServer(path, AdminService(lambda: acd))
    await server.start()
    client = await Client.connect(path)
    assert (await client.ask(b'{"op": "agents"}'))["op"] == "agents"
    await client.close()
    await server.close()


async def test_a_live_socket_or_another_file_is_never_taken_over(served: AdminServer, tmp_path: Path,
                                                                 acd: FakeAcd) -> None:
    second = AdminServer(served.path, AdminService(lambda: acd))
    with pytest.raises(AdminSocketError, match="in use"):
        await second.start()
    await second.close()
    assert served.path.exists()  # the first server's socket is untouched
    client = await Client.connect(served.path)
    assert (await client.ask(b'{"op": "agents"}'))["op"] == "agents"
    await client.close()

    regular = tmp_path / "not-a-socket"
    regular.write_text("keep me")
    with pytest.raises(AdminSocketError, match="not a socket"):
        await AdminServer(regular, AdminService(lambda: acd)).start()
    assert regular.read_text() == "keep me"


async def test_a_socket_path_too_long_for_unix_sockets_is_a_clear_error(tmp_path: Path, acd: FakeAcd) -> None:
    path = tmp_path / ("d" * 120) / "ivr.sock"
    with pytest.raises(AdminSocketError, match="shorter path"):
        await AdminServer(path, AdminService(lambda: acd)).start()


async def test_close_does_not_remove_a_socket_that_replaced_ours(tmp_path: Path, acd: FakeAcd) -> None:
    path = tmp_path / "ivr.sock"
    server = AdminServer(path, AdminService(lambda: acd))
    await server.start()
    os.unlink(path)
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    other.bind(str(path))
    try:
        await server.close()
        assert path.exists()
    finally:
        other.close()


async def test_idle_connections_are_closed_so_that_they_cannot_lock_out_ivr_agents(tmp_path: Path, acd: FakeAcd) -> None:
    server = AdminServer(tmp_path / "ivr.sock", AdminService(lambda: acd), max_connections=2, idle_timeout=0.3)
    await server.start()
    try:
        idle = [await Client.connect(server.path) for _ in range(2)]
        for client in idle:  # each is told why, then closed
            assert json.loads(await asyncio.wait_for(client.reader.readline(), 5)) == {"error": "idle for 0.3 s: closed"}
            assert await asyncio.wait_for(client.reader.read(), 5) == b""
        await wait_for(lambda: server.connections == 0)
        fresh = await Client.connect(server.path)
        assert (await fresh.ask(b'{"op": "agents"}'))["op"] == "agents"
        for client in (*idle, fresh):
            await client.close()
    finally:
        await server.close()


async def test_connections_over_the_limit_are_refused_and_the_others_kept(tmp_path: Path, acd: FakeAcd) -> None:
    server = AdminServer(tmp_path / "ivr.sock", AdminService(lambda: acd), max_connections=2)
    await server.start()
    try:
        one, two = await Client.connect(server.path), await Client.connect(server.path)
        assert (await one.ask(b'{"op": "agents"}'))["op"] == "agents"
        assert (await two.ask(b'{"op": "agents"}'))["op"] == "agents"
        three = await Client.connect(server.path)
        assert json.loads(await asyncio.wait_for(three.reader.readline(), 5)) == {
            "error": "too many admin connections (2)"}
        assert await asyncio.wait_for(three.reader.read(), 5) == b""
        await three.close()
        await one.close()
        await wait_for(lambda: server.connections == 1)
        four = await Client.connect(server.path)
        assert (await four.ask(b'{"op": "queues"}'))["op"] == "queues"
        for client in (two, four):
            await client.close()
    finally:
        await server.close()
