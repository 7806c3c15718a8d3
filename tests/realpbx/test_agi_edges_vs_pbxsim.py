"""The AGI edges a real Asterisk 22 showed, played against it and against pbxsim alike.

The same controller code (FastAgiServer, AgiSession) runs one scenario against the real PBX
and against the stand-in, and what the controller sees must be the same: the command's
outcome, the commands it sent (none to a channel known to be gone), the hang-up cause of the
caller's channel. The real calls need no SIP phone: AMI `Originate` of
`Local/<hotline>@ivr-hotline` runs the shipped dialplan into the AGI on its `;2` side while
the `;1` side (the caller) waits; AMI `PlayDTMF` presses the caller's keys, AMI `Hangup`
hangs the caller up (cause 16, a BYE) or has Asterisk tear the call down (cause 18).
PlayDTMF is app_senddtmf's, which a call does not need: this module boots its own Asterisk
with the shipped dialplans/ and modules.conf plus that one module.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from asteriskkit import DIALPLANS, RealAsterisk, require_asterisk

from ivr.agi import commands as c
from ivr.agi.errors import AgiHangup, AgiRecordNotWritten
from ivr.agi.server import FastAgiServer, Router
from ivr.agi.session import AgiSession
from ivr.pbxsim import CallerScript, HangUp, Press, SimCall, SoundLibrary, place_call
from ivr.pbxsim.ami import AmiCallEvents, AmiPeer
from ivr.records.causes import ended_by_cause

HOTLINE = "4008001234"


@pytest.fixture(scope="module")
def pbx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealAsterisk]:
    program = require_asterisk()
    folder = tmp_path_factory.mktemp("asterisk-dtmf")
    modules = folder / "modules.conf"
    modules.write_text((DIALPLANS / "modules.conf").read_text() + "load => app_senddtmf.so  ; PlayDTMF (tests)\n")
    asterisk = RealAsterisk(program, folder)
    asterisk.start(modules=modules)
    yield asterisk
    asterisk.stop()


@dataclass
class Seen:
    """What the controller saw of one call."""

    outcome: list[object] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    started: asyncio.Event = field(default_factory=asyncio.Event)  # the scenario's key command is out
    done: asyncio.Event = field(default_factory=asyncio.Event)


Scenario = Callable[[AgiSession, Seen], Awaitable[None]]


async def hash_in_the_beep(session: AgiSession, seen: Seen) -> None:
    await session.answer()
    seen.started.set()
    seen.outcome.append(await session.record_file("comment-x", "wav", escape_digits="#", timeout_ms=10_000,
                                                  beep=True, silence_s=3))
    seen.outcome.append((await session.stream_file("beep")).failed)  # the session goes on


def missing_directory(directory: str) -> Scenario:
    async def scenario(session: AgiSession, seen: Seen) -> None:
        await session.answer()
        try:
            await session.record_file(f"{directory}/comment-x", "wav", timeout_ms=3000, beep=True)
        except AgiRecordNotWritten as exc:
            seen.outcome.append(("not written", exc.filename))
        seen.outcome.append((await session.stream_file("beep")).failed)

    return scenario


async def hang_up_in_a_prompt(session: AgiSession, seen: Seen) -> None:
    await session.answer()
    seen.started.set()
    try:
        await session.stream_file("demo-congrats")
    except AgiHangup:
        seen.outcome.append("hangup")


class Agi:
    """The controller's FastAGI server on `port`, running one scenario per call."""

    def __init__(self, port: int) -> None:
        self.scenario: Scenario | None = None
        self.seen = Seen()
        router = Router()
        router.add("ivr", self._handle)
        self.server = FastAgiServer(router, port=port, on_turnaround=lambda verb, _s: self.seen.sent.append(verb))

    async def _handle(self, session: AgiSession) -> None:
        assert self.scenario is not None
        try:
            await self.scenario(session, self.seen)
        finally:
            self.seen.done.set()

    def run(self, scenario: Scenario) -> Seen:
        self.scenario, self.seen = scenario, Seen()
        return self.seen


@pytest.fixture
async def agi(pbx: RealAsterisk) -> AsyncIterator[Agi]:
    agi = Agi(pbx.ports.agi)  # where the dialplan's IVR_AGI points
    await agi.server.start()
    yield agi
    await agi.server.close(grace=2)


class Ami:
    """A bare AMI client as the `ivr` user of manager.conf."""

    _ids = itertools.count()

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.events: list[dict[str, str]] = []
        self.task = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, port: int) -> Ami:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await reader.readline()  # banner
        ami = cls(reader, writer)
        ami.send("Login", Username="ivr", Secret="change-me-ami")
        await ami.wait_for(lambda e: e.get("Message") == "Authentication accepted")
        return ami

    async def _read(self) -> None:
        block: dict[str, str] = {}
        while line := await self.reader.readline():
            text = line.decode().rstrip("\r\n")
            if not text:
                self.events.append(block)
                block = {}
            elif ": " in text:
                key, _, value = text.partition(": ")
                block[key] = value

    def send(self, action: str, **headers: str) -> None:
        lines = [f"Action: {action}", f"ActionID: t{next(self._ids)}", *(f"{k}: {v}" for k, v in headers.items())]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    async def wait_for(self, match: Callable[[dict[str, str]], bool], timeout: float = 10.0) -> dict[str, str]:
        async with asyncio.timeout(timeout):
            while True:
                for event in self.events:
                    if match(event):
                        return event
                await asyncio.sleep(0.02)

    async def call(self) -> str:
        """A caller on `;1` who waits; returns the `;1` channel's name."""
        self.send("Originate", Channel=f"Local/{HOTLINE}@ivr-hotline", Application="Wait", Data="30", Async="true")
        response = await self.wait_for(lambda e: e.get("Event") == "OriginateResponse")
        assert response["Response"] == "Success", response
        return response["Channel"]

    async def close(self) -> None:
        self.writer.close()
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


@pytest.fixture
async def ami(pbx: RealAsterisk) -> AsyncIterator[Ami]:
    ami = await Ami.connect(pbx.ports.ami)
    yield ami
    await ami.close()


async def on_pbxsim(scenario: Scenario, call: SimCall, peer: AmiPeer | None = None) -> Seen:
    agi = Agi(0)
    await agi.server.start()
    seen = agi.run(scenario)
    try:
        observer = AmiCallEvents(peer) if peer is not None else None
        result = await place_call("127.0.0.1", agi.server.bound_port, call, sounds=SoundLibrary(),
                                  observer=observer)
        assert result.error is None and result.server_closed, result.error
        await asyncio.wait_for(seen.done.wait(), 5)
    finally:
        await agi.server.close(grace=2)
    return seen


def sim_call(*steps: Press | HangUp, missing_dirs: tuple[str, ...] = ()) -> SimCall:
    return SimCall(CallerScript(steps), extension=HOTLINE, context="ivr-controller",
                   script=f"ivr?hotline={HOTLINE}", missing_dirs=missing_dirs)


async def test_hash_pressed_during_the_beep_is_the_callers_end_of_comment_on_both(agi: Agi, ami: Ami) -> None:
    seen = agi.run(hash_in_the_beep)
    caller = await ami.call()
    await asyncio.wait_for(seen.started.wait(), 10)
    await asyncio.sleep(0.15)  # RECORD FILE is out and the beep (0.43 s) playing
    ami.send("PlayDTMF", Channel=caller, Digit="#", Duration="100")
    await asyncio.wait_for(seen.done.wait(), 15)
    ami.send("Hangup", Channel=caller)
    ami.send("Hangup", Channel=caller)

    sim = await on_pbxsim(hash_in_the_beep, sim_call(Press("#", on_prompt="beep", after=0.15)))
    expected = [c.Recording("dtmf", "#", 0, during_beep=True), False]
    assert (seen.outcome, seen.sent) == (expected, ["ANSWER", "RECORD FILE", "STREAM FILE"])
    assert (sim.outcome, sim.sent) == (seen.outcome, seen.sent)


async def test_record_file_into_a_missing_directory_is_not_written_and_the_call_goes_on_on_both(
        agi: Agi, ami: Ami, tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-dir")
    seen = agi.run(missing_directory(missing))
    caller = await ami.call()
    await asyncio.wait_for(seen.done.wait(), 15)
    ami.send("Hangup", Channel=caller)

    sim = await on_pbxsim(missing_directory(missing), sim_call(missing_dirs=(missing,)))
    expected = [("not written", f"{missing}/comment-x"), False]
    assert (seen.outcome, seen.sent) == (expected, ["ANSWER", "RECORD FILE", "STREAM FILE"])
    assert (sim.outcome, sim.sent) == (seen.outcome, seen.sent)


async def test_nothing_is_sent_after_the_hangup_line_on_both(agi: Agi, ami: Ami) -> None:
    seen = agi.run(hang_up_in_a_prompt)
    caller = await ami.call()
    await asyncio.wait_for(seen.started.wait(), 10)
    await asyncio.sleep(1.0)
    ami.send("Hangup", Channel=caller, Cause="16")  # the caller's BYE: normal clearing
    await asyncio.wait_for(seen.done.wait(), 10)
    agi_channel = caller.removesuffix(";1") + ";2"
    hangup = await ami.wait_for(lambda e: e.get("Event") == "Hangup" and e.get("Channel") == agi_channel)

    peer = AmiPeer()
    sim = await on_pbxsim(hang_up_in_a_prompt, sim_call(HangUp(on_prompt="demo-congrats", after=1.0)), peer)
    # No CHANNEL STATUS after the -1: Asterisk would answer 511 on the dead channel.
    assert (seen.outcome, seen.sent) == (["hangup"], ["ANSWER", "STREAM FILE"])
    assert (sim.outcome, sim.sent) == (seen.outcome, seen.sent)
    assert hangup["Cause"] == "16" and ended_by_cause(16) is None  # stays `caller`
    assert b"Cause: 16\r\n" in peer.sent_events[-1]


async def test_a_call_asterisk_tears_down_itself_has_cause_18_on_both(agi: Agi, ami: Ami) -> None:
    seen = agi.run(hang_up_in_a_prompt)
    caller = await ami.call()
    await asyncio.wait_for(seen.started.wait(), 10)
    await asyncio.sleep(1.0)
    agi_channel = caller.removesuffix(";1") + ";2"
    ami.send("Hangup", Channel=agi_channel, Cause="18")  # as for a phone that never ACKed the 200 OK
    await asyncio.wait_for(seen.done.wait(), 10)
    hangup = await ami.wait_for(lambda e: e.get("Event") == "Hangup" and e.get("Channel") == agi_channel)

    peer = AmiPeer()
    sim = await on_pbxsim(hang_up_in_a_prompt,
                          sim_call(HangUp(on_prompt="demo-congrats", after=1.0, cause=18)), peer)
    assert (seen.outcome, seen.sent) == (["hangup"], ["ANSWER", "STREAM FILE"])
    assert (sim.outcome, sim.sent) == (seen.outcome, seen.sent)
    assert (hangup["Cause"], hangup["Cause-txt"]) == ("18", "No user responding")
    assert b"Cause: 18\r\nCause-txt: No user responding\r\n" in peer.sent_events[-1]
    assert ended_by_cause(int(hangup["Cause"])) == "pbx"
