"""The ACD's matching loop: one task per controller hands free agents to waiting callers.

Loop: take a snapshot of the live state (agents and every controller's waiting callers),
run `decision.match`, and for each assignment whose caller waits on THIS controller, put
the agent in that caller's inbox (the caller's coroutine then reserves and rings it). Then
sleep until the live state changes or the next timer (a step widening, a wrap-up or an
affinity hold ending), at most `max_idle` seconds. Callers of other controllers are left to
their own dispatcher; reservation is atomic in the live state, so two controllers that
compute the same matching cannot hand one agent two calls.

The dispatcher also tells its callers what they cannot see while they wait on music:
nobody who could serve them is logged in any more (`Signal.NO_AGENTS`), or the live state
cannot be reached (`Signal.STATE_DOWN`: they follow the dialplan fallback).

A pause gate stops new offers while the agents' device states cannot be trusted (the AMI
link is down, or back but not resynchronised yet: `routing.ami_agents`): callers keep
waiting on music and their max wait still runs; an offer already ringing completes; the
NO_AGENTS check (presence, not devices) goes on. Without AMI nothing ever pauses.

The live state unreachable stops nothing: the loop retries with back-off, and when it
answers again, agents it lost (a Redis restarted empty) are restored from what this
controller last saw.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from routing import decision
from routing.config import RoutingConfig
from routing.model import Activity, AgentState, Caller, OfferOutcome, Presence
from routing.state import LiveState, StateUnavailable

log = logging.getLogger(__name__)

Clock = Callable[[], float]
FIRST_RETRY = 0.1  # seconds before the first retry after the live state stopped answering


class Signal(Enum):
    NO_AGENTS = "no_agents"  # nobody who could serve the caller is logged in
    STATE_DOWN = "state_down"  # the live state cannot be reached


@dataclass(eq=False)
class Waiter:
    """A caller waiting on this controller: where the dispatcher puts its agent."""

    call_id: str
    inbox: asyncio.Queue[decision.Assignment | Signal] = field(default_factory=asyncio.Queue)
    # Ringing an agent (or about to): the dispatcher gives it nothing more until it is idle.
    busy: bool = False
    # The agent this caller's Dial holds (reserved, then talking since `answered_at`): what a
    # live state restarted empty forgets, and `Dispatcher._back` puts back.
    agent_id: str | None = None
    answered_at: float | None = None

    def idle(self) -> bool:
        return not self.busy and self.inbox.empty()


def ringing_calls(states: Mapping[str, AgentState]) -> frozenset[str]:
    """Calls an agent is reserved for or talking to, on any controller: not to be matched again."""
    return frozenset(
        state.call_id
        for state in states.values()
        if state.call_id is not None and state.activity in (Activity.RESERVED, Activity.ON_CALL)
    )


def _holds(state: AgentState | None, call_id: str) -> bool:
    """Whether the live state shows the agent ringing or talking for `call_id`."""
    return state is not None and state.call_id == call_id and state.activity in (Activity.RESERVED, Activity.ON_CALL)


def next_timer(config: RoutingConfig, callers: list[Caller], states: Mapping[str, AgentState], now: float) -> float | None:
    """The next epoch second at which a matching may change with no state change:
    a caller moves to a wider step, an affinity hold ends, a wrap-up ends."""
    times: list[float] = []
    for caller in callers:
        queue = config.queues.get(caller.queue)
        if queue is not None:
            at = decision.next_step_at(queue, caller, now)
            if at is not None:
                times.append(at)
        if caller.affinity_agent is not None and caller.affinity_until > now:
            times.append(caller.affinity_until)
    for state in states.values():
        if state.activity is Activity.WRAP_UP and state.wrap_up_until > now:
            times.append(state.wrap_up_until)
    later = [t for t in times if t > now]
    return min(later) if later else None


class Dispatcher:
    def __init__(
        self,
        config: Callable[[], RoutingConfig],
        state: LiveState,
        clock: Clock,
        rng: random.Random,
        *,
        max_idle: float = 1.0,
        retry_after: float = 1.0,
    ) -> None:
        self._config = config
        self.state = state
        self.clock = clock
        self.rng = rng
        self.max_idle = max_idle
        self.retry_after = retry_after
        self.waiters: dict[str, Waiter] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._wake = asyncio.Event()
        self.rounds = 0  # matchings run (for tests and logs)
        self._paused: str | None = None  # why no offers are made now (the pause gate)
        self._paused_at = 0.0
        self._down_since: float | None = None  # monotonic time the live state stopped answering
        self._last_seen: Mapping[str, AgentState] = {}  # the last snapshot of the agents that was read

    # --- callers of this controller ------------------------------------------------------

    def register(self, call_id: str) -> Waiter:
        waiter = Waiter(call_id)
        self.waiters[call_id] = waiter
        return waiter

    def unregister(self, call_id: str) -> None:
        self.waiters.pop(call_id, None)

    def poke(self) -> None:
        """Run a matching now (a local caller became idle again, without a state change)."""
        self._wake.set()

    # --- after an outage of the live state --------------------------------------------------

    async def _back(self, states: dict[str, AgentState]) -> dict[str, AgentState]:
        """The live state answers again. A Redis that restarted empty lost who is logged in:
        the agents this controller last saw logged in, and sees no more, get their presence
        and device back (a logout cannot have happened meanwhile: it needs the live state).
        It also lost which agents are ringing or talking for this controller's callers: they
        are reserved again (and put on call if answered), or the next matching would offer
        an agent still on a call a second caller."""
        lost = {agent_id: seen for agent_id, seen in self._last_seen.items()
                if agent_id not in states and seen.presence is not Presence.LOGGED_OUT}  # fmt: skip
        now = self.clock()
        for agent_id, seen in sorted(lost.items()):
            await self.state.set_presence(agent_id, seen.presence, now, reason=seen.pause_reason)
            await self.state.set_device(agent_id, seen.device)
        held = [waiter for waiter in self.waiters.values() if waiter.agent_id is not None
                and not _holds(states.get(waiter.agent_id), waiter.call_id)]  # fmt: skip
        for waiter in held:
            assert waiter.agent_id is not None
            if await self.state.reserve(waiter.agent_id, waiter.call_id, now) and waiter.answered_at is not None:
                # misses_before_not_ready counts only unanswered offers: any value will do.
                await self.state.offer_ended(waiter.agent_id, waiter.call_id, OfferOutcome.ANSWERED,
                                             waiter.answered_at, misses_before_not_ready=1)
        down = time.monotonic() - (self._down_since or time.monotonic())
        self._down_since = None
        if held:
            log.warning("ACD: live state lost the Dials of this controller's callers: %s held again",
                        ", ".join(f"{w.agent_id} (call {w.call_id})" for w in held))
        if lost:
            log.warning("ACD: live state reachable again after %.1f s, without agents %s: restored as they were (%s)",
                        down, ", ".join(sorted(lost)), ", ".join(f"{a} {seen.presence.value}" for a, seen in sorted(lost.items())))
        if lost or held:
            return await self.state.agents()
        log.info("ACD: live state reachable again after %.1f s", down)
        return states

    # --- the pause gate ---------------------------------------------------------------------

    @property
    def paused(self) -> bool:
        return self._paused is not None

    def pause(self, reason: str) -> None:
        """No new offers until `resume()` (see the module docstring). Idempotent."""
        if self._paused is None:
            self._paused_at = time.monotonic()
            log.warning("ACD routing paused: %s; %d callers of this controller keep waiting",
                        reason, len(self.waiters))
        self._paused = reason

    def resume(self) -> None:
        if self._paused is None:
            return
        log.info("ACD routing resumed after %.1f s (%s)", time.monotonic() - self._paused_at, self._paused)
        self._paused = None
        self.poke()

    # --- the task -------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._stopping = False
            self._task = asyncio.create_task(self._loop(), name="acd-dispatcher")
            self._task.add_done_callback(self._ended)

    @staticmethod
    def _ended(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("ACD dispatcher stopped on an error", exc_info=task.exception())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        # A cancellation can be lost inside a client library (seen under load with the Redis
        # state: the task went on matching, "cancelling" for ever, and `ivr serve` never
        # exited on SIGTERM). The loop also ends on `_stopping`, and the cancel is repeated.
        self._stopping = True
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.5)
        await asyncio.gather(task, return_exceptions=True)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _loop(self) -> None:
        """Match, wait for a change, again; nothing but `stop()` ends it. The live state
        unreachable (in the matching or in the wait): callers waiting here go to the
        fallback, one ERROR line per outage, retries with back-off up to `retry_after`."""
        backoff = FIRST_RETRY
        while not self._stopping:
            try:
                wait = await self.run_once()
                backoff = FIRST_RETRY
                await self._wait_for_change(wait)
            except StateUnavailable as exc:
                if self._down_since is None:
                    self._down_since = time.monotonic()
                    log.error("ACD: live state unreachable, retrying; waiting callers go to the fallback: %s", exc)
                for waiter in list(self.waiters.values()):
                    waiter.inbox.put_nowait(Signal.STATE_DOWN)
                await self._sleep(backoff)
                backoff = min(backoff * 2, self.retry_after)
            except Exception:
                # A bug must not stop routing for every caller: log it, retry shortly.
                log.exception("ACD dispatcher: matching failed")
                await self._sleep(self.retry_after)

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except TimeoutError:
            pass

    async def _wait_for_change(self, timeout: float) -> None:
        """Until the live state changes, a local poke, or `timeout` seconds."""
        if self._wake.is_set():
            self._wake.clear()
            return
        change = asyncio.ensure_future(self.state.wait_for_change(timeout))
        poke = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait((change, poke), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (change, poke):
                if not task.done():
                    task.cancel()
            await asyncio.gather(change, poke, return_exceptions=True)
        self._wake.clear()
        if change.done() and not change.cancelled():
            change.result()  # StateUnavailable surfaces in the loop

    async def run_once(self) -> float:
        """One matching; returns how long to sleep before the next one."""
        config = self._config()
        states = await self.state.agents()
        if self._down_since is not None:
            states = await self._back(states)
        self._last_seen = states  # kept, not copied: what a Redis restarted empty lost
        callers = await self.state.waiting()
        now = self.clock()
        self.rounds += 1
        snapshot = decision.AgentSnapshot(states)
        busy = ringing_calls(states)
        local = self.waiters
        candidates = [
            caller for caller in callers
            if caller.call_id not in busy and (caller.call_id not in local or local[caller.call_id].idle())
        ]
        last_offered = {name: await self.state.last_offered(name) for name in config.queues}
        if self._paused is None:  # checked after the last await: a pause meanwhile counts
            for assignment in decision.match(
                candidates, config.agents, snapshot, config.queues, now, last_offered, self.rng
            ):
                waiter = local.get(assignment.caller.call_id)
                if waiter is not None and waiter.idle():
                    waiter.busy = True
                    waiter.inbox.put_nowait(assignment)
        # Callers nobody logged in could ever serve overflow (NO_AGENTS) instead of waiting.
        for caller in callers:
            waiter = local.get(caller.call_id)
            queue = config.queues.get(caller.queue)
            if waiter is None or queue is None or not waiter.idle():
                continue
            if not decision.can_ever_be_served(caller, queue, config.agents, states, now):
                waiter.busy = True
                waiter.inbox.put_nowait(Signal.NO_AGENTS)
        timer = next_timer(config, callers, states, now)
        wait = self.max_idle if timer is None else min(self.max_idle, timer - now)
        return max(wait, 0.01)
