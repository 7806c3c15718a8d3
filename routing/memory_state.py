"""In-process live state: the embedded default for one controller.

Plain dicts owned by one event loop. Every method is atomic because none of them awaits
between reading and writing the state: asyncio runs one coroutine at a time, so `reserve`
checks availability and marks the agent RESERVED with no other coroutine in between. This
holds for one controller only; several controllers share `routing.redis_state`.

Reservations expire: `reserve(..., now)` stores `now + reservation_ttl` next to the agent.
A reservation whose expiry time is at or before a method's `now` counts as gone (the agent
is IDLE again, with no miss counted), wherever a method receives a `now` (`reserve`,
`offer_ended`, `call_ended`, `end_wrap_up`, `set_presence`). `agents()` and `agent()` get
no `now`: they use the constructor's `clock` (default `time.time`); tests with a fake time
pass a fake clock. An expired reservation is undone lazily, on read and on the next write, never by a
timer, so nothing runs in the background.

`wait_for_change` wakes on any change of an agent or a caller. A change made since the
same asyncio task last returned from `wait_for_change` makes it return at once, so the
ACD's loop "match, then wait" misses no change that happened while it was matching; a
task's first call waits for the next change.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable
from typing import Any

from routing.model import Activity, AgentState, Caller, Device, OfferOutcome, Presence

Clock = Callable[[], float]

_MISSES = frozenset({OfferOutcome.NO_ANSWER, OfferOutcome.REJECTED})


def undo_expired(state: AgentState, reserved_until: float, now: float) -> AgentState:
    """The agent as it is at `now`: a reservation that expired is undone (IDLE, no call)."""
    if state.activity is Activity.RESERVED and reserved_until <= now:
        return state.with_(activity=Activity.IDLE, call_id=None)
    return state


def presence_changed(state: AgentState, presence: Presence, now: float, reason: str = "") -> AgentState:
    """Log in, log out, pause, unpause. `presence_since` moves only on a real change (a pause
    for another reason is one); becoming READY after NOT_READY (too many misses) or
    LOGGED_OUT starts a fresh count of misses. Only a pause keeps a reason."""
    reason = reason if presence is Presence.PAUSED else ""
    if state.presence is presence and state.pause_reason == reason:
        return state
    missed = 0 if presence is Presence.READY and state.presence in (Presence.NOT_READY, Presence.LOGGED_OUT) else state.missed
    return state.with_(presence=presence, presence_since=now, missed=missed, pause_reason=reason)


class ChangeSignal:
    """A change counter that coroutines can wait on (see the module docstring)."""

    def __init__(self) -> None:
        self._generation = 0
        self._event = asyncio.Event()
        self._seen: weakref.WeakKeyDictionary[asyncio.Task[Any], int] = weakref.WeakKeyDictionary()

    def changed(self) -> None:
        self._generation += 1
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        task = asyncio.current_task()
        seen = self._seen.get(task) if task is not None else None
        if seen is None or seen == self._generation:
            event = self._event
            try:
                await asyncio.wait_for(event.wait(), timeout=max(timeout, 0.0))
            except TimeoutError:
                pass
        if task is not None:
            self._seen[task] = self._generation


class MemoryState:
    """`routing.state.LiveState` in this process's memory."""

    def __init__(self, reservation_ttl: float, *, clock: Clock = time.time) -> None:
        if reservation_ttl <= 0:
            raise ValueError("reservation_ttl must be positive")
        self.reservation_ttl = reservation_ttl
        self._clock = clock
        self._agents: dict[str, AgentState] = {}
        self._reserved_until: dict[str, float] = {}
        self._callers: dict[str, Caller] = {}
        self._arrival: dict[str, int] = {}  # call_id -> sequence, breaks ties of enqueued_at
        self._sequence = 0
        self._last_offered: dict[str, str] = {}
        self._signal = ChangeSignal()

    # --- agents -----------------------------------------------------------------------

    def _current(self, agent_id: str, now: float) -> AgentState:
        state = self._agents.get(agent_id)
        if state is None:
            return AgentState(agent_id)
        return undo_expired(state, self._reserved_until.get(agent_id, 0.0), now)

    def _store(self, state: AgentState, reserved_until: float = 0.0) -> None:
        self._agents[state.agent_id] = state
        self._reserved_until[state.agent_id] = reserved_until
        self._signal.changed()

    async def agents(self) -> dict[str, AgentState]:
        now = self._clock()
        return {agent_id: self._current(agent_id, now) for agent_id in self._agents}

    async def agent(self, agent_id: str) -> AgentState:
        return self._current(agent_id, self._clock())

    async def set_presence(self, agent_id: str, presence: Presence, now: float, *, reason: str = "") -> AgentState:
        before = self._current(agent_id, now)
        after = presence_changed(before, presence, now, reason)
        if after != before or agent_id not in self._agents:
            self._store(after, self._reserved_until.get(agent_id, 0.0) if after.activity is Activity.RESERVED else 0.0)
        return after

    async def set_device(self, agent_id: str, device: Device) -> None:
        state = self._agents.get(agent_id, AgentState(agent_id))
        if state.device is not device or agent_id not in self._agents:
            self._agents[agent_id] = state.with_(device=device)
            self._reserved_until.setdefault(agent_id, 0.0)
            self._signal.changed()

    # --- the offer cycle ------------------------------------------------------------------

    async def reserve(self, agent_id: str, call_id: str, now: float) -> bool:
        state = self._current(agent_id, now)
        if not state.available(now):
            return False
        self._store(state.with_(activity=Activity.RESERVED, call_id=call_id, wrap_up_call=None),
                    now + self.reservation_ttl)
        return True

    async def offer_ended(
        self, agent_id: str, call_id: str, outcome: OfferOutcome, now: float, *, misses_before_not_ready: int
    ) -> AgentState:
        state = self._current(agent_id, now)
        if state.activity is not Activity.RESERVED or state.call_id != call_id:
            return state
        if outcome is OfferOutcome.ANSWERED:
            after = state.with_(activity=Activity.ON_CALL, handled=(*state.handled, now), missed=0)
        else:
            after = state.with_(activity=Activity.IDLE, call_id=None)
            if outcome in _MISSES:
                missed = state.missed + 1
                after = after.with_(missed=missed)
                if missed >= misses_before_not_ready and after.presence is Presence.READY:
                    after = after.with_(presence=Presence.NOT_READY, presence_since=now)
        self._store(after)
        return after

    async def call_ended(self, agent_id: str, call_id: str, now: float, *, wrap_up: float, keep_after: float) -> None:
        state = self._current(agent_id, now)
        if state.activity is not Activity.ON_CALL or state.call_id != call_id:
            return
        self._store(
            state.with_(
                activity=Activity.WRAP_UP,
                call_id=None,
                wrap_up_call=call_id,
                wrap_up_until=now + wrap_up,
                idle_since=now,
                handled=tuple(at for at in state.handled if at >= keep_after),
            )
        )

    async def end_wrap_up(self, agent_id: str, call_id: str, now: float) -> bool:
        state = self._current(agent_id, now)
        if state.activity is not Activity.WRAP_UP or state.wrap_up_call != call_id or state.wrap_up_until <= now:
            return False
        # idle_since stays the call's end: free_since() is now, as after a wrap-up that ran out.
        self._store(state.with_(wrap_up_until=now))
        return True

    # --- waiting callers --------------------------------------------------------------------

    async def enqueue(self, caller: Caller) -> None:
        if caller.call_id not in self._arrival:
            self._sequence += 1
            self._arrival[caller.call_id] = self._sequence
        self._callers[caller.call_id] = caller
        self._signal.changed()

    async def update_caller(self, caller: Caller) -> None:
        if caller.call_id in self._callers:
            self._callers[caller.call_id] = caller
            self._signal.changed()

    async def dequeue(self, call_id: str) -> None:
        if self._callers.pop(call_id, None) is not None:
            del self._arrival[call_id]
            self._signal.changed()

    async def waiting(self) -> list[Caller]:
        return sorted(self._callers.values(), key=lambda c: (c.enqueued_at, self._arrival[c.call_id]))

    # --- round-robin memory ---------------------------------------------------------------

    async def last_offered(self, queue: str) -> str | None:
        return self._last_offered.get(queue)

    async def note_offered(self, queue: str, agent_id: str) -> None:
        self._last_offered[queue] = agent_id

    # --- change notification ----------------------------------------------------------------

    async def wait_for_change(self, timeout: float) -> None:
        await self._signal.wait(timeout)

    async def close(self) -> None:
        pass
