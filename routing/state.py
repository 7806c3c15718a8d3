"""The live state the ACD shares between controllers: agents and waiting callers.

Two implementations: in-process (`routing.memory_state`, one controller) and Redis
(`routing.redis_state`, several controllers behind one or more Asterisk servers). Every
method is atomic on its own; `reserve` is the one that guarantees no agent is ever handed
two calls, also when two controllers race for the last free agent. A reservation expires
`reservation_ttl` seconds after it was made unless the offer ends first, so a controller
that dies mid-offer cannot leave an agent stuck reserved.

Every controller computes the same matching from the same snapshot (ties are broken by
agent id; the `random` strategy agrees only if controllers seed it alike) and acts only
on its own callers; when two disagree, `reserve` decides and the loser tries again.

A backend that cannot reach its store raises `StateUnavailable`; the ACD then follows the
configured fallback instead of dropping callers.
"""

from __future__ import annotations

from typing import Protocol

from routing.model import AgentState, Caller, Device, OfferOutcome, Presence


class StateUnavailable(Exception):
    """The shared state cannot be reached (Redis down, connection refused, timeout)."""


class LiveState(Protocol):
    # --- agents -----------------------------------------------------------------------

    async def agents(self) -> dict[str, AgentState]:
        """A snapshot of every agent that has ever had state, expired reservations undone."""
        ...

    async def agent(self, agent_id: str) -> AgentState:
        """One agent (a logged-out default for an agent never seen)."""
        ...

    async def set_presence(self, agent_id: str, presence: Presence, now: float, *, reason: str = "") -> AgentState:
        """Log in (READY), log out, pause, unpause; NOT_READY is set by `offer_ended`.

        `reason` is kept as `pause_reason` when `presence` is PAUSED, and cleared otherwise;
        pausing an agent already paused for another reason changes the reason, and that is
        a change like any other (`presence_since` moves, waiters wake)."""
        ...

    async def set_device(self, agent_id: str, device: Device) -> None:
        ...

    # --- the offer cycle ------------------------------------------------------------------

    async def reserve(self, agent_id: str, call_id: str, now: float) -> bool:
        """Atomically: if the agent is available at `now` (see `AgentState.available`), mark
        it RESERVED for `call_id` and return True; otherwise change nothing, return False."""
        ...

    async def offer_ended(
        self, agent_id: str, call_id: str, outcome: OfferOutcome, now: float, *, misses_before_not_ready: int
    ) -> AgentState:
        """End the offer of `call_id` to the agent, if the agent is still reserved for it.

        ANSWERED: ON_CALL, `now` appended to `handled`, `missed` reset. Any other outcome:
        IDLE again; NO_ANSWER and REJECTED count a miss, and the agent's presence becomes
        NOT_READY when `missed` reaches `misses_before_not_ready`. CALLER_GONE and
        UNREACHABLE count no miss."""
        ...

    async def call_ended(self, agent_id: str, call_id: str, now: float, *, wrap_up: float, keep_after: float) -> None:
        """The agent's call ended: WRAP_UP until now + wrap_up, `idle_since` = now, and
        `handled` entries older than `keep_after` dropped. No-op if not on that call.
        `wrap_up_call` remembers the call (`call_id` is cleared) for `end_wrap_up`."""
        ...

    async def end_wrap_up(self, agent_id: str, call_id: str, now: float) -> bool:
        """The agent is done with the wrap-up of `call_id` before its time (e.g. submitted
        the wrap-up code): if the agent is in WRAP_UP after that call and `wrap_up_until` is
        after `now`, set `wrap_up_until` = now (free from now on, for `available` and for
        longest-idle ranking through `free_since`) and return True. Otherwise (another
        call's wrap-up, not in wrap-up, already over) change nothing and return False."""
        ...

    # --- waiting callers --------------------------------------------------------------------

    async def enqueue(self, caller: Caller) -> None:
        ...

    async def update_caller(self, caller: Caller) -> None:
        """Replace a waiting caller's record (e.g. an agent added to `excluded`)."""
        ...

    async def dequeue(self, call_id: str) -> None:
        """Remove a caller (connected, overflowed, hung up). No-op if not waiting."""
        ...

    async def waiting(self) -> list[Caller]:
        """Every waiting caller of every queue and controller, in arrival order."""
        ...

    # --- round-robin memory ---------------------------------------------------------------

    async def last_offered(self, queue: str) -> str | None:
        ...

    async def note_offered(self, queue: str, agent_id: str) -> None:
        ...

    # --- change notification ----------------------------------------------------------------

    async def wait_for_change(self, timeout: float) -> None:
        """Return when any agent or caller changed (here or on another controller), or after
        `timeout` seconds; the ACD re-runs its matching either way."""
        ...

    async def close(self) -> None:
        ...
