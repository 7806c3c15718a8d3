"""Call records to queue-leg rows: the one place where a leg's wait, handle time, flags and
base interval are decided, so that every figure built on them agrees.

Reconciliation: an answered leg's answer time is the AMI DialEnd time of the call
(`CallRow.agent_answered_at`) when the AMI link saw it, else the controller's own inference
(end of Dial minus ANSWEREDTIME). Talk time is Asterisk's ANSWEREDTIME, which includes the
time the caller spent on hold, so hold (AMI Hold..Unhold) is taken out of it:
talk = ANSWEREDTIME - hold, and handle time = talk + hold + wrap-up = ANSWEREDTIME + wrap-up.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from typing import Protocol
from zoneinfo import ZoneInfo

from ivr.config.models import MetricsSettings
from ivr.metrics.buckets import interval_start, seconds_between, utc
from ivr.metrics.model import AnswerSource, LegRow
from ivr.records.model import CallRow, EventKind, QueueLeg

ZoneOf = Callable[[str], ZoneInfo]  # hotline number -> the hotline's time zone


class CallStart(Protocol):
    """What a repeat needs of a call (a CallRow, or a store's lighter start row)."""

    @property
    def call_id(self) -> str: ...
    @property
    def dialed(self) -> str: ...
    @property
    def started_at(self) -> dt.datetime: ...


def repeated_calls(calls: Iterable[CallStart], caller_keys: Mapping[str, str | None], hours: int) -> frozenset[str]:
    """Ids of the calls after which the same caller (caller key) called the same hotline
    again within `hours` of the call's start. Counted on the earlier call: the one that did
    not settle the matter (the first-call-resolution proxy). Calls without a key (withheld
    number) are never repeats; a repeat is only seen if the later call is in `calls`."""
    by_caller: dict[tuple[str, str], list[tuple[dt.datetime, str]]] = defaultdict(list)
    for call in calls:
        key = caller_keys.get(call.call_id)
        if key is not None:
            by_caller[key, call.dialed].append((utc(call.started_at), call.call_id))
    window = dt.timedelta(hours=hours)
    repeated: set[str] = set()
    for starts in by_caller.values():
        starts.sort()
        for (at, call_id), (later, _) in zip(starts, starts[1:]):
            if later - at <= window:
                repeated.add(call_id)
    return frozenset(repeated)


def call_legs(
    calls: Iterable[CallRow], zone_of: ZoneOf, settings: MetricsSettings, repeated: Collection[str] = frozenset()
) -> Iterator[LegRow]:
    """One row per queue leg of each call, in the calls' order. `repeated` comes from
    `repeated_calls` over the same calls (and those up to repeat_hours after them)."""
    for call in calls:
        if not call.queue_legs:
            continue
        zone = zone_of(call.dialed)
        transferred_last = _transferred_by_flow(call)
        last = len(call.queue_legs) - 1
        for index, leg in enumerate(call.queue_legs):
            # Another queue after this one (an overflow to a queue, or a later queue node) is
            # a transfer; after the last one, only the flow's transfer node is.
            transferred = index < last or transferred_last
            yield _row(call, index, leg, zone, settings, transferred, call.call_id in repeated)


def _row(
    call: CallRow, index: int, leg: QueueLeg, zone: ZoneInfo, settings: MetricsSettings,
    transferred: bool, repeated: bool,
) -> LegRow:
    answered = leg.outcome == "answered"
    answered_at, source = _answer(call, leg) if answered else (None, None)
    # A negative wait can only come from two clocks disagreeing (AMI's and the controller's).
    wait = max(0.0, seconds_between(leg.enqueued_at, answered_at or leg.left_at))
    connected = (leg.talk_seconds or 0.0) if answered else 0.0
    hold = call.hold_seconds if answered else 0.0
    talk = max(0.0, connected - hold)
    wrap = (leg.wrap_seconds or 0.0) if answered else 0.0
    if leg.outcome == "overflowed" and leg.overflow is None:
        raise ValueError(f"call {call.call_id}: overflowed leg in {leg.queue} without a cause")
    within_t = wait <= settings.service_level_seconds
    return LegRow(
        call_id=call.call_id,
        hotline=call.dialed,
        queue=leg.queue,
        leg=index + 1,
        timezone=zone.key,
        interval_start=interval_start(leg.enqueued_at, zone, settings.interval_minutes),
        enqueued_at=utc(leg.enqueued_at),
        answered_at=answered_at,
        answer_source=source,
        left_at=utc(leg.left_at),
        outcome=leg.outcome,
        overflow=leg.overflow if leg.outcome == "overflowed" else None,
        agent_id=leg.agent_id if answered else None,
        wait_seconds=wait,
        talk_seconds=talk,
        hold_seconds=hold,
        wrap_seconds=wrap,
        handle_seconds=talk + hold + wrap,
        short_abandon=leg.outcome == "abandoned" and wait < settings.short_abandon_seconds,
        answered_within_t=answered and within_t,
        abandoned_within_t=leg.outcome == "abandoned" and within_t,
        transferred=transferred,
        repeated=repeated,
    )


def _answer(call: CallRow, leg: QueueLeg) -> tuple[dt.datetime, AnswerSource]:
    # A call is answered at most once (the ACD returns on the first answer), so the call's
    # AMI answer time belongs to its answered leg.
    if call.agent_answered_at is not None:
        return utc(call.agent_answered_at), "ami"
    if leg.answered_at is None:
        raise ValueError(f"call {call.call_id}: answered leg in {leg.queue} without an answer time")
    return utc(leg.answered_at), "controller"


def _transferred_by_flow(call: CallRow) -> bool:
    """Whether the flow sent the call on with a transfer node. TRANSFER path events also mark
    voicemail nodes and the survey re-entry after an agent hangs up (recorded at the queue
    node): the node's type, from its NODE event, tells them apart. A transfer node ends
    the flow, so in a call with queue legs it can only come after the last one."""
    moved = {event.node for event in call.events if event.kind is EventKind.TRANSFER}
    return any(event.kind is EventKind.NODE and event.node in moved and event.value == "transfer"
               for event in call.events) if moved else False
