"""Queue strategies: in which order the agents who could take a caller are tried.

Pure functions, no I/O. `rank` orders a whole candidate list (for tests, tools and
announcements); `best` returns only the first of that order and is what `routing.decision.match`
calls for every caller.

Every order is deterministic for the same inputs (ties end on the agent id, `random` shuffles a
sorted list with the `rng` it is given), so several controllers ranking the same shared snapshot
agree, whatever their hash seed or set iteration order.

Complexity, with k candidates:

- `rank`: O(k log k) (`round_robin`, `random`: O(k log k) for the sort of the ids);
- `best`: O(k) with one key computation per candidate (`min`), never a sort;
  `least_busy` costs O(h) more per candidate, h = the answer times the agent's state keeps
  (pruned to the longest rolling window by the live state).
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from routing.config import AgentConfig, QueueConfig, Strategy
from routing.model import AgentState, Caller

__all__ = ["best", "rank", "required_skills"]

_LOGGED_OUT = AgentState(agent_id="")


def required_skills(queue: QueueConfig, step: int) -> frozenset[str]:
    """The skills a queue and one of its steps name (what `skill_weighted` sums)."""
    return frozenset(queue.skills) | frozenset(queue.steps[step].skills)


def _step_of(queue: QueueConfig, caller: Caller, now: float) -> int:
    # Imported here: routing.decision imports this module.
    from routing.decision import current_step

    return current_step(queue, now - caller.enqueued_at)


def _key(
    strategy: Strategy,
    *,
    agents: Mapping[str, AgentConfig],
    states: Mapping[str, AgentState],
    queue: QueueConfig,
    caller: Caller,
    now: float,
    step: int | None,
    positions: Mapping[str, int] | None,
) -> Callable[[str], Any]:
    """The sort key (smallest first) of the strategies that have one."""
    get = states.get
    if strategy == "least_busy":
        start = now - queue.busy_window

        def least_busy(agent_id: str) -> tuple[int, float, str]:
            state = get(agent_id, _LOGGED_OUT)
            return state.calls_since(start), max(state.idle_since, state.wrap_up_until), agent_id

        return least_busy
    if strategy == "longest_idle":

        def longest_idle(agent_id: str) -> tuple[float, str]:
            state = get(agent_id, _LOGGED_OUT)
            return max(state.idle_since, state.wrap_up_until), agent_id

        return longest_idle
    if strategy == "linear":
        order = positions if positions is not None else {agent_id: i for i, agent_id in enumerate(agents)}
        last = len(order)

        def linear(agent_id: str) -> tuple[int, str]:
            return order.get(agent_id, last), agent_id

        return linear
    if strategy == "skill_weighted":
        named = required_skills(queue, _step_of(queue, caller, now) if step is None else step)

        def skill_weighted(agent_id: str) -> tuple[int, float, str]:
            config = agents.get(agent_id)
            skills = config.skills if config is not None else {}
            if named:
                weight = sum(skills.get(skill, 0) for skill in named)
            else:
                weight = sum(skills.values())
            state = get(agent_id, _LOGGED_OUT)
            return -weight, max(state.idle_since, state.wrap_up_until), agent_id

        return skill_weighted
    raise ValueError(f"strategy {strategy!r} has no sort key")


def rank(
    strategy: Strategy,
    candidates: Sequence[str],
    *,
    agents: Mapping[str, AgentConfig],
    states: Mapping[str, AgentState],
    queue: QueueConfig,
    caller: Caller,
    now: float,
    last_offered: str | None,
    rng: random.Random,
) -> list[str]:
    """The candidates, best first.

    - `least_busy`: fewest calls answered in the queue's `busy_window`, then longest idle
      (smallest `free_since()`), then agent id;
    - `longest_idle`: smallest `free_since()`, then agent id;
    - `round_robin`: the sorted candidate ids, starting after `last_offered` and wrapping
      (from the smallest id when there is no memory);
    - `random`: the sorted candidate ids shuffled with `rng`;
    - `linear`: the order of the `agents` mapping (the YAML order); unknown ids last, by id;
    - `skill_weighted`: highest sum of proficiencies over the skills the queue and the
      caller's current step name (all of the agent's skills if they name none), then longest
      idle, then agent id.
    """
    if strategy == "round_robin":
        ids = sorted(set(candidates))
        cut = bisect_right(ids, last_offered) if last_offered is not None else 0
        return ids[cut:] + ids[:cut]
    if strategy == "random":
        ids = sorted(set(candidates))
        rng.shuffle(ids)
        return ids
    key = _key(
        strategy, agents=agents, states=states, queue=queue, caller=caller, now=now, step=None, positions=None
    )
    return sorted(set(candidates), key=key)


def best(
    strategy: Strategy,
    candidates: Collection[str],
    *,
    agents: Mapping[str, AgentConfig],
    states: Mapping[str, AgentState],
    queue: QueueConfig,
    caller: Caller,
    now: float,
    last_offered: str | None,
    rng: random.Random,
    step: int | None = None,
    positions: Mapping[str, int] | None = None,
) -> str | None:
    """The first agent `rank` would return, in O(k) (None without candidates).

    `step` (the caller's current step) and `positions` (agent id -> place in `agents`) may be
    passed when the caller already has them. For `random` this is `rng.choice` over the sorted
    ids: as uniform as `rank`'s shuffle, but it draws differently from `rng`.
    """
    if not candidates:
        return None
    if strategy == "round_robin":
        if last_offered is None:
            return min(candidates)
        after = [agent_id for agent_id in candidates if agent_id > last_offered]
        return min(after) if after else min(candidates)
    if strategy == "random":
        return rng.choice(sorted(candidates))
    key = _key(
        strategy, agents=agents, states=states, queue=queue, caller=caller, now=now, step=step, positions=positions
    )
    return min(candidates, key=key)
