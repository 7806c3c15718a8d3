"""Who is offered a survey after a call (pure): the queue's selection rules, how the call
ended, whether the caller opted in, and when they were last offered one."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from ivr.records.model import Disposition, QueueLeg
from survey_engine.config import Selection


@dataclass(frozen=True)
class Candidate:
    """What is known about the call when the caller reaches the survey."""

    queue: str
    hung_up_by: str  # who ended the agent leg: "agent", "caller", or "" when unknown
    opted_in: bool | None  # the IVR's survey_opt_in answer; None: never asked
    disposition: Disposition | None  # the call record's, None while it is still open
    legs: tuple[QueueLeg, ...]  # the engine ACD's queue legs (none after app_queue)
    last_offered: dt.datetime | None  # the newest survey offered to this caller
    cooldown_exempt: bool = False  # a test caller (selection.cooldown_exempt): surveyed every time


@dataclass(frozen=True)
class Offer:
    survey: str


@dataclass(frozen=True)
class Skip:
    reason: str


def answered(candidate: Candidate) -> bool:
    """An agent talked to the caller in this queue. Through the engine's ACD its queue leg
    says so; through app_queue (the call record says QUEUED) the dialplan only reaches the
    survey on QUEUESTATUS=CONTINUE, which it marks as the agent hanging up."""
    if any(leg.queue == candidate.queue and leg.outcome == "answered" for leg in candidate.legs):
        return True
    return candidate.disposition is Disposition.QUEUED and candidate.hung_up_by == "agent"


def decide(
    selection: Selection | None, candidate: Candidate, *, now: dt.datetime, rng: random.Random
) -> Offer | Skip:
    """Offer the queue's survey, or say why not. The random draw comes last, so that only
    callers who could be surveyed take part in the sample."""
    if selection is None or selection.survey is None:
        return Skip(f"queue {candidate.queue!r} is not surveyed")
    if not answered(candidate):
        return Skip("the call was not answered by an agent")
    if candidate.hung_up_by == "caller":
        return Skip("the caller hung up on the agent")
    if selection.agent_hangup_only and candidate.hung_up_by != "agent":
        return Skip("the agent did not hang up first")
    if selection.cooldown_days > 0 and candidate.last_offered is not None and not candidate.cooldown_exempt:
        since = now - candidate.last_offered
        if since < dt.timedelta(days=selection.cooldown_days):
            return Skip(f"offered a survey {since.days} day(s) ago (cooldown {selection.cooldown_days} days)")
    if selection.mode == "opt_in" and candidate.opted_in is not True:
        return Skip("the caller did not opt in" if candidate.opted_in is False else "the caller was not asked to opt in")
    if selection.mode == "sample" and rng.random() >= selection.share:
        return Skip(f"not drawn in the {selection.share:.0%} sample")
    return Offer(selection.survey)
