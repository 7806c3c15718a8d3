"""Queue strategies: the full order `rank` gives, best first, with the agent each rule puts first."""

from __future__ import annotations

import random
from typing import Any

import pytest

from routing.config import AgentConfig, QueueConfig, Strategy
from routing.model import Activity, AgentState, Caller, Device, Presence
from routing.strategies import best, rank

NOW = 50_000.0
QUEUE = QueueConfig(busy_window=600)
CALLER = Caller(call_id="c1", queue="q", enqueued_at=NOW)


def agent(skills: dict[str, int] | None = None) -> AgentConfig:
    return AgentConfig(name="x", endpoint="PJSIP/x", skills=skills or {})


def state(agent_id: str, *, idle_since: float = 0.0, calls: int = 0, **changes: Any) -> AgentState:
    handled = tuple(NOW - 10 * (i + 1) for i in range(calls))[::-1]
    return AgentState(
        agent_id=agent_id, presence=Presence.READY, device=Device.NOT_INUSE, idle_since=idle_since, handled=handled
    ).with_(**changes)


def ranked(strategy: Strategy, states: dict[str, AgentState], *, queue: QueueConfig = QUEUE, agents: dict[str, AgentConfig] | None = None, last: str | None = None, seed: int = 0) -> list[str]:
    agents = agents if agents is not None else {aid: agent() for aid in states}
    kwargs: dict[str, Any] = dict(agents=agents, states=states, queue=queue, caller=CALLER, now=NOW, last_offered=last)
    order = rank(strategy, list(states), rng=random.Random(seed), **kwargs)
    # `best` agrees with the head of `rank` (for `random`, it is only a member).
    top = best(strategy, set(states), rng=random.Random(seed), **kwargs)
    if strategy == "random":
        assert top in order
    else:
        assert top == order[0]
    return order


def test_least_busy_fewest_calls_in_the_window_first() -> None:
    # 1002 handled 1 call in the window, 1001 and 1003 handled 3: 1002 first; 1001 and 1003
    # tie on calls and 1003 has been idle longer.
    states = {
        "1001": state("1001", idle_since=300, calls=3),
        "1002": state("1002", idle_since=900, calls=1),
        "1003": state("1003", idle_since=100, calls=3),
    }
    assert ranked("least_busy", states) == ["1002", "1003", "1001"]


def test_least_busy_counts_only_the_queues_busy_window() -> None:
    old = tuple(NOW - 700 - i for i in range(5))[::-1]  # five calls, all older than 600 s
    states = {"1001": state("1001", idle_since=500, handled=old), "1002": state("1002", idle_since=10, calls=1)}
    assert ranked("least_busy", states) == ["1001", "1002"]
    assert ranked("least_busy", states, queue=QueueConfig(busy_window=3600)) == ["1002", "1001"]


def test_least_busy_and_longest_idle_use_the_end_of_wrap_up() -> None:
    # 1001 went idle first but its wrap-up ended after 1002 became free.
    states = {
        "1001": state("1001", idle_since=100, activity=Activity.WRAP_UP, wrap_up_until=400),
        "1002": state("1002", idle_since=300),
    }
    assert ranked("longest_idle", states) == ["1002", "1001"]
    assert ranked("least_busy", states) == ["1002", "1001"]


def test_longest_idle_then_id() -> None:
    states = {"1003": state("1003", idle_since=5), "1001": state("1001", idle_since=9), "1002": state("1002", idle_since=5)}
    assert ranked("longest_idle", states) == ["1002", "1003", "1001"]


@pytest.mark.parametrize(
    ("last", "expected"),
    [
        (None, ["1001", "1002", "1005"]),
        ("1001", ["1002", "1005", "1001"]),
        ("1005", ["1001", "1002", "1005"]),  # wraps
        ("1003", ["1005", "1001", "1002"]),  # the last one offered is no longer a candidate
        ("0999", ["1001", "1002", "1005"]),
    ],
)
def test_round_robin_starts_after_last_offered(last: str | None, expected: list[str]) -> None:
    states = {aid: state(aid) for aid in ["1005", "1001", "1002"]}
    assert ranked("round_robin", states, last=last) == expected


def test_random_is_a_seeded_shuffle_independent_of_input_order() -> None:
    states = {f"a{i:02}": state(f"a{i:02}") for i in range(12)}
    one = ranked("random", states, seed=4)
    assert sorted(one) == sorted(states)
    reversed_states = dict(reversed(list(states.items())))
    assert ranked("random", reversed_states, seed=4) == one
    assert len({tuple(ranked("random", states, seed=s)) for s in range(10)}) > 1


def test_linear_is_the_yaml_order() -> None:
    agents = {"1009": agent(), "1001": agent(), "1005": agent()}
    states = {aid: state(aid) for aid in ["1005", "1001", "1009", "2000"]}
    assert ranked("linear", states, agents=agents) == ["1009", "1001", "1005", "2000"]


def test_skill_weighted_sums_the_named_skills_then_longest_idle() -> None:
    agents = {
        "1001": agent({"billing": 3, "vat": 3, "sales": 5}),  # 6 over billing + vat
        "1002": agent({"billing": 5, "vat": 1}),  # 6, idle longer
        "1003": agent({"billing": 5, "vat": 4}),  # 9
        "1004": agent({"sales": 5}),  # 0
    }
    states = {aid: state(aid, idle_since=100) for aid in agents}
    states["1002"] = state("1002", idle_since=50)
    q = QueueConfig(skills={"billing": 1}, steps=(QueueConfig().steps[0].model_copy(update={"skills": {"vat": 1}}),))
    assert ranked("skill_weighted", states, agents=agents, queue=q) == ["1003", "1002", "1001", "1004"]
    # No skills named: all the agent's skills: 1001 has 11, 1003 9, 1002 6, 1004 5.
    assert ranked("skill_weighted", states, agents=agents) == ["1001", "1003", "1002", "1004"]


@pytest.mark.parametrize("strategy", ["least_busy", "longest_idle", "round_robin", "random", "linear", "skill_weighted"])
def test_no_candidates(strategy: Strategy) -> None:
    kwargs: dict[str, Any] = dict(agents={}, states={}, queue=QUEUE, caller=CALLER, now=NOW, last_offered=None, rng=random.Random(0))
    assert rank(strategy, [], **kwargs) == []
    assert best(strategy, [], **kwargs) is None
