"""What is stored about a call."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, NamedTuple, NewType

# An instant as ISO 8601 text in UTC to the millisecond, "2026-03-01T23:06:14.318+00:00": how
# SQLite stores it, and how PostgreSQL gives it back for exports (schema.utc_text). Text order
# is time order. Exports read instants so: parsing and formatting a million back costs more
# than the rest of the row.
UtcText = NewType("UtcText", str)


def utc_text(moment: dt.datetime) -> UtcText:
    return UtcText(moment.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds"))


class Disposition(StrEnum):
    SELF_SERVED = "self_served"
    QUEUED = "queued"
    TRANSFERRED = "transferred"
    VOICEMAIL = "voicemail"
    ABANDONED = "abandoned"  # the caller hung up in the IVR
    CLOSED_HOURS = "closed_hours"
    IVR_HANGUP = "ivr_hangup"  # the IVR ended the call without service (retries exhausted)
    ERROR = "error"
    NOT_IN_SERVICE = "not_in_service"  # the dialed number is no configured hotline ("not in service")
    INTERRUPTED = "interrupted"  # the controller stopped or crashed mid-call
    # Routed by the engine's own ACD (QUEUED means: handed to the dialplan's app_queue).
    ANSWERED = "answered"  # connected to an agent
    QUEUE_ABANDONED = "queue_abandoned"  # hung up while waiting or ringing
    OVERFLOWED = "overflowed"  # left the ACD for voicemail or the dialplan on overflow
    CALLBACK = "callback"  # left a callback request on a callback-offer overflow


class EventKind(StrEnum):
    NODE = "node"
    PROMPT = "prompt"
    DIGIT = "digit"
    TIMEOUT = "timeout"
    INVALID = "invalid"
    LOOKUP = "lookup"
    LANGUAGE = "language"
    HOURS = "hours"
    NOTICE = "notice"
    RECORDING = "recording"
    TRANSFER = "transfer"
    QUEUE = "queue"
    HANGUP = "hangup"
    ERROR = "error"
    # ACD steps; values are short human-readable texts, the queue_legs table has the figures.
    ENQUEUED = "enqueued"  # "<queue> priority=<n>[ vip][ returning][ affinity=<agent>]"
    STEP = "step"  # "<queue> step <i>"
    OFFER = "offer"  # "<agent>: <OfferOutcome> after <s> s"
    CONNECTED = "connected"  # "<agent>"
    ANNOUNCE = "announce"  # "position=<n> estimate=<s>|none"
    OVERFLOW = "overflow"  # "<OverflowCause> -> <destination>"
    SURVEY = "survey"  # the survey_opt_in node's answer: "opted_in" | "declined"


@dataclass(frozen=True)
class PathEvent:
    at: dt.datetime
    kind: EventKind
    node: str
    value: str = ""


@dataclass(frozen=True)
class CallStarted:
    call_id: str
    uniqueid: str
    channel: str
    dialed: str
    caller: str  # as received; masked by the store per the privacy setting
    hotline: str
    language: str
    menu_version: str
    config_version: str
    started_at: dt.datetime


@dataclass(frozen=True)
class QueueLeg:
    """One stay in one ACD queue (a call that overflows to another queue has two)."""

    queue: str
    enqueued_at: dt.datetime
    left_at: dt.datetime
    outcome: Literal["answered", "abandoned", "overflowed"]
    answered_at: dt.datetime | None = None
    agent_id: str | None = None
    talk_seconds: float | None = None  # answered: until the agent or the caller hung up
    offers: int = 0  # agents rung for this caller in this queue
    overflow: str | None = None  # OverflowCause when outcome is "overflowed"
    first_estimate: float | None = None  # seconds: the first wait estimate told to the caller
    priority: int = 0
    ended_by: Literal["caller", "agent"] | None = None  # who hung up an answered call
    wrap_seconds: float | None = None  # answered: the agent's wrap-up after this call

    @property
    def waited(self) -> float:
        """Seconds from entering the queue to being answered or leaving it."""
        return ((self.answered_at or self.left_at) - self.enqueued_at).total_seconds()


CallbackStatus = Literal["pending", "dialing", "done", "failed"]


@dataclass(frozen=True)
class CallbackRequest:
    """A caller who asked to be called back (callback-offer overflow): `routing.callbacks`
    rings a free agent of `queue`, then dials `caller` (the number as received: it is what
    Asterisk dials, so it is stored whatever the privacy policy does to `calls.caller`)."""

    callback_id: str
    call_id: str
    caller: str
    queue: str
    language: str  # prompt language key (zh-CN): which agents may take it
    asterisk_language: str  # zh, en: IVR_LANGUAGE of the callback's channel
    hotline: str
    requested_at: dt.datetime
    status: CallbackStatus = "pending"
    attempts: int = 0  # agent legs originated so far
    last_error: str | None = None
    updated_at: dt.datetime | None = None
    next_attempt_at: dt.datetime | None = None  # pending: not offered before this


@dataclass(frozen=True)
class CallEnded:
    call_id: str
    ended_at: dt.datetime
    disposition: Disposition
    detail: str
    language: str
    notice_played_at: dt.datetime | None
    recording_started_at: dt.datetime | None
    recording_file: str | None
    hung_up_by: Literal["caller", "ivr"] | str | None
    events: tuple[PathEvent, ...]
    queue_legs: tuple[QueueLeg, ...] = ()


@dataclass(frozen=True)
class CallRow:
    call_id: str
    uniqueid: str
    channel: str
    dialed: str
    caller: str
    hotline: str
    language: str
    menu_version: str
    config_version: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    duration_ms: int | None
    disposition: Disposition | None
    detail: str
    notice_played_at: dt.datetime | None
    recording_started_at: dt.datetime | None
    recording_file: str | None
    hung_up_by: str | None
    hangup_cause: int | None
    hangup_cause_txt: str | None
    events: tuple[PathEvent, ...]
    queue_legs: tuple[QueueLeg, ...] = ()
    # What the AMI link saw, which wins over the controller's own inference (reconciliation):
    agent_answered_at: dt.datetime | None = None  # DialEnd ANSWER on the caller's channel
    bridged_at: dt.datetime | None = None  # BridgeEnter of the caller's channel with an agent
    hold_seconds: float = 0.0  # Hold..Unhold on the call's channels, summed

    @property
    def menu_path(self) -> str:
        """The flow nodes the caller went through, in order, joined with ">"."""
        return node_path(self.events)

    def answered_leg(self, queue: str | None = None) -> QueueLeg | None:
        """The last queue leg an agent answered (in `queue`, if given): who the caller talked
        to. None: no agent of the engine's ACD answered."""
        return next(
            (leg for leg in reversed(self.queue_legs)
             if leg.outcome == "answered" and (queue is None or leg.queue == queue)),
            None,
        )


PATH_SEPARATOR = ">"  # node ids are [A-Za-z0-9_.-]+: it cannot occur in one


def node_path(events: Sequence[PathEvent]) -> str:
    """The flow nodes a call entered (its NODE events), in order, joined with PATH_SEPARATOR:
    stored with the call's end, shown on survey responses and in `ivr export calls`."""
    return PATH_SEPARATOR.join(event.node for event in events if event.kind is EventKind.NODE)


def leg_transfers(events: Sequence[PathEvent], legs: Sequence[QueueLeg]) -> tuple[bool, ...]:
    """For each queue leg: whether the call went on elsewhere after it (stored with the leg).

    Another queue after a leg (an overflow to a queue, or a later queue node) is a transfer;
    after the last leg, only the flow's transfer node is. TRANSFER path events also mark
    voicemail nodes and the survey re-entry after an agent hangs up (recorded at the queue
    node): the node's type, from its NODE event, tells them apart. A transfer node ends the
    flow, so in a call with queue legs it can only come after the last one."""
    if not legs:
        return ()
    moved = {event.node for event in events if event.kind is EventKind.TRANSFER}
    by_flow = bool(moved) and any(event.kind is EventKind.NODE and event.node in moved and event.value == "transfer"
                                  for event in events)
    return (True,) * (len(legs) - 1) + (by_flow,)


class StoredLeg(NamedTuple):
    """One queue leg as the metrics read it, with what they need of its call: lighter than a
    CallRow (a million of these are read for a month's interval figures)."""

    call_id: str
    dialed: str
    agent_answered_at: dt.datetime | None  # the call's (AMI DialEnd)
    hold_seconds: float  # the call's
    seq: int  # 0 for the call's first queue leg
    queue: str
    enqueued_at: dt.datetime
    left_at: dt.datetime
    outcome: Literal["answered", "abandoned", "overflowed"]
    answered_at: dt.datetime | None
    agent_id: str | None
    talk_seconds: float | None
    overflow: str | None
    wrap_seconds: float | None
    transferred: bool  # leg_transfers
    first_estimate: float | None = None  # seconds: the first wait estimate told to the caller
    # ivr.records.wrapups, answered legs only: the code, no_code or pending; None: no wrap-up offered.
    wrap_code: str | None = None
    wrap_note: str | None = None


class CallSummary(NamedTuple):
    """A call without its path events: its node path, and its queue legs summed up (the first
    entry, the answered leg, the last exit). What `ivr export calls` writes, a million at a time."""

    call_id: str
    dialed: str
    hotline: str
    caller: str
    language: str
    menu_version: str
    config_version: str
    started_at: UtcText
    ended_at: UtcText | None
    duration_ms: int | None
    disposition: Disposition | None
    detail: str
    hung_up_by: str | None
    hangup_cause: int | None
    hangup_cause_txt: str | None
    node_path: str | None  # None: the call is open
    queues: tuple[str, ...]  # of its legs, in order
    enqueued_at: UtcText | None  # entered its first queue
    answered_at: UtcText | None  # AMI's DialEnd time when seen, else the answered leg's
    answer_source: Literal["ami", "controller"] | None
    agent_id: str | None  # of the first answered leg
    left_queue_at: UtcText | None  # left its last queue
    hold_seconds: float
    bridged_at: UtcText | None
    # The recording proof: the notice heard, then the recording started, and its file.
    notice_played_at: UtcText | None
    recording_started_at: UtcText | None
    recording_file: str | None
    # The last answered leg's wrap-up (ivr.records.wrapups): code, no_code or pending; None: none offered.
    wrap_code: str | None = None
    wrap_note: str | None = None


FUNNEL_KINDS = (EventKind.NODE, EventKind.DIGIT, EventKind.TIMEOUT, EventKind.INVALID)


class CallPath(NamedTuple):
    """What the IVR funnel counts of a call: its FUNNEL_KINDS path events as (kind, node,
    value), in order, without their times (reading a million calls' times is most of the work)."""

    call_id: str
    dialed: str
    menu_version: str
    started_at: UtcText
    disposition: Disposition | None
    steps: tuple[tuple[EventKind, str, str], ...]


def call_path(call: CallRow) -> CallPath:
    return CallPath(call.call_id, call.dialed, call.menu_version, utc_text(call.started_at), call.disposition,
                    tuple((e.kind, e.node, e.value) for e in call.events if e.kind in FUNNEL_KINDS))


@dataclass(frozen=True)
class AgentEvent:
    """An agent's presence from `at` on (login = ready, pause, not ready, logout), as the ACD
    set it: occupancy and logged-in staffing per interval are computed from these."""

    agent_id: str
    at: dt.datetime
    presence: Literal["ready", "paused", "not_ready", "logged_out"]
