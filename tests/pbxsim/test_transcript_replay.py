"""The PBX peer against real Asterisk 22: replay each recorded server script over TCP.

A small server sends the commands recorded in `../shared/asterisk/agi-*.txt` (the `S>`
lines), the peer plays Asterisk with a caller timed like the recorded one, and every byte
the peer sends must equal what Asterisk sent (the `A>` lines), environment block included.
Only values that differ per call by nature are normalised: uniqueid, thread id and the
channel counter.

The recorder read one reply per command, so a `HANGUP` line it logs in front of the next
reply may have been sent right after the previous one; comparing the whole byte stream,
not command by command, is the faithful check.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ivr.agi.codec import NEED_DATA, TRYING, AgiParser, ConnectionClosed, Reply
from ivr.pbxsim import Agent, CallerScript, HangUp, Press, SimCall, SoundLibrary, place_call
from ivr.pbxsim.caller import AgentBehaviour, Step


@dataclass(frozen=True)
class Recording:
    steps: tuple[Step, ...]
    channel_type: str = "Local"
    caller_id: str = "13800138000"
    caller_name: str = "Test Caller"
    agents: dict[str, AgentBehaviour] = field(default_factory=dict)
    answered_before: float = 0.0


# Times are on the peer's clock, which starts when the AGI starts (the recorded callers'
# times count from the call's start, ~0.3 s earlier): e.g. the digit that cut tt-monkeys
# at endpos=9600 came 1.2 s into the prompt.
RECORDINGS = {
    "digits": Recording((Press("2", at=1.2), Press("13#", at=4.2))),
    "silent": Recording((HangUp(at=29.5),)),
    "hangup": Recording((HangUp(at=0.7),)),
    # The SIP caller's BYE arrives during the last GET DATA (result=-1).
    "sip-caller": Recording((Press("2", at=2.18), Press("13#", at=4.5), HangUp(at=9.6)),
                            channel_type="PJSIP", caller_id="caller1", caller_name="unknown"),
    # Local/agent1@agents answers at once, talks ~2.6 s, hangs up first. ANSWEREDTIME is the
    # caller's time since its own answer, ~0.4 s before the AGI: 3006 ms, 3.
    "survey": Recording((Press("4", at=3.5),), agents={"Local/agent1@agents": Agent(answer_after=0.0, talk=2.6)},
                        answered_before=0.4),
}


def parse(path: Path) -> tuple[bytes, list[str], bytes]:
    """(environment bytes, server commands, Asterisk's bytes after the environment)."""
    env, commands, replies = [], [], []
    for line in path.read_text().splitlines(keepends=True):
        if line.startswith("S> "):
            commands.append(line[3:].rstrip("\n"))
        elif line.startswith("A> "):
            (replies if commands else env).append(line[3:])
    return "".join(env).encode(), commands, "".join(replies).encode()


def normalise(env: bytes) -> bytes:
    text = env.decode()
    text = re.sub(r"(agi_uniqueid|agi_threadid): \S+", r"\1: N", text)
    return re.sub(r"-[0-9a-f]{8}(;2)?\n", r"-XXXXXXXX\1\n", text).encode()


class RecorderServer:
    """Plays the recorded server side: send a command, read until its reply is complete."""

    def __init__(self, commands: list[str]) -> None:
        self.commands = commands
        self.received = bytearray()
        self.environment = b""
        self.done = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = AgiParser()
        try:
            await self._next_event(parser, reader)  # the environment block
            self.environment, self.received[:] = bytes(self.received), b""
            for command in self.commands:
                writer.write(command.encode() + b"\n")
                await writer.drain()
                while True:
                    event = await self._next_event(parser, reader)
                    if isinstance(event, ConnectionClosed):
                        return
                    if isinstance(event, Reply) and event.code != TRYING:
                        break
            # Anything Asterisk still sends after the last reply (a HANGUP line).
            try:
                while more := await asyncio.wait_for(reader.read(4096), 0.2):
                    self.received += more
            except TimeoutError:
                pass
        finally:
            writer.close()  # the server must close: Asterisk keeps the connection open
            self.done.set()

    async def _next_event(self, parser: AgiParser, reader: asyncio.StreamReader) -> object:
        while (event := parser.next_event()) is NEED_DATA:
            data = await reader.read(4096)
            self.received += data
            parser.receive_data(data)
        return event


@pytest.mark.parametrize("name", sorted(RECORDINGS))
async def test_peer_sends_the_bytes_asterisk_sent(transcripts: Path, name: str) -> None:
    environment, commands, expected = parse(transcripts / f"agi-{name}.txt")
    if commands[-1] == "HANGUP" and expected.endswith(b"200 result=1\n"):
        # res_agi sends HANGUP as soon as its loop sees the hung-up channel (agi-digits shows
        # it after the HANGUP command); the recorder's last read timed out and dropped it.
        expected += b"HANGUP\n"
    recording = RECORDINGS[name]
    scn = re.search(rb"scn=(\w*)", environment)
    assert scn is not None
    recorder = RecorderServer(commands)
    server = await asyncio.start_server(recorder.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    call = SimCall(
        CallerScript(recording.steps, caller_id=recording.caller_id, caller_name=recording.caller_name),
        script=f"ivr?hotline=400&scn={scn.group(1).decode()}",
        args=("arg1", "arg two"),
        channel_type=recording.channel_type,
        agents=recording.agents,
        answered_before=recording.answered_before,
    )
    try:
        result = await place_call("127.0.0.1", port, call, sounds=SoundLibrary())
        await asyncio.wait_for(recorder.done.wait(), 5)
    finally:
        server.close()
        await server.wait_closed()
    assert result.error is None and result.server_closed
    # The request URL names the recorder's port 4573; the peer names the port it dialled.
    assert normalise(recorder.environment).replace(f":{port}/".encode(), b":4573/") == normalise(environment)
    assert bytes(recorder.received) == expected
