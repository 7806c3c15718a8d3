"""What is stored about a call."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class Disposition(StrEnum):
    SELF_SERVED = "self_served"
    QUEUED = "queued"
    TRANSFERRED = "transferred"
    VOICEMAIL = "voicemail"
    ABANDONED = "abandoned"  # the caller hung up in the IVR
    CLOSED_HOURS = "closed_hours"
    IVR_HANGUP = "ivr_hangup"  # the IVR ended the call without service (retries exhausted)
    ERROR = "error"
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
        return ">".join(event.node for event in self.events if event.kind is EventKind.NODE)

    def answered_leg(self, queue: str | None = None) -> QueueLeg | None:
        """The last queue leg an agent answered (in `queue`, if given): who the caller talked
        to. None: no agent of the engine's ACD answered."""
        return next(
            (leg for leg in reversed(self.queue_legs)
             if leg.outcome == "answered" and (queue is None or leg.queue == queue)),
            None,
        )


@dataclass(frozen=True)
class AgentEvent:
    """An agent's presence from `at` on (login = ready, pause, not ready, logout), as the ACD
    set it: occupancy and logged-in staffing per interval are computed from these."""

    agent_id: str
    at: dt.datetime
    presence: Literal["ready", "paused", "not_ready", "logged_out"]


@dataclass(frozen=True)
class CallerStart:
    """A call's start and its caller key (HMAC of the number, None when withheld): what
    repeat calls are counted from, lighter than a whole CallRow."""

    call_id: str
    dialed: str
    started_at: dt.datetime
    caller_key: str | None
