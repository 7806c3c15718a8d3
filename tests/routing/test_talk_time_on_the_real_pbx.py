"""Talk time on the real Asterisk 22: the stored talk_seconds of an answered ACD call is the
agent channel's time in the bridge, as AMI's BridgeEnter/BridgeLeave date it, not Asterisk's
ANSWEREDTIME (the caller's time since the dialplan answered it, IVR and queue included).

No SIP phones: the caller is an AMI Originate of `Local/4008001234@ivr-hotline` (the `;2` half
runs the project's dialplan and the controller's IVR; the test presses keys on the `;1` half
with PlayDTMF while each menu prompt plays), and agent 1001's endpoint is
`Local/agent1001@test-agent`, a test context that answers, waits 8 s and hangs up. The test
context, app_senddtmf (PlayDTMF) and a manager user that sees AGI events are added to the
rendered copy only, never to dialplans/.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from asteriskkit import RealAsterisk, require_asterisk
from ivr.ami.codec import NEED_DATA, AmiParser, Banner, Event, Response, encode_action
from servekit import REPO, Served, copy_config, ivr

pytestmark = pytest.mark.asterisk

HOTLINE = "4008001234"
AGENT_TALK = 8  # seconds: Wait(8) in the agent's test context
WATCHER = ("talktest", "talktest-secret")
TEST_DIALPLAN = f"""
; talk-time test only (tests/routing/test_talk_time_on_the_real_pbx.py)
[test-agent]
exten => agent1001,1,Answer()
 same => n,Wait({AGENT_TALK})
 same => n,Hangup()

[test-caller]
exten => s,1,Wait(120)
 same => n,Hangup()
"""
# The menu walk to the billing queue (config/flows): English, billing, an agent.
KEYS = (("choose-language", "2"), ("main-menu", "1"), ("billing-menu", "2"))


@pytest.fixture(scope="module")
def pbx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealAsterisk]:
    program = require_asterisk()
    asterisk = RealAsterisk(program, tmp_path_factory.mktemp("asterisk"))
    asterisk.start()
    try:
        (asterisk.conf / "extensions_talktest.conf").write_text(TEST_DIALPLAN)
        with (asterisk.conf / "extensions.conf").open("a") as extensions:
            extensions.write("\n#include extensions_talktest.conf\n")
        user, secret = WATCHER
        with (asterisk.conf / "manager.conf").open("a") as manager:
            manager.write(f"\n[{user}]\nsecret = {secret}\npermit = 127.0.0.1/255.255.255.255\n"
                          "read = all\nwrite = call,originate\n")
        for conf in ("extensions", "manager"):  # run-asterisk reads them from conf; a binary from run/etc
            etc = asterisk.run_dir / "etc"
            if etc.is_dir() and (etc / f"{conf}.conf").exists():
                (etc / f"{conf}.conf").write_text((asterisk.conf / f"{conf}.conf").read_text())
        if (asterisk.run_dir / "etc").is_dir():
            (asterisk.run_dir / "etc" / "extensions_talktest.conf").write_text(TEST_DIALPLAN)
        asterisk.cli("module load app_senddtmf.so")
        asterisk.cli("dialplan reload")
        asterisk.cli("manager reload")
        assert "agent1001" in asterisk.cli("dialplan show test-agent"), asterisk.cli("dialplan show test-agent")
        assert "PlayDTMF" in asterisk.cli("manager show commands"), "app_senddtmf did not load"
        yield asterisk
    finally:
        asterisk.stop()


def controller_config(tmp_path: Path, pbx: RealAsterisk) -> Path:
    """The example config pointed at this PBX, AMI on, always open, agent 1001 on the test context."""
    config = copy_config(tmp_path)
    server = config / "server.yaml"
    text = server.read_text().replace("enabled: false", "enabled: true", 1)
    text = text.replace("  port: 5038", f"  port: {pbx.ports.ami}")
    text = text.replace("asterisk_dir: /var/lib/asterisk/sounds/ivr", f"asterisk_dir: {REPO / 'prompts' / 'sounds'}")
    server.write_text(text)
    hotlines = config / "hotlines.yaml"
    text = re.sub(r"mon-fri: \[.*?\]", 'mon-fri: ["00:00-24:00"]', hotlines.read_text())
    text = re.sub(r"sat-sun: \[.*?\]", 'sat-sun: ["00:00-24:00"]', text)
    text = re.sub(r"(?ms)^    holidays:\n.*?^    working_days:\n.*?(?=^\S|\Z)",
                  "    holidays: []\n    working_days: []\n", text)
    hotlines.write_text(text)
    routing = config / "routing.yaml"
    text = routing.read_text()
    assert text.count("endpoint: PJSIP/1001 ") == 1
    routing.write_text(text.replace("endpoint: PJSIP/1001 ", "endpoint: Local/agent1001@test-agent "))
    return config


class Ami:
    """A bare AMI client on the project's codec."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.parser = reader, writer, AmiParser()

    @classmethod
    async def login(cls, port: int) -> Ami:
        ami = cls(*await asyncio.open_connection("127.0.0.1", port))
        assert isinstance(await ami.next(), Banner)
        user, secret = WATCHER
        await ami.send("Login", {"Username": user, "Secret": secret})
        while not isinstance(reply := await ami.next(), Response):
            pass
        assert reply.success, reply
        return ami

    async def next(self, timeout: float = 60.0) -> object:
        while (item := self.parser.next_event()) is NEED_DATA:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            assert data, "AMI closed"
            self.parser.receive_data(data)
        return item

    async def send(self, action: str, headers: dict[str, str]) -> None:
        self.writer.write(encode_action(action, headers, action_id=f"{action}-{time.monotonic()}"))
        await self.writer.drain()

    def close(self) -> None:
        self.writer.close()


def stamp(event: Event) -> float:
    return float(event["Timestamp"])  # manager.conf timestampevents = yes


async def test_stored_talk_time_is_the_agents_bridge_time_not_answeredtime(tmp_path: Path, pbx: RealAsterisk) -> None:
    served = Served(controller_config(tmp_path, pbx), port=pbx.ports.agi)
    ami = await Ami.login(pbx.ports.ami)
    try:
        served.wait_for_log("AMI logged in")
        login = ivr("agents", "login", "1001", "--config", served.config)
        assert login.returncode == 0, login.stderr
        await ami.send("Originate", {
            "Channel": f"Local/{HOTLINE}@ivr-hotline", "Context": "test-caller", "Exten": "s", "Priority": "1",
            "CallerID": '"talk test" <13800009999>', "Async": "true", "Timeout": "30000",
        })
        caller_half = caller = agent = ""  # the ;1 we press keys on, the AGI channel (;2), the agent's channel
        keys = list(KEYS)
        bridge: dict[str, float] = {}
        answered_time: str | None = None
        deadline = time.monotonic() + 120
        while "leave" not in bridge or answered_time is None:
            assert time.monotonic() < deadline, f"no bridge end: {bridge}, keys left {keys}\n{served.output()}"
            event = await ami.next()
            if not isinstance(event, Event):
                continue
            channel, uniqueid = event.get("Channel") or "", event.get("Uniqueid") or ""
            if event.name == "Newchannel" and channel.startswith(f"Local/{HOTLINE}@ivr-hotline-"):
                if channel.endswith(";1"):
                    caller_half = channel
                else:
                    caller = uniqueid
            elif event.name == "AGIExecStart" and uniqueid == caller and keys and keys[0][0] in event["Command"]:
                _, digit = keys.pop(0)
                await asyncio.sleep(0.5)  # into the prompt
                await ami.send("PlayDTMF", {"Channel": caller_half, "Digit": digit, "Duration": "120"})
            elif event.name == "DialEnd" and uniqueid == caller and event.get("DialStatus") == "ANSWER":
                agent = event["DestUniqueid"]
            elif event.name == "BridgeEnter" and agent and uniqueid == agent:
                bridge.setdefault("enter", stamp(event))
            elif event.name == "BridgeLeave" and agent and uniqueid == agent:
                bridge.setdefault("leave", stamp(event))
            elif event.name == "VarSet" and uniqueid == caller and event.get("Variable") == "ANSWEREDTIME":
                answered_time = event.get("Value") or None
        await ami.send("Hangup", {"Channel": caller_half})  # the survey that follows is not this test's
        bridged = bridge["leave"] - bridge["enter"]
        assert AGENT_TALK - 0.5 <= bridged <= AGENT_TALK + 1.5, bridge

        database = served.config / "var" / "calls.sqlite"
        talk: list[tuple[float, str]] = []
        deadline = time.monotonic() + 15
        while not talk or abs(talk[0][0] - bridged) > 0.5:
            assert time.monotonic() < deadline, f"stored {talk}, bridge {bridged:.3f} s\n{served.output()}"
            await asyncio.sleep(0.2)
            if database.exists():
                with sqlite3.connect(database) as db:
                    talk = db.execute(
                        "SELECT talk_seconds, agent_id FROM queue_legs JOIN calls USING (call_id)"
                        " WHERE calls.uniqueid = ? AND outcome = 'answered'", (caller,)).fetchall()
        assert talk[0][1] == "1001"
        assert talk[0][0] == pytest.approx(bridged, abs=0.5)
        # What was stored before: the caller's time since the dialplan answered it, menus and all.
        assert answered_time is not None and int(answered_time) >= bridged + 3, (answered_time, bridged)
        with sqlite3.connect(database) as db:
            (stored_bridge,) = db.execute("SELECT bridge_seconds FROM calls WHERE uniqueid = ?", (caller,)).fetchone()
        assert stored_bridge == pytest.approx(bridged, abs=0.01)
    finally:
        ami.close()
        served.stop()
    assert pbx.wait_no_channels(5.0) == []
