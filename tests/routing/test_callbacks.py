"""Tier 2 for the callback offer: whole calls through the real controller, the FastAGI peer
and the AMI peer (`ivr.pbxsim.ami.AmiPeer`, which answers Originate as Asterisk 22 does).

A caller nobody served within the max wait is offered a callback; pressing 1 stores a
request and ends the call. When an agent who can serve the queue is free, the callback
worker reserves the agent and sends `Originate` for the agent's endpoint with the caller's
number as the extension of `ivr-callback`; each test states what Originate carried, what
became of the request and what the live state is left with.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from callkit import OPEN, TO_BILLING, eventually

from amiconfig import config_with_ami

from ivr.app import Controller, ControllerOptions
from ivr.pbxsim import CallerScript, CallResult, Press, SimCall, SoundLibrary, place_call
from ivr.pbxsim.ami import ORIGINATE_NO_ANSWER, AmiCallEvents, AmiPeer
from ivr.pbxsim.caller import Agent, AgentBehaviour, Step
from ivr.records.model import CallbackRequest, CallRow, Disposition
from ivr.records.store import CallStore
from routing.config import RoutingConfig
from routing.memory_state import MemoryState
from routing.model import Activity, Presence

REPO = Path(__file__).resolve().parents[2]
HOTLINE = "4008001234"
CALLER = "13700000009"


def routing(**callbacks: object) -> RoutingConfig:
    """Two billing agents; billing overflows to a callback offer on timeout, else voicemail 401."""
    return RoutingConfig.model_validate({
        "agents": {
            agent_id: {"name": agent_id, "endpoint": f"PJSIP/{agent_id}", "skills": {"billing": 3}, "wrap_up": 30}
            for agent_id in ("1001", "1002")
        },
        "queues": {
            "billing": {
                "skills": {"billing": 1}, "strategy": "linear", "max_wait": 0.5, "ring_timeout": 5,
                "misses_before_not_ready": 5, "announce": {"first_after": 60, "every": 60},
                "affinity": {"enabled": False},
                "overflow": {"timeout": {"callback": True}, "no_agents": {"voicemail": "401"}},
            },
        },
        "callbacks": {"retry_after": 0.1, **callbacks},
    })


class Rig:
    def __init__(self, controller: Controller, peer: AmiPeer, state: MemoryState) -> None:
        self.controller = controller
        self.peer = peer
        self.state = state
        assert controller.acd is not None and controller.ami_agents is not None and controller.store is not None
        assert controller.callbacks is not None
        self.acd = controller.acd
        self.ami = controller.ami_agents
        self.store: CallStore = controller.store
        self.worker = controller.callbacks
        self.sounds = SoundLibrary([(controller.config.server.prompts.asterisk_dir, REPO / "prompts" / "sounds")])

    async def call(self, *steps: Step, caller_id: str = CALLER, agents: dict[str, AgentBehaviour] | None = None) -> CallResult:
        assert self.controller.server is not None
        call = SimCall(CallerScript((*TO_BILLING, *steps), caller_id=caller_id), extension=HOTLINE,
                       script=f"ivr?hotline={HOTLINE}", agents=agents or {})
        return await place_call("127.0.0.1", self.controller.server.bound_port, call, sounds=self.sounds,
                                observer=AmiCallEvents(self.peer))

    async def presence(self, agent_id: str, presence: Presence) -> None:
        await self.state.set_presence(agent_id, presence, self.acd.clock())

    async def synced(self) -> None:
        await eventually(lambda: self.ami.resyncs >= 1 and not self.acd.dispatcher.paused)

    async def row(self, result: CallResult) -> CallRow:
        await self.store.flush()
        async for row in self.store.iter_calls():
            if row.uniqueid == result.uniqueid:
                return row
        raise AssertionError("no call record")

    async def request(self) -> CallbackRequest:
        (request,) = await self.store.callbacks()
        return request

    async def status(self, wanted: str) -> bool:
        return (await self.request()).status == wanted


def sent(result: CallResult) -> list[str]:
    return [line for direction, line in result.transcript if direction == "S"]


@pytest.fixture
async def peer() -> AsyncIterator[AmiPeer]:
    p = AmiPeer(auth_failure_delay=0.05)
    for agent_id in ("1001", "1002"):
        p.set_device(f"PJSIP/{agent_id}", "NOT_INUSE", emit=False)
    await p.start()
    yield p
    await p.close()


RigFactory = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def make_rig(tmp_path: Path, peer: AmiPeer) -> AsyncIterator[RigFactory]:
    controllers: list[Controller] = []

    async def make(config: RoutingConfig | None = None) -> Rig:
        state = MemoryState(60.0)
        controller = Controller(config_with_ami(tmp_path, peer.port), ControllerOptions(
            port=0, sqlite_path=tmp_path / "calls.sqlite", clock=lambda: OPEN,
            routing=config or routing(), live_state=state, acd_max_idle=0.05,
        ))
        await controller.start()
        controllers.append(controller)
        rig = Rig(controller, peer, state)
        await rig.synced()
        return rig

    yield make
    for controller in controllers:
        worker = controller.callbacks
        await controller.stop()
        assert worker is None or not worker.running
    me = asyncio.current_task()
    await eventually(lambda: not [t for t in asyncio.all_tasks() if t is not me])


# --- on the call ------------------------------------------------------------------------------------


async def test_caller_presses_1_then_a_free_agent_is_originated_and_the_caller_dialed_back(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig()
    await rig.presence("1001", Presence.PAUSED)  # logged in, never free: the max wait passes
    result = await rig.call(Press("1", on_prompt="callback-offer"))

    commands = sent(result)
    offer = next(c for c in commands if c.startswith("GET DATA"))
    assert offer.endswith("/en-US/callback-offer 6000 1")
    assert commands.index("SET MUSIC OFF") < commands.index(offer)
    assert result.prompts[-2:] == ["callback-offer", "callback-confirmed"]
    assert result.location is None and result.server_closed  # the AGI ended: the dialplan hangs up
    row = await rig.row(result)
    assert row.disposition is Disposition.CALLBACK and row.detail == "timeout -> callback"
    assert [e.value for e in row.events if e.kind.value == "overflow"] == [f"timeout -> callback cb-{row.call_id}"]
    assert [(leg.outcome, leg.overflow) for leg in row.queue_legs] == [("overflowed", "timeout")]
    request = await rig.request()
    assert (request.callback_id, request.call_id, request.caller, request.queue, request.language,
            request.asterisk_language, request.status, request.attempts) == (
        f"cb-{row.call_id}", row.call_id, CALLER, "billing", "en-US", "en", "pending", 0)
    await asyncio.sleep(0.2)
    assert rig.peer.originated == []  # nobody free yet

    await rig.presence("1001", Presence.READY)
    await eventually(lambda: rig.status("done"))
    (originated,) = rig.peer.originated
    action = originated.action
    assert (action.get("Channel"), action.get("Context"), action.get("Exten"), action.get("Priority"),
            action.get("Timeout"), action.get("Async")) == ("PJSIP/1001", "ivr-callback", CALLER, "1", "5000", "true")
    assert action.get("CallerID") == f'"Callback billing" <{CALLER}>'
    assert action.get_all("Variable") == [
        f"IVR_CALLBACK_ID=cb-{row.call_id}", f"IVR_CALL_ID={row.call_id}", "IVR_QUEUE=billing", "IVR_LANGUAGE=en"]
    agent = await rig.state.agent("1001")
    assert (agent.activity, agent.call_id) == (Activity.ON_CALL, f"cb-{row.call_id}")
    assert (await rig.request()).attempts == 1

    # The agent's leg hangs up at the end of the conversation: wrap-up, not stuck on the call.
    rig.peer.channel_hangup(originated.channel)
    await eventually(lambda: _activity(rig, "1001", Activity.WRAP_UP))
    assert rig.ami.freed == 0 and rig.acd.callbacks_talking == set()


async def test_failed_originate_is_retried_later_and_failed_after_3_attempts_leaving_nobody_reserved(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig()
    await rig.presence("1001", Presence.PAUSED)
    result = await rig.call(Press("1", on_prompt="callback-offer"))
    assert (await rig.row(result)).disposition is Disposition.CALLBACK
    rig.peer.default_originate = ORIGINATE_NO_ANSWER
    await rig.presence("1001", Presence.READY)

    await eventually(lambda: rig.status("failed"))
    request = await rig.request()
    assert (request.attempts, request.last_error) == (3, "Reason 3")
    assert [o.action.get("Channel") for o in rig.peer.originated] == ["PJSIP/1001"] * 3
    await asyncio.sleep(0.3)
    assert len(rig.peer.originated) == 3  # never a fourth
    agent = await rig.state.agent("1001")
    assert (agent.activity, agent.call_id, agent.missed, agent.presence) == (
        Activity.IDLE, None, 3, Presence.READY)  # three misses, below misses_before_not_ready (5)
    assert rig.acd.callbacks_dialing == set()


async def test_a_failure_then_a_success_on_the_retry(make_rig: RigFactory) -> None:
    rig = await make_rig()
    await rig.presence("1001", Presence.PAUSED)
    await rig.call(Press("1", on_prompt="callback-offer"))
    rig.peer.originate_outcomes = [ORIGINATE_NO_ANSWER]  # then the default: answered
    await rig.presence("1001", Presence.READY)
    await eventually(lambda: rig.status("done"))
    request = await rig.request()
    assert (request.attempts, request.last_error) == (2, "Reason 3")
    assert len(rig.peer.originated) == 2
    assert (await rig.state.agent("1001")).activity is Activity.ON_CALL


async def test_caller_on_the_line_is_served_before_a_callback(make_rig: RigFactory) -> None:
    """A request is the lowest priority: the free agent goes to the live caller's Dial, takes
    the call, and is in wrap-up after it: the request stays pending."""
    rig = await make_rig(routing())
    await rig.presence("1001", Presence.PAUSED)
    await rig.call(Press("1", on_prompt="callback-offer"))
    rig.acd.dispatcher.pause("test: hold offers")  # so that both see the agent free at once
    await rig.presence("1001", Presence.READY)
    live = asyncio.create_task(rig.call(agents={"PJSIP/1001": Agent(answer_after=0.2, talk=0.5)}))
    await eventually(lambda: _waiting(rig))
    rig.acd.dispatcher.resume()
    result = await live
    row = await rig.row(result)
    assert (row.disposition, [leg.agent_id for leg in row.queue_legs]) == (Disposition.ANSWERED, ["1001"])
    assert (await rig.state.agent("1001")).activity is Activity.WRAP_UP
    await rig.worker.run_once()  # the worker's next look: no free agent for the request
    assert rig.peer.originated == [] and await rig.status("pending")


@pytest.mark.parametrize("steps", [(Press("2", on_prompt="callback-offer"),), ()], ids=["pressed 2", "no digit"])
async def test_caller_who_declines_the_offer_goes_to_the_queue_voicemail(
    make_rig: RigFactory, steps: tuple[Step, ...]
) -> None:
    rig = await make_rig()
    await rig.presence("1001", Presence.PAUSED)
    result = await rig.call(*steps)
    assert "callback-offer" in result.prompts and "callback-confirmed" not in result.prompts
    assert result.location == ("ivr-voicemail", "401", "1")  # the queue's no_agents voicemail
    row = await rig.row(result)
    assert row.disposition is Disposition.OVERFLOWED and row.detail == "timeout -> voicemail 401"
    assert await rig.store.callbacks() == []


@pytest.mark.parametrize("caller_id", ["", "anonymous"])
async def test_withheld_number_gets_no_offer(make_rig: RigFactory, caller_id: str) -> None:
    rig = await make_rig()
    await rig.presence("1001", Presence.PAUSED)
    result = await rig.call(caller_id=caller_id)
    assert "callback-offer" not in result.prompts
    assert result.location == ("ivr-voicemail", "401", "1")
    row = await rig.row(result)
    assert row.detail == "timeout -> voicemail 401"
    assert [e.value for e in row.events if e.kind.value == "overflow"] == [
        "timeout -> callback not offered: no number to call back", "timeout -> voicemail 401"]
    assert await rig.store.callbacks() == []


async def _activity(rig: Rig, agent_id: str, activity: Activity) -> bool:
    return (await rig.state.agent(agent_id)).activity is activity


async def _waiting(rig: Rig) -> bool:
    return len(await rig.state.waiting()) == 1
