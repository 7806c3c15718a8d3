"""Tier 2: agents' live state from AMI, through the real controller and the AMI peer.

The controller's AMI link logs in to the peer (`ivr.pbxsim.ami.AmiPeer`), which lists and
emits device states as Asterisk 22 does; callers reach the billing queue through the
FastAGI peer. Each test states which agent's phone rings (the `EXEC Dial` target) or that
none does, and what the live state is left with.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from callkit import OPEN, TO_BILLING, eventually

from amiconfig import config_with_ami

from ivr.ami.client import device_states
from ivr.app import Controller, ControllerOptions
from ivr.pbxsim import Agent, CallerScript, CallResult, SimCall, SoundLibrary, place_call
from ivr.pbxsim.ami import AmiCallEvents, AmiPeer
from ivr.pbxsim.caller import AgentBehaviour
from ivr.records.model import CallRow
from panoramisk.message import Message
from routing.ami_agents import endpoint_key, endpoint_of_channel
from routing.config import RoutingConfig
from routing.memory_state import MemoryState
from routing.model import Activity, Device, OfferOutcome, Presence

REPO = Path(__file__).resolve().parents[2]
HOTLINE = "4008001234"


def routing(max_wait: float = 1.0) -> RoutingConfig:
    """Three billing agents on PJSIP/1001..1003; one queue that overflows to voicemail on timeout."""
    return RoutingConfig.model_validate({
        "agents": {
            agent_id: {"name": agent_id, "endpoint": f"PJSIP/{agent_id}", "skills": {"billing": 3}, "wrap_up": 0}
            for agent_id in ("1001", "1002", "1003")
        },
        "queues": {
            "billing": {
                "skills": {"billing": 1}, "strategy": "linear", "max_wait": max_wait, "ring_timeout": 5,
                "announce": {"first_after": 60, "every": 60}, "affinity": {"enabled": False},
                "overflow": {"timeout": {"voicemail": "400"}, "no_agents": {"voicemail": "400"}},
            },
        },
    })


class Rig:
    def __init__(self, controller: Controller, peer: AmiPeer, state: MemoryState) -> None:
        self.controller = controller
        self.peer = peer
        self.state = state
        assert controller.server is not None and controller.acd is not None and controller.ami_agents is not None
        self.acd = controller.acd
        self.ami = controller.ami_agents
        self.sounds = SoundLibrary([(controller.config.server.prompts.asterisk_dir, REPO / "prompts" / "sounds")])

    async def call(self, agents: dict[str, AgentBehaviour] | None = None) -> CallResult:
        assert self.controller.server is not None
        call = SimCall(CallerScript(TO_BILLING), extension=HOTLINE, script=f"ivr?hotline={HOTLINE}",
                       agents=agents or {})
        return await place_call("127.0.0.1", self.controller.server.bound_port, call, sounds=self.sounds,
                                observer=AmiCallEvents(self.peer))

    async def ready(self, *agent_ids: str) -> None:
        for agent_id in agent_ids:
            await self.state.set_presence(agent_id, Presence.READY, self.acd.clock())

    async def device(self, agent_id: str) -> Device:
        return (await self.state.agent(agent_id)).device

    async def synced(self, resyncs: int = 1) -> None:
        await eventually(lambda: self.ami.resyncs >= resyncs and not self.acd.dispatcher.paused)

    async def row(self, result: CallResult) -> CallRow:
        store = self.controller.store
        assert store is not None
        await store.flush()
        async for row in store.iter_calls():
            if row.uniqueid == result.uniqueid:
                return row
        raise AssertionError("no call record")


def dialed(result: CallResult) -> list[str]:
    """Dial's target, ring timeout and options, without the b() handler (the SIP headers)."""
    return [line.split()[2].partition("b(ivr-agent-headers^")[0] for direction, line in result.transcript
            if direction == "S" and line.startswith("EXEC Dial")]


def list_actions(peer: AmiPeer) -> int:
    return sum(1 for action in peer.actions if action.name.lower() == "devicestatelist")


@pytest.fixture
async def peer() -> AsyncIterator[AmiPeer]:
    p = AmiPeer(auth_failure_delay=0.05)
    for agent_id in ("1001", "1002", "1003"):
        p.set_device(f"PJSIP/{agent_id}", "NOT_INUSE", emit=False)
    p.set_device("Queue:support", "NOT_INUSE", emit=False)  # not an agent: ignored
    await p.start()
    yield p
    await p.close()


RigFactory = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def make_rig(tmp_path: Path, peer: AmiPeer) -> AsyncIterator[RigFactory]:
    controllers: list[Controller] = []

    async def make(max_wait: float = 1.0) -> Rig:
        state = MemoryState(60.0)
        controller = Controller(config_with_ami(tmp_path, peer.port), ControllerOptions(
            port=0, sqlite_path=tmp_path / "calls.sqlite", clock=lambda: OPEN,
            routing=routing(max_wait), live_state=state, acd_max_idle=0.05,
        ))
        await controller.start()
        controllers.append(controller)
        return Rig(controller, peer, state)

    yield make
    for controller in controllers:
        await controller.stop()
    me = asyncio.current_task()
    await eventually(lambda: not [t for t in asyncio.all_tasks() if t is not me])


# --- device states ---------------------------------------------------------------------------


@pytest.mark.parametrize("blocked", ["UNAVAILABLE", "INUSE"])
async def test_agent_whose_device_is_blocked_is_never_offered_a_call_and_is_again_when_not_inuse(
    make_rig: RigFactory, blocked: str
) -> None:
    rig = await make_rig()
    await rig.synced()
    await rig.ready("1001")
    rig.peer.set_device("PJSIP/1001", blocked)
    await eventually(lambda: _is(rig.device("1001"), Device.from_ami(blocked)))

    waited = await rig.call(agents={"PJSIP/1001": Agent(answer_after=0.5, talk=3.0)})
    assert dialed(waited) == []  # waited the whole max wait, nobody rang
    assert waited.location == ("ivr-voicemail", "400", "1")
    assert (await rig.row(waited)).detail.startswith("timeout -> voicemail 400")

    rig.peer.set_device("PJSIP/1001", "NOT_INUSE")
    await eventually(lambda: _is(rig.device("1001"), Device.NOT_INUSE))
    served = await rig.call(agents={"PJSIP/1001": Agent(answer_after=0.5, talk=3.0)})
    assert dialed(served) == ["PJSIP/1001,5,g"]
    # Asterisk's Hangup of the agent's own leg (PJSIP/1001-...) during our call changed nothing:
    # the ACD ended its call itself (wrap-up), the safety net stayed out of it.
    assert rig.ami.freed == 0
    assert (await rig.state.agent("1001")).activity is Activity.WRAP_UP


async def _is(value: Awaitable[Device], expected: Device) -> bool:
    return await value == expected


async def test_device_states_listed_at_login_are_applied_before_routing_starts(make_rig: RigFactory,
                                                                               peer: AmiPeer) -> None:
    peer.set_device("PJSIP/1002", "UNAVAILABLE", emit=False)
    peer.set_device("PJSIP/1003", "INUSE", emit=False)
    rig = await make_rig()
    await rig.synced()
    assert list_actions(peer) == 1
    assert [await rig.device(a) for a in ("1001", "1002", "1003")] == [
        Device.NOT_INUSE, Device.UNAVAILABLE, Device.INUSE]


async def test_routing_pauses_while_the_link_is_down_and_resumes_once_device_state_list_is_answered(
    make_rig: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="routing")
    rig = await make_rig(max_wait=15.0)
    await rig.synced()
    await rig.ready("1001")
    peer = rig.peer
    peer.hold_device_list()
    await peer.drop_link()
    await eventually(lambda: rig.acd.dispatcher.paused)

    call = asyncio.create_task(rig.call(agents={"PJSIP/1001": Agent(answer_after=0.5, talk=3.0)}))
    await eventually(lambda: _has_waiting(rig.state))
    await peer.wait_for("logged_in", 1)  # the link is back...
    await eventually(lambda: list_actions(peer) == 2)  # ...and asked for the device states
    await asyncio.sleep(0.5)  # ten dispatcher rounds: still nobody offered
    assert rig.acd.dispatcher.paused and not call.done()
    agent = await rig.state.agent("1001")
    assert agent.activity is Activity.IDLE and agent.call_id is None

    peer.release_device_list()
    result = await asyncio.wait_for(call, 10.0)
    assert dialed(result) == ["PJSIP/1001,5,g"]
    assert not rig.acd.dispatcher.paused
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("ACD routing paused: AMI link down") for m in messages)
    assert any(m.startswith("ACD routing resumed") for m in messages)
    (leg,) = (await rig.row(result)).queue_legs
    assert leg.outcome == "answered" and leg.agent_id == "1001"
    assert leg.answered_at is not None and (leg.answered_at - leg.enqueued_at).total_seconds() >= 0.5


async def _has_waiting(state: MemoryState) -> bool:
    return bool(await state.waiting())


async def test_caller_whose_max_wait_ends_while_routing_is_paused_overflows(make_rig: RigFactory) -> None:
    rig = await make_rig(max_wait=0.6)
    await rig.synced()
    await rig.ready("1001")
    rig.peer.hold_device_list()
    await rig.peer.drop_link()
    await eventually(lambda: rig.acd.dispatcher.paused)
    result = await rig.call(agents={"PJSIP/1001": Agent()})
    assert dialed(result) == [] and result.location == ("ivr-voicemail", "400", "1")
    rig.peer.release_device_list()
    await rig.synced(2)


async def test_resync_applies_device_states_that_changed_while_the_link_was_down(make_rig: RigFactory,
                                                                                 peer: AmiPeer) -> None:
    peer.set_device("PJSIP/1003", "INUSE", emit=False)
    rig = await make_rig()
    await rig.synced()
    await rig.ready("1001", "1002", "1003")
    await peer.stop_listening()
    await peer.drop_link()
    await eventually(lambda: rig.acd.dispatcher.paused)
    # Changes nobody hears: the link is down.
    peer.set_device("PJSIP/1001", "UNAVAILABLE", emit=False)
    peer.set_device("PJSIP/1002", "INUSE", emit=False)
    peer.set_device("PJSIP/1003", "NOT_INUSE", emit=False)
    assert [await rig.device(a) for a in ("1001", "1002", "1003")] == [
        Device.NOT_INUSE, Device.NOT_INUSE, Device.INUSE]  # stale, and routing is paused
    await peer.start()  # same port: the link comes back by itself
    await rig.synced(2)
    assert [await rig.device(a) for a in ("1001", "1002", "1003")] == [
        Device.UNAVAILABLE, Device.INUSE, Device.NOT_INUSE]
    result = await rig.call(agents={"PJSIP/1003": Agent(answer_after=0.5, talk=3.0)})
    assert dialed(result) == ["PJSIP/1003,5,g"]  # linear would have rung 1001 first


async def test_refused_device_state_list_is_an_error_and_routing_goes_on_with_live_events(
    make_rig: RigFactory, peer: AmiPeer, caplog: pytest.LogCaptureFixture
) -> None:
    peer.devicestate_module = False  # Asterisk answers "Invalid/unknown command"
    rig = await make_rig()
    await rig.synced()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("DeviceStateList refused (Error: Invalid/unknown command" in m for m in errors)
    assert await rig.device("1001") is Device.UNKNOWN  # nothing listed...
    peer.set_device("PJSIP/1001", "INUSE")
    await eventually(lambda: _is(rig.device("1001"), Device.INUSE))  # ...live events still count


# --- the Hangup safety net ---------------------------------------------------------------------


async def test_hangup_of_an_agent_channel_frees_an_agent_left_on_call_by_a_dead_controller(
    make_rig: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    rig = await make_rig()
    await rig.synced()
    await rig.ready("1001", "1002")
    now = rig.acd.clock()
    # Another controller connected 1001 to its caller, then died: nobody will end that call.
    assert await rig.state.reserve("1001", "dead-controller-call", now)
    await rig.state.offer_ended("1001", "dead-controller-call", OfferOutcome.ANSWERED, now, misses_before_not_ready=2)
    # ... and reserved 1002 for another caller before dying.
    assert await rig.state.reserve("1002", "dead-controller-ring", now)

    rig.peer.channel_hangup("PJSIP/1001-0000001a")
    rig.peer.channel_hangup("PJSIP/1002-0000001b", cause=19)
    rig.peer.channel_hangup("PJSIP/2999-0000001c")  # not an agent: ignored
    await eventually(lambda: rig.ami.freed == 2)
    one, two = await rig.state.agent("1001"), await rig.state.agent("1002")
    assert one.activity is Activity.WRAP_UP and one.call_id is None
    assert two.activity is Activity.IDLE and two.call_id is None and two.missed == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "agent freed" in r.getMessage()]
    assert len(warnings) == 2 and "PJSIP/1001-0000001a" in warnings[0] and "dead-controller-call" in warnings[0]


async def test_hangup_of_an_agent_channel_leaves_a_call_of_this_controller_alone(make_rig: RigFactory) -> None:
    rig = await make_rig()
    await rig.synced()
    await rig.ready("1001")
    now = rig.acd.clock()
    rig.acd.dispatcher.register("our-call")  # a caller of this controller, talking to 1001
    try:
        assert await rig.state.reserve("1001", "our-call", now)
        await rig.state.offer_ended("1001", "our-call", OfferOutcome.ANSWERED, now, misses_before_not_ready=2)
        rig.peer.channel_hangup("PJSIP/1001-0000002a")
        await asyncio.sleep(0.1)
        await rig.ami.idle()
        agent = await rig.state.agent("1001")
        assert agent.activity is Activity.ON_CALL and agent.call_id == "our-call" and rig.ami.freed == 0
    finally:
        rig.acd.dispatcher.unregister("our-call")


# --- without AMI -------------------------------------------------------------------------------


async def test_without_ami_routing_never_pauses(tmp_path: Path) -> None:
    controller = Controller(REPO / "config", ControllerOptions(
        port=0, sqlite_path=tmp_path / "calls.sqlite", routing=routing(), live_state=MemoryState(60.0)))
    await controller.start()
    try:
        assert controller.ami_agents is None
        assert controller.acd is not None and not controller.acd.dispatcher.paused
    finally:
        await controller.stop()


# --- pure parts ----------------------------------------------------------------------------------


def test_channel_names_map_to_endpoints() -> None:
    assert endpoint_of_channel("PJSIP/1001-0000001a") == "PJSIP/1001"
    assert endpoint_of_channel("PJSIP/agent-7-00000003") == "PJSIP/agent-7"
    assert endpoint_of_channel("Local/agent1@agents-00000004;1") == "Local/agent1@agents"
    assert endpoint_of_channel("PJSIP/1001") == "PJSIP/1001"
    assert endpoint_key("pjsip/1001") == endpoint_key("PJSIP/1001") != endpoint_key("PJSIP/1001a")


def test_device_state_list_reply_as_panoramisk_delivers_it() -> None:
    reply = [
        Message({"Response": "Success", "ActionID": "a/1", "EventList": "start",
                 "Message": "Device State Changes will follow"}, ""),
        Message({"Event": "DeviceStateChange", "ActionID": "a/1", "Device": "PJSIP/1001", "State": "INUSE"}, ""),
        Message({"Event": "DeviceStateChange", "ActionID": "a/1", "Device": "Queue:support", "State": "NOT_INUSE"}, ""),
        Message({"Event": "DeviceStateListComplete", "ActionID": "a/1", "EventList": "Complete", "ListItems": "2"}, ""),
    ]
    assert device_states(reply) == [("PJSIP/1001", "INUSE"), ("Queue:support", "NOT_INUSE")]


async def test_peer_answers_device_state_list_like_asterisk(peer: AmiPeer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", peer.port)
    try:
        await reader.readline()  # banner
        writer.write(b"Action: Login\r\nUsername: ivr\r\nSecret: secret\r\nEvents: off\r\n\r\n"
                     b"Action: DeviceStateList\r\nActionID: 42\r\n\r\n")
        await reader.readuntil(b"Authentication accepted\r\n\r\n")
        data = await asyncio.wait_for(reader.readuntil(b"Event: DeviceStateListComplete\r\nActionID: 42\r\n"
                                                       b"EventList: Complete\r\nListItems: 4\r\n\r\n"), 5.0)
    finally:
        writer.close()
        await writer.wait_closed()
    assert data.startswith(b"Response: Success\r\nActionID: 42\r\nEventList: start\r\n"
                           b"Message: Device State Changes will follow\r\n\r\n"
                           b"Event: DeviceStateChange\r\nActionID: 42\r\nDevice: PJSIP/1001\r\nState: NOT_INUSE\r\n\r\n")


def member_pause(interface: str, paused: bool, queue: str = "billing") -> list[tuple[str, str]]:
    """QueueMemberPause as app_queue raises it (the fields of ami-queue.txt's QueueMemberStatus)."""
    return [("Queue", queue), ("MemberName", interface), ("Interface", interface), ("StateInterface", interface),
            ("Membership", "dynamic"), ("Penalty", "0"), ("CallsTaken", "0"), ("LastCall", "0"),
            ("LastPause", "0"), ("LoginTime", "1795485390"), ("InCall", "0"), ("Status", "1"),
            ("Paused", "1" if paused else "0"), ("PausedReason", "lunch" if paused else ""),
            ("Ringinuse", "1"), ("Wrapuptime", "0")]


async def test_agent_login_pause_and_logoff_on_the_asterisk_side_hold_in_the_acd(make_rig: RigFactory) -> None:
    rig = await make_rig()
    await rig.synced()

    async def presence(agent_id: str) -> Presence:
        return (await rig.state.agent(agent_id)).presence

    async def becomes(agent_id: str, wanted: Presence) -> None:
        async def check() -> bool:
            return await presence(agent_id) is wanted
        await eventually(check)

    # AgentLogin(1001) in the dialplan (app_agent_pool): the same id logs in here.
    rig.peer.emit("AgentLogin", "agent", [("Channel", "PJSIP/1001-00000007"), ("Agent", "1001")])
    await becomes("1001", Presence.READY)
    # Paused in app_queue (one event per queue the member is in), by interface or by agent.
    rig.peer.emit("QueueMemberPause", "agent", member_pause("PJSIP/1001", True))
    rig.peer.emit("QueueMemberPause", "agent", member_pause("PJSIP/1001", True, queue="general"))
    await becomes("1001", Presence.PAUSED)
    result = await rig.call(agents={"PJSIP/1001": Agent()})
    assert dialed(result) == []  # a paused agent is not rung
    rig.peer.emit("QueueMemberPause", "agent", member_pause("Agent/1001", False))
    await becomes("1001", Presence.READY)
    # A pause never logs an agent in; an unknown agent changes nothing.
    rig.peer.emit("QueueMemberPause", "agent", member_pause("PJSIP/1002", False))
    rig.peer.emit("AgentLogin", "agent", [("Channel", "PJSIP/1999-00000008"), ("Agent", "1999")])
    rig.peer.emit("AgentLogoff", "agent", [("Agent", "1001"), ("Logintime", "42")])
    await becomes("1001", Presence.LOGGED_OUT)
    assert await presence("1002") is Presence.LOGGED_OUT
