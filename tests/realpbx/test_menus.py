"""Whole calls from a SIP phone through dialplans/ into the controller, on the real
Asterisk: the recording notice and MixMonitor, menus with both kinds of DTMF, no-input,
invalid keys, back and repeat, a self-service lookup, and the closed and holiday paths."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from asteriskkit import RealAsterisk, caller_number
from servekit import Served
from tierkit import HOTLINE, ControllerMaker, Rows, explain, passed, run_scenarios

MENUS = """
scenarios:
  - name: menus
    dial: "{hotline}"
    language: zh-CN
    steps:
      - prompt: recording-notice
      - prompt: welcome
      - prompt: choose-language
      - press: {{keys: "2", dtmf: {dtmf}}}
      - language: en-US
      - prompt: main-menu
      - press: {{keys: "9", dtmf: {dtmf}}}      # no such option
      - prompt: invalid-option
      - prompt: main-menu
      - prompt: {{id: no-input, within: 15}}     # nothing pressed: the menu's 5 s timeout
      - prompt: main-menu
      - press: {{keys: "#", dtmf: {dtmf}}}      # repeat
      - prompt: main-menu
      - press: {{keys: "1", dtmf: {dtmf}}}
      - prompt: billing-menu
      - press: {{keys: "*", dtmf: {dtmf}}}      # back
      - prompt: main-menu
      - hangup
"""


async def _menus(tmp_path: Path, pbx: RealAsterisk, controller: Served, caller: str, dtmf: str) -> None:
    results = await run_scenarios(tmp_path, pbx, MENUS.format(hotline=HOTLINE, dtmf=dtmf), caller=caller)
    assert passed(results), explain(results)

    rows = Rows(controller)
    (call,) = await rows.ended_calls(caller_number(caller) if caller.startswith("caller") else caller)
    assert call["disposition"] == "abandoned" and call["hung_up_by"] == "caller"
    assert call["node_path"] == ">".join(["welcome", "choose-language", "hours-check", "main-menu",
                                          "billing-menu", "main-menu"])  # fmt: skip
    keys = [(kind, value) for kind, node, value in rows.events(call["call_id"]) if kind in ("digit", "invalid", "timeout")]
    assert keys == [("digit", "2"), ("invalid", "9"), ("timeout", ""), ("digit", "#"), ("digit", "1"), ("digit", "*")], keys
    assert pbx.wait_no_channels(1.0) == []


async def test_the_recording_notice_plays_before_mixmonitor_starts_and_the_file_is_written(
    tmp_path: Path, pbx: RealAsterisk, controller: Served
) -> None:
    scenario = f"""
scenarios:
  - name: notice
    dial: "{HOTLINE}"
    language: zh-CN
    steps:
      - prompt: recording-notice
      - prompt: welcome
      - prompt: choose-language
      - hangup
"""
    results = await run_scenarios(tmp_path, pbx, scenario, caller="caller2")
    assert passed(results), explain(results)

    (call,) = await Rows(controller).ended_calls(caller_number("caller2"))
    started = dt.datetime.fromisoformat(call["started_at"])
    notice = dt.datetime.fromisoformat(call["notice_played_at"])
    recording = dt.datetime.fromisoformat(call["recording_started_at"])
    assert started <= notice < recording, call
    # config/hotlines.yaml: "{hotline}/{date}/{uniqueid}.wav", relative: under Asterisk's monitor dir.
    assert call["recording_file"].startswith(f"{HOTLINE}/") and call["recording_file"].endswith(f"{call['uniqueid']}.wav")
    recorded = pbx.monitor_dir / call["recording_file"]
    assert recorded.is_file() and recorded.stat().st_size > 44 * 10, recorded  # a WAV header and audio


async def test_menus_with_in_band_dtmf(tmp_path: Path, pbx: RealAsterisk, controller: Served) -> None:
    await _menus(tmp_path, pbx, controller, "caller3", "inband")


async def test_menus_with_rfc4733_dtmf(tmp_path: Path, pbx: RealAsterisk, controller: Served) -> None:
    await _menus(tmp_path, pbx, controller, "rigcaller", "rfc4733")


async def test_a_self_service_lookup_answers_from_the_backend(tmp_path: Path, pbx: RealAsterisk, controller: Served) -> None:
    scenario = f"""
scenarios:
  - name: balance
    dial: "{HOTLINE}"
    language: zh-CN
    steps:
      - prompt: choose-language
      - press: {{keys: "2", dtmf: inband}}
      - language: en-US
      - prompt: main-menu
      - press: {{keys: "1", dtmf: inband}}
      - prompt: billing-menu
      - press: {{keys: "1", dtmf: inband}}
      - prompt: enter-account
      - press: {{keys: "12345678#", dtmf: inband}}
      - prompt: balance-is
      - prompt: yuan
      - prompt: anything-else
      - hangup
"""
    results = await run_scenarios(tmp_path, pbx, scenario, caller="caller4")
    assert passed(results), explain(results)

    rows = Rows(controller)
    (call,) = await rows.ended_calls(caller_number("caller4"))
    lookups = [(node, value) for kind, node, value in rows.events(call["call_id"]) if kind == "lookup"]
    assert lookups == [("balance-lookup", "ok: branch 2")], lookups  # the balance branch, from the backend's answer
    assert call["node_path"].split(">")[-2:] == ["balance-lookup", "anything-else"], call["node_path"]


async def test_closed_hours_and_a_holiday_send_the_caller_to_the_closed_message(
    tmp_path: Path, pbx: RealAsterisk, make_controller: ControllerMaker
) -> None:
    scenario = f"""
scenarios:
  - name: closed
    dial: "{HOTLINE}"
    language: zh-CN
    steps:
      - prompt: choose-language
      - press: {{keys: "2", dtmf: inband}}
      - language: en-US
      - prompt: closed
      - prompt: leave-message
      - hangup
"""
    for user, hours in (("caller5", {"open_hours": False}), ("caller6", {"holiday_today": True})):
        controller = make_controller(**hours)
        results = await run_scenarios(tmp_path, pbx, scenario, caller=user)
        assert passed(results), explain(results)
        rows = Rows(controller)
        (call,) = await rows.ended_calls(caller_number(user))
        assert call["node_path"].split(">")[2:5] == ["hours-check", "closed-message", "leave-message"], call["node_path"]
        assert [value for kind, node, value in rows.events(call["call_id"]) if kind == "hours"] == ["closed"]
        controller.stop()
