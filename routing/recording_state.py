"""A live state that also keeps the agents' presence history (for occupancy and staffing).

`RecordingState` wraps any `LiveState` and hands an `AgentEvent` to its sink (the call
store, which only enqueues) whenever a presence is set (login, logout, pause, unpause) and
whenever `offer_ended` turns an agent NOT_READY after too many missed offers. Everything
else passes straight through; a failing state records nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from ivr.records.model import AgentEvent
from routing.model import AgentState, Caller, Device, OfferOutcome, Presence
from routing.state import LiveState


class PresenceSink(Protocol):
    def agent_event(self, event: AgentEvent) -> None: ...


def _utc(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc)


class RecordingState:
    def __init__(self, inner: LiveState, sink: PresenceSink) -> None:
        self.inner = inner
        self._sink = sink

    async def agents(self) -> dict[str, AgentState]:
        return await self.inner.agents()

    async def agent(self, agent_id: str) -> AgentState:
        return await self.inner.agent(agent_id)

    async def set_presence(self, agent_id: str, presence: Presence, now: float, *, reason: str = "") -> AgentState:
        # The history keeps the presence alone: occupancy and staffing do not need the reason.
        after = await self.inner.set_presence(agent_id, presence, now, reason=reason)
        self._sink.agent_event(AgentEvent(agent_id, _utc(now), presence.value))
        return after

    async def set_device(self, agent_id: str, device: Device) -> None:
        await self.inner.set_device(agent_id, device)

    async def reserve(self, agent_id: str, call_id: str, now: float) -> bool:
        return await self.inner.reserve(agent_id, call_id, now)

    async def offer_ended(
        self, agent_id: str, call_id: str, outcome: OfferOutcome, now: float, *, misses_before_not_ready: int
    ) -> AgentState:
        after = await self.inner.offer_ended(agent_id, call_id, outcome, now,
                                             misses_before_not_ready=misses_before_not_ready)
        # presence_since moves only on a change: this offer is the one that made it NOT_READY.
        if after.presence is Presence.NOT_READY and after.presence_since == now:
            self._sink.agent_event(AgentEvent(agent_id, _utc(now), "not_ready"))
        return after

    async def call_ended(self, agent_id: str, call_id: str, now: float, *, wrap_up: float, keep_after: float) -> None:
        await self.inner.call_ended(agent_id, call_id, now, wrap_up=wrap_up, keep_after=keep_after)

    async def end_wrap_up(self, agent_id: str, call_id: str, now: float) -> bool:
        return await self.inner.end_wrap_up(agent_id, call_id, now)

    async def enqueue(self, caller: Caller) -> None:
        await self.inner.enqueue(caller)

    async def update_caller(self, caller: Caller) -> None:
        await self.inner.update_caller(caller)

    async def dequeue(self, call_id: str) -> None:
        await self.inner.dequeue(call_id)

    async def waiting(self) -> list[Caller]:
        return await self.inner.waiting()

    async def last_offered(self, queue: str) -> str | None:
        return await self.inner.last_offered(queue)

    async def note_offered(self, queue: str, agent_id: str) -> None:
        await self.inner.note_offered(queue, agent_id)

    async def wait_for_change(self, timeout: float) -> None:
        await self.inner.wait_for_change(timeout)

    async def close(self) -> None:
        await self.inner.close()
