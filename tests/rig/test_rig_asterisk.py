"""The rig against a real Asterisk with dialplans/ loaded (pjsip_rig.conf included) and
`ivr serve` running on config/: marked `asterisk`, run when IVR_RIG_PBX=host:port is set.

    IVR_RIG_PBX=127.0.0.1:5060 .venv/bin/pytest -m asterisk tests/rig

The SIP passwords default to those of dialplans/pjsip.conf (IVR_RIG_PASSWORD,
IVR_RIG_AGENT_PASSWORD, IVR_RIG_RFC4733_PASSWORD override them).
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from rigkit import PROMPTS, REPO

PBX = os.environ.get("IVR_RIG_PBX", "")

pytestmark = [
    pytest.mark.asterisk,
    pytest.mark.skipif(not PBX, reason="IVR_RIG_PBX (host:port of an Asterisk with dialplans/ loaded) is not set"),
]


def _rig(*args: str, password: str) -> tuple[int, str]:
    env = {
        **os.environ,
        "COLUMNS": "250",
        "IVR_RIG_PASSWORD": password,
        "IVR_RIG_AGENT_PASSWORD": os.environ.get("IVR_RIG_AGENT_PASSWORD", "change-me-{user}"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "ivr.cli", "rig", "run", *args, "--pbx", PBX],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def test_the_example_scenarios_pass(tmp_path: Path) -> None:
    junit = tmp_path / "rig.xml"
    code, output = _rig(
        "config/rig/example.yaml", "--user", "caller1", "--agents", "4",
        "--agent-login", "*71", "--agent-logout", "*72", "--junit", str(junit),
        password=os.environ.get("IVR_RIG_PASSWORD", "change-me-caller1"),
    )  # fmt: skip

    assert code == 0, output
    root = ET.parse(junit).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "0", "0"), output


def test_rfc4733_keys_drive_the_menu(tmp_path: Path) -> None:
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
    code, output = _rig(str(scenarios), "--user", "rigcaller", password=os.environ.get("IVR_RIG_RFC4733_PASSWORD", "change-me-rigcaller"))

    assert code == 0, output
