"""Callers hanging up at every kind of node leave no channel on the real PBX and the right
record; with the controller down the dialplan's fallback queue still reaches an agent; an
unknown number hears "not in service"."""

from __future__ import annotations

import asyncio
from pathlib import Path

from asteriskkit import RealAsterisk, caller_number
from ivr.rig.agents import AgentBehaviour, AgentPool
from servekit import Served
from tierkit import HOTLINE, Rows, agents_logged_in, explain, passed, phone, run_scenarios

_TO_MAIN = """
      - prompt: choose-language
      - press: {keys: "2", dtmf: inband}
      - language: en-US
      - prompt: main-menu"""

# The caller hangs up at each kind of node: (caller, steps after dialing, disposition).
HANG_UPS = {
    "prompt": ("caller2", "\n      - prompt: {id: recording-notice, within: 10}\n      - wait: 0.5", "abandoned"),
    "menu": ("caller3", _TO_MAIN, "abandoned"),
    "lookup": ("caller4", _TO_MAIN + """
      - press: {keys: "1", dtmf: inband}
      - prompt: billing-menu
      - press: {keys: "1", dtmf: inband}
      - prompt: enter-account
      - press: {keys: "55555555#", dtmf: inband}
      - prompt: please-wait
      - wait: 1""", "abandoned"),
}
# Two billing callers while the only billing expert logged in (1001) rings without answering:
# one is offered to 1001 (ringing), the other waits; both hang up 3 s after being queued.
_TO_BILLING_QUEUE = _TO_MAIN + """
      - press: {keys: "1", dtmf: inband}
      - prompt: billing-menu
      - press: {keys: "2", dtmf: inband}
      - prompt: connecting-agent
      - wait: 3"""


def _scenario(name: str, steps: str) -> str:
    return f"""
scenarios:
  - name: hang-up-at-{name}
    dial: "{HOTLINE}"
    language: zh-CN
    steps:{steps}
      - hangup
"""


async def test_a_caller_who_hangs_up_at_any_node_leaves_no_channel_and_the_right_record(
    tmp_path: Path, pbx: RealAsterisk, controller: Served
) -> None:
    runs = [run_scenarios(tmp_path, pbx, _scenario(name, steps), caller=caller)
            for name, (caller, steps, _) in HANG_UPS.items()]  # fmt: skip
    queued = _scenario("queue", _TO_BILLING_QUEUE)
    # Survey: the agent hangs up, the caller answers one question and hangs up.
    survey = _scenario("survey", _TO_MAIN + """
      - press: {keys: "2", dtmf: inband}
      - prompt: technical-menu
      - press: {keys: "2", dtmf: inband}
      - agent: {within: 20}
      - agent_hangup: {within: 20}
      - prompt: survey-intro
      - prompt: survey-speed
      - press: {keys: "4", dtmf: inband}
      - prompt: survey-attitude""")
    async with (
        agents_logged_in(pbx, ["1001"], AgentBehaviour(answer_after=30.0, hold=1.0)) as ringing_agent,
        agents_logged_in(pbx, ["1003"], AgentBehaviour(answer_after=0.5, hold=2.0)) as technical_agent,
    ):
        outcomes = await asyncio.gather(
            *runs,
            run_scenarios(tmp_path, pbx, queued, caller="caller5", agents=ringing_agent),
            run_scenarios(tmp_path, pbx, queued, caller="caller6", agents=ringing_agent),
            run_scenarios(tmp_path, pbx, survey, caller="caller8", agents=technical_agent),
        )
        assert all(passed(results) for results in outcomes), "\n".join(explain(r) for r in outcomes)
        assert pbx.wait_no_channels(1.0) == []

    rows = Rows(controller)
    for name, (caller, _, disposition) in HANG_UPS.items():
        (call,) = await rows.ended_calls(caller_number(caller))
        assert (call["disposition"], call["hung_up_by"]) == (disposition, "caller"), (name, call)
    queued_legs = []
    for caller in ("caller5", "caller6"):
        (call,) = await rows.ended_calls(caller_number(caller))
        (leg,) = rows.legs(call["call_id"])
        assert (call["disposition"], call["hung_up_by"], leg["outcome"]) == ("queue_abandoned", "caller", "abandoned"), leg
        queued_legs.append(leg)
    assert max(leg["offers"] for leg in queued_legs) == 1, queued_legs  # one of them hung up while 1001 rang
    (surveyed,) = await rows.ended_calls(caller_number("caller8"))
    response, answers = rows.survey(surveyed["call_id"])
    assert response["status"] == "partial" and [(a["question"], a["value"]) for a in answers][:1] == [("speed", 4)]


async def test_with_the_controller_down_the_fallback_queue_reaches_an_agent(tmp_path: Path, pbx: RealAsterisk) -> None:
    # No controller listens on IVR_AGI: AGISTATUS=FAILURE sends the caller to app_queue's
    # hotline-general, whose members are the agent endpoints.
    agent = AgentPool([phone(pbx, "1002")], AgentBehaviour(answer_after=0.5, hold=2.0))
    await agent.start()
    try:
        results = await run_scenarios(tmp_path, pbx, f"""
scenarios:
  - name: controller-down
    dial: "{HOTLINE}"
    steps:
      - agent: {{within: 30}}
      - agent_hangup: {{within: 20}}
      - hangup
""", caller="caller9", agents=agent)  # fmt: skip
    finally:
        await agent.stop()
    assert passed(results), explain(results)
    assert f"controller unreachable (AGISTATUS=FAILURE) for {HOTLINE}: queue general" in pbx.log
    assert pbx.wait_no_channels(1.0) == []


async def test_an_unknown_number_hears_not_in_service(tmp_path: Path, pbx: RealAsterisk, controller: Served) -> None:
    results = await run_scenarios(tmp_path, pbx, """
scenarios:
  - name: unknown-number
    dial: "4009999999"
    steps:
      - audio: {seconds: 1.0, within: 5}
      - far_hangup: {within: 10}
""", caller="caller10")  # fmt: skip
    assert passed(results), explain(results)
    assert "no hotline configured for 4009999999" in pbx.log
    (call,) = await Rows(controller).ended_calls(caller_number("caller10"))
    assert call["disposition"] == "not_in_service", call
    assert "ERROR" not in controller.output(), controller.output()
