"""The rig's phones (PJSUA2) on the real Asterisk 22 with dialplans/ and `ivr serve`: one
regression test per way pyVoIP 1.6.8 failed there.

1. pyVoIP's INVITE read the SIP socket itself and broke on Asterisk's qualify OPTIONS
   (`SIPParseError: Unable to decipher SIP request: OPTIONS ...`): Asterisk qualifies a
   contact as soon as it registers, so a call placed right after registering met one.
2. pyVoIP ACKed the 200 OK with a To-tag of its own: Asterisk retransmitted the 200 OK and
   hung up after ~32 s (cause 18). A call held for more than 60 s must stay up.
3. pyVoIP's INVITE branch was the same in every phone: PJSIP took a second phone's INVITE
   for a retransmission, so of four agents dialling *71 at once only one was answered.

Plus 20 phones registered and calling at once (pjsua holds 8 phones and 4 calls per
process: the rig's farm runs them in five host processes), a registration refreshed by pjsua
keeping the phone reachable, and both kinds of keys driving the menu.

The long call runs in a process of its own from the first test on, beside the others; the
test that checks it comes after them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from asteriskkit import RealAsterisk
from ivr.rig import audio
from ivr.rig.farm import PhoneFarm
from ivr.rig.phone import LocalAddress, RigPhone, SipServer, free_udp_port
from ivr.rig.runner import Runner
from ivr.rig.scenario import load_files
from rigkit import PROMPTS, REPO, eventually, local_address
from servekit import Served

pytestmark = pytest.mark.asterisk

FARM = Path(__file__).with_name("phonefarm.py")
HOLD = 65  # seconds the long call is held: more than the 32 s after which Asterisk gave up on pyVoIP
EXPIRY = 20  # seconds of registration asked for; Asterisk's minimum_expiration (60) applies


def farm(pbx: RealAsterisk, phones: list[dict[str, Any]], *, rtp: int, linger: float = 0,
         sip_log: Path | None = None) -> subprocess.Popen[str]:
    job = {"pbx": ["127.0.0.1", pbx.ports.sip], "rtp": rtp, "linger": linger, "phones": phones,
           "sip_log": str(sip_log) if sip_log else None}  # fmt: skip
    return subprocess.Popen([sys.executable, str(FARM), json.dumps(job)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def farm_result(process: subprocess.Popen[str], *, within: float) -> list[dict[str, Any]]:
    """The farm's results; it must exit 0 promptly after printing them."""
    assert process.stdout is not None and process.stderr is not None
    line = process.stdout.readline()
    assert line, process.stderr.read()
    process.wait(timeout=within)  # no hang at exit (pjsua's threads, the endpoint's destruction)
    results: list[dict[str, Any]] = json.loads(line)
    assert process.returncode == 0, (results, process.stderr.read()[-3000:])
    return results


def phone_spec(pbx: RealAsterisk, user: str, **more: Any) -> dict[str, Any]:
    return {"user": user, "password": pbx.password(user), **more}


def sip_messages(lines: list[str]) -> list[str]:
    """The SIP messages in pjsua's log (logger ivr.rig.pjsua at DEBUG), each with pjsua's
    summary line: "RX 512 bytes Request msg OPTIONS/cseq=7 (rdata...) from UDP ...:"."""
    return [line for line in "\n".join(lines).split("--end msg--") if re.search(r"\b[RT]X \d+ bytes ", line)]


def received(messages: list[str], what: str, *, call_id: str | None = None) -> list[str]:
    """Messages the rig received whose summary says `what` (e.g. "Response msg 200/INVITE")."""
    return [m for m in messages if re.search(rf"\bRX \d+ bytes {re.escape(what)}/", m) and (call_id is None or call_id in m)]


def sent(messages: list[str], what: str) -> list[str]:
    return [m for m in messages if re.search(rf"\bTX \d+ bytes {re.escape(what)}/", m)]


@dataclass
class HeldCall:
    process: subprocess.Popen[str]
    started: float
    sip_log: Path
    seen: dict[str, tuple[float, float]] = field(default_factory=dict)  # channel -> first, last seen (time.time())
    watching: bool = True


@pytest.fixture(scope="module")
def held_call(pbx: RealAsterisk, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HeldCall]:
    """Agent phone 1003 calls 1004 through Asterisk (context `agents`), holds HOLD s and hangs
    up, then calls 1004 again; both refresh their registrations meanwhile. A thread notes when
    each phone's channel was last up."""
    sip_log = tmp_path_factory.mktemp("held-call") / "sip.log"
    process = farm(pbx, [
        phone_spec(pbx, "1004", expiry=EXPIRY, answer=True),
        phone_spec(pbx, "1003", expiry=EXPIRY, calls=[{"dial": "1004", "hold": HOLD}, {"dial": "1004", "hold": 2}]),
    ], rtp=27000, linger=1, sip_log=sip_log)  # fmt: skip
    held = HeldCall(process, time.time(), sip_log)

    def watch() -> None:
        while held.watching:
            now = time.time()
            for line in pbx.channels():
                channel = line.split("!", 1)[0]  # e.g. PJSIP/1003-00000004: one per call leg
                if channel.startswith(("PJSIP/1003-", "PJSIP/1004-")):
                    held.seen[channel] = (held.seen.get(channel, (now, now))[0], now)
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    yield held
    held.watching = False
    if process.poll() is None:
        process.kill()
    process.wait()
    watcher.join(5)


async def _run_scenario(pbx: RealAsterisk, tmp_path: Path, user: str, text: str, *, dtmf: str = "auto") -> None:
    path = tmp_path / f"{user}.yaml"
    path.write_text(f"prompts: {PROMPTS}\ndefaults: {{within: 20, answer_within: 15, dtmf: {dtmf}}}\n" + text)
    phone = RigPhone(SipServer("127.0.0.1", pbx.ports.sip), user, pbx.password(user), local_address())
    await phone.start()
    try:
        [result] = await Runner(phone).run(load_files([path]))
    finally:
        await phone.stop()
    assert result.status == "passed", "\n".join([result.reason, *result.log])


MENU_BY_INBAND_KEY = """scenarios:
  - name: call-right-after-registering
    dial: "4008001234"
    language: zh-CN
    steps:
      - prompt: choose-language
      - press: 2
      - language: en-US
      - prompt: main-menu
      - hangup
"""


async def test_a_call_placed_right_after_registering_is_answered_while_asterisk_qualifies_the_phone(
    pbx: RealAsterisk, controller: Served, held_call: HeldCall, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """pyVoIP defect 1; in-band keys (caller2: dtmf_mode = inband) drive the menu. Asterisk
    qualifies a contact as soon as it registers: the OPTIONS comes while the rig dials."""
    caplog.set_level(logging.DEBUG, logger="ivr.rig.pjsua")

    await _run_scenario(pbx, tmp_path, "caller2", MENU_BY_INBAND_KEY)

    messages = sip_messages([r.getMessage() for r in caplog.records if r.name == "ivr.rig.pjsua"])
    assert received(messages, "Request msg OPTIONS") and sent(messages, "Response msg 200/OPTIONS"), \
        "Asterisk's qualify OPTIONS was not answered"


async def test_rfc4733_keys_drive_the_menu(pbx: RealAsterisk, controller: Served, held_call: HeldCall, tmp_path: Path) -> None:
    await _run_scenario(pbx, tmp_path, "rigcaller", """scenarios:
  - name: keys-as-telephone-events
    dial: "4008001234"
    language: zh-CN
    steps:
      - prompt: choose-language
      - press: 2
      - language: en-US
      - prompt: main-menu
      - press: 9
      - prompt: invalid-option
      - hangup
""", dtmf="rfc4733")


async def test_twenty_phones_of_the_rigs_farm_register_and_call_the_hotline_at_once(
    pbx: RealAsterisk, controller: Served, held_call: HeldCall
) -> None:
    """ivr.rig.farm puts 20 phones in five host processes (pjsua holds 4 calls per process);
    all 20 calls are up at once, and each caller hears the recording notice."""
    users = [f"caller{n}" for n in range(1, 21)]
    farm = PhoneFarm(SipServer("127.0.0.1", pbx.ports.sip))
    template = audio.Template.of("recording-notice", audio.load_wav(PROMPTS / "zh-CN" / "recording-notice.wav"))
    started = time.process_time()
    try:
        phones = [await farm.phone(u, pbx.password(u), LocalAddress("127.0.0.1", free_udp_port("127.0.0.1"), range(28000 + 40 * i, 28040 + 40 * i)))
                  for i, u in enumerate(users)]  # fmt: skip
        assert farm.hosts == 5
        await asyncio.gather(*(phone.start() for phone in phones))
        calls = await asyncio.gather(*(phone.dial("4008001234", timeout=15) for phone in phones))
        heard = await asyncio.gather(*(eventually(lambda c=c: audio.find_prompt(template, c.heard()), within=20) for c in calls))
        up = sum(1 for c in pbx.channels() if c.startswith("PJSIP/caller"))
        await asyncio.gather(*(call.hangup() for call in calls))
        ended = [call.ended for call in calls]
    finally:
        await farm.close()
    print(f"20 phones in {farm.hosts} host processes: {time.process_time() - started:.1f} s CPU in the controlling process")

    assert up >= 20, f"{up} of the 20 calls were up at once"
    assert all(m is not None for m in heard), [(u, m) for u, m in zip(users, heard)]
    assert all(ended), "a call did not end when the rig hung up"


def test_a_call_held_for_more_than_60_s_stays_up_and_the_rig_hangs_it_up(pbx: RealAsterisk, held_call: HeldCall) -> None:
    """pyVoIP defect 2, and registrations refreshed by pjsua (the call outlives them)."""
    results = {phone["user"]: phone for phone in farm_result(held_call.process, within=HOLD + 60)}
    held_call.watching = False
    long_call, again = results["1003"]["calls"]

    assert long_call["ended_by"] == "rig" and long_call["bye_answered"], long_call  # not Asterisk after ~32 s
    assert long_call["hangup_at"] - long_call["answered_at"] >= 60
    # Asterisk let go of both legs of the long call within a second of the rig's BYE (the
    # watcher looks every 0.2 s). Its legs came up with it; those of the second call, and of
    # other tests' calls from 1003/1004 (their *71) made while it was held, came up later.
    legs = {name: last for name, (first, last) in held_call.seen.items()
            if abs(first - long_call["answered_at"]) < 2.0}  # fmt: skip
    assert len(legs) == 2 and max(legs.values()) <= long_call["hangup_at"] + 1.0, (long_call["hangup_at"], held_call.seen)
    messages = sip_messages(held_call.sip_log.read_text(errors="replace").splitlines())
    oks = received(messages, "Response msg 200/INVITE", call_id=long_call["call_id"])
    assert len(oks) == 1, f"the rig received the 200 OK to its INVITE {len(oks)} times (Asterisk did not take its ACK?)"
    assert "Retransmit" not in pbx.log
    # Registered for 60 s, both phones registered again before that ran out, and 1004 was
    # still reachable: the second call (after the first 65 s) reached it.
    assert results["1003"]["registrations"] >= 2 and results["1004"]["registrations"] >= 2, results
    assert again["ok"] and len(results["1004"]["answered"]) == 2, results


def test_four_agents_dialling_star71_at_the_same_moment_are_all_logged_in(pbx: RealAsterisk, controller: Served) -> None:
    """pyVoIP defect 3 (one INVITE branch for every phone)."""
    agents = [phone_spec(pbx, user, calls=[{"dial": "*71", "hold": 20, "end": "far"}]) for user in ("1001", "1002", "1003", "1004")]

    results = farm_result(farm(pbx, agents, rtp=29000), within=60)

    for agent in results:
        [login] = agent["calls"]
        assert login.get("ended_by") == "far end", agent  # answered, confirmed, hung up by the agent script
    done = subprocess.run([sys.executable, "-m", "ivr.cli", "agents", "--config", str(controller.config), "--json"],
                          cwd=REPO, capture_output=True, text=True, timeout=30)  # fmt: skip
    assert done.returncode == 0, done.stderr
    ready = {agent["id"] for agent in json.loads(done.stdout)["agents"] if agent["presence"] == "ready"}
    assert ready == {"1001", "1002", "1003", "1004"}, done.stdout
