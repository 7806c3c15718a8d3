"""Per-call state the flow engine carries from node to node."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from ivr.config.models import Flow, Hotline
from ivr.records.model import EventKind, PathEvent, QueueLeg

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class CallContext:
    call_id: str
    dialed: str
    hotline: Hotline
    flow: Flow
    flow_version: str
    language: str  # language key of the prompts, e.g. zh-CN
    clock: Clock = utc_now
    variables: dict[str, str] = field(default_factory=dict)
    events: list[PathEvent] = field(default_factory=list)
    menu_stack: list[str] = field(default_factory=list)
    self_served: bool = False
    closed_hours: bool = False
    notice_played_at: dt.datetime | None = None
    recording_started_at: dt.datetime | None = None
    recording_file: str | None = None
    node: str = ""
    queue_legs: list[QueueLeg] = field(default_factory=list)  # stays in ACD queues, in order

    def record(
        self, kind: EventKind, value: str = "", node: str | None = None, at: dt.datetime | None = None
    ) -> None:
        """A path event, at `at` (the ACD's own clock) or now."""
        when = self.clock() if at is None else at
        self.events.append(PathEvent(when, kind, self.node if node is None else node, value))
