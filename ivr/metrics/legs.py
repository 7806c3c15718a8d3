"""Call records to queue-leg rows: the one place where a leg's wait, handle time, flags and
base interval are decided, so that every figure built on them agrees.

Reconciliation: an answered leg's answer time is the AMI DialEnd time of the call
(`CallRow.agent_answered_at`) when the AMI link saw it, else the controller's own inference
(end of Dial minus its talk time). The leg's stored talk_seconds is the agent's time
connected, hold included: the agent channel's AMI BridgeEnter..BridgeLeave when AMI saw it
(the store puts it on the leg), else the controller's length of the answered Dial, ring
time included (`routing.service`); never Asterisk's ANSWEREDTIME, the caller's time since
its own answer. Hold (AMI Hold..Unhold) is taken out of it: talk = talk_seconds - hold, and
handle time = talk + hold + wrap-up = talk_seconds + wrap-up.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterable, Iterator
from zoneinfo import ZoneInfo

from ivr.config.models import MetricsSettings
from ivr.metrics.buckets import IntervalStarts, utc
from ivr.metrics.model import AnswerSource, LegRow
from ivr.records.model import CallRow, StoredLeg, leg_transfers

ZoneOf = Callable[[str], ZoneInfo]  # hotline number -> the hotline's time zone


def stored_legs(calls: Iterable[CallRow]) -> Iterator[StoredLeg]:
    """The queue legs of calls held in memory, as the store reads them for ended calls."""
    for call in calls:
        if not call.queue_legs:
            continue
        transfers = leg_transfers(call.events, call.queue_legs)
        for seq, (leg, transferred) in enumerate(zip(call.queue_legs, transfers)):
            yield StoredLeg(call.call_id, call.dialed, call.agent_answered_at, call.hold_seconds, seq, leg.queue,
                            leg.enqueued_at, leg.left_at, leg.outcome, leg.answered_at, leg.agent_id,
                            leg.talk_seconds, leg.overflow, leg.wrap_seconds, transferred, leg.first_estimate)


def call_legs(
    calls: Iterable[CallRow], zone_of: ZoneOf, settings: MetricsSettings, repeated: Collection[str] = frozenset()
) -> Iterator[LegRow]:
    """One row per queue leg of each call, in the calls' order. `repeated` comes from
    `CallStore.repeated_calls` over the same calls."""
    return leg_rows(stored_legs(calls), zone_of, settings, repeated)


def leg_rows(
    legs: Iterable[StoredLeg], zone_of: ZoneOf, settings: MetricsSettings, repeated: Collection[str] = frozenset(),
    starts: IntervalStarts | None = None,
) -> Iterator[LegRow]:
    """One row per stored leg, in order (see call_legs). Pass `starts` (of the configured
    interval) to keep its memo over several calls."""
    starts = starts or IntervalStarts(settings.interval_minutes)
    zones: dict[str, ZoneInfo] = {}
    for leg in legs:
        zone = zones.get(leg.dialed)
        if zone is None:
            zone = zones[leg.dialed] = zone_of(leg.dialed)
        yield _row(leg, zone, starts(leg.enqueued_at, zone)[0], settings, leg.call_id in repeated)


def _row(leg: StoredLeg, zone: ZoneInfo, start: dt.datetime, settings: MetricsSettings, repeated: bool) -> LegRow:
    outcome = leg.outcome
    enqueued_at, left_at = utc(leg.enqueued_at), utc(leg.left_at)
    answered_at: dt.datetime | None = None
    source: AnswerSource | None = None
    talk = hold = wrap = 0.0
    if outcome == "answered":
        # A call is answered at most once (the ACD returns on the first answer), so the
        # call's AMI answer time belongs to its answered leg.
        if leg.agent_answered_at is not None:
            answered_at, source = utc(leg.agent_answered_at), "ami"
        elif leg.answered_at is not None:
            answered_at, source = utc(leg.answered_at), "controller"
        else:
            raise ValueError(f"call {leg.call_id}: answered leg in {leg.queue} without an answer time")
        hold = leg.hold_seconds
        talk = max(0.0, (leg.talk_seconds or 0.0) - hold)
        wrap = leg.wrap_seconds or 0.0
    elif outcome == "overflowed" and leg.overflow is None:
        raise ValueError(f"call {leg.call_id}: overflowed leg in {leg.queue} without a cause")
    # A negative wait can only come from two clocks disagreeing (AMI's and the controller's).
    wait = max(0.0, ((answered_at or left_at) - enqueued_at).total_seconds())
    within_t = wait <= settings.service_level_seconds
    abandoned = outcome == "abandoned"
    return LegRow(
        leg.call_id, leg.dialed, leg.queue, leg.seq + 1, zone.key, start, enqueued_at, answered_at, source, left_at,
        outcome, leg.overflow if outcome == "overflowed" else None, leg.agent_id if source is not None else None,
        wait, talk, hold, wrap, talk + hold + wrap, abandoned and wait < settings.short_abandon_seconds,
        source is not None and within_t, abandoned and within_t, leg.transferred, repeated, leg.first_estimate,
        leg.wrap_code, leg.wrap_note,
    )
