"""A Dial's AMI events come when Asterisk 22 sends them (ami-survey.txt): DialEnd ANSWER and
the BridgeEnters when the agent answers, BridgeLeave and the agent channel's Hangup when the
call ends, before the Dial's AGIExecEnd; so the controller's reconciled answer and bridge times
are the answer's moment, not the Dial's start or end."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from callkit import OPEN, TO_BILLING, eventually

from amiconfig import config_with_ami

from ivr.ami.codec import Event, Header, banner, parse_stream
from ivr.app import Controller, ControllerOptions
from ivr.pbxsim import Agent, Busy, CallerScript, HangUp, NoAnswer, Press, SimCall, SimChannel, SoundLibrary, place_call
from ivr.pbxsim.ami import AmiCallEvents, AmiPeer
from ivr.pbxsim.caller import AgentBehaviour
from ivr.records.model import CallRow
from routing.config import RoutingConfig
from routing.memory_state import MemoryState
from routing.model import Presence

from .test_codec import stream
from .test_peer import RawClient, recorded_header_orders

REPO = Path(__file__).resolve().parents[2]
HOTLINE = "4008001234"
CALLER, AGENT = "1795485499.7", "1795485499.8"  # the AGI channel of ami-survey.txt and the agent's it dialed
DIAL_EVENTS = {"Newchannel", "DialBegin", "DialEnd", "BridgeCreate", "BridgeEnter", "BridgeLeave", "BridgeDestroy",
               "Hangup", "AGIExecEnd"}


def shape(events: list[Event], caller: str, agent: str) -> list[tuple[str, str, str]]:
    """(event, whose channel, bridge size) of a Dial's events, the agent's other Local half left out."""
    whose = {caller: "caller", agent: "agent", "": "-"}
    return [(e.name, whose[e.get("Uniqueid") or ""], e.get("BridgeNumChannels") or "")
            for e in events if e.name in DIAL_EVENTS and (e.get("Uniqueid") or "") in whose]


def recorded_dial(transcripts: Path) -> list[Event]:
    """ami-survey.txt from the Dial's AGIExecStart to its AGIExecEnd."""
    events = [item for item in parse_stream(stream(transcripts, "ami-survey.txt")) if isinstance(item, Event)]
    start = next(n for n, e in enumerate(events) if e.name == "AGIExecStart" and e["Command"].startswith("EXEC Dial"))
    end = next(n for n, e in enumerate(events) if e.name == "AGIExecEnd" and n > start)
    return events[start:end + 1]


NOBODY_HANGS_UP = CallerScript()


def run_dial(agent: AgentBehaviour, caller: CallerScript = NOBODY_HANGS_UP,
             line: str = "EXEC Dial Local/agent1@agents,10,g", *,
             dead: bool = False) -> tuple[list[tuple[float, Event]], SimChannel]:
    """One Dial through AmiCallEvents, sans I/O: each event with the channel time it was told at."""
    peer = AmiPeer()
    observer = AmiCallEvents(peer)
    channel = SimChannel(caller, SoundLibrary(), agents={"Local/agent1@agents": agent})
    observer.call_started(SimCall(caller), CALLER, "Local/400@ivr-00000003;2", "agi://127.0.0.1:4573/ivr")
    if dead:
        channel.handle("HANGUP")
    told = len(peer.sent_events)
    moment = channel.now
    timed: list[tuple[float, Event]] = []

    def collect() -> None:
        nonlocal told
        for data in peer.sent_events[told:]:
            (event,) = [item for item in parse_stream(banner() + data) if isinstance(item, Event)]
            timed.append((moment, event))
        told = len(peer.sent_events)

    for at in observer.command(CALLER, line, channel.handle(line), channel):
        collect()
        assert at >= moment  # moments only move forward
        moment = at
    collect()
    return timed, channel


def test_answered_dial_tells_the_answer_and_the_bridge_when_the_agent_answers(transcripts: Path) -> None:
    timed, channel = run_dial(Agent(answer_after=3.0, talk=20.0))
    events = [e for _, e in timed]
    agent = next(e["DestUniqueid"] for e in events if e.name == "DialBegin")
    # The same events, in the same order, on the same channels as Asterisk sent.
    assert shape(events, CALLER, agent) == shape(recorded_dial(transcripts), CALLER, AGENT) == [
        ("Newchannel", "agent", ""), ("DialBegin", "caller", ""), ("DialEnd", "caller", ""),
        ("BridgeCreate", "-", "0"), ("BridgeEnter", "agent", "1"), ("BridgeEnter", "caller", "2"),
        ("BridgeLeave", "agent", "1"), ("Hangup", "agent", ""), ("BridgeLeave", "caller", "0"),
        ("BridgeDestroy", "-", "0"), ("AGIExecEnd", "caller", ""),
    ]
    recorded = recorded_header_orders(transcripts)
    for event in events:
        assert tuple(event.names) in recorded[event.name], (event.name, event.names)
    # ...each when it happened: the answer 3 s in, the end after 20 s of talk.
    when = {(e.name, e.get("Uniqueid")): at for at, e in timed}
    assert when[("DialBegin", CALLER)] == 0.0
    assert when[("DialEnd", CALLER)] == when[("BridgeEnter", CALLER)] == when[("BridgeEnter", agent)] == 3.0
    assert when[("BridgeLeave", agent)] == when[("Hangup", agent)] == when[("AGIExecEnd", CALLER)] == 23.0
    assert channel.now == 23.0
    dial_end = next(e for e in events if e.name == "DialEnd")
    assert (dial_end["DialStatus"], dial_end["DestChannelState"], dial_end["DestExten"]) == ("ANSWER", "6", "")
    bridge = {e["BridgeUniqueid"] for e in events if e.name.startswith("Bridge")}
    assert len(bridge) == 1
    recorded_enter = next(e for e in recorded_dial(transcripts) if e.name == "BridgeEnter")
    enter = next(e for e in events if e.name == "BridgeEnter")
    assert enter.headers[2:9] == ((("BridgeUniqueid", bridge.pop()),) + recorded_enter.headers[3:9])


def test_caller_hanging_up_first_leaves_the_bridge_first() -> None:
    timed, _ = run_dial(Agent(answer_after=1.0, talk=20.0), CallerScript((HangUp(at=6.0),)))
    told = [(at, e.name, e.get("Uniqueid") == CALLER, e.get("BridgeNumChannels")) for at, e in timed
            if e.name in DIAL_EVENTS - {"Newchannel", "DialBegin"}]
    assert told == [
        (1.0, "DialEnd", True, None), (1.0, "BridgeCreate", False, "0"), (1.0, "BridgeEnter", False, "1"),
        (1.0, "BridgeEnter", True, "2"),
        (6.0, "BridgeLeave", True, "1"), (6.0, "BridgeLeave", False, "0"), (6.0, "Hangup", False, None),
        (6.0, "BridgeDestroy", False, "0"), (6.0, "AGIExecEnd", True, None),
    ]


@pytest.mark.parametrize(("agent", "caller", "status", "ended"), [
    (NoAnswer(), CallerScript(), "NOANSWER", 10.0),
    (Busy(), CallerScript(), "BUSY", 0.0),
    (NoAnswer(), CallerScript((HangUp(at=4.0),)), "CANCEL", 4.0),
])
def test_unanswered_dial_ends_when_it_stops_ringing_without_a_bridge(
    agent: AgentBehaviour, caller: CallerScript, status: str, ended: float
) -> None:
    timed, _ = run_dial(agent, caller)
    assert [(at, e.name, e.get("DialStatus")) for at, e in timed if e.name in DIAL_EVENTS] == [
        (0.0, "Newchannel", None), (0.0, "DialBegin", None), (ended, "DialEnd", status), (ended, "Hangup", None),
        (ended, "AGIExecEnd", None),
    ]


def test_dial_on_a_dead_channel_or_to_nobody_creates_no_channel() -> None:
    """ami-silent.txt: Dial after the caller hung up sends no DialBegin; CHANUNAVAIL neither."""
    for dead, line in ((True, "EXEC Dial Local/agent1@agents,10"), (False, "EXEC Dial PJSIP/nobody,10")):
        timed, _ = run_dial(NoAnswer(), line=line, dead=dead)
        assert [e.name for _, e in timed] == ["AGIExecStart", "AGIExecEnd"]


# --- in real time, over the wire ------------------------------------------------------------


@pytest.fixture
async def peer() -> AsyncIterator[AmiPeer]:
    p = AmiPeer(auth_failure_delay=0.05)
    p.set_device("PJSIP/1001", "NOT_INUSE", emit=False)
    await p.start()
    yield p
    await p.close()


async def test_dial_events_arrive_at_the_answer_and_the_reply_after_the_talk(peer: AmiPeer) -> None:
    """time_scale 0.1: the agent answers 0.4 s into the Dial and talks 1.2 s."""
    client = await RawClient.connect(peer.port)
    await client.login()
    replied: asyncio.Future[tuple[bytes, float]] = asyncio.get_running_loop().create_future()

    async def server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()).strip():  # the environment
            pass
        writer.write(b"EXEC Dial Local/agent1@agents,10,g\n")
        replied.set_result((await reader.readline(), time.monotonic()))
        writer.close()

    agi = await asyncio.start_server(server, "127.0.0.1", 0)
    call = SimCall(agents={"Local/agent1@agents": Agent(answer_after=4.0, talk=12.0)})
    arrived: dict[tuple[str, str], float] = {}  # (event, whose channel) -> first arrival
    try:
        placed = asyncio.create_task(place_call("127.0.0.1", agi.sockets[0].getsockname()[1], call,
                                                sounds=SoundLibrary(), observer=AmiCallEvents(peer), time_scale=0.1))
        while ("Hangup", "caller") not in arrived:
            event = await client.next(timeout=5.0)
            assert isinstance(event, Event)
            whose = "caller" if (event.get("Channel") or "").startswith("Local/400@ivr-") else "agent"
            arrived.setdefault((event.name, whose), time.monotonic())
        assert (await placed).error is None
        reply, reply_at = replied.result()
    finally:
        agi.close()
        await agi.wait_closed()
        await client.close()
    assert reply == b"200 result=0\n"
    answer = arrived[("DialEnd", "caller")]
    assert 0.3 <= answer - arrived[("DialBegin", "caller")] < 0.9  # the answer's moment, not the Dial's start...
    assert arrived[("BridgeEnter", "agent")] - answer < 0.1 and arrived[("BridgeEnter", "caller")] - answer < 0.1
    ended = arrived[("AGIExecEnd", "caller")]
    assert ended - answer >= 1.1  # ...nor its end
    assert answer < arrived[("BridgeLeave", "agent")] <= arrived[("Hangup", "agent")] <= ended
    assert abs(reply_at - ended) < 0.2


# --- the controller's call record --------------------------------------------------------------


@dataclass
class TimedPeer(AmiPeer):
    """The AMI peer noting when (epoch seconds) it sent each event, and whose channel's it was."""

    sent_at: list[tuple[float, str, str]] = field(default_factory=list)  # (when, event, Uniqueid)

    def emit(self, name: str, privilege: str, headers: Sequence[Header]) -> bytes:
        self.sent_at.append((time.time(), name, dict(headers).get("Uniqueid", "")))
        return super().emit(name, privilege, headers)


def one_agent_routing() -> RoutingConfig:
    return RoutingConfig.model_validate({
        "agents": {"1001": {"name": "1001", "endpoint": "PJSIP/1001", "skills": {"billing": 3}, "wrap_up": 0}},
        "queues": {"billing": {
            "skills": {"billing": 1}, "strategy": "linear", "max_wait": 30, "ring_timeout": 5,
            "announce": {"first_after": 60, "every": 60}, "affinity": {"enabled": False},
            "overflow": {"timeout": {"voicemail": "400"}, "no_agents": {"voicemail": "400"}},
        }},
    })


async def test_the_call_record_has_the_agents_answer_not_the_dials_end(tmp_path: Path) -> None:
    peer = TimedPeer(auth_failure_delay=0.05)
    peer.set_device("PJSIP/1001", "NOT_INUSE", emit=False)
    await peer.start()
    state = MemoryState(60.0)
    controller = Controller(config_with_ami(tmp_path, peer.port), ControllerOptions(
        port=0, sqlite_path=tmp_path / "calls.sqlite", clock=lambda: OPEN, routing=one_agent_routing(),
        live_state=state, acd_max_idle=0.05,
    ))
    await controller.start()
    try:
        assert controller.server is not None and controller.acd is not None and controller.ami_agents is not None
        acd, ami = controller.acd, controller.ami_agents
        await eventually(lambda: ami.resyncs >= 1 and not acd.dispatcher.paused)
        await state.set_presence("1001", Presence.READY, acd.clock())
        sounds = SoundLibrary([(controller.config.server.prompts.asterisk_dir, REPO / "prompts" / "sounds")])
        # At 0.05 the agent answers 0.2 s into the Dial and talks 2 s.
        call = SimCall(CallerScript(TO_BILLING), extension=HOTLINE, script=f"ivr?hotline={HOTLINE}",
                       agents={"PJSIP/1001": Agent(answer_after=4.0, talk=40.0)})
        result = await place_call("127.0.0.1", controller.server.bound_port, call, sounds=sounds,
                                  observer=AmiCallEvents(peer), time_scale=0.05)
        assert result.variables["DIALSTATUS"] == "ANSWER"
        store = controller.store
        assert store is not None
        found: list[CallRow] = []

        async def recorded() -> bool:
            await store.flush()
            found[:] = [row async for row in store.iter_calls() if row.uniqueid == result.uniqueid]
            return bool(found) and found[0].agent_answered_at is not None

        await eventually(recorded)
        row = found[0]
        caller = [(at, name) for at, name, uniqueid in peer.sent_at if uniqueid == result.uniqueid]
        (began,), (answered,) = ([at for at, name in caller if name == event] for event in ("DialBegin", "DialEnd"))
        dial_ended = min(at for at, name in caller if name == "AGIExecEnd" and at > answered)  # the Dial's
        assert 0.15 <= answered - began < 0.6 and dial_ended - answered >= 1.8
        assert row.agent_answered_at is not None and abs(row.agent_answered_at.timestamp() - answered) < 0.1
        assert row.bridged_at is not None and abs(row.bridged_at.timestamp() - answered) < 0.1
        (leg,) = row.queue_legs
        assert leg.answered_at == row.agent_answered_at  # AMI's answer, not the controller's guess

        # Talk is the agent channel's time in the bridge (2 s here), not ANSWEREDTIME: Asterisk sets
        # that on the caller's channel from the caller's own answer, so it counts the IVR as well.
        agent = [(at, name) for at, name, uniqueid in peer.sent_at
                 if uniqueid.startswith(result.uniqueid) and uniqueid != result.uniqueid]
        (entered,), (left,) = ([at for at, name in agent if name == event] for event in ("BridgeEnter", "BridgeLeave"))
        bridge = left - entered

        async def talk_recorded() -> bool:
            await store.flush()
            stored = await store.get_call(row.call_id)
            return stored is not None and stored.queue_legs[0].talk_seconds == pytest.approx(bridge, abs=0.1)

        await eventually(talk_recorded)
        assert 1.8 <= bridge < 2.6
        assert float(result.variables["ANSWEREDTIME"]) > 44  # the IVR's virtual seconds + 4 s ringing + 40 s talk
    finally:
        await controller.stop()
        await peer.close()


def test_keys_are_told_when_they_are_pressed_not_when_the_command_starts() -> None:
    """ami-digits.txt: DTMFBegin as the key goes down, DTMFEnd (DurationMs 100) as it comes up."""
    line = "GET DATA main-menu 5000 2"
    timed, channel = run_dial(Agent(answer_after=1.0, talk=1.0), CallerScript((Press("42", at=1.5),)), line)
    told = [(at, e.name, e.get("Digit")) for at, e in timed if e.name.startswith("DTMF") or e.name == "AGIExecEnd"]
    # The second key (pressed 0.25 s later) ends GET DATA at once: its DTMFEnd cannot come later.
    assert told == [(1.5, "DTMFBegin", "4"), (1.6, "DTMFEnd", "4"), (1.75, "DTMFBegin", "2"), (1.75, "DTMFEnd", "2"),
                    (1.75, "AGIExecEnd", None)]
    assert channel.now == 1.75
