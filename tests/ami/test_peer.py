"""The AMI peer (ivr.pbxsim.ami) says what Asterisk 22 says, byte for byte where manager.c fixes
the text, and its call events have the header names, in order, of the recorded ones."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivr.ami.codec import NEED_DATA, AmiParser, Banner, Event, Response, encode_action, parse_stream
from ivr.pbxsim import Agent, Busy, CallerScript, CallResult, HangUp, NoAnswer, Press, SimCall, SimChannel, SoundLibrary
from ivr.pbxsim.ami import AmiCallEvents, AmiPeer, agi_result
from ivr.pbxsim.channel import parse_args

from .test_codec import FILES, stream


class RawClient:
    """A bare AMI client on the codec, to see exactly what the peer sends."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.parser = AmiParser()
        self.raw = b""

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def next(self, timeout: float = 3.0) -> object:
        while True:
            item = self.parser.next_event()
            if item is not NEED_DATA:
                return item
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            self.raw += data
            self.parser.receive_data(data)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def login(self, username: str = "ivr", secret: str = "secret") -> None:
        assert isinstance(await self.next(), Banner)
        await self.send(encode_action("Login", {"Username": username, "Secret": secret}, action_id="l1"))
        response = await self.next()
        assert isinstance(response, Response) and response.success
        booted = await self.next()
        assert isinstance(booted, Event) and booted.name == "FullyBooted"

    async def events_until_quiet(self, quiet: float = 0.2) -> list[Event]:
        got: list[Event] = []
        while True:
            try:
                item = await self.next(timeout=quiet)
            except TimeoutError:
                return got
            assert isinstance(item, Event)
            got.append(item)

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass


@pytest.fixture
async def peer() -> AsyncIterator[AmiPeer]:
    p = AmiPeer(auth_failure_delay=0.05)
    await p.start()
    yield p
    await p.close()


@pytest.fixture
async def client(peer: AmiPeer) -> AsyncIterator[RawClient]:
    c = await RawClient.connect(peer.port)
    yield c
    await c.close()


async def test_banner_login_fully_booted_ping_logoff(peer: AmiPeer, client: RawClient) -> None:
    banner = await client.next()
    assert banner == Banner("Asterisk Call Manager/11.0.0")
    await client.send(b"Action: Login\r\nActionID: a1\r\nUsername: ivr\r\nSecret: secret\r\nEvents: on\r\n\r\n")
    assert await client.next() == Response((("Response", "Success"), ("ActionID", "a1"),
                                             ("Message", "Authentication accepted")))
    booted = await client.next()
    assert isinstance(booted, Event)
    assert booted.names == ["Event", "Privilege", "Uptime", "LastReload", "Status"]
    assert booted["Privilege"] == "system,all" and booted["Status"] == "Fully Booted"
    await client.send(b"Action: Ping\r\nActionID: p1\r\n\r\n")
    pong = await client.next()
    assert isinstance(pong, Response)
    assert pong.names == ["Response", "ActionID", "Ping", "Timestamp"] and pong["Ping"] == "Pong"
    assert pong["Timestamp"].split(".")[1].isdigit() and len(pong["Timestamp"].split(".")[1]) == 6
    await client.send(b"Action: Ping\r\n\r\n")  # no ActionID sent: none echoed
    assert (await client.next()).names == ["Response", "Ping", "Timestamp"]  # type: ignore[attr-defined]
    await client.send(b"Action: Frobnicate\r\nActionID: u1\r\n\r\n")
    unknown = await client.next()
    assert isinstance(unknown, Response) and unknown.status == "Error"
    assert unknown.message == "Invalid/unknown command: Frobnicate. Use Action: ListCommands to show available commands."
    await client.send(b"Action: Logoff\r\nActionID: g1\r\n\r\n")
    assert await client.next() == Response((("Response", "Goodbye"), ("ActionID", "g1"),
                                             ("Message", "Thanks for all the fish.")))
    assert await asyncio.wait_for(client.reader.read(), 3) == b""  # Asterisk closes after Goodbye
    assert client.raw.endswith(b"Response: Goodbye\r\nActionID: g1\r\nMessage: Thanks for all the fish.\r\n\r\n")


async def test_refused_login_answers_after_a_pause_and_closes(peer: AmiPeer, client: RawClient) -> None:
    await client.next()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await client.send(b"Action: Login\r\nActionID: a1\r\nUsername: ivr\r\nSecret: wrong\r\n\r\n")
    refused = await client.next()
    assert loop.time() - started >= 0.05  # manager.c: sleep(1) before the error (shortened here)
    assert refused == Response((("Response", "Error"), ("ActionID", "a1"), ("Message", "Authentication failed")))
    assert await asyncio.wait_for(client.reader.read(), 3) == b""
    assert [(a.username, a.accepted) for a in peer.logins] == [("ivr", False)]


async def test_actions_before_login_are_denied(peer: AmiPeer, client: RawClient) -> None:
    await client.next()
    await client.send(b"Action: Ping\r\nActionID: p1\r\n\r\n")
    assert await client.next() == Response((("Response", "Error"), ("ActionID", "p1"),
                                             ("Message", "Permission denied")))
    await client.send(b"ActionID: x\r\n\r\n")
    missing = await client.next()
    assert isinstance(missing, Response) and missing.message == "Missing action in request"


async def test_events_off_gets_no_events(peer: AmiPeer, client: RawClient) -> None:
    await client.next()
    await client.send(encode_action("Login", {"Username": "IVR", "Secret": "secret", "Events": "off"}))
    response = await client.next()
    assert isinstance(response, Response) and response.success  # user names are case-insensitive
    peer.emit("Newchannel", "call", [("Channel", "x")])
    assert await client.events_until_quiet() == []


async def test_drop_link_and_restart_on_the_same_port(peer: AmiPeer) -> None:
    port = peer.port
    first = await RawClient.connect(port)
    await first.login()
    await peer.drop_link()
    assert await asyncio.wait_for(first.reader.read(), 3) == b""
    assert peer.clients == 0
    await peer.stop_listening()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
    await peer.start()
    assert peer.port == port
    again = await RawClient.connect(port)
    await again.login()
    assert peer.logged_in == 1
    await first.close()
    await again.close()


# --- call events ------------------------------------------------------------------------------


def recorded_header_orders(transcripts: Path) -> dict[str, set[tuple[str, ...]]]:
    orders: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    for name in FILES:
        for item in parse_stream(stream(transcripts, name)):
            if isinstance(item, Event):
                orders[item.name].add(tuple(item.names))
    return orders


def play(observer: AmiCallEvents, call: SimCall, commands: list[str], uniqueid: str, agents: dict[str, object]) -> None:
    """Drive the observer as place_call does, without a FastAGI server."""
    channel = SimChannel(call.caller, SoundLibrary(), agents=dict(agents))  # type: ignore[arg-type]
    channel.variables.update({"__uniqueid": uniqueid})
    name = f"Local/{call.extension}@{call.context}-00000001;2"
    observer.call_started(call, uniqueid, name, f"agi://127.0.0.1:4573/{call.script}")
    for line in commands:
        for _moment in observer.command(uniqueid, line, channel.handle(line), channel):
            pass
    result = CallResult(uniqueid, [], channel.heard, channel.pressed, channel.variables, channel.mixmonitor,
                        channel.location, channel.hung_up_by, channel.now, True)
    observer.call_ended(result)


SCRIPT = [
    "ANSWER",
    "GET VARIABLE CHANNEL(language)",
    'SET VARIABLE IVR_CALL_ID "abc 1"',
    "EXEC Set IVR_HOTLINE=400",
    "EXEC MixMonitor /var/spool/asterisk/monitor/rec-1.wav,b",
    'STREAM FILE tt-monkeys "12"',
    "GET DATA beep 3000 2",
    "EXEC Dial PJSIP/agent1,10,g",
    "EXEC Dial PJSIP/agent2,10,g",
    "EXEC Dial Local/agent3@agents,5,g",
    "FOO BAR",
    "STREAM FILE",
    "SET CONTEXT ivr-queue",
    "SET EXTENSION support",
    "SET PRIORITY 1",
]


async def test_scripted_call_events_have_the_recorded_header_order(
    peer: AmiPeer, client: RawClient, transcripts: Path
) -> None:
    await client.login()
    call = SimCall(CallerScript((Press("1", at=0.5), Press("42", at=1.5))), extension="400", context="ivr")
    agents = {"PJSIP/agent1": Agent(answer_after=1.0, talk=2.0), "PJSIP/agent2": Busy(),
              "Local/agent3@agents": NoAnswer()}
    play(AmiCallEvents(peer, hangup_cause=16), call, SCRIPT, "1795485396.1", agents)
    got = await client.events_until_quiet()
    recorded = recorded_header_orders(transcripts)
    names = [e.name for e in got]
    for required in ("Newchannel", "Newexten", "Newstate", "VarSet", "AGIExecStart", "AGIExecEnd", "DTMFBegin",
                     "DTMFEnd", "MixMonitorStart", "DialBegin", "DialEnd", "Hangup"):
        assert required in names, required
    for event in got:
        assert tuple(event.names) in recorded[event.name], (event.name, event.names)
    assert names.count("AGIExecStart") == names.count("AGIExecEnd") == len(SCRIPT)
    # AGIExecStart / End pair up by CommandId, with res_agi's ResultCode / Result
    ends = {e["CommandId"]: e for e in got if e.name == "AGIExecEnd"}
    results = {e["Command"]: (e["ResultCode"], e["Result"]) for e in ends.values()}
    assert results["FOO BAR"] == ("510", "Invalid or unknown command")
    assert results["STREAM FILE"] == ("520", "Usage")
    assert results["ANSWER"] == ("200", "Success")
    # the digit pressed during the prompt, between that command's start and end
    stream_start = names.index("AGIExecStart", [i for i, e in enumerate(got) if e.get("Command") ==
                                                 'STREAM FILE tt-monkeys "12"'][0])
    assert got[stream_start + 1].name == "DTMFBegin" and got[stream_start + 1]["Digit"] == "1"
    assert [e["Digit"] for e in got if e.name == "DTMFEnd"] == ["1", "4", "2"]
    var = {e["Variable"]: e["Value"] for e in got if e.name == "VarSet"}
    assert var["IVR_CALL_ID"] == "abc 1" and var["IVR_HOTLINE"] == "400"
    assert var["MIXMONITOR_FILENAME"] == "/var/spool/asterisk/monitor/rec-1.wav"
    dials = [(e["DialString"]) for e in got if e.name == "DialBegin"]
    assert dials == ["agent1", "agent2", "agent3@agents"]
    assert [e["DialStatus"] for e in got if e.name == "DialEnd"] == ["ANSWER", "BUSY", "NOANSWER"]
    hangups = [(e["Channel"], e["Cause"], e["Cause-txt"]) for e in got if e.name == "Hangup"]
    assert [h[1:] for h in hangups] == [("16", "Normal Clearing"), ("17", "User busy"),
                                        ("19", "User alerting, no answer"), ("16", "Normal Clearing")]
    last = got[-1]
    assert last.name == "Hangup" and last["Uniqueid"] == "1795485396.1"
    assert (last["Context"], last["Exten"], last["Priority"]) == ("ivr-queue", "support", "1")


async def test_hangup_cause_is_the_observers(peer: AmiPeer, client: RawClient) -> None:
    await client.login()
    call = SimCall(CallerScript((HangUp(at=1.0),)))
    play(AmiCallEvents(peer, hangup_cause=19), call, ["ANSWER", 'STREAM FILE tt-monkeys ""'], "9.9", {})
    got = await client.events_until_quiet()
    hangup = got[-1]
    assert (hangup.name, hangup["Uniqueid"], hangup["Cause"], hangup["Cause-txt"]) == (
        "Hangup", "9.9", "19", "User alerting, no answer")
    status = [e for e in got if e.name == "VarSet" and e["Variable"] == "AGISTATUS"]
    assert status[0]["Value"] == "HANGUP"
    end = [e for e in got if e.name == "AGIExecEnd" and e["Command"].startswith("STREAM")][0]
    assert (end["ResultCode"], end["Result"]) == ("-1", "Failure")  # as in ami-hangup.txt


def test_agi_result_codes_match_the_recordings(transcripts: Path) -> None:
    """ResultCode/Result for the replies agi-*.txt show, against what ami-*.txt recorded."""
    cases = {
        ("STREAM FILE tt-weasels \"\"", "200 result=-1 endpos=1234"): ("-1", "Failure"),
        ("GET DATA beep 1000", "200 result=-1"): ("200", "Success"),
        ("EXEC NoSuchApplication x", "200 result=-2"): ("200", "Unknown Result"),
        ("EXEC Playback beep", "200 result=0"): ("200", "Success"),
        ("HANGUP", "511 Command Not Permitted on a dead channel or intercept routine"):
            ("511", "Command Not Permitted on a dead channel or intercept routine"),
    }
    for (line, reply), expected in cases.items():
        assert agi_result(parse_args(line), [reply]) == expected, line
