"""The dialplan's own paths on the real PBX: with the controller down, the fallback queue
(app_queue) still reaches an agent; an unknown number hears "not in service"."""

from __future__ import annotations

import socket
from pathlib import Path

from asteriskkit import RealAsterisk, caller_number
from servekit import Served
from tierkit import HOTLINE, Job, Rows, all_passed, run_jobs, scenario


def test_with_the_controller_down_the_fallback_queue_reaches_an_agent(tmp_path: Path, pbx: RealAsterisk) -> None:
    with socket.socket() as probe:  # no controller listens where IVR_AGI points
        assert probe.connect_ex(("127.0.0.1", pbx.ports.agi)) != 0
    # AGISTATUS=FAILURE: the caller goes to app_queue's hotline-general, whose members are
    # the agent endpoints; the agent phone is registered (no *71: no controller to log in to).
    steps = "- agent: {within: 30}\n- agent_hangup: {within: 20}\n- hangup"
    all_passed(run_jobs(tmp_path, pbx, [Job({"caller9": scenario("controller-down", steps, language=None)}, ["1002"], login=False)]))
    assert f"controller unreachable (AGISTATUS=FAILURE) for {HOTLINE}: queue general" in pbx.log
    assert pbx.wait_no_channels(1.0) == []


def test_an_unknown_number_hears_not_in_service(tmp_path: Path, pbx: RealAsterisk, controller: Served) -> None:
    steps = "- audio: {seconds: 1.0, within: 5}\n- far_hangup: {within: 10}"
    all_passed(run_jobs(tmp_path, pbx, [Job({"caller10": scenario("unknown-number", steps, dial="4009999999",
                                                                  language=None)})]))  # fmt: skip
    assert "no hotline configured for 4009999999" in pbx.log
    (call,) = Rows(controller).ended_calls(caller_number("caller10"))
    assert call["disposition"] == "not_in_service", call
    assert " ERROR " not in controller.output(), controller.output()
