"""The demo's day, drawn from one seed before any call is placed: when each call arrives,
what its caller does, how long they hold on in a queue, how each agent's phone behaves.

Arrivals are a Poisson process over the opening hours with a busier late morning: given the
number of calls, a Poisson process's arrival times are independent draws from its rate
profile, so each call draws an hour by its weight and a moment within it. A few callers ring
after closing time and hear the closed message.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from ivr.pbxsim import SURVEY_REENTRY, Agent, CallerScript, HangUp, NoAnswer, Press, SimCall
from ivr.pbxsim.caller import AgentBehaviour, Step

SHANGHAI = ZoneInfo("Asia/Shanghai")
SHIFT_START = dt.datetime(2026, 11, 25, 9, 0, tzinfo=SHANGHAI)  # a Wednesday; the agents log in
# Relative call rates of the hours from 09:00: the late morning is the busy hour.
HOURLY_RATE = (1.0, 2.4, 1.5, 0.9, 1.0, 1.2)
AFTER_HOURS = (dt.timedelta(hours=12), dt.timedelta(hours=12, minutes=30))  # 21:00-21:30, closed
AFTER_HOURS_SHARE = 0.05
MEAN_PATIENCE = 100.0  # seconds a caller holds on in a queue, on average (exponential)
MEDIAN_TALK = 180.0  # seconds (log-normal)


@dataclass(frozen=True)
class DemoCall:
    offset: float  # seconds after SHIFT_START
    call: SimCall


def plan_day(rng: random.Random, calls: int, hotlines: Mapping[str, bool], endpoints: Sequence[str]) -> list[DemoCall]:
    """`calls` calls in arrival order. `hotlines`: dialed number -> whether the line asks for
    the language first; the first is the busiest. `endpoints`: the agents' phones."""
    numbers = list(hotlines)
    late = max(1, round(calls * AFTER_HOURS_SHARE)) if calls > 1 else 0
    offsets = [_daytime(rng) for _ in range(calls - late)]
    start, end = AFTER_HOURS
    offsets += [rng.uniform(start.total_seconds(), end.total_seconds()) for _ in range(late)]
    planned = []
    for n, offset in enumerate(sorted(offsets), 1):
        number = rng.choices(numbers, weights=[4] + [1] * (len(numbers) - 1))[0]
        steps = _script(rng)
        if not hotlines[number]:
            steps = steps[1:]  # single-language line: no language choice
        epoch = (SHIFT_START + dt.timedelta(seconds=offset)).timestamp()
        caller = CallerScript(steps, caller_id=f"138{rng.randrange(10**8):08d}",
                              patience=max(5.0, rng.expovariate(1 / MEAN_PATIENCE)))
        planned.append(DemoCall(offset, SimCall(
            caller, extension=number, script=f"ivr?hotline={number}", agents=_agents(rng, endpoints),
            dialplan=SURVEY_REENTRY, uniqueid=f"{int(epoch)}.{n}")))
    return planned


def _daytime(rng: random.Random) -> float:
    hour = rng.choices(range(len(HOURLY_RATE)), weights=HOURLY_RATE)[0]
    return (hour + rng.random()) * 3600


def _agents(rng: random.Random, endpoints: Sequence[str]) -> dict[str, AgentBehaviour]:
    """How each agent's phone behaves if this call rings it: most answer within seconds."""
    return {
        endpoint: NoAnswer() if rng.random() < 0.05 else
        Agent(answer_after=rng.uniform(2, 8), talk=min(900.0, rng.lognormvariate(math.log(MEDIAN_TALK), 0.5)),
              hangs_up_first=rng.random() < 0.7)
        for endpoint in endpoints
    }


def _script(rng: random.Random) -> tuple[Step, ...]:
    """A caller who behaves like real ones: most choose, some wander, some give up."""
    steps: list[Step] = [Press(rng.choice("12"), on_prompt="choose-language")]
    kind = rng.choices(
        ["billing-agent", "balance", "technical", "order", "voicemail", "operator", "silent", "hangup", "invalid"],
        weights=[18, 14, 16, 10, 6, 8, 8, 12, 8],
    )[0]
    if kind == "billing-agent":
        steps += [Press("1", on_prompt="main-menu"), Press("2", on_prompt="billing-menu")]
    elif kind == "balance":
        account = rng.choice(["12345678", "99999999"])
        steps += [Press("1", on_prompt="main-menu"), Press("1", on_prompt="billing-menu"),
                  Press(account + "#", on_prompt="enter-account"), HangUp(on_prompt="anything-else", after=2)]
    elif kind == "technical":
        steps += [Press("2", on_prompt="main-menu"), Press("2", on_prompt="technical-menu")]
    elif kind == "order":
        steps += [Press("2", on_prompt="main-menu"), Press("1", on_prompt="technical-menu"),
                  Press("1234567890#", on_prompt="enter-order"), Press("2", on_prompt="anything-else")]
    elif kind == "voicemail":
        steps += [Press("3", on_prompt="main-menu")]
    elif kind == "operator":
        steps += [Press("0", on_prompt="main-menu")]
    elif kind == "hangup":
        steps += [HangUp(on_prompt=rng.choice(["main-menu", "billing-menu"]), after=rng.uniform(0.5, 4))]
        if steps[-1].on_prompt == "billing-menu":
            steps.insert(-1, Press("1", on_prompt="main-menu"))
    elif kind == "invalid":
        steps += [Press("7", on_prompt="main-menu"), Press("8", on_prompt="main-menu"),
                  Press("2", on_prompt="main-menu"), Press("*", on_prompt="technical-menu"),
                  Press("1", on_prompt="main-menu"), Press("2", on_prompt="billing-menu")]
    # The order path ends in the general queue, which asks before the agent who wants a survey.
    return tuple(steps) + _survey_answers(rng, asked_to_opt_in=kind == "order")


def _survey_answers(rng: random.Random, *, asked_to_opt_in: bool) -> tuple[Step, ...]:
    """What the caller does if the survey comes (config/surveys.yaml decides whether it does):
    mostly content, some unhappy, a few hang up half-way; most skip the spoken comment."""
    steps: list[Step] = []
    if asked_to_opt_in and rng.random() < 0.6:
        steps.append(Press("1", on_prompt="survey-opt-in"))
    mood = rng.choices([5, 4, 3, 2, 1], weights=[40, 25, 15, 12, 8])[0]
    for question in ("survey-speed", "survey-attitude"):
        steps.append(Press(str(max(1, min(5, mood + rng.choice((-1, 0, 0, 1))))), on_prompt=question))
    if rng.random() < 0.1:
        steps.append(HangUp(on_prompt="survey-resolved", after=1))
        return tuple(steps)
    steps.append(Press("1" if mood >= 3 or rng.random() < 0.3 else "2", on_prompt="survey-resolved"))
    nps = max(0, min(10, 2 * mood + rng.choice((-2, -1, 0, 0, 1))))
    steps.append(Press(f"{nps}#" if nps < 10 else "10", on_prompt="survey-nps"))
    if rng.random() < 0.15:  # speaks after the beep, then # ends the comment
        steps.append(Press("#", on_prompt="beep", after=rng.uniform(4, 25)))
    else:  # # during the beep: the comment ends before it begins, nothing is recorded
        steps.append(Press("#", on_prompt="beep", after=0.1))
    return tuple(steps)
