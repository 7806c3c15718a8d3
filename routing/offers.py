"""What the ACD tells those who watch its offers (the agent desktop's screen pop and wrap-up).

The ACD calls an `OfferWatcher` synchronously at each step of an offer; a watcher must not
block or raise (it schedules its own work), so a slow or failing page never delays a call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from ivr.records.model import PathEvent
from routing.model import Caller, OfferOutcome


@dataclass(frozen=True)
class Offer:
    """One agent about to be rung for one caller: what the caller did and is, so far."""

    call_id: str
    hotline: str
    caller_number: str  # as received
    language: str
    queue: str
    agent_id: str
    caller: Caller  # as classified for this queue: priority, VIP, returning, affinity
    at: float  # epoch seconds
    events: tuple[PathEvent, ...]  # the call's path so far (menus, keys, lookups)
    variables: Mapping[str, str]  # the flow's call variables (`set` nodes, lookup results)
    crm_link: str | None = None  # the CRM link (the queue's template, else the hotline's), filled in


class OfferWatcher(Protocol):
    def offered(self, offer: Offer) -> None:
        """The agent is reserved and its phone is about to ring."""

    def offer_over(self, call_id: str, agent_id: str, outcome: OfferOutcome, at: float) -> None:
        """The agent's phone stopped ringing without an answer (missed, rejected, caller gone)."""

    def connected(self, call_id: str, agent_id: str, at: float) -> None:
        """The agent answered."""

    def call_ended(self, call_id: str, agent_id: str, queue: str, at: float, wrap_until: float) -> None:
        """The answered call is over; the agent wraps up until `wrap_until` (epoch seconds)."""
