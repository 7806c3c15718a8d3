"""`ivr rig run` against the real Asterisk 22 (tests/asteriskkit.py: dialplans/ with
pjsip_rig.conf included) and `ivr serve` on the test config (the menu open at any hour,
no survey cooldown): the example scenarios with four agent phones that log in with *71,
and the RFC 4733 path with rigcaller. Marked `asterisk`: without an Asterisk they skip,
except under CI=true, where they fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from asteriskkit import RealAsterisk
from rigkit import PROMPTS, REPO
from servekit import Served

pytestmark = pytest.mark.asterisk


def _rig(pbx: RealAsterisk, *args: str, user: str) -> tuple[int, str]:
    env = {**os.environ, "COLUMNS": "250", "IVR_RIG_PASSWORD": pbx.password(user), "IVR_RIG_AGENT_PASSWORD": "change-me-{user}"}
    done = subprocess.run(
        [sys.executable, "-m", "ivr.cli", "rig", "run", *args, "--user", user, "--pbx", f"127.0.0.1:{pbx.ports.sip}",
         "--local-ip", "127.0.0.1", "--rtp-ports", "30000-30999"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def test_the_example_scenarios_pass(pbx: RealAsterisk, controller: Served, tmp_path: Path) -> None:
    junit = tmp_path / "rig.xml"
    code, output = _rig(
        pbx, "config/rig/example.yaml", "--agents", "4", "--agent-login", "*71", "--agent-logout", "*72",
        "--junit", str(junit), user="caller1",
    )  # fmt: skip

    assert code == 0, output + controller.output()[-4000:]
    root = ET.parse(junit).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "0", "0"), output


def test_rfc4733_keys_drive_the_menu(pbx: RealAsterisk, controller: Served, tmp_path: Path) -> None:
    scenarios = tmp_path / "rfc4733.yaml"
    scenarios.write_text(
        f"""prompts: {PROMPTS}
defaults: {{dtmf: rfc4733}}
scenarios:
  - name: invalid-key-by-rfc4733
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
"""
    )
    code, output = _rig(pbx, str(scenarios), user="rigcaller")

    assert code == 0, output
