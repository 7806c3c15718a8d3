"""Tier 2 for the ACD: whole calls through the real controller over TCP, played by the
Asterisk peer, with the engine's own ACD routing the billing queue.

Each test states what the caller hears (music, announcements), which agent rings (the
`EXEC Dial` target in the transcript), where the call goes, what the row and its queue legs
say, and what the live state is left with. Agents' presence is set directly in the live
state (logging in is the CLI's business). Timings are short and real: the peer's virtual
clock stands still while the controller waits on music, so a max wait of 0.5 s is 0.5 s.

One file past 600 lines: the ACD's whole-call tests share one rig and one routing
configuration.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import datetime as dt
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest

from callkit import OPEN, TO_BILLING, DialClock, eventually

from ivr.app import Controller, ControllerOptions
from ivr.pbxsim import Agent, CallerScript, CallResult, HangUp, NoAnswer, Press, SimCall, SoundLibrary, place_call
from ivr.pbxsim.caller import AgentBehaviour, Step
from ivr.records.model import CallRow, Disposition, EventKind, QueueLeg
from routing import service
from routing.config import Classification, RoutingConfig, StateSettings
from routing.handoff import HandoffTarget
from routing.memory_state import MemoryState
from routing.model import Activity, Caller, OfferOutcome, Presence
from routing.redis_state import RedisState
from routing.state import LiveState, StateUnavailable

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]


def routing(**billing: object) -> RoutingConfig:
    """Three billing agents, a billing queue with short timings, and an empty general queue."""
    queue: dict[str, object] = {
        "skills": {"billing": 1},
        "strategy": "least_busy",
        "max_wait": 0.5,
        "ring_timeout": 5,
        "misses_before_not_ready": 2,
        "announce": {"first_after": 60, "every": 60},
        "affinity": {"enabled": False},
        "overflow": {
            "timeout": {"voicemail": "400"},
            "no_agents": {"dialplan": "ivr-closed,nobody"},
            "full": {"queue": "general"},
        },
    }
    queue.update(billing)
    return RoutingConfig.model_validate({
        "agents": {
            agent_id: {"name": agent_id, "endpoint": f"PJSIP/{agent_id}", "skills": {"billing": 3}, "wrap_up": 0}
            for agent_id in ("1001", "1002", "1003")
        } | {"2001": {"name": "general only", "endpoint": "PJSIP/2001", "skills": {"general": 3}}},
        "queues": {
            "billing": queue,
            "general": {"skills": {"general": 1}, "max_wait": 0.5, "affinity": {"enabled": False},
                        "overflow": {"no_agents": {"voicemail": "401"}}},
        },
    })


class FlakyState(MemoryState):
    """Redis going away mid-day: everything raises StateUnavailable once a caller is waiting."""

    down = False

    async def enqueue(self, caller: Caller) -> None:
        await super().enqueue(caller)
        self.down = True

    def __getattribute__(self, name: str) -> object:
        attribute = super().__getattribute__(name)
        if name in ("agents", "waiting", "reserve", "wait_for_change", "update_caller", "dequeue",
                    "last_offered", "note_offered", "offer_ended") and super().__getattribute__("down"):
            async def unreachable(*args: object, **kwargs: object) -> None:
                raise StateUnavailable("redis://127.0.0.1:6379: connection refused")

            return unreachable
        return attribute


class AcdRig:
    def __init__(self, controller: Controller, state: LiveState, clock: DialClock | None = None) -> None:
        self.controller = controller
        self.state = state
        self.clock = clock
        assert controller.server is not None
        self.port = controller.server.bound_port
        self.sounds = SoundLibrary([(controller.config.server.prompts.asterisk_dir, REPO / "prompts" / "sounds")])

    async def call(self, *steps: Step, agents: dict[str, AgentBehaviour] | None = None,
                   caller_id: str = "13700000001") -> CallResult:
        call = SimCall(CallerScript((*TO_BILLING, *steps), caller_id=caller_id), extension="4008001234",
                       script="ivr?hotline=4008001234", agents=agents or {})
        return await place_call("127.0.0.1", self.port, call, sounds=self.sounds, observer=self.clock)

    async def row(self, result: CallResult) -> CallRow:
        store = self.controller.store
        assert store is not None
        await store.flush()
        async for row in store.iter_calls():
            if row.uniqueid == result.uniqueid:
                return row
        raise AssertionError("no call record")

    async def ready(self, *agent_ids: str, presence: Presence = Presence.READY) -> None:
        for agent_id in agent_ids:
            await self.state.set_presence(agent_id, presence, time.time())

    async def handled(self, agent_id: str, calls: int) -> None:
        """Give an agent `calls` answered calls in the last minutes."""
        for n in range(calls):
            now = time.time() - 600 + n
            call_id = f"past-{agent_id}-{n}"
            assert await self.state.reserve(agent_id, call_id, now)
            await self.state.offer_ended(agent_id, call_id, OfferOutcome.ANSWERED, now, misses_before_not_ready=2)
            await self.state.call_ended(agent_id, call_id, now + 1, wrap_up=0, keep_after=0)


RigFactory = Callable[..., Awaitable[AcdRig]]


@pytest.fixture
async def acd_rig(tmp_path: Path) -> AsyncIterator[RigFactory]:
    controllers: list[Controller] = []

    async def make(config: RoutingConfig | None = None, state: LiveState | None = None) -> AcdRig:
        live = state if state is not None else MemoryState(60.0)
        clock = DialClock()
        controller = Controller(REPO / "config", ControllerOptions(
            port=0, sqlite_path=tmp_path / "calls.sqlite", clock=lambda: OPEN,
            routing=config or routing(), live_state=live, acd_max_idle=0.05, acd_clock=clock,
        ))
        await controller.start()
        controllers.append(controller)
        return AcdRig(controller, live, clock)

    yield make
    for controller in controllers:
        acd = controller.acd
        await controller.stop()
        assert acd is None or not acd.dispatcher.running  # the dispatcher task is gone


def without_headers(line: str) -> str:
    """An `EXEC Dial` line without its b() pre-dial handler (the agent leg's SIP headers,
    asserted by the tests of their own): `EXEC Dial PJSIP/1002,5,g`."""
    return re.sub(r"b\(ivr-agent-headers\^[^ ]*\)\)$", "", line) if line.startswith("EXEC Dial ") else line


def sent(result: CallResult) -> list[str]:
    return [without_headers(line) for direction, line in result.transcript if direction == "S"]


def dialed(result: CallResult) -> list[str]:
    return [line.split()[2] for line in sent(result) if line.startswith("EXEC Dial")]


def acd_path(row: CallRow) -> list[str]:
    kinds = ("queue", "enqueued", "offer", "connected", "overflow", "transfer")
    return [f"{e.kind.value}:{e.value}" for e in row.events if e.kind.value in kinds]


async def assert_nobody_reserved(state: LiveState) -> None:
    for agent in (await state.agents()).values():
        assert agent.activity is not Activity.RESERVED and agent.call_id is None, agent
    assert await state.waiting() == []


# --- who rings -----------------------------------------------------------------------------------


async def test_least_busy_rings_the_agent_with_fewest_calls_and_the_caller_goes_to_the_survey(
    acd_rig: RigFactory,
) -> None:
    rig = await acd_rig()
    await rig.ready("1001", "1002", "1003")
    await rig.handled("1001", 3)
    await rig.handled("1002", 1)
    await rig.handled("1003", 2)
    result = await rig.call(agents={"PJSIP/1002": Agent(answer_after=3.0, talk=42.0, hangs_up_first=True)})

    assert dialed(result) == ["PJSIP/1002,5,g"]
    commands = sent(result)
    dial = commands.index("EXEC Dial PJSIP/1002,5,g")
    assert "SET MUSIC ON default" in commands[:dial] and commands[dial - 1] == "SET MUSIC OFF"
    assert commands[dial + 1:dial + 3] == ["GET VARIABLE DIALSTATUS", "GET VARIABLE ANSWEREDTIME"]
    # The agent hung up first and the caller is still there: the survey's re-entry takes over.
    assert result.location == ("ivr-survey", "billing", "1")
    assert result.variables["IVR_AGENT"] == "1002" and result.variables["IVR_QUEUE"] == "billing"
    assert result.server_closed and result.hung_up_by is None

    row = await rig.row(result)
    assert row.disposition is Disposition.ANSWERED and row.hung_up_by == "agent"
    assert acd_path(row) == ["queue:billing (acd)", "enqueued:billing priority=0", "offer:1002: answered after 0 s",
                             "connected:1002", "transfer:ivr-survey,billing,1"]
    (leg,) = row.queue_legs
    assert (leg.queue, leg.outcome, leg.agent_id, leg.offers, leg.ended_by) == ("billing", "answered", "1002", 1, "agent")
    # No AMI here: talk is the Dial's length on the controller's clock, 3 s of ringing included
    # (nothing tells it apart without AMI). ANSWEREDTIME, the caller's time since the IVR answered
    # it, is longer still and must not be what is stored.
    assert leg.talk_seconds == pytest.approx(45.0, abs=0.5) and leg.answered_at is not None
    agent = (await rig.state.agents())["1002"]
    assert agent.activity is Activity.WRAP_UP and agent.call_id is None and agent.calls_since(0) == 2
    await assert_nobody_reserved(rig.state)


async def test_caller_hanging_up_first_ends_the_call_answered(acd_rig: RigFactory) -> None:
    rig = await acd_rig()
    await rig.ready("1001")
    result = await rig.call(agents={"PJSIP/1001": Agent(answer_after=1.0, talk=12.0, hangs_up_first=False)})
    assert dialed(result) == ["PJSIP/1001,5,g"]
    assert result.location is None and result.hung_up_by == "caller"
    row = await rig.row(result)
    assert row.disposition is Disposition.ANSWERED and row.hung_up_by == "caller"
    assert [(leg.outcome, leg.ended_by) for leg in row.queue_legs] == [("answered", "caller")]
    assert row.queue_legs[0].talk_seconds == pytest.approx(13.0, abs=0.5)  # 1 s ringing + 12 s talk, no AMI
    await assert_nobody_reserved(rig.state)


async def test_agent_who_does_not_answer_is_not_rung_again_and_the_next_one_rings(acd_rig: RigFactory) -> None:
    rig = await acd_rig()
    await rig.ready("1001", "1002")
    await rig.handled("1002", 1)  # 1001 is least busy: rung first
    result = await rig.call(agents={"PJSIP/1001": NoAnswer(), "PJSIP/1002": Agent(talk=5.0)})
    assert dialed(result) == ["PJSIP/1001,5,g", "PJSIP/1002,5,g"]
    commands = sent(result)
    # Back on music between the two offers.
    between = commands[commands.index("EXEC Dial PJSIP/1001,5,g"):commands.index("EXEC Dial PJSIP/1002,5,g")]
    assert "SET MUSIC ON default" in between
    row = await rig.row(result)
    assert [p for p in acd_path(row) if p.startswith("offer")] == [
        "offer:1001: no_answer after 0 s", "offer:1002: answered after 0 s"]
    assert row.queue_legs[0].offers == 2 and row.queue_legs[0].agent_id == "1002"
    states = await rig.state.agents()
    assert states["1001"].missed == 1 and states["1001"].presence is Presence.READY


async def test_agent_missing_twice_becomes_not_ready(acd_rig: RigFactory) -> None:
    rig = await acd_rig()
    await rig.ready("1001")
    for _ in range(2):
        result = await rig.call(agents={"PJSIP/1001": NoAnswer()})
        # Rung once; then nobody else could ever take the call: no_agents overflow.
        assert dialed(result) == ["PJSIP/1001,5,g"]
        assert result.location == ("ivr-closed", "nobody", "1")
        row = await rig.row(result)
        assert row.disposition is Disposition.OVERFLOWED and row.detail == "no_agents -> dialplan ivr-closed,nobody"
        assert [(leg.outcome, leg.overflow, leg.offers) for leg in row.queue_legs] == [("overflowed", "no_agents", 1)]
    agent = (await rig.state.agents())["1001"]
    assert agent.presence is Presence.NOT_READY and agent.missed == 2
    await assert_nobody_reserved(rig.state)


# --- overflow ---------------------------------------------------------------------------------------


async def test_timeout_overflows_to_voicemail_after_music_and_announcements(acd_rig: RigFactory) -> None:
    rig = await acd_rig(routing(announce={"first_after": 0.1, "every": 0.2}))
    await rig.ready("1001")
    await rig.handled("1001", 3)  # 3 answered in 15 min: position 1 -> 300 s, "5 minutes"
    await rig.ready("1001", presence=Presence.PAUSED)  # logged in, never free
    started = time.monotonic()
    result = await rig.call()
    assert 0.45 <= time.monotonic() - started < 3.0
    assert dialed(result) == []
    commands = sent(result)
    assert commands.count("SET MUSIC ON default") >= 2  # on arrival, and again after the announcement
    assert "queue-position" in result.prompts and "queue-wait" in result.prompts
    assert "SAY NUMBER 1 \"\"" in commands and "SAY NUMBER 5 \"\"" in commands
    assert result.location == ("ivr-voicemail", "400", "1")
    row = await rig.row(result)
    assert row.disposition is Disposition.OVERFLOWED and row.detail == "timeout -> voicemail 400"
    announcements = [e.value for e in row.events if e.kind.value == "announce"]
    assert announcements and announcements[0] == "position=1 estimate=300"
    (leg,) = row.queue_legs
    assert (leg.outcome, leg.overflow, leg.offers, leg.first_estimate) == ("overflowed", "timeout", 0, 300.0)
    assert 0.45 <= leg.waited < 3.0
    await assert_nobody_reserved(rig.state)


async def test_nobody_logged_in_overflows_at_once(acd_rig: RigFactory) -> None:
    rig = await acd_rig()
    await rig.ready("2001")  # logged in, but without the billing skill
    result = await rig.call()
    assert dialed(result) == [] and "SET MUSIC ON default" not in sent(result)
    assert result.location == ("ivr-closed", "nobody", "1")
    assert result.variables["IVR_QUEUE"] == "billing"
    row = await rig.row(result)
    assert row.disposition is Disposition.OVERFLOWED
    assert acd_path(row)[-1] == "overflow:no_agents -> dialplan ivr-closed,nobody"
    assert [(leg.queue, leg.outcome, leg.overflow) for leg in row.queue_legs] == [("billing", "overflowed", "no_agents")]


async def test_full_queue_overflows_to_the_next_queue_with_a_second_leg(acd_rig: RigFactory) -> None:
    rig = await acd_rig(routing(max_callers=1))
    await rig.ready("1001", presence=Presence.PAUSED)
    await rig.state.enqueue(Caller("someone-else", "billing", time.time()))
    result = await rig.call()
    assert result.location == ("ivr-voicemail", "401", "1")
    row = await rig.row(result)
    assert row.disposition is Disposition.OVERFLOWED and row.detail == "no_agents -> voicemail 401"
    assert [p for p in acd_path(row) if p.startswith("overflow")] == [
        "overflow:full -> queue general", "overflow:no_agents -> voicemail 401"]
    assert [(leg.queue, leg.outcome, leg.overflow) for leg in row.queue_legs] == [
        ("billing", "overflowed", "full"), ("general", "overflowed", "no_agents")]
    assert [c.call_id for c in await rig.state.waiting()] == ["someone-else"]


# --- hang-ups leave nothing behind ----------------------------------------------------------------------


async def test_hang_up_while_waiting_dequeues_the_caller(acd_rig: RigFactory) -> None:
    rig = await acd_rig(routing(max_wait=30))
    await rig.ready("1001", presence=Presence.PAUSED)
    result = await rig.call(HangUp(idle=0.2))
    assert result.hung_up_by == "caller" and sent(result)[-1] == "SET MUSIC ON default"
    row = await rig.row(result)
    assert row.disposition is Disposition.QUEUE_ABANDONED and row.hung_up_by == "caller"
    (leg,) = row.queue_legs
    assert leg.outcome == "abandoned" and leg.offers == 0 and 0.15 <= leg.waited < 3.0
    await assert_nobody_reserved(rig.state)


async def test_hang_up_while_ringing_leaves_no_agent_reserved(acd_rig: RigFactory) -> None:
    rig = await acd_rig()
    await rig.ready("1001")
    result = await rig.call(HangUp(on_prompt="ringing:PJSIP/1001", after=2.0), agents={"PJSIP/1001": NoAnswer()})
    assert dialed(result) == ["PJSIP/1001,5,g"] and result.variables["DIALSTATUS"] == "CANCEL"
    row = await rig.row(result)
    assert row.disposition is Disposition.QUEUE_ABANDONED and row.hung_up_by == "caller"
    assert [p for p in acd_path(row) if p.startswith("offer")] == ["offer:1001: caller_gone after 0 s"]
    assert [(leg.outcome, leg.offers) for leg in row.queue_legs] == [("abandoned", 1)]
    agent = (await rig.state.agents())["1001"]
    assert agent.activity is Activity.IDLE and agent.missed == 0  # the caller left: not the agent's miss
    await assert_nobody_reserved(rig.state)


# --- the live state goes away -------------------------------------------------------------------------------


async def test_state_lost_while_waiting_sends_the_caller_to_the_dialplan_queue(acd_rig: RigFactory) -> None:
    state = FlakyState(60.0)
    rig = await acd_rig(routing(max_wait=30), state)
    await rig.ready("1001", presence=Presence.PAUSED)
    result = await rig.call()
    assert result.location == ("ivr-queue", "billing", "1")
    assert result.variables["IVR_QUEUE"] == "billing" and result.variables["IVR_QUEUE_TIMEOUT"] == "300"
    row = await rig.row(result)
    assert row.disposition is Disposition.OVERFLOWED
    assert row.detail == "state_down -> dialplan ivr-queue,billing"
    assert [(leg.outcome, leg.overflow) for leg in row.queue_legs] == [("overflowed", "state_down")]


async def test_a_caller_gone_while_the_state_was_down_leaves_no_ghost_once_it_is_back(acd_rig: RigFactory) -> None:
    """The caller's dequeue failed during the outage: it is retried until the state takes it,
    so no ghost caller is left to block routing."""
    state = FlakyState(60.0)
    rig = await acd_rig(routing(max_wait=30), state)
    await rig.ready("1001", presence=Presence.PAUSED)
    result = await rig.call()
    assert result.location == ("ivr-queue", "billing", "1")
    repairs = rig.controller.acd.repairs  # type: ignore[union-attr]
    assert repairs.pending >= 1
    assert [c.call_id for c in await MemoryState.waiting(state)] != []  # the ghost, while the state is down

    state.down = False

    await eventually(lambda: repairs.pending == 0)
    assert await state.waiting() == [] and repairs.done >= 1


async def test_state_unreachable_on_arrival_sends_the_caller_to_the_dialplan_queue(acd_rig: RigFactory) -> None:
    # A Redis that does not answer (nothing listens on the port), as after a start-up in an outage.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{sock.getsockname()[1]}/0"
    down = RedisState.offline(StateSettings(backend="redis", redis_url=dead))
    try:
        rig = await acd_rig(routing(), down)
        result = await rig.call()
    finally:
        await down.close()
    assert result.location == ("ivr-queue", "billing", "1") and dialed(result) == []
    row = await rig.row(result)
    assert row.disposition is Disposition.OVERFLOWED and row.detail == "state_down -> dialplan ivr-queue,billing"


# --- a conversation longer than the reservation ---------------------------------------------------------


class SlowDialChannel:
    """An AGI channel whose Dial is answered and then talks for `talk` real seconds."""

    def __init__(self, talk: float) -> None:
        self.talk = talk
        self.commands: list[str] = []
        self.variables: dict[str, str] = {}

    async def run(self, command: object, *, timeout: float | None = None) -> None:
        self.commands.append(type(command).__name__)

    async def exec(self, application: str, *arguments: str, timeout: float | None = None) -> int:
        self.commands.append(without_headers(f"EXEC {application} {','.join(arguments)}"))
        assert timeout is not None and timeout > 3600  # a conversation may last an hour
        await asyncio.sleep(self.talk)
        self.variables.update(DIALSTATUS="ANSWER", ANSWEREDTIME=str(round(self.talk)))
        return 0

    async def get_variable(self, name: str) -> str | None:
        return self.variables.get(name)

    async def set_variable(self, name: str, value: str) -> None:
        self.variables[name] = value

    async def continue_at(self, context: str, extension: str, priority: str = "1") -> None:
        self.variables["location"] = f"{context},{extension},{priority}"

    async def until_hangup(self, work: Awaitable[T]) -> T:
        return await work


@dataclass
class Journal:
    queue_legs: list[QueueLeg] = field(default_factory=list)
    events: list[tuple[str, str]] = field(default_factory=list)

    def record(self, kind: EventKind, value: str = "", node: str | None = None, at: dt.datetime | None = None) -> None:
        self.events.append((kind.value, value))


async def test_agent_still_talking_after_the_ring_timeout_is_on_call_not_reserved(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Dial only returns when the conversation ends: a reservation would expire mid-call
    and the agent be offered a second caller. Past the ring timeout the agent is ON_CALL."""
    monkeypatch.setattr(service, "ANSWER_MARGIN", 0.05)
    state = MemoryState(0.5)  # the reservation expires long before the call ends
    acd = service.Acd(routing(ring_timeout=0.1, max_wait=30), state, clock=time.time, rng=random.Random(1),
                      max_idle=0.05)
    await state.set_presence("1001", Presence.READY, time.time())
    await acd.start()
    channel = SlowDialChannel(talk=1.0)
    journal = Journal()

    async def play(prompts: tuple[str, ...]) -> str | None:
        return None

    async def say(kind: str, value: object) -> str | None:
        return None

    call = service.AcdCall("call-1", "4008001234", "13700000001", "en-US", "en", journal, play, say,
                           lambda queue: HandoffTarget(queue, "ivr-queue", queue, 300))
    try:
        route = asyncio.create_task(acd.route(channel, call, "billing", None))
        await asyncio.sleep(0.7)  # answered, talking, reservation TTL over
        agent = (await state.agents())["1001"]
        assert agent.activity is Activity.ON_CALL and agent.call_id == "call-1"
        assert await state.waiting() == []
        assert not await state.reserve("1001", "call-2", time.time())
        result = await route
    finally:
        await acd.stop()
    assert result.disposition is Disposition.ANSWERED and result.hung_up_by == "agent"
    assert channel.commands.count("EXEC Dial PJSIP/1001,0.1,g") == 1
    agent = (await state.agents())["1001"]
    assert agent.activity is Activity.WRAP_UP and agent.calls_since(0) == 1
    assert [(leg.outcome, leg.agent_id, leg.talk_seconds) for leg in journal.queue_legs] == [("answered", "1001", 1.0)]


# --- steps and affinity over time -----------------------------------------------------------------


async def test_step_widens_after_its_time_and_then_an_agent_rings(acd_rig: RigFactory) -> None:
    # Every agent has billing 3: nobody meets the first step (billing >= 4) for 0.3 s.
    rig = await acd_rig(routing(steps=[{"skills": {"billing": 4}, "for": 0.3}, {}], max_wait=2))
    await rig.ready("1001", "1002")
    result = await rig.call(agents={f"PJSIP/{a}": Agent(answer_after=1, talk=20) for a in ("1001", "1002")})
    assert dialed(result) == ["PJSIP/1001,5,g"]
    row = await rig.row(result)
    (leg,) = row.queue_legs
    assert leg.outcome == "answered" and leg.waited >= 0.3
    assert [e.value for e in row.events if e.kind is EventKind.STEP] == ["billing step 1", "billing step 2"]


async def test_returning_caller_gets_the_last_agent_for_the_hold_then_anyone(tmp_path: Path) -> None:
    """Affinity comes from the call records: both clocks start at OPEN and move with real
    time, so the first call's end is inside the lookback window of the second."""
    start = time.time()
    acd_clock = DialClock(lambda: OPEN.timestamp() + time.time() - start)
    config = routing(affinity={"enabled": True, "lookback_days": 14, "min_talk": 30, "hold": 0.4}, max_wait=3)
    live = MemoryState(60.0, clock=acd_clock)
    controller = Controller(REPO / "config", ControllerOptions(
        port=0, sqlite_path=tmp_path / "calls.sqlite", routing=config, live_state=live, acd_max_idle=0.05,
        clock=lambda: dt.datetime.fromtimestamp(acd_clock(), dt.timezone.utc), acd_clock=acd_clock,
    ))
    await controller.start()
    rig = AcdRig(controller, live, acd_clock)
    phones = {f"PJSIP/{a}": Agent(answer_after=1, talk=60) for a in ("1001", "1002", "1003")}
    returning = "13911112222"
    try:
        await live.set_presence("1003", Presence.READY, acd_clock())
        first = await rig.call(agents=phones, caller_id=returning)
        assert dialed(first) == ["PJSIP/1003,5,g"]
        await rig.row(first)  # flushed: the caller's history now holds a 60 s call with 1003
        for agent in ("1001", "1002"):
            await live.set_presence(agent, Presence.READY, acd_clock())

        # 1003 has handled the most calls, so least_busy alone would ring 1001.
        second = await rig.call(agents=phones, caller_id=returning)
        assert dialed(second) == ["PJSIP/1003,5,g"]
        enqueued = [e.value for e in (await rig.row(second)).events if e.kind is EventKind.ENQUEUED]
        assert enqueued == ["billing priority=0 returning affinity=1003"]
        stranger = await rig.call(agents=phones, caller_id="13900000009")
        assert dialed(stranger) == ["PJSIP/1001,5,g"]

        # The last agent is paused: the caller is held for them, then the least busy rings.
        await live.set_presence("1003", Presence.PAUSED, acd_clock())
        third = await rig.call(agents=phones, caller_id=returning)
        assert dialed(third) == ["PJSIP/1002,5,g"]
        (leg,) = (await rig.row(third)).queue_legs
        assert leg.waited >= 0.4
    finally:
        await controller.stop()


# --- VIP from a lookup ----------------------------------------------------------------------------

VIP_CHECK = """
  vip-check:
    type: lookup
    request: {url: /crm/caller, params: {number: "{caller}"}, timeout: 2}
    self_service: false
    branches:
      - when: {field: vip, equals: true}
        set: {vip: "{answer.vip}", issue: "{answer.tier}"}
        next: billing-queue
      - next: billing-queue
    on_failure: billing-queue
"""


async def crm(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A CRM that knows one VIP, 13900008888."""
    request = (await reader.readline()).decode()
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    body = b'{"vip": true, "tier": "gold"}' if "8888" in request else b'{"vip": false}'
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: "
                 + str(len(body)).encode() + b"\r\n\r\n" + body)
    await writer.drain()
    writer.close()


async def test_vip_flagged_by_a_lookup_is_served_before_an_earlier_caller(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    (tmp_path / "prompts").symlink_to(REPO / "prompts")  # prompts.local_dir is ../prompts/sounds
    flow = config / "flows" / "main.yaml"
    text = flow.read_text()
    assert text.count("      2: billing-queue\n    back: true") == 1
    flow.write_text(text.replace("      2: billing-queue\n    back: true", "      2: vip-check\n    back: true")
                    .replace("\n  billing-queue:\n", VIP_CHECK + "\n  billing-queue:\n"))
    backend = await asyncio.start_server(crm, "127.0.0.1", 0)
    live = MemoryState(60.0)
    acd = routing(max_wait=5)
    # A wrap-up after the first call keeps the two answers well apart in time.
    acd = acd.model_copy(update={"agents": {**acd.agents, "1001": acd.agents["1001"].model_copy(update={"wrap_up": 0.3})}})
    controller = Controller(config, ControllerOptions(
        port=0, sqlite_path=tmp_path / "calls.sqlite", clock=lambda: OPEN, routing=acd,
        live_state=live, acd_max_idle=0.05,
        lookup_base_url=f"http://127.0.0.1:{backend.sockets[0].getsockname()[1]}",
    ))
    await controller.start()
    rig = AcdRig(controller, live)
    phones: dict[str, AgentBehaviour] = {"PJSIP/1001": Agent(answer_after=1, talk=30)}
    async def waiting(count: int) -> None:
        async with asyncio.timeout(5):
            while len(await live.waiting()) < count:
                await asyncio.sleep(0.01)

    try:
        await rig.ready("1001", presence=Presence.PAUSED)  # logged in, so callers wait for them
        normal = asyncio.create_task(rig.call(agents=phones, caller_id="13700000001"))
        await waiting(1)
        vip = asyncio.create_task(rig.call(agents=phones, caller_id="13900008888"))
        await waiting(2)
        await rig.ready("1001")  # one agent for two callers: who goes first?
        normal_row, vip_row = [await rig.row(r) for r in await asyncio.gather(normal, vip)]
    finally:
        await controller.stop()
        backend.close()
    (normal_leg,) = normal_row.queue_legs
    (vip_leg,) = vip_row.queue_legs
    assert normal_leg.enqueued_at < vip_leg.enqueued_at  # the VIP came later...
    assert vip_leg.answered_at is not None and normal_leg.answered_at is not None
    assert (normal_leg.answered_at - vip_leg.answered_at).total_seconds() >= 0.3  # ...and was served first
    assert (vip_leg.priority, normal_leg.priority) == (10, 0)
    enqueued = [e.value for e in vip_row.events if e.kind is EventKind.ENQUEUED]
    assert enqueued == ["billing priority=10 vip"]



# --- callback offer ----------------------------------------------------------------------------------


async def test_without_ami_nobody_could_call_back_so_no_callback_is_offered(acd_rig: RigFactory) -> None:
    """Requests are worked off by the callback worker, which needs AMI (tests/routing/test_callbacks.py)."""
    rig = await acd_rig(routing(overflow={"timeout": {"callback": True}, "no_agents": {"voicemail": "401"}}))
    await rig.ready("1001", presence=Presence.PAUSED)
    result = await rig.call()
    assert "callback-offer" not in result.prompts
    assert result.location == ("ivr-voicemail", "401", "1")
    row = await rig.row(result)
    assert "overflow:timeout -> callback not offered: callbacks unavailable" in acd_path(row)
    assert row.detail == "timeout -> voicemail 401"


class LateWriteState(MemoryState):
    """A paused Redis: the client gives up on a command (StateUnavailable), and the command
    runs anyway when Redis resumes. `late` names the one write that does this, once."""

    def __init__(self, late: str) -> None:
        super().__init__(60.0)
        self.late = late

    async def enqueue(self, caller: Caller) -> None:
        await super().enqueue(caller)
        self._timed_out("enqueue")

    async def reserve(self, agent_id: str, call_id: str, now: float) -> bool:
        done = await super().reserve(agent_id, call_id, now)
        self._timed_out("reserve")
        return done

    def _timed_out(self, write: str) -> None:
        if self.late == write:
            self.late = ""
            raise StateUnavailable("redis://127.0.0.1:6379: reserve failed: TimeoutError: Timeout reading from socket")


@pytest.mark.parametrize("write", ["enqueue", "reserve"])
async def test_a_write_that_timed_out_but_ran_leaves_no_ghost_caller_and_no_reserved_agent(
    acd_rig: RigFactory, write: str
) -> None:
    """The controller cannot know whether a write it gave up on ran: its clean-up undoes it
    either way (dequeue and offer_ended are compare-and-set, harmless if it did not run)."""
    state = LateWriteState(write)
    rig = await acd_rig(routing(max_wait=30), state)
    await rig.ready("1001")
    result = await rig.call()
    assert result.location == ("ivr-queue", "billing", "1")  # the live state failed: the dialplan's queue
    await assert_nobody_reserved(state)


# --- the agent's INVITE ---------------------------------------------------------------------------


async def test_the_agent_leg_carries_the_call_id_and_the_callers_context_as_sip_headers(acd_rig: RigFactory) -> None:
    """One EXEC Dial, its b() pre-dial handler adding the headers ([ivr-agent-headers]): the
    call id of the call record, queue, hotline, language, customer and the queue's CRM link,
    which arrives intact through Dial's parsing although it holds `,` `(` `)`."""
    rig = await acd_rig(routing(crm_url="https://crm.example/c?phone={caller}&call={call_id}&q={queue}&t=a,b(c)"))
    await rig.ready("1001")
    result = await rig.call(agents={"PJSIP/1001": Agent(answer_after=1.0, talk=5.0)}, caller_id="+8613700000009")
    row = await rig.row(result)
    (leg,) = result.dials
    assert (leg.target, leg.status) == ("PJSIP/1001", "ANSWER")
    assert leg.headers == {
        "X-IVR-Call-Id": row.call_id,
        "X-IVR-Queue": "billing",
        "X-IVR-Hotline": "4008001234",
        "X-IVR-Language": "en-US",
        "X-IVR-Customer": "new",
        "X-IVR-Pop-Url": f"https://crm.example/c?phone=%2B8613700000009&call={row.call_id}&q=billing&t=a%2Cb%28c%29",
    }
    dials = [line for direction, line in result.transcript if direction == "S" and line.startswith("EXEC Dial")]
    assert len(dials) == 1 and dials[0].startswith("EXEC Dial PJSIP/1001,5,gb(ivr-agent-headers^s^1(")
    # No AGI command more than before: the headers travel in the Dial.
    commands = sent(result)
    dial = commands.index("EXEC Dial PJSIP/1001,5,g")
    assert commands[dial - 2:dial + 3] == ['SET VARIABLE IVR_STATUS "AGENT"', "SET MUSIC OFF", "EXEC Dial PJSIP/1001,5,g",
                                           "GET VARIABLE DIALSTATUS", "GET VARIABLE ANSWEREDTIME"]


async def test_without_a_crm_url_the_agent_leg_has_no_pop_url_and_a_vip_is_told(acd_rig: RigFactory) -> None:
    config = routing()
    rig = await acd_rig(config.model_copy(update={"classification": Classification(vip_numbers=("13800138000",))}))
    await rig.ready("1001")
    result = await rig.call(agents={"PJSIP/1001": Agent(answer_after=1.0, talk=5.0)}, caller_id="+8613800138000")
    (leg,) = result.dials
    assert "X-IVR-Pop-Url" not in leg.headers
    assert leg.headers["X-IVR-Customer"] == "vip"
    assert leg.predial is not None and leg.predial[:3] == ("ivr-agent-headers", "s", "1")


async def test_a_required_wrap_up_code_without_a_desk_keeps_the_agents_own_wrap_up(acd_rig: RigFactory) -> None:
    """Nobody could pick a code without the agent desk: the agent is not held for the code's
    time limit (a controller run without the desk, e.g. the real-PBX tier's example config)."""
    config = routing(wrap_up={"required": True, "limit": 120, "codes": [{"code": "other"}]})
    config = config.model_copy(update={"agents": {**config.agents, "1001": config.agents["1001"].model_copy(
        update={"wrap_up": 7})}})
    rig = await acd_rig(config)
    await rig.ready("1001")
    result = await rig.call(agents={"PJSIP/1001": Agent(answer_after=1.0, talk=2.0)})
    (leg,) = (await rig.row(result)).queue_legs
    assert leg.wrap_seconds == 7
    state = await rig.state.agent("1001")
    assert state.wrap_up_until - state.idle_since == pytest.approx(7)
