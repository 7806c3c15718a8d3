"""Result rows of the metrics: what planners and menu admins read, export and plot.

Every field is a plain value (str, int, float, bool, datetime or None) so that exports can
write any row type generically from `dataclasses.fields`. Instants (`enqueued_at`, ...) are
the stored UTC datetimes; `interval_start`/`interval_end` are in the row's `timezone` (the
hotline's, or the one asked for agents), so a day starts at local midnight. Seconds are
floats; a mean or share over nothing is None, never 0.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

# Interval widths in minutes: the base interval and its rollups (1440 = a local calendar day,
# 23 or 25 hours long on a daylight-saving change; see interval_end).
Width = Literal[15, 30, 60, 1440]
DAY: Width = 1440
AnswerSource = Literal["ami", "controller"]
# What `ivr export` writes.
ExportKind = Literal["calls", "legs", "intervals", "agents", "ivr"]
EXPORT_KINDS: tuple[ExportKind, ...] = ("calls", "legs", "intervals", "agents", "ivr")
Waits = Literal["answered", "all"]


@dataclass(slots=True)
class LegRow:
    """One stay of one call in one ACD queue, with everything the interval figures use, so
    that another attribution (by answer or end time) can be computed from these rows.
    Not frozen: a frozen dataclass of this size takes ten times as long to make, and a
    month's figures make a million."""

    call_id: str
    hotline: str  # the dialed hotline number
    queue: str
    leg: int  # 1 for the call's first queue, 2 after an overflow to another queue, ...
    timezone: str  # the hotline's IANA zone
    interval_start: dt.datetime  # the base interval the leg entered the queue in (local)
    enqueued_at: dt.datetime
    answered_at: dt.datetime | None  # AMI's DialEnd time when known, else the controller's
    answer_source: AnswerSource | None
    left_at: dt.datetime  # answered: the end of the conversation; else when it left the queue
    outcome: Literal["answered", "abandoned", "overflowed"]
    overflow: str | None  # OverflowCause value when overflowed
    agent_id: str | None
    wait_seconds: float  # enqueued_at to answered_at (answered) or to left_at (otherwise)
    talk_seconds: float  # connected time minus hold (0 unless answered)
    hold_seconds: float  # the call's AMI hold time, on its answered leg
    wrap_seconds: float  # the agent's wrap-up after this call
    handle_seconds: float  # talk + hold + wrap
    short_abandon: bool  # abandoned with wait < short_abandon_seconds
    answered_within_t: bool  # answered with wait <= service_level_seconds
    abandoned_within_t: bool  # abandoned with wait <= service_level_seconds
    transferred: bool  # the call went on elsewhere after this leg (see legs.call_legs)
    repeated: bool  # the caller called the same hotline again within repeat_hours
    first_estimate_seconds: float | None  # the first wait estimate the caller was told (compare wait_seconds)
    wrap_code: str | None  # the agent's wrap-up code, no_code or pending; None: no wrap-up offered
    wrap_note: str | None


@dataclass(frozen=True, slots=True)
class QueueInterval:
    """One queue in one interval, legs attributed to the interval they entered the queue in.
    Identities: offered = answered + abandoned + overflowed; overflowed = the sum of its causes."""

    queue: str
    timezone: str
    interval_start: dt.datetime
    interval_end: dt.datetime
    interval_minutes: int
    offered: int
    answered: int
    abandoned: int  # short abandons included
    short_abandons: int
    overflowed: int
    overflowed_timeout: int
    overflowed_no_agents: int
    overflowed_full: int
    overflowed_state_down: int
    service_level_seconds: int  # T
    answered_within_t: int
    abandoned_within_t: int  # short abandons included
    service_level: float | None  # answered_within_t / (offered - short_abandons)
    asa_seconds: float | None  # mean wait of answered legs
    average_wait_seconds: float | None  # mean wait of all legs
    talk_seconds: float
    hold_seconds: float
    wrap_seconds: float
    handle_seconds: float
    aht_seconds: float | None  # handle_seconds / answered
    transfers: int
    repeat_calls: int  # answered legs whose caller called again within repeat_hours
    csat_answers: int  # answered 1-5 scale questions of surveys on these calls
    csat_satisfied: int  # of which 4 or 5
    csat: float | None  # csat_satisfied / csat_answers


@dataclass(frozen=True, slots=True)
class WaitPercentile:
    """A configured percentile of waits in one queue interval (nearest rank; see stats.py)."""

    queue: str
    timezone: str
    interval_start: dt.datetime
    interval_minutes: int
    waits: Waits
    percentile: int
    wait_seconds: float | None
    count: int  # the waits it was taken from


@dataclass(frozen=True, slots=True)
class AgentInterval:
    """One agent in one interval. Times are the parts of each span inside the interval
    (a call across a boundary counts in both); calls_answered counts by answer time."""

    agent_id: str
    timezone: str
    interval_start: dt.datetime
    interval_end: dt.datetime
    interval_minutes: int
    calls_answered: int
    talk_seconds: float
    hold_seconds: float
    wrap_seconds: float
    handle_seconds: float
    staffed_seconds: float  # ready + paused + not ready (logged in)
    ready_seconds: float
    paused_seconds: float
    not_ready_seconds: float
    occupancy: float | None  # handle time / (handle time + ready time without a call)


@dataclass(frozen=True, slots=True)
class StaffedInterval:
    """How many agents were logged in, on average over one interval: what `ivr staffing` puts
    next to its recommendation. queue None: all agents; else the agents who serve it."""

    queue: str | None
    timezone: str
    interval_start: dt.datetime
    interval_end: dt.datetime
    interval_minutes: int
    agents_staffed: float  # staffed seconds of all agents / interval seconds
    agents_ready: float  # ready seconds of all agents / interval seconds


@dataclass(frozen=True, slots=True)
class FunnelNode:
    """One menu node of one hotline's menu version: how many callers got there and what
    they did. Counts are distinct calls, so a caller going round twice counts once."""

    hotline: str
    menu_version: str
    node: str
    node_type: str
    calls: int  # calls of this hotline and menu version (the funnel's top)
    reached: int
    timed_out: int
    invalid: int
    gave_up: int  # the caller hung up before any service while at this node
    ended_by_ivr: int  # the IVR ended the call here without service (IVR_HANGUP)
    contained: int  # self-served calls that went through this node


@dataclass(frozen=True, slots=True)
class FunnelOption:
    """Callers who pressed one choice at one node (the path event's value: "1",
    "* (back)", "0 (operator)", "account_number: 8 digits", ...)."""

    hotline: str
    menu_version: str
    node: str
    option: str
    callers: int
