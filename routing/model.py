"""The ACD's vocabulary: agents' live state, waiting callers, and what happened to an offer.

Pure data. Times are epoch seconds (floats) from a clock passed in by the caller, so that
decisions are reproducible in tests and the same values can live in Redis. An agent's
availability is derived from three independent facts:

- presence, set by the agent or a supervisor (logged out, ready, paused, not ready after
  missed offers);
- activity, set by the ACD (idle, reserved for one call, on a call, in wrap-up until T);
- device, reported by Asterisk over AMI (not in use, ringing, in use, unavailable).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum


class Presence(StrEnum):
    LOGGED_OUT = "logged_out"
    READY = "ready"
    PAUSED = "paused"
    NOT_READY = "not_ready"  # set by the ACD after too many missed offers


class Activity(StrEnum):
    IDLE = "idle"
    RESERVED = "reserved"  # offered one call: ringing or about to
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"  # until `AgentState.wrap_up_until`


class Device(StrEnum):
    """Asterisk's device state of the agent's endpoint (AMI DeviceStateChange)."""

    UNKNOWN = "unknown"
    NOT_INUSE = "not_inuse"
    RINGING = "ringing"
    INUSE = "inuse"
    BUSY = "busy"
    UNAVAILABLE = "unavailable"

    @classmethod
    def from_ami(cls, state: str) -> Device:
        """`NOT_INUSE`, `INUSE`, `RINGING`, `RINGINUSE`, `ONHOLD`, `BUSY`, `UNAVAILABLE`, `INVALID`, `UNKNOWN`."""
        return {
            "NOT_INUSE": cls.NOT_INUSE,
            "INUSE": cls.INUSE,
            "ONHOLD": cls.INUSE,
            "RINGING": cls.RINGING,
            "RINGINUSE": cls.INUSE,
            "BUSY": cls.BUSY,
            "UNAVAILABLE": cls.UNAVAILABLE,
            "INVALID": cls.UNAVAILABLE,
        }.get(state.upper(), cls.UNKNOWN)


# Devices on which the ACD will not ring an agent.
DEVICE_BLOCKS = frozenset({Device.INUSE, Device.BUSY, Device.UNAVAILABLE, Device.RINGING})


@dataclass(frozen=True)
class AgentState:
    """One agent's live state, as every controller sees it."""

    agent_id: str
    presence: Presence = Presence.LOGGED_OUT
    activity: Activity = Activity.IDLE
    device: Device = Device.UNKNOWN
    call_id: str | None = None  # the call the agent is reserved for or talking to
    presence_since: float = 0.0
    # Why the agent is paused (a code of routing.yaml `pause_reasons`, or a built-in one);
    # "" when not paused, or paused with no reason given (e.g. from Asterisk's side).
    pause_reason: str = ""
    # When the agent last became free (end of wrap-up); "longest idle" ranks by it.
    idle_since: float = 0.0
    wrap_up_until: float = 0.0
    # The call whose wrap-up this is: `call_id` is cleared when the call ends, but ending the
    # wrap-up early must name the call, so that a stale request is refused.
    wrap_up_call: str | None = None
    # Answer times of calls handled, pruned to the longest rolling window used. Several
    # controllers append to it, so the order is not guaranteed: count, do not bisect.
    handled: tuple[float, ...] = ()
    missed: int = 0  # consecutive offers not answered; reset by an answered call

    def available(self, now: float) -> bool:
        """Ready, not on a call or reserved, wrap-up over, and a device that can ring."""
        if self.presence is not Presence.READY or self.device in DEVICE_BLOCKS:
            return False
        if self.activity is Activity.IDLE:
            return True
        return self.activity is Activity.WRAP_UP and self.wrap_up_until <= now

    def free_since(self) -> float:
        """When the agent became free: end of the last wrap-up, or of the last call."""
        return max(self.idle_since, self.wrap_up_until)

    def calls_since(self, start: float) -> int:
        return sum(1 for at in self.handled if at >= start)

    def with_(self, **changes: object) -> AgentState:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Caller:
    """A caller waiting in a queue, with what classification found out about them."""

    call_id: str
    queue: str
    enqueued_at: float
    language: str = ""  # the prompt language picked in the IVR, e.g. zh-CN
    priority: int = 0  # higher is served first
    issue: str | None = None  # issue type picked in the menu
    returning: bool = False  # called before within the configured number of days
    vip: bool = False
    affinity_agent: str | None = None  # the agent who last served this caller
    affinity_until: float = 0.0  # only that agent is offered the call until then
    excluded: frozenset[str] = field(default_factory=frozenset)  # agents who missed or rejected it


class OfferOutcome(StrEnum):
    """What became of ringing one agent for one caller."""

    ANSWERED = "answered"
    NO_ANSWER = "no_answer"  # rang for the whole ring timeout
    REJECTED = "rejected"  # busy / declined (DIALSTATUS BUSY, CONGESTION)
    UNREACHABLE = "unreachable"  # DIALSTATUS CHANUNAVAIL
    CALLER_GONE = "caller_gone"  # the caller hung up while it rang


class OverflowCause(StrEnum):
    TIMEOUT = "timeout"  # waited the queue's max wait
    NO_AGENTS = "no_agents"  # nobody who could serve the queue is logged in
    FULL = "full"  # max callers reached on arrival
    STATE_DOWN = "state_down"  # the shared state (Redis) became unreachable
