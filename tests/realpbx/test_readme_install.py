"""The README's "Attaching a real Asterisk 22" block, run as written: only its three paths
point into a test folder, `asterisk` is the shared PBX (ports rendered free, as several
instances share this machine), and `chown` is a stand-in (no `asterisk` user here). Then
`ivr serve` as the README configures it answers a call from the shipped `caller1`."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

from asteriskkit import RealAsterisk, require_asterisk
from servekit import REPO, Served, copy_config
from tierkit import HOTLINE, explain, passed, run_scenarios


def _readme_block() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Attaching a real Asterisk 22", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```sh\n(.*?)```", section, re.S)
    return block


def _shim(path: Path, body: str) -> None:
    path.write_text("#!/usr/bin/env bash\nset -euo pipefail\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


async def test_the_readme_block_installs_a_pbx_that_answers_through_the_controller(tmp_path: Path) -> None:
    pbx = RealAsterisk(require_asterisk(), tmp_path / "pbx")
    if not pbx.runs_script:
        pytest.skip("the shim restarts Asterisk through run-asterisk")
    etc, sounds, spool = tmp_path / "etc", tmp_path / "sounds" / "ivr", tmp_path / "spool" / "ivr-survey"
    etc.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    p = pbx.ports
    render = (f"sed -i 's/127.0.0.1:5060/127.0.0.1:{p.sip}/' '{etc}/pjsip.conf'\n"
              f"sed -i 's/^port = 5038$/port = {p.ami}/' '{etc}/manager.conf'\n"
              f"sed -i 's#agi://127.0.0.1:4573#agi://127.0.0.1:{p.agi}#' '{etc}/extensions.conf'\n"
              f"printf '[general]\\nrtpstart={p.rtp_start}\\nrtpend={p.rtp_start + 999}\\n' > '{etc}/rtp.conf'\n")  # fmt: skip
    _shim(bin_dir / "asterisk", f"""
if [ "$*" = "-rx core restart now" ]; then
  '{pbx.program}' stop '{pbx.run_dir}'
{render}  '{pbx.program}' start '{pbx.run_dir}' '{etc}' >/dev/null
else
  '{pbx.program}' cli '{pbx.run_dir}' "$2"
fi
""")
    _shim(bin_dir / "chown", 'echo "$@" >> "$(dirname "$0")/chowned"\n')
    block = _readme_block()
    first, rest = block.split("\n", 1)
    assert first == "ETC=/etc/asterisk SOUNDS=/var/lib/asterisk/sounds/ivr SPOOL=/var/spool/asterisk/ivr-survey"
    script = f"ETC={etc} SOUNDS={sounds} SPOOL={spool}\n{rest}"
    try:
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=REPO, capture_output=True, text=True,
                              timeout=60, env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert (bin_dir / "chowned").read_text() == f"asterisk:asterisk {spool}\n"
        assert (sounds / "en-US" / "welcome.wav").is_file() and spool.is_dir()

        # server.yaml as the README says: AMI on with the secret, prompts where SOUNDS is.
        config = copy_config(tmp_path)
        server = config / "server.yaml"
        text = server.read_text().replace("enabled: false", "enabled: true", 1).replace("  port: 5038", f"  port: {p.ami}")
        server.write_text(text.replace("asterisk_dir: /var/lib/asterisk/sounds/ivr", f"asterisk_dir: {sounds}"))
        surveys = config / "surveys.yaml"
        surveys.write_text(surveys.read_text().replace("/var/spool/asterisk/ivr-survey", str(spool)))
        served = Served(config, port=p.agi)
        try:
            served.wait_for_log("AMI logged in")
            results = await run_scenarios(tmp_path, pbx, f"""
scenarios:
  - name: readme-install
    dial: "{HOTLINE}"
    language: zh-CN
    steps:
      - prompt: recording-notice
      - prompt: welcome
      - prompt: choose-language
      - hangup
""", caller="caller1")  # fmt: skip
            assert passed(results), explain(results)
        finally:
            served.stop()
    finally:
        pbx.stop()
