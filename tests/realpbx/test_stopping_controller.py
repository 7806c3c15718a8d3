"""A controller stopped (SIGTERM) while a caller is in the IVR, on the real PBX: the dialplan
sees IVR_STATUS=ACTIVE after AGI() and sends the caller to the fallback queue (label
`released`), where an agent answers. The caller is never hung up on, and the call keeps
its record."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from asteriskkit import RealAsterisk, caller_number
from pbxfixtures import tier_config
from servekit import Served
from tierkit import Job, Rows, all_passed, run_jobs, scenario

IN_THE_IVR = 4.0  # seconds after AGI() started: somewhere in the notice or the menus


def _stop_once_in_the_ivr(pbx: RealAsterisk, served: Served, caller: str) -> threading.Thread:
    def watch() -> None:
        deadline = time.monotonic() + 60
        while not any(line.startswith(f"PJSIP/{caller}-") and "!AGI!" in line for line in pbx.channels()):
            if time.monotonic() > deadline:
                return  # the scenario fails on its own: no agent answers
            time.sleep(0.1)
        time.sleep(IN_THE_IVR)
        served.stop()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_a_caller_in_the_ivr_when_the_controller_stops_reaches_the_fallback_queue(
    tmp_path: Path, pbx: RealAsterisk, backend_url: str
) -> None:
    served = Served(tier_config(tmp_path / "controller", pbx, backend_url), port=pbx.ports.agi)
    try:
        stopper = _stop_once_in_the_ivr(pbx, served, "caller12")
        # Agent 1002 is a static member of app_queue's hotline-general (no *71 needed).
        steps = "- agent: {within: 60}\n- agent_hangup: {within: 20}\n- hangup"
        all_passed(run_jobs(tmp_path, pbx, [Job({"caller12": scenario("stopped-mid-call", steps, language=None)},
                                                ["1002"], login=False)]))  # fmt: skip
        stopper.join(5)
        assert served.process.returncode == 0, served.output()
    finally:
        served.kill()
    (call,) = Rows(served).ended_calls(caller_number("caller12"))
    assert call["disposition"] == "interrupted", call
    assert "fallback queue" in call["detail"], call
    assert f"the controller let go of call {call['call_id']} (4008001234) mid-call: queue general" in pbx.log
    assert "Traceback" not in served.output(), served.output()
    assert pbx.wait_no_channels(1.0) == []


def test_with_the_first_controller_down_the_second_one_named_by_ivr_agi_2_takes_the_call(
    tmp_path: Path, pbx: RealAsterisk, backend_url: str
) -> None:
    """The rolling restart's other half: IVR_AGI refuses, the dialplan tries IVR_AGI_2."""
    log_before = len(pbx.log)
    second = Served(tier_config(tmp_path / "second", pbx, backend_url))
    pbx.cli(f"dialplan set global IVR_AGI_2 agi://127.0.0.1:{second.port}")
    try:
        steps = "- prompt: choose-language\n- hangup"
        all_passed(run_jobs(tmp_path, pbx, [Job({"caller13": scenario("second-controller", steps)})]))
    finally:
        pbx.cli('dialplan set global IVR_AGI_2 ""')  # empty again: no second controller
        second.stop()
    (call,) = Rows(second).ended_calls(caller_number("caller13"))
    assert call["disposition"] == "abandoned", call
    assert "controller unreachable" not in pbx.log[log_before:]
    assert pbx.wait_no_channels(1.0) == []
