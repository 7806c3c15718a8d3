"""The ACD on the real PBX: a SIP agent phone logs in with *71, a caller reaches it, the
agent hangs up first and the caller answers the survey, spoken comment included; and ten
callers at once over four agents, with no cross-talk in what they hear or in the records."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from asteriskkit import RealAsterisk, caller_number
from ivr.rig.agents import AgentBehaviour, AgentPool
from pbxfixtures import CRM_URL
from routing.crm import crm_link
from servekit import Served
from tierkit import HOTLINE, Job, Rows, all_passed, explain, passed, phone, run_jobs, run_scenarios, scenario

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


def test_a_caller_reaches_a_logged_in_agent_and_answers_the_survey(
    tmp_path: Path, pbx: RealAsterisk, controller: Served
) -> None:
    outcomes = run_jobs(tmp_path, pbx, [Job({"caller7": TO_AGENT_THEN_SURVEY}, ["1001"], hold=HOLD, answer_after=1.0)])
    all_passed(outcomes)
    assert outcomes["caller7"][0].agent == "1001"

    rows = Rows(controller)
    (call,) = rows.ended_calls(caller_number("caller7"))
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
    # RECORD FILE is given the name without its format; Asterisk adds ".wav".
    assert Path(f"{response['comment_file']}.wav").stat().st_size > 44 + 2 * 8000 * 2, response["comment_file"]
    (item,) = rows.query("SELECT * FROM followups WHERE call_id = ?", call["call_id"])
    assert (item["category"], item["urgency"], item["owner"]) == ("low-score", "important", "billing-lead"), item
    assert pbx.wait_no_channels(1.0) == []


AGENT_HOLD = 12.0  # the caller hangs up in the quiet bridge long before the agent would


def test_ten_callers_and_four_agents_at_once_without_cross_talk(
    tmp_path: Path, pbx: RealAsterisk, controller: Served
) -> None:
    # Each caller reaches an agent (any of the four): after the agent's identification tones
    # the bridge is quiet (the agent says nothing), which neither hold music nor the IVR is;
    # the caller hangs up there. Five worker processes of two callers, one of the four agents
    # (the pjsua2 wheel holds 4 calls a process).
    steps = """
- prompt: choose-language
- press: {keys: "1", dtmf: inband}
- prompt: main-menu
- press: {keys: "1", dtmf: inband}
- prompt: billing-menu
- press: {keys: "2", dtmf: inband}
- prompt: connecting-agent
- silence: {seconds: 1.5, within: 150}
- hangup
"""
    callers = [f"caller{n}" for n in range(2, 12)]
    jobs = [Job({c: scenario("to-an-agent", steps) for c in callers[i:i + 2]}) for i in range(0, 10, 2)]
    jobs.append(Job({}, ["1001", "1002", "1003", "1004"], hold=AGENT_HOLD, answer_after=0.5))
    outcomes = run_jobs(tmp_path, pbx, jobs)
    rows = Rows(controller)
    all_passed(outcomes)

    calls = {caller: rows.ended_calls(caller_number(caller))[0] for caller in callers}
    assert len({c["uniqueid"] for c in calls.values()}) == 10
    legs = []
    for caller, call in calls.items():
        (leg,) = rows.legs(call["call_id"])
        # The caller's own record: its number, its one leg, answered by an agent. (Who hung up
        # is not asserted: one caller of ten sometimes misses the quiet bridge, a rig audio
        # defect still open, and stays until the agent hangs up.)
        assert (call["caller"], call["disposition"]) == (caller_number(caller), "answered")
        assert leg["outcome"] == "answered" and leg["talk_seconds"] <= AGENT_HOLD + 1.0, leg
        legs.append(leg)
    assert {leg["agent_id"] for leg in legs} <= {"1001", "1002", "1003", "1004"}
    # No agent had two calls at once: each agent's answered legs follow one another.
    by_agent = sorted(legs, key=lambda leg: (leg["agent_id"], leg["answered_at"]))
    for before, after in zip(by_agent, by_agent[1:]):
        if before["agent_id"] == after["agent_id"]:
            end = dt.datetime.fromisoformat(before["answered_at"]) + dt.timedelta(seconds=before["talk_seconds"])
            assert end <= dt.datetime.fromisoformat(after["answered_at"]), (before, after)
    assert pbx.wait_no_channels(1.0) == []


def sip_headers(message: str) -> dict[str, str]:
    """A SIP message's headers (the last of a name wins)."""
    head = message.replace("\r\n", "\n").split("\n\n", 1)[0]
    return {name.strip(): value.strip() for name, sep, value in (line.partition(":") for line in head.split("\n")[1:]) if sep}


async def test_the_agent_phone_gets_the_call_id_and_the_callers_context_in_the_invite(
    tmp_path: Path, pbx: RealAsterisk, controller: Served
) -> None:
    """The ACD's Dial runs [ivr-agent-headers] on the agent's channel (the b() option): the
    INVITE the agent's phone receives carries the call id of the call record, the queue, the
    hotline, the language, the kind of customer and the hotline's CRM link, filled in and
    intact through Asterisk's Dial parsing (the template has `,` `(` `)`)."""
    agent = phone(pbx, "1001")  # in this process: its received INVITEs are read here
    pool = AgentPool([agent], AgentBehaviour(answer_after=0.5, hold=3.0))
    await pool.start()
    try:
        await pool.dial_code("*71")
        try:
            results = await run_scenarios(tmp_path, pbx, scenario("agent-headers", """
- prompt: choose-language
- press: {keys: "2", dtmf: inband}
- language: en-US
- prompt: main-menu
- press: {keys: "1", dtmf: inband}
- prompt: billing-menu
- press: {keys: "2", dtmf: inband}
- prompt: connecting-agent
- agent: {within: 30}
- hangup
"""), caller="caller12", agents=pool)
        finally:
            await pool.dial_code("*72")
    finally:
        await pool.stop()
    assert passed(results), explain(results)

    number = caller_number("caller12")
    (call,) = Rows(controller).ended_calls(number)
    assert call["disposition"] == "answered", call
    offered = [sip_headers(invite) for invite in agent.invites]
    (headers,) = [h for h in offered if "X-IVR-Call-Id" in h]
    assert headers["X-IVR-Call-Id"] == call["call_id"]
    assert {name: value for name, value in headers.items() if name.startswith("X-IVR-") and name != "X-IVR-Call-Id"} == {
        "X-IVR-Queue": "billing",
        "X-IVR-Hotline": HOTLINE,
        "X-IVR-Language": "en-US",
        "X-IVR-Customer": "new",
        "X-IVR-Pop-Url": crm_link(CRM_URL, caller=number, call_id=call["call_id"], queue="billing", hotline=HOTLINE,
                                  language="en-US").replace(",", "%2C").replace("(", "%28").replace(")", "%29"),
    }
    assert headers["X-IVR-Pop-Url"].endswith(f"phone={number}&call={call['call_id']}&q=billing&lang=en-US&tag=a%2Cb%28c%29")
    assert pbx.wait_no_channels(1.0) == []
