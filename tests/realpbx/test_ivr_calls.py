"""Whole calls from SIP phones through dialplans/ into the controller, on the real Asterisk:
the recording notice and MixMonitor, menus with in-band and RFC 4733 DTMF (no input, an
invalid key, repeat, back), a self-service lookup, the closed and holiday paths, and a
caller hanging up at every kind of node. The calls run at once, one caller each, in worker
processes; each test reads its own caller's record."""

from __future__ import annotations

import datetime as dt

import pytest

from asteriskkit import RealAsterisk, caller_number
from pbxfixtures import CLOSED_HOTLINE, HOLIDAY_HOTLINE
from servekit import Served
from tierkit import Job, Rows, all_passed, run_jobs, scenario

_LANGUAGE_EN = """
- prompt: choose-language
- press: {keys: "2", dtmf: inband}
- language: en-US
"""


def _menus(dtmf: str) -> str:
    return scenario("menus", f"""
- prompt: recording-notice
- prompt: welcome
- prompt: choose-language
- press: {{keys: "2", dtmf: {dtmf}}}
- language: en-US
- prompt: main-menu
- press: {{keys: "9", dtmf: {dtmf}}}
- prompt: invalid-option
- prompt: main-menu
- prompt: {{id: no-input, within: 15}}
- prompt: main-menu
- press: {{keys: "#", dtmf: {dtmf}}}
- prompt: main-menu
- press: {{keys: "1", dtmf: {dtmf}}}
- prompt: billing-menu
- press: {{keys: "*", dtmf: {dtmf}}}
- prompt: main-menu
- hangup
""")


_CLOSED = """
- prompt: welcome
- prompt: closed
- prompt: leave-message
- hangup
"""

CALLS = {
    "caller2": scenario("notice", """
- prompt: recording-notice
- prompt: welcome
- prompt: choose-language
- hangup
"""),
    "caller3": _menus("inband"),
    "rigcaller": _menus("rfc4733"),
    "caller4": scenario("balance", _LANGUAGE_EN + """
- prompt: main-menu
- press: {keys: "1", dtmf: inband}
- prompt: billing-menu
- press: {keys: "1", dtmf: inband}
- prompt: enter-account
- press: {keys: "12345678#", dtmf: inband}
- prompt: balance-is
- prompt: yuan
- prompt: anything-else
- hangup
"""),
    "caller5": scenario("closed", _CLOSED, dial=CLOSED_HOTLINE, language="en-US"),
    "caller6": scenario("holiday", _CLOSED, dial=HOLIDAY_HOTLINE, language="en-US"),
}


# The caller hangs up at each kind of node: prompt, menu, lookup (the backend takes 5 s for
# account 55555555), queue (waiting, or while the only billing expert logged in, 1001, rings
# without answering: one of two callers is offered to it), and survey (one answer given).
_TO_BILLING_QUEUE = _LANGUAGE_EN + """
- prompt: main-menu
- press: {keys: "1", dtmf: inband}
- prompt: billing-menu
- press: {keys: "2", dtmf: inband}
- prompt: connecting-agent
- wait: 3
- hangup
"""
HANG_UPS = {
    "caller12": scenario("hang-up-in-a-prompt", "- prompt: recording-notice\n- wait: 0.5\n- hangup"),
    "caller13": scenario("hang-up-in-a-menu", _LANGUAGE_EN + "- prompt: main-menu\n- hangup"),
    "caller14": scenario("hang-up-in-a-lookup", _LANGUAGE_EN + """
- prompt: main-menu
- press: {keys: "1", dtmf: inband}
- prompt: billing-menu
- press: {keys: "1", dtmf: inband}
- prompt: enter-account
- press: {keys: "55555555#", dtmf: inband}
- prompt: please-wait
- wait: 1
- hangup
"""),
}
QUEUED = {"caller15": scenario("hang-up-waiting", _TO_BILLING_QUEUE),
          "caller16": scenario("hang-up-waiting", _TO_BILLING_QUEUE)}
SURVEYED = {"caller17": scenario("hang-up-in-the-survey", _LANGUAGE_EN + """
- prompt: main-menu
- press: {keys: "2", dtmf: inband}
- prompt: technical-menu
- press: {keys: "2", dtmf: inband}
- agent: {within: 20}
- agent_hangup: {within: 20}
- prompt: survey-intro
- prompt: survey-speed
- press: {keys: "4", dtmf: inband}
- prompt: survey-attitude
- hangup
""")}


@pytest.fixture(scope="module")
def calls(tmp_path_factory: pytest.TempPathFactory, pbx: RealAsterisk, controller: Served) -> Rows:
    """Every call of this module at once, in five worker processes; each must pass as written,
    and no channel may be left on the PBX a second after the last."""
    first = ("caller3", "rigcaller", "caller4")
    jobs = [Job({c: t for c, t in CALLS.items() if c in first}), Job({c: t for c, t in CALLS.items() if c not in first}),
            Job(HANG_UPS), Job(QUEUED, ["1001"], answer_after=60.0), Job(SURVEYED, ["1003"], hold=2.0)]
    all_passed(run_jobs(tmp_path_factory.mktemp("menus"), pbx, jobs))
    assert pbx.wait_no_channels(1.0) == []
    return Rows(controller)


def _number(user: str) -> str:
    return caller_number(user) if user.startswith("caller") else user


def test_the_recording_notice_plays_before_mixmonitor_starts_and_the_file_is_written(calls: Rows, pbx: RealAsterisk) -> None:
    (call,) = calls.ended_calls(_number("caller2"))
    started = dt.datetime.fromisoformat(call["started_at"])
    notice = dt.datetime.fromisoformat(call["notice_played_at"])
    recording = dt.datetime.fromisoformat(call["recording_started_at"])
    assert started <= notice <= recording, call  # the notice ends, then MixMonitor starts
    # config/hotlines.yaml: "{hotline}/{date}/{uniqueid}.wav", relative: under Asterisk's monitor dir.
    assert call["recording_file"].startswith(f"{call['dialed']}/") and call["recording_file"].endswith(f"{call['uniqueid']}.wav")
    recorded = pbx.monitor_dir / call["recording_file"]
    assert recorded.is_file() and recorded.stat().st_size > 44 + 8000, recorded  # a WAV header and audio


@pytest.mark.parametrize("user", ["caller3", "rigcaller"], ids=["in-band", "rfc4733"])
def test_menus_no_input_invalid_key_repeat_and_back(calls: Rows, user: str) -> None:
    (call,) = calls.ended_calls(_number(user))
    assert (call["disposition"], call["hung_up_by"]) == ("abandoned", "caller"), call
    assert call["node_path"].split(">") == ["welcome", "choose-language", "hours-check", "main-menu",
                                            "billing-menu", "main-menu"]  # fmt: skip
    keys = [(kind, value) for kind, node, value in calls.events(call["call_id"]) if kind in ("digit", "invalid", "timeout")]
    assert keys == [("digit", "2"), ("invalid", "9"), ("timeout", "1"), ("digit", "# (repeat)"),
                    ("digit", "1"), ("digit", "* (back)")], keys  # fmt: skip


def test_a_self_service_lookup_answers_from_the_backend(calls: Rows) -> None:
    (call,) = calls.ended_calls(_number("caller4"))
    lookups = [(node, value) for kind, node, value in calls.events(call["call_id"]) if kind == "lookup"]
    assert lookups == [("balance-lookup", "ok: branch 2")], lookups  # the balance branch, from the backend's answer
    assert call["node_path"].split(">")[-3:] == ["balance-account", "balance-lookup", "anything-else"], call["node_path"]


@pytest.mark.parametrize("user", ["caller5", "caller6"], ids=["closed-hours", "holiday"])
def test_closed_hours_and_a_holiday_play_the_closed_message(calls: Rows, user: str) -> None:
    (call,) = calls.ended_calls(_number(user))
    assert call["node_path"].split(">")[:4] == ["welcome-english", "hours-check", "closed-message", "leave-message"], call["node_path"]
    assert [value for kind, node, value in calls.events(call["call_id"]) if kind == "hours"] == ["closed"]


@pytest.mark.parametrize("user", list(HANG_UPS))
def test_a_caller_who_hangs_up_in_a_prompt_a_menu_or_a_lookup_is_recorded_as_abandoned(calls: Rows, user: str) -> None:
    (call,) = calls.ended_calls(_number(user))
    assert (call["disposition"], call["hung_up_by"]) == ("abandoned", "caller"), call


def test_callers_who_hang_up_waiting_or_while_the_agent_rings_leave_an_abandoned_leg(calls: Rows) -> None:
    legs = []
    for user in QUEUED:
        (call,) = calls.ended_calls(_number(user))
        (leg,) = calls.legs(call["call_id"])
        assert (call["disposition"], call["hung_up_by"], leg["outcome"]) == ("queue_abandoned", "caller", "abandoned"), leg
        legs.append(leg)
    assert max(leg["offers"] for leg in legs) == 1, legs  # one of them hung up while 1001 rang


def test_a_caller_who_hangs_up_in_the_survey_leaves_a_partial_response(calls: Rows) -> None:
    (call,) = calls.ended_calls(_number("caller17"))
    response, answers = calls.survey(call["call_id"])
    assert call["disposition"] == "answered"
    assert response["status"] == "partial", response
    assert [(a["question"], a["value"]) for a in answers if a["value"] is not None] == [("speed", 4)], answers
