"""The screen pop: what the agent sees of a caller while the phone rings (pure).

Built from the ACD's `Offer` (what the caller did in the IVR and how the ACD classified
them), the caller's past calls and their open follow-up items, and the privacy policy.
Everything here is plain data, serialised to JSON for the page.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ivr.records.masking import Policy, mask_caller
from ivr.records.model import EventKind, PathEvent
from routing.classify import normalize_number
from routing.agent_leg import customer_kind
from routing.offers import Offer

# Call variables the flow sets itself: not self-service answers.
_OWN_VARIABLES = frozenset({"caller", "hotline", "call_id"})


@dataclass(frozen=True)
class MenuStep:
    node: str
    kind: str  # the node's type (menu, play, lookup, queue, ...)
    keys: tuple[str, ...] = ()  # digits pressed there, as recorded ("2", "* (back)", "0 (operator)")
    notes: tuple[str, ...] = ()  # timeouts, invalid keys, lookup outcomes, language


@dataclass(frozen=True)
class PastContact:
    """One of the caller's earlier calls."""

    call_id: str
    ended_at: dt.datetime
    queue: str | None
    agent_id: str | None
    disposition: str | None
    wrap_code: str | None  # the code picked, "no_code", or None (no wrap-up asked)
    scores: tuple[tuple[str, int], ...] = ()  # survey answers: (question, value)


@dataclass(frozen=True)
class OpenItem:
    """An open follow-up item from the caller's calls."""

    item_id: str
    call_id: str
    category: str
    urgency: str
    deadline: dt.datetime
    reasons: tuple[str, ...]
    overdue: bool


@dataclass(frozen=True)
class Pop:
    call_id: str
    agent_id: str
    queue: str
    hotline: str
    caller: str  # as the viewer may see it (masked by the privacy policy unless allowed)
    language: str
    customer: str  # vip | returning | new
    why: tuple[str, ...]  # why VIP / returning / affinity, in words a person reads
    enqueued_at: float  # epoch seconds: the page ticks the wait from it
    offered_at: float
    path: tuple[MenuStep, ...]
    answers: tuple[tuple[str, str], ...]  # self-service: (variable, value)
    crm_url: str | None
    history: tuple[PastContact, ...]
    open_items: tuple[OpenItem, ...]

    def to_json(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, dt.datetime):
                return value.isoformat()
            if isinstance(value, tuple | list):
                return [plain(v) for v in value]
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            return value

        return {k: plain(v) for k, v in dataclasses.asdict(self).items()}


def menu_path(events: Sequence[PathEvent]) -> tuple[MenuStep, ...]:
    """The nodes the caller went through, each with the keys pressed and what happened there."""
    steps: list[MenuStep] = []
    for event in events:
        if event.kind is EventKind.NODE:
            steps.append(MenuStep(event.node, event.value))
            continue
        if not steps or steps[-1].node != event.node:
            if event.kind in (EventKind.DIGIT, EventKind.LOOKUP, EventKind.TIMEOUT, EventKind.INVALID,
                              EventKind.LANGUAGE):
                steps.append(MenuStep(event.node, ""))
            else:
                continue
        last = steps[-1]
        if event.kind is EventKind.DIGIT:
            steps[-1] = dataclasses.replace(last, keys=(*last.keys, event.value))
        elif event.kind is EventKind.LOOKUP:
            steps[-1] = dataclasses.replace(last, notes=(*last.notes, f"lookup {event.value}"))
        elif event.kind is EventKind.TIMEOUT:
            steps[-1] = dataclasses.replace(last, notes=(*last.notes, "no input"))
        elif event.kind is EventKind.INVALID:
            steps[-1] = dataclasses.replace(last, notes=(*last.notes, f"invalid {event.value}"))
        elif event.kind is EventKind.LANGUAGE:
            steps[-1] = dataclasses.replace(last, notes=(*last.notes, f"language {event.value}"))
    return tuple(steps)


def shown_number(number: str, policy: Policy, *, may_see: bool) -> str:
    if may_see or policy == "full":
        return number
    return mask_caller(number, "mask")  # hashed numbers mean nothing to a person: show the last digits


def build_pop(
    offer: Offer,
    *,
    history: Sequence[PastContact],
    open_items: Sequence[OpenItem],
    policy: Policy,
    may_see_number: bool,
    vip_numbers: Sequence[str],
    returning_days: float,
) -> Pop:
    caller = offer.caller
    why: list[str] = []
    if caller.vip:
        number = normalize_number(offer.caller_number)
        listed = bool(number) and number in {normalize_number(n) for n in vip_numbers}
        why.append("vip: on the VIP list" if listed else "vip: flagged by self-service")
    if caller.returning:
        last = history[0].ended_at.date().isoformat() if history else "?"
        why.append(f"returning: called before within {returning_days:g} days (last {last})")
    if caller.affinity_agent is not None:
        why.append(f"affinity: last served by agent {caller.affinity_agent}")
    customer = customer_kind(caller)
    answers = tuple(sorted((k, v) for k, v in offer.variables.items() if k not in _OWN_VARIABLES))
    return Pop(
        call_id=offer.call_id, agent_id=offer.agent_id, queue=offer.queue, hotline=offer.hotline,
        caller=shown_number(offer.caller_number, policy, may_see=may_see_number) or "withheld",
        language=offer.language, customer=customer, why=tuple(why), enqueued_at=caller.enqueued_at,
        offered_at=offer.at, path=menu_path(offer.events), answers=answers, crm_url=offer.crm_link,
        history=tuple(history), open_items=tuple(open_items),
    )
