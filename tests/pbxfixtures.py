"""Fixtures of the real-PBX tests (tests/realpbx, the rig's and the ACD's real-PBX tests): a
real Asterisk 22 running `dialplans/` (`pbx`, one per session), `ivr serve` on a test copy of
`config/` pointed at it (`controller`, one per module), and a self-service backend.

Without an Asterisk (see tests/asteriskkit.py) these skip with the reason, except under
CI=true, where they fail: CI must prove every call path on the real PBX. A plugin of the
root conftest, so that every test directory gets the same session-wide PBX.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from asteriskkit import RealAsterisk, require_asterisk
from servekit import REPO, Served, copy_config

class _Lookups(BaseHTTPRequestHandler):
    """The example flow's backend: account 12345678 has a balance of 128; order 87654321 has
    shipped; account 55555555 takes 5 s to answer (a caller may hang up meanwhile)."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if "account=55555555" in self.path:
            time.sleep(5)
        if "account=12345678" in self.path:
            body = {"found": True, "balance": 128}
        elif self.path.startswith("/orders/87654321"):
            body = {"found": True, "status": "shipped", "tracking": "5551234"}
        else:
            body = {"found": False}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="session")
def lookup_backend() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Lookups)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="session")
def pbx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealAsterisk]:
    asterisk = RealAsterisk(require_asterisk(), tmp_path_factory.mktemp("asterisk"))
    asterisk.start()
    yield asterisk
    asterisk.stop()


# The CRM link of the example hotline in the test config (hotlines.yaml crm_url): agents'
# phones get it filled in as X-IVR-Pop-Url. `,` `(` `)` make Asterisk's Dial parsing matter.
CRM_URL = "https://crm.example/customer?phone={caller}&call={call_id}&q={queue}&lang={language}&tag=a,b(c)"
# Hotlines the test config adds, on the example flow with its hours node pointed at a
# schedule of their own: always closed, and open all week but a holiday today.
CLOSED_HOTLINE = "4008000001"
HOLIDAY_HOTLINE = "4008000002"


def tier_config(tmp_path: Path, pbx: RealAsterisk, backend_url: str) -> Path:
    """The example config, pointed at this PBX: FastAGI on the port the dialplan's IVR_AGI
    names, AMI on, prompts where Asterisk reads them, and schedules the test decides (no
    test depends on the hour it runs)."""
    config = copy_config(tmp_path)
    server = config / "server.yaml"
    text = server.read_text()
    text = text.replace("enabled: false", "enabled: true", 1)
    text = text.replace("  port: 5038", f"  port: {pbx.ports.ami}")
    text = text.replace("asterisk_dir: /var/lib/asterisk/sounds/ivr", f"asterisk_dir: {REPO / 'prompts' / 'sounds'}")
    text = text.replace("base_url: http://127.0.0.1:8089", f"base_url: {backend_url}")
    text = text.replace("caller_number: mask", "caller_number: full")
    server.write_text(text)

    hotlines = config / "hotlines.yaml"
    text = hotlines.read_text()
    flow_line = "    flow: main                   # flows/main.yaml\n"
    assert text.count(flow_line) == 1, "the example hotline 4008001234's flow line"
    text = text.replace(flow_line, f'{flow_line}    crm_url: "{CRM_URL}"\n')
    text = re.sub(r"mon-fri: \[.*?\]", 'mon-fri: ["00:00-24:00"]', text)
    text = re.sub(r"sat-sun: \[.*?\]", 'sat-sun: ["00:00-24:00"]', text)
    # The example's holidays and make-up days would decide some days' paths: the test does.
    text = re.sub(r"(?ms)^    holidays:\n.*?^    working_days:\n.*?(?=^\S|\Z)", "    holidays: []\n    working_days: []\n", text)
    # Yesterday to tomorrow in the hotline's zone: a run across midnight stays on the holiday.
    day = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()
    text = text.replace("\nschedules:\n", f"""
schedules:
  closed-all-week:
    weekly: {{mon-sun: []}}
  holiday-now:
    weekly: {{mon-sun: ["00:00-24:00"]}}
    holidays:
      - {{date: {day - dt.timedelta(days=1)}, until: {day + dt.timedelta(days=1)}, name: test holiday}}
""")
    extra = "".join(f"""
  "{number}":
    name: test {flow}
    language: en-US
    languages: [en-US]
    timezone: Asia/Shanghai
    flow: {flow}
    entry: welcome-english
    recording_notice: recording-notice
    fallback_queue: general
    error_prompt: technical-difficulty
""" for number, flow in ((CLOSED_HOTLINE, "closed"), (HOLIDAY_HOTLINE, "holiday")))
    text = text.replace("\nhotlines:\n", "\nhotlines:\n" + extra, 1)
    hotlines.write_text(text)
    main = (config / "flows" / "main.yaml").read_text()
    for flow, schedule in (("closed", "closed-all-week"), ("holiday", "holiday-now")):
        (config / "flows" / f"{flow}.yaml").write_text(main.replace("schedule: standard", f"schedule: {schedule}"))

    # Short wrap-up, so that ten callers over four agents take a minute, not several.
    routing = config / "routing.yaml"
    text = re.sub(r"(?m)^    wrap_up: \d+.*\n", "", routing.read_text())
    routing.write_text(re.sub(r"(?m)^(    endpoint: PJSIP/\d+.*\n)", r"\1    wrap_up: 2\n", text))

    surveys = config / "surveys.yaml"
    comments = pbx.run_dir / "spool" / "ivr-survey"
    comments.mkdir(parents=True, exist_ok=True)
    text = surveys.read_text().replace("directory: /var/spool/asterisk/ivr-survey", f"directory: {comments}")
    text = text.replace("mode: sample\n      share: 0.5", "mode: all")  # technical: every caller, not a sample
    surveys.write_text(re.sub(r"cooldown_days: \d+", "cooldown_days: 0", text))
    return config


@pytest.fixture(scope="session")
def backend_url(lookup_backend: str) -> str:
    return lookup_backend


@pytest.fixture(scope="module")
def controller(tmp_path_factory: pytest.TempPathFactory, pbx: RealAsterisk, backend_url: str) -> Iterator[Served]:
    """`ivr serve` on the port the dialplan's IVR_AGI names, once its AMI link is up; one per
    test module (tests tell their calls apart by the caller). At the end, no channel is left."""
    served = Served(tier_config(tmp_path_factory.mktemp("controller"), pbx, backend_url), port=pbx.ports.agi)
    try:
        served.wait_for_log("AMI logged in")
        yield served
    finally:
        served.stop()
    assert pbx.wait_no_channels(2.0) == []
