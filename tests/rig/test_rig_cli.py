"""`ivr rig run` as a user runs it.

The end-to-end test starts the command as a process against kamailio on loopback, where
the "PBX" is a stand-in IVR phone (rigkit.FakeIvr) and one scenario calls a rig agent
phone directly: real SIP and RTP all the way, several calls at once.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from ivr.cli.main import main
from ivr.rig.phone import RigPhone, SipServer
from rigkit import PROMPTS, FakeIvr, local_address

SCENARIOS = """prompts: {prompts}
defaults: {{within: 10, answer_within: 10}}
scenarios:
  - name: rfc4733-key
    dial: {ivr}
    language: en-US
    steps:
      - prompt: welcome
      - prompt: choose-language
      - press: {{keys: "2", dtmf: rfc4733}}
      - prompt: goodbye
      - far_hangup: {{within: 5}}
  - name: inband-key
    dial: {ivr}
    language: en-US
    steps:
      - prompt: welcome
      - prompt: choose-language
      - press: {{keys: "2", dtmf: inband}}
      - prompt: goodbye
      - far_hangup: {{within: 5}}
  - name: caller-hangs-up
    dial: {ivr}
    language: en-US
    steps:
      - prompt: welcome
      - hangup
  - name: agent-answers
    dial: rigagent1
    steps:
      - agent: {{within: 10}}
      - agent_hangup: {{within: 10}}
      - far_hangup: {{within: 3}}
  - name: expects-the-wrong-prompt
    dial: {ivr}
    language: en-US
    steps:
      - prompt: welcome
      - prompt: {{id: main-menu, within: 6}}
"""


async def test_a_run_against_a_loopback_pbx_prints_the_table_and_writes_junit(tmp_path: Path, sip_proxy: SipServer) -> None:
    ivr_phone = RigPhone(sip_proxy, "4008001234", "secret", local_address())
    await ivr_phone.start()
    ivr = FakeIvr(ivr_phone)
    serving = asyncio.create_task(ivr.serve())
    (tmp_path / "loopback.yaml").write_text(SCENARIOS.format(prompts=PROMPTS, ivr=ivr_phone.user))
    junit = tmp_path / "junit" / "rig.xml"
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ivr.cli", "rig", "run", "loopback.yaml",
            "--pbx", f"{sip_proxy.host}:{sip_proxy.port}", "--user", "rigcaller", "--password", "x",
            "--agents", "1", "--agent-user-prefix", "rigagent", "--agent-answer-after", "0.2", "--agent-hold", "2",
            "--junit", "junit/rig.xml", "--concurrency", "2", "--local-ip", "127.0.0.1", "--rtp-ports", "26000-26999",
            cwd=tmp_path, env={**os.environ, "COLUMNS": "250"},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), 120)
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
        await ivr_phone.stop()
    stdout = out.decode()

    assert process.returncode == 1, (stdout, err.decode())
    rows = {line.split()[2]: line for line in stdout.splitlines() if line.startswith("│ loopback.yaml: ")}
    for name in ("rfc4733-key", "inband-key", "caller-hangs-up", "agent-answers"):
        assert " PASS " in rows[name], stdout
        assert re.search(r"│ [\w.@:-]{20,} │", rows[name]), rows[name]  # the SIP Call-ID of the rig's call (pjsua: 32 random characters)
    assert "rigagent1" in rows["agent-answers"]
    wrong = rows["expects-the-wrong-prompt"]
    assert " FAIL " in wrong and "step 2 (prompt main-menu (en-US)" in wrong and "not heard within 6 s" in wrong
    assert "loopback.yaml:39:9" in wrong  # where the step is written
    assert "4 passed, 1 failed, 0 errors" in stdout
    # The stand-in IVR got each key the way it was sent.
    assert sorted(ivr.log) == ["caller hung up", "caller hung up", "key 2 via inband", "key 2 via rfc4733"]

    root = ET.parse(junit).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("5", "1", "0")
    cases = {c.get("name"): c for c in root.iter("testcase")}
    failure = cases["expects-the-wrong-prompt"].find("failure")
    assert failure is not None and "not heard within 6 s" in (failure.get("message") or "")
    assert "agent: rigagent1" in (cases["agent-answers"].findtext("system-out") or "")


def test_a_broken_scenario_file_exits_2_with_file_line_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("scenarios:\n  - name: x\n    dial: '400'\n    steps:\n      - pres: 1\n")

    result = CliRunner().invoke(main, ["rig", "run", str(path), "--pbx", "127.0.0.1:5060", "--user", "caller1"])

    assert result.exit_code == 2
    assert f"{path}:5:9: scenarios[0].steps[0]: unknown key 'pres' (did you mean 'press'?" in result.output
    assert "1 problem(s)" in result.output


def test_agent_steps_without_agent_phones_exit_2(example_scenarios: Path) -> None:
    result = CliRunner().invoke(main, ["rig", "run", str(example_scenarios), "--pbx", "127.0.0.1:5060", "--user", "caller1"])

    assert result.exit_code == 2
    assert "agent steps need agent phones (--agents N)" in result.output
    assert "billing-agent-survey" in result.output


@pytest.mark.parametrize(
    "option, value, fragment",
    [("--pbx", "localhost", "expected HOST:PORT"), ("--rtp-ports", "30000", "expected LOW-HIGH")],
)
def test_a_bad_address_exits_2(example_scenarios: Path, option: str, value: str, fragment: str) -> None:
    args = ["rig", "run", str(example_scenarios), "--pbx", "127.0.0.1:5060", "--user", "caller1", option, value]

    result = CliRunner().invoke(main, args)

    assert result.exit_code == 2
    assert fragment in result.output


def test_phones_that_cannot_be_set_up_are_errors_not_passes(tmp_path: Path, example_scenarios: Path) -> None:
    junit = tmp_path / "rig.xml"
    args = ["rig", "run", str(example_scenarios), "--pbx", "127.0.0.1:5060", "--user", "caller1", "--agents", "2"]
    # 192.0.2.1 (TEST-NET-1) is no address of this machine: the phones cannot listen there.
    args += ["--local-ip", "192.0.2.1", "--junit", str(junit)]

    result = CliRunner().invoke(main, args, env={"COLUMNS": "250"})

    assert result.exit_code == 1
    assert result.output.count(" ERROR ") == 3
    assert "cannot set up the rig's phones for 127.0.0.1:5060" in result.output
    assert "0 passed, 0 failed, 3 errors" in result.output
    assert ET.parse(junit).getroot().get("errors") == "3"


async def test_more_phones_and_calls_than_one_process_holds_run_in_several(tmp_path: Path, sip_proxy: SipServer) -> None:
    """8 agent phones and 8 calls at once, each to an agent: 16 call legs and 10 phones,
    more than pjsua's 4 calls and 8 phones per process. Each caller hears its own agent's
    identification, though the caller's line and the agent run in different processes."""
    steps = "    steps:\n      - agent: {within: 20}\n      - agent_hangup: {within: 20}\n      - far_hangup: {within: 5}\n"
    text = "scenarios:\n" + "".join(f"  - name: agent-{n}\n    dial: rigagent{n}\n" + steps for n in range(1, 9))
    (tmp_path / "agents.yaml").write_text(text)

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ivr.cli", "rig", "run", "agents.yaml",
        "--pbx", f"{sip_proxy.host}:{sip_proxy.port}", "--user", "rigcaller", "--password", "x",
        "--agents", "8", "--agent-user-prefix", "rigagent", "--agent-answer-after", "0.2", "--agent-hold", "6",
        "--concurrency", "8", "--local-ip", "127.0.0.1", "--rtp-ports", "26000-26999",
        cwd=tmp_path, env={**os.environ, "COLUMNS": "250"}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 180)
    stdout, stderr = out.decode(), err.decode()

    assert process.returncode == 0, (stdout, stderr)
    assert "8 passed, 0 failed, 0 errors" in stdout
    assert "rig: 8 agent phones and caller rigcaller on 2 line(s) in 4 process(es)" in stderr
    rows = {line.split()[2]: line for line in stdout.splitlines() if line.startswith("│ agents.yaml: ")}
    for n in range(1, 9):
        assert f"rigagent{n}" in rows[f"agent-{n}"], rows  # dialled directly: the agent called is the one that answered
