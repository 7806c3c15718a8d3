"""The ACD's decisions: which step a caller is in, who may serve it, who serves it now.

Pure: no I/O, no asyncio, no clock (every function takes `now`, epoch seconds). The ACD loop
takes a snapshot of the live state (`routing.state.LiveState`), calls `match`, and tries to
reserve the agents it was given for its own callers; reservation is atomic elsewhere, so two
controllers computing the same matching from the same snapshot cannot hand one agent two calls.
Everything here is deterministic for the same inputs (orders end on ids, never on set or hash
order), so every controller computes the same matching.

Complexity (n agents, c waiting callers, s steps per queue, k = eligible available agents of
one caller):

- `current_step`, `next_step_at`: O(s). `can_serve`: O(skills named by the queue and step +
  groups + languages). `service_order`: O(c log c); `position`: O(c), no sort.
- Static eligibility (skills, groups, language of a queue step) is computed once per
  (agents mapping, queue config, step, language) and cached as a frozenset of agent ids, so
  a caller's decision never re-checks skills agent by agent. The cache is keyed on the
  identity of the `agents` mapping and of each `QueueConfig`: configuration is immutable
  (a reload builds new objects); do not mutate an `agents` mapping after passing it here.
- `match` with a plain mapping of states: one O(n) pass to find the available agents, then
  per caller a C-level set intersection (eligible & available, O(min of the two)) and one
  `min()` over the k candidates (`strategies.best`, never a sort): O(n + c * k).
- `match` with an `AgentSnapshot` (an immutable mapping that carries its own indexes): the
  available agents are a cached set (bisect over wrap-up end times), and for every strategy
  but `random` the snapshot keeps, per eligibility set, the agents who could become
  available sorted by the strategy's key; a caller's decision walks that list from the front
  and stops at the first agent not yet taken, not excluded and available now. The first
  decision on a new snapshot for a queue step builds that list (O(n log n)); every later one
  costs O(agents skipped), typically a handful of dictionary look-ups whatever n is.
  `least_busy` orders stay valid while no answer time crosses the window's start; after
  that they are rebuilt. `random` always takes the O(n + k) path (a uniform draw needs the
  whole candidate set).
  Measured (10,000 agents, 20 skills, one caller, this repo's dev machine): plain dict
  about 8 ms per decision (the O(n) availability pass dominates), `AgentSnapshot` about
  10 us p50 once its order for the queue step is built (building the snapshot: about 9 ms,
  once per snapshot, shared by every decision on it).
- `can_ever_be_served`: O(s) cached set look-ups, then at most one pass over the eligible
  agents (stops at the first one logged in). `estimate_wait`: O(c + eligible agents * h)
  with h the answer times kept per agent.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from routing import strategies
from routing.config import AgentConfig, QueueConfig, Step, Strategy
from routing.model import DEVICE_BLOCKS, Activity, AgentState, Caller, Presence

__all__ = [
    "AgentSnapshot",
    "Assignment",
    "can_ever_be_served",
    "can_serve",
    "current_step",
    "estimate_wait",
    "match",
    "next_step_at",
    "position",
    "service_order",
]


@dataclass(frozen=True)
class Assignment:
    caller: Caller
    agent_id: str
    step: int  # index of the queue step the caller was in


# --- steps ------------------------------------------------------------------------------


def current_step(queue: QueueConfig, waited: float) -> int:
    """The index of the step a caller who has waited `waited` seconds is in.

    Step i lasts `steps[i].for_seconds`; the last one lasts until max wait (and beyond: a
    caller past max wait is still in the last step, overflowing is the ACD's business).
    The boundary belongs to the next step: with steps of 20 s and 40 s, 20.0 s is step 1."""
    elapsed = 0.0
    last = len(queue.steps) - 1
    for index, step in enumerate(queue.steps):
        if index == last or step.for_seconds is None:
            return index
        elapsed += step.for_seconds
        if waited < elapsed:
            return index
    return last


def next_step_at(queue: QueueConfig, caller: Caller, now: float | None = None) -> float | None:
    """The epoch second at which the caller moves to the next step; None in the last step.

    `now` says which step the caller is in; without it, the step the caller entered on
    arrival (step 0), so the answer is the end of the first step."""
    waited = 0.0 if now is None else now - caller.enqueued_at
    step = current_step(queue, waited)
    if step == len(queue.steps) - 1:
        return None
    ends = sum(s.for_seconds or 0.0 for s in queue.steps[: step + 1])
    return caller.enqueued_at + ends


# --- eligibility ------------------------------------------------------------------------


def _language(queue: QueueConfig, caller: Caller) -> str | None:
    """The language the agent must speak: the caller's ("" = unknown = any), a fixed one, or None."""
    if queue.language == "caller":
        return caller.language or None
    return queue.language


def _static_ok(agent: AgentConfig, queue: QueueConfig, step: Step, language: str | None) -> bool:
    """Skills, groups and language: what does not depend on the caller beyond its language."""
    skills = agent.skills
    for skill, level in queue.skills.items():
        if skills.get(skill, 0) < max(level, step.skills.get(skill, 0)):
            return False
    for skill, level in step.skills.items():
        if skills.get(skill, 0) < level:
            return False
    if step.groups and not any(group in agent.groups for group in step.groups):
        return False
    if queue.groups and not any(group in agent.groups for group in queue.groups):
        return False
    return language is None or not agent.languages or language in agent.languages


def _step(queue: QueueConfig, step: int) -> Step:
    return queue.steps[max(0, min(step, len(queue.steps) - 1))]


def can_serve(agent_id: str, agent: AgentConfig, caller: Caller, queue: QueueConfig, step: int, now: float) -> bool:
    """Whether the agent may take the caller at this step, availability not considered.

    - skills: for every skill the queue or the step names, the agent's proficiency is at
      least the larger of the two minimums;
    - groups: if the step names groups, the agent is in one of them; same for the queue;
    - language: queue `language: caller` -> the agent speaks the caller's language; a key ->
      that language; None -> any. An agent with no `languages` speaks any; a caller with
      no language ("") can be served by anyone;
    - the agent did not miss or reject this call (`caller.excluded`);
    - affinity: while `now < caller.affinity_until`, only `caller.affinity_agent`. Whether
      the affinity still holds (the agent logged out, say) needs live state: `match` decides
      that and drops the affinity before it checks eligibility.
    """
    if agent_id in caller.excluded:
        return False
    if caller.affinity_agent is not None and now < caller.affinity_until and agent_id != caller.affinity_agent:
        return False
    return _static_ok(agent, queue, _step(queue, step), _language(queue, caller))


class _ConfigIndex:
    """Derived from one immutable `agents` mapping: eligibility sets and YAML positions."""

    __slots__ = ("agents", "size", "positions", "_eligible")

    _MAX_QUEUES = 512

    def __init__(self, agents: Mapping[str, AgentConfig]) -> None:
        self.agents = agents  # a strong reference: its id cannot be reused while cached
        self.size = len(agents)
        self.positions = {agent_id: i for i, agent_id in enumerate(agents)}
        self._eligible: dict[int, tuple[QueueConfig, dict[tuple[int, str | None], frozenset[str]]]] = {}

    def eligible(self, queue: QueueConfig, step: int, language: str | None) -> frozenset[str]:
        """Agent ids that pass skills, groups and language for this queue step."""
        entry = self._eligible.get(id(queue))
        if entry is None or entry[0] is not queue:
            if len(self._eligible) >= self._MAX_QUEUES:
                self._eligible.clear()
            entry = (queue, {})
            self._eligible[id(queue)] = entry
        sets = entry[1]
        key = (max(0, min(step, len(queue.steps) - 1)), language)
        found = sets.get(key)
        if found is None:
            step_config = queue.steps[key[0]]
            found = frozenset(
                agent_id for agent_id, agent in self.agents.items() if _static_ok(agent, queue, step_config, language)
            )
            sets[key] = found
        return found


_INDEXES: dict[int, _ConfigIndex] = {}
_MAX_INDEXES = 8


def _config_index(agents: Mapping[str, AgentConfig]) -> _ConfigIndex:
    index = _INDEXES.get(id(agents))
    if index is not None and index.agents is agents and index.size == len(agents):
        return index
    if len(_INDEXES) >= _MAX_INDEXES:
        del _INDEXES[next(iter(_INDEXES))]  # the oldest
    index = _ConfigIndex(agents)
    _INDEXES[id(agents)] = index
    return index


def _binding_affinity(caller: Caller, eligible: frozenset[str], states: Mapping[str, AgentState], now: float) -> str | None:
    """The affinity agent if only they may take the caller now, else None (route normally).

    The affinity does not bind once the hold is over, nor when its agent is logged out
    (or has no state), has missed or rejected this call, or could not take this call at this
    step anyway (unknown agent, lacking the step's skills, groups or language): a caller is
    never kept waiting for an agent who could not answer."""
    agent_id = caller.affinity_agent
    if agent_id is None or now >= caller.affinity_until or agent_id in caller.excluded:
        return None
    state = states.get(agent_id)
    if state is None or state.presence is Presence.LOGGED_OUT or agent_id not in eligible:
        return None
    return agent_id


# --- order of callers ---------------------------------------------------------------------


def _service_key(caller: Caller) -> tuple[int, float, str]:
    return -caller.priority, caller.enqueued_at, caller.call_id


def service_order(callers: Sequence[Caller]) -> list[Caller]:
    """Callers in the order they are served, across all queues: priority (highest first),
    then longest waiting (smallest `enqueued_at`), then call id."""
    return sorted(callers, key=_service_key)


def position(caller: Caller, callers: Sequence[Caller]) -> int:
    """The caller's 1-based place among the callers of its queue, in service order.

    `callers` may or may not contain `caller` itself (matched by call id)."""
    key = _service_key(caller)
    ahead = sum(
        1
        for other in callers
        if other.queue == caller.queue and other.call_id != caller.call_id and _service_key(other) < key
    )
    return ahead + 1


# --- live state ----------------------------------------------------------------------------


def _could_be_available(state: AgentState) -> bool:
    """Ready, a device that can ring, and idle or in wrap-up (available once it ends)."""
    return (
        state.presence is Presence.READY
        and state.device not in DEVICE_BLOCKS
        and (state.activity is Activity.IDLE or state.activity is Activity.WRAP_UP)
    )


# Draws before `random` scans for a free agent: with a quarter of the order free, 8 draws
# miss one in 10 times.
_RANDOM_DRAWS = 8


class AgentSnapshot(Mapping[str, AgentState]):
    """An immutable snapshot of agents' live states that carries the indexes `match` uses.

    Build one per snapshot taken from the live state (`AgentSnapshot(await live.agents())`,
    O(n log n)) and pass it to `match` instead of the plain dict: decisions then cost a
    handful of look-ups instead of a pass over every agent (see the module docstring).
    A plain mapping works too, with the same results."""

    __slots__ = ("_states", "_idle", "_wrap_until", "_wrap_times", "_wrap_ids", "_available", "_orders")

    def __init__(self, states: Mapping[str, AgentState]) -> None:
        self._states = dict(states)
        idle: set[str] = set()
        wrapping: list[tuple[float, str]] = []
        for agent_id, state in self._states.items():
            if _could_be_available(state):
                if state.activity is Activity.IDLE:
                    idle.add(agent_id)
                else:
                    wrapping.append((state.wrap_up_until, agent_id))
        wrapping.sort()
        self._idle = frozenset(idle)
        self._wrap_until = {agent_id: until for until, agent_id in wrapping}
        self._wrap_times = [until for until, _ in wrapping]
        self._wrap_ids = [agent_id for _, agent_id in wrapping]
        self._available: tuple[int, frozenset[str]] = (0, self._idle)
        # (strategy, eligibility set id, parameter) -> (eligible set, valid from, valid to, order)
        self._orders: dict[tuple[str, int, object], tuple[frozenset[str], float, float, list[str]]] = {}

    # Mapping
    def __getitem__(self, agent_id: str) -> AgentState:
        return self._states[agent_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._states)

    def __len__(self) -> int:
        return len(self._states)

    def __contains__(self, agent_id: object) -> bool:
        return agent_id in self._states

    def get(self, agent_id: str, default: AgentState | None = None) -> AgentState | None:  # type: ignore[override]
        return self._states.get(agent_id, default)

    # Indexes
    def available_ids(self, now: float) -> frozenset[str]:
        """Ids of the agents available at `now` (`AgentState.available(now)`)."""
        count = bisect_right(self._wrap_times, now)
        cached_count, cached = self._available
        if count != cached_count:
            cached = self._idle | frozenset(self._wrap_ids[:count])
            self._available = (count, cached)
        return cached

    def _is_available(self, agent_id: str, now: float) -> bool:
        if agent_id in self._idle:
            return True
        until = self._wrap_until.get(agent_id)
        return until is not None and until <= now

    def _order(
        self,
        strategy: Strategy,
        eligible: frozenset[str],
        *,
        agents: Mapping[str, AgentConfig],
        queue: QueueConfig,
        caller: Caller,
        step: int,
        now: float,
        positions: Mapping[str, int],
    ) -> list[str]:
        """The eligible agents who could become available, best first for `strategy`."""
        parameter: object
        if strategy == "least_busy":
            parameter = queue.busy_window
        elif strategy == "skill_weighted":
            parameter = strategies.required_skills(queue, step)
        elif strategy == "linear":
            parameter = id(positions)
        else:
            parameter = None
        key = (strategy, id(eligible), parameter)
        cached = self._orders.get(key)
        if cached is not None and cached[0] is eligible and cached[1] < now <= cached[2]:
            return cached[3]
        members = [agent_id for agent_id in eligible if agent_id in self._idle or agent_id in self._wrap_until]
        valid_from, valid_to = float("-inf"), float("inf")
        if strategy in ("round_robin", "random"):
            order = sorted(members)
        else:
            sort_key = strategies._key(
                strategy,
                agents=agents,
                states=self._states,
                queue=queue,
                caller=caller,
                now=now,
                step=step,
                positions=positions,
            )
            order = sorted(members, key=sort_key)
            if strategy == "least_busy":
                # Counts stay the same while the window's start stays between two answer times.
                start = now - queue.busy_window
                below = [at for m in members for at in self._states[m].handled if at < start]
                above = [at for m in members for at in self._states[m].handled if at >= start]
                # Valid for valid_from < now <= valid_to (an answer time equal to the start counts).
                valid_from = (max(below) if below else float("-inf")) + queue.busy_window
                valid_to = (min(above) if above else float("inf")) + queue.busy_window
        if len(self._orders) >= 256:
            self._orders.clear()
        self._orders[key] = (eligible, valid_from, valid_to, order)
        return order

    def pick(
        self,
        strategy: Strategy,
        eligible: frozenset[str],
        *,
        agents: Mapping[str, AgentConfig],
        queue: QueueConfig,
        caller: Caller,
        step: int,
        now: float,
        taken: set[str],
        last_offered: str | None,
        positions: Mapping[str, int],
        rng: random.Random,
    ) -> str | None:
        """The best eligible agent available at `now`, not taken, not excluded.

        `random` draws uniformly among those: a few draws from the cached order, each kept
        only if that agent is free (rejection sampling), then an exact scan if all missed."""
        order = self._order(
            strategy, eligible, agents=agents, queue=queue, caller=caller, step=step, now=now, positions=positions
        )
        excluded = caller.excluded
        if strategy == "random":
            def free(agent_id: str) -> bool:
                return agent_id not in taken and agent_id not in excluded and self._is_available(agent_id, now)

            if not order:
                return None
            for _ in range(_RANDOM_DRAWS):
                agent_id = order[rng.randrange(len(order))]
                if free(agent_id):
                    return agent_id
            pool = [agent_id for agent_id in order if free(agent_id)]
            return rng.choice(pool) if pool else None
        start = 0
        if strategy == "round_robin" and last_offered is not None:
            start = bisect_right(order, last_offered)
        size = len(order)
        for offset in range(size):
            agent_id = order[(start + offset) % size] if start else order[offset]
            if agent_id in taken or agent_id in excluded:
                continue
            if self._is_available(agent_id, now):
                return agent_id
        return None


def _available_ids(states: Mapping[str, AgentState], now: float) -> frozenset[str]:
    if isinstance(states, AgentSnapshot):
        return states.available_ids(now)
    return frozenset(agent_id for agent_id, state in states.items() if state.available(now))


# --- matching -------------------------------------------------------------------------------


def match(
    callers: Sequence[Caller],
    agents: Mapping[str, AgentConfig],
    states: Mapping[str, AgentState],
    queues: Mapping[str, QueueConfig],
    now: float,
    last_offered: Mapping[str, str | None],
    rng: random.Random,
) -> list[Assignment]:
    """Who serves whom now: a greedy matching in `service_order`.

    Each caller, highest priority and longest waiting first across all queues, gets the
    agent its queue's strategy ranks best (`strategies.best`) among those who `can_serve` it
    at its current step, are available (`states[id].available(now)`) and were not given to
    a caller earlier in this matching. A caller whose affinity still binds (see
    `_binding_affinity`: hold not over, agent logged in, not excluded, eligible) gets its
    affinity agent or, if that agent is busy, nobody yet; an affinity that does not bind is
    ignored. Callers of unknown queues are skipped; a call id is assigned at most once and an
    agent at most once. Deterministic for the same inputs (and `rng` state, for `random`).
    """
    index = _config_index(agents)
    available = _available_ids(states, now)
    snapshot = states if isinstance(states, AgentSnapshot) else None
    taken: set[str] = set()
    seen: set[str] = set()
    assignments: list[Assignment] = []
    for caller in service_order(callers):
        if caller.call_id in seen:
            continue
        seen.add(caller.call_id)
        queue = queues.get(caller.queue)
        if queue is None:
            continue
        step = current_step(queue, now - caller.enqueued_at)
        eligible = index.eligible(queue, step, _language(queue, caller))
        affinity = _binding_affinity(caller, eligible, states, now)
        agent_id: str | None
        if affinity is not None:
            agent_id = affinity if affinity in available and affinity not in taken else None
        elif snapshot is not None:
            agent_id = snapshot.pick(
                queue.strategy,
                eligible,
                agents=agents,
                queue=queue,
                caller=caller,
                step=step,
                now=now,
                taken=taken,
                last_offered=last_offered.get(caller.queue),
                positions=index.positions,
                rng=rng,
            )
        else:
            pool = eligible & available
            if taken or caller.excluded:
                pool = pool - taken - caller.excluded
            agent_id = strategies.best(
                queue.strategy,
                pool,
                agents=agents,
                states=states,
                queue=queue,
                caller=caller,
                now=now,
                last_offered=last_offered.get(caller.queue),
                rng=rng,
                step=step,
                positions=index.positions,
            )
        if agent_id is not None:
            taken.add(agent_id)
            assignments.append(Assignment(caller=caller, agent_id=agent_id, step=step))
    return assignments


# --- overflow and announcements ------------------------------------------------------------------


def _eligible_from(
    caller: Caller, queue: QueueConfig, agents: Mapping[str, AgentConfig], first_step: int
) -> frozenset[str]:
    """Agents who could serve the caller at `first_step` or any later step (affinity aside)."""
    index = _config_index(agents)
    language = _language(queue, caller)
    found: frozenset[str] = frozenset()
    for step in range(first_step, len(queue.steps)):
        found = found | index.eligible(queue, step, language)
    return found - caller.excluded


def can_ever_be_served(
    caller: Caller,
    queue: QueueConfig,
    agents: Mapping[str, AgentConfig],
    states: Mapping[str, AgentState],
    now: float,
) -> bool:
    """For the NO_AGENTS overflow: is any agent who could serve this caller at some step
    (skills, groups, language, not excluded; affinity aside) logged in (READY, PAUSED or
    NOT_READY; busy or not)? `now` is unused: being logged in does not depend on it."""
    del now
    for agent_id in _eligible_from(caller, queue, agents, 0):
        state = states.get(agent_id)
        if state is not None and state.presence is not Presence.LOGGED_OUT:
            return True
    return False


def estimate_wait(
    caller: Caller,
    callers: Sequence[Caller],
    agents: Mapping[str, AgentConfig],
    states: Mapping[str, AgentState],
    queues: Mapping[str, QueueConfig],
    now: float,
    window: float = 900.0,
) -> float | None:
    """Estimated wait (seconds from now) for an announcement:

        rate     = answered / window      (calls per second)
        estimate = position / rate        (seconds)

    where `position` is `position(caller, callers)` (1 = next in its queue) and `answered` is
    the number of calls answered in `[now - window, now]` (`AgentState.handled`) by the
    agents who could serve THIS caller at its current or a later step (skills, groups,
    language, not excluded; affinity aside) — not a queue-wide average. None when those
    agents answered nothing in the window (no history to estimate from) or the queue is
    unknown. Example: position 3, 6 calls answered in 900 s -> 3 / (6 / 900) = 450 s.
    """
    queue = queues.get(caller.queue)
    if queue is None or window <= 0:
        return None
    step = current_step(queue, now - caller.enqueued_at)
    start = now - window
    answered = 0
    for agent_id in _eligible_from(caller, queue, agents, step):
        state = states.get(agent_id)
        if state is not None:
            answered += sum(1 for at in state.handled if start <= at <= now)
    if answered == 0:
        return None
    return position(caller, callers) / (answered / window)
