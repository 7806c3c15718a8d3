"""The ACD on the real PBX: a SIP agent phone logs in with *71, a caller reaches it, the
agent hangs up first and the caller answers the survey, spoken comment included; and ten
callers at once over four agents, with no cross-talk in what they hear or in the records."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from asteriskkit import RealAsterisk, caller_number
from ivr.rig.agents import AgentBehaviour
from servekit import Served
from tierkit import HOTLINE, Rows, agents_logged_in, explain, passed, run_scenarios

HOLD = 4.0  # seconds an agent phone talks before hanging up

TO_AGENT_THEN_SURVEY = f"""
scenarios:
  - name: agent-then-survey
    dial: "{HOTLINE}"
    language: zh-CN
    steps:
      - prompt: choose-language
      - press: {{keys: "2", dtmf: inband}}
      - language: en-US
      - prompt: main-menu
      - press: {{keys: "1", dtmf: inband}}
      - prompt: billing-menu
      - press: {{keys: "2", dtmf: inband}}
      - prompt: connecting-agent
      - agent: {{within: 30}}
      - agent_hangup: {{within: 30}}
      - prompt: survey-intro
      - prompt: survey-speed
      - press: {{keys: "5", dtmf: inband}}
      - prompt: survey-attitude
      - press: {{keys: "2", dtmf: inband}}
      - prompt: survey-resolved
      - press: {{keys: "1", dtmf: inband}}
      - prompt: survey-nps
      - press: {{keys: "10", dtmf: inband}}
      - prompt: survey-comment
      - audio: {{seconds: 0.1}}           # the beep
      - speak: {{seconds: 2.5}}
      - prompt: {{id: survey-thanks, within: 15}}   # after 3 s of silence
      - far_hangup: {{within: 10}}
"""


async def test_a_caller_reaches_a_logged_in_agent_and_answers_the_survey(
    tmp_path: Path, pbx: RealAsterisk, controller: Served
) -> None:
    async with agents_logged_in(pbx, ["1001"], AgentBehaviour(answer_after=1.0, hold=HOLD)) as agents:
        results = await run_scenarios(tmp_path, pbx, TO_AGENT_THEN_SURVEY, caller="caller7", agents=agents)
    assert passed(results), explain(results)
    assert results[0].agent == "1001"

    rows = Rows(controller)
    (call,) = await rows.ended_calls(caller_number("caller7"))
    assert call["disposition"] == "answered", call
    assert call["node_path"].endswith("billing-menu>billing-queue"), call["node_path"]
    (leg,) = rows.legs(call["call_id"])
    assert (leg["queue"], leg["outcome"], leg["agent_id"], leg["offers"]) == ("billing", "answered", "1001", 1), leg
    wait = (dt.datetime.fromisoformat(leg["answered_at"]) - dt.datetime.fromisoformat(leg["enqueued_at"])).total_seconds()
    # The agent phone rang for 1 s before answering: the wait is that and the dispatch.
    assert 0.9 <= wait <= 3.0, leg
    # Talk is the bridge: the agent answered, played its code, and hung up HOLD s after answering.
    assert leg["talk_seconds"] == pytest.approx(HOLD, abs=0.6), leg
    assert call["hold_seconds"] == 0
    assert call["agent_answered_at"] is not None and call["bridged_at"] is not None

    response, answers = rows.survey(call["call_id"])
    assert (response["status"], response["agent"], response["queue"], response["hung_up_by"]) == (
        "completed", "1001", "billing", "agent"), response  # fmt: skip
    assert [(a["question"], a["value"]) for a in answers] == [("speed", 5), ("attitude", 2), ("resolved", 1), ("nps", 10)]
    # 2.5 s of talk, then 3 s of silence end the comment; Asterisk trims the silence it heard.
    assert 2.0 <= response["comment_seconds"] <= 6.0, response
    assert Path(response["comment_file"]).is_file(), response["comment_file"]
    (item,) = rows.query("SELECT * FROM followups WHERE call_id = ?", call["call_id"])
    assert (item["category"], item["urgency"], item["owner"]) == ("low-score", "important", "billing-lead"), item
    assert pbx.wait_no_channels(1.0) == []


def _ten_callers(callers: list[str]) -> dict[str, str]:
    scenario = f"""
scenarios:
  - name: to-an-agent
    dial: "{HOTLINE}"
    language: zh-CN
    steps:
      - prompt: choose-language
      - press: {{keys: "1", dtmf: inband}}
      - prompt: main-menu
      - press: {{keys: "1", dtmf: inband}}
      - prompt: billing-menu
      - press: {{keys: "2", dtmf: inband}}
      - agent: {{within: 150}}
      - agent_hangup: {{within: 30}}
      - prompt: survey-intro
      - hangup
"""
    return {caller: scenario for caller in callers}


async def test_ten_callers_and_four_agents_at_once_without_cross_talk(
    tmp_path: Path, pbx: RealAsterisk, controller: Served
) -> None:
    import asyncio

    callers = [f"caller{n}" for n in range(2, 12)]
    async with agents_logged_in(pbx, ["1001", "1002", "1003", "1004"], AgentBehaviour(answer_after=0.5, hold=3.0)) as agents:
        runs = [run_scenarios(tmp_path, pbx, text, caller=caller, agents=agents)
                for caller, text in _ten_callers(callers).items()]  # fmt: skip
        outcomes = await asyncio.gather(*runs)
    for caller, results in zip(callers, outcomes, strict=True):
        assert passed(results), f"{caller}:\n{explain(results)}"

    rows = Rows(controller)
    for caller, results in zip(callers, outcomes, strict=True):
        (call,) = await rows.ended_calls(caller_number(caller))
        (leg,) = rows.legs(call["call_id"])
        # The agent the caller heard (its in-band code) is the agent on the caller's record.
        assert leg["agent_id"] == results[0].agent, (caller, leg, results[0].agent)
        assert leg["outcome"] == "answered" and call["caller"] == caller_number(caller)
    # No agent took two calls at once: each agent's legs follow one another.
    legs = rows.query("SELECT * FROM queue_legs ORDER BY agent_id, answered_at")
    for before, after in zip(legs, legs[1:]):
        if before["agent_id"] == after["agent_id"]:
            assert before["left_at"] <= after["answered_at"], (before, after)
    assert pbx.wait_no_channels(1.0) == []
