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
