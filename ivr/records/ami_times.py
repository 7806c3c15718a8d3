"""AMI events -> the times Asterisk knows better than the FastAGI session (no I/O).

Asterisk is the authority for when the agent answered, when the caller was bridged to the
agent and how long the call was on hold. `AmiTimes` follows the events of the calls'
channels and tells its sink (the call store) what it saw, keyed by the caller channel's
Uniqueid (the `agi_uniqueid` of the call record):

- `DialEnd` with `DialStatus: ANSWER` on the caller's channel: the agent answered
  (`agent_answered_at`; the first answer counts). Its `DestUniqueid` (the agent's channel)
  now belongs to the call.
- `BridgeEnter` of an answered caller's channel: `bridged_at` (the first bridge counts).
- `BridgeEnter` .. `BridgeLeave` of the agent's channel (the first answered one): the talk
  time, `bridge_seconds`, sent at the BridgeLeave. A channel that enters the bridge in its
  place (`SwapUniqueid`: a Local channel optimised away) carries the span on. This is the talk
  time the call store keeps: Asterisk's ANSWEREDTIME is the caller's time since its own
  answer, IVR included (`routing.service`).
- `Hold` / `Unhold` on any channel of an answered call (the caller's or an agent's): the
  call is on hold while at least one of them is; each Unhold (or the held channel's
  `Hangup`) sends the call's hold total so far, so a repeated total changes nothing.
- `Hangup` of the caller's channel forgets the call.

An event's moment is its `Timestamp` header (epoch seconds, sent when manager.conf has
`timestampevents = yes`), else its arrival time. Events of channels that never reached an
agent are ignored, so IVR-only calls cost nothing here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

# Answered calls followed at once; past it the oldest is forgotten (its Hangup was missed,
# e.g. while the AMI link was down).
MAX_CALLS = 10_000


class AmiTimesSink(Protocol):
    def set_ami_times(
        self, uniqueid: str, *, agent_answered_at: dt.datetime | None = None, bridged_at: dt.datetime | None = None,
        hold_seconds: float | None = None, bridge_seconds: float | None = None,
    ) -> None: ...


@dataclass
class _Call:
    channels: set[str]  # the caller's channel and the agents' channels dialed from it
    bridged: bool = False
    talking: str | None = None  # the agent's channel in the bridge
    talk_from: dt.datetime | None = None  # its BridgeEnter
    talk_told: bool = False
    held: set[str] = field(default_factory=set)
    held_since: dt.datetime | None = None
    hold_total: float = 0.0


class AmiTimes:
    def __init__(self, sink: AmiTimesSink, clock: Callable[[], dt.datetime]) -> None:
        self._sink = sink
        self._clock = clock
        self._calls: dict[str, _Call] = {}  # caller's Uniqueid -> what is known of the call
        self._owner: dict[str, str] = {}  # any channel of an answered call -> the caller's Uniqueid

    def event(self, headers: Mapping[str, str]) -> None:
        name = headers.get("Event", "").lower()
        uniqueid = headers.get("Uniqueid", "")
        if not uniqueid:
            return
        if name == "dialend" and headers.get("DialStatus", "").upper() == "ANSWER":
            self._answered(uniqueid, headers.get("DestUniqueid", ""), self._moment(headers))
        elif name == "bridgeenter":
            call = self._calls.get(uniqueid)
            if call is not None and not call.bridged:
                call.bridged = True
                self._sink.set_ami_times(uniqueid, bridged_at=self._moment(headers))
            elif call is None:
                self._agent_entered(uniqueid, headers.get("SwapUniqueid", ""), self._moment(headers))
        elif name == "bridgeleave":
            self._agent_left(uniqueid, self._moment(headers))
        elif name == "hold":
            self._hold(uniqueid, self._moment(headers))
        elif name == "unhold":
            self._unhold(uniqueid, self._moment(headers))
        elif name == "hangup":
            self._unhold(uniqueid, self._moment(headers))
            call = self._calls.pop(uniqueid, None)
            for channel in call.channels if call is not None else (uniqueid,):
                self._owner.pop(channel, None)

    def _moment(self, headers: Mapping[str, str]) -> dt.datetime:
        stamp = headers.get("Timestamp", "")
        try:
            return dt.datetime.fromtimestamp(float(stamp), dt.timezone.utc)
        except ValueError:
            return self._clock()

    def _answered(self, caller: str, agent: str, at: dt.datetime) -> None:
        call = self._calls.get(caller)
        if call is None:
            if len(self._calls) >= MAX_CALLS:
                oldest = next(iter(self._calls))
                for channel in self._calls.pop(oldest).channels:
                    self._owner.pop(channel, None)
            call = self._calls[caller] = _Call({caller})
            self._owner[caller] = caller
            self._sink.set_ami_times(caller, agent_answered_at=at)
        if agent:
            call.channels.add(agent)
            self._owner[agent] = caller

    def _agent_entered(self, channel: str, swapped: str, at: dt.datetime) -> None:
        caller = self._owner.get(channel) or self._owner.get(swapped)
        call = self._calls.get(caller) if caller is not None else None
        if caller is None or call is None or channel == caller:
            return
        if swapped and call.talking == swapped:  # takes the place of the agent's channel
            call.channels.add(channel)
            self._owner[channel] = caller
            call.talking = channel
        elif call.talk_from is None and channel in call.channels:
            call.talking, call.talk_from = channel, at

    def _agent_left(self, channel: str, at: dt.datetime) -> None:
        caller = self._owner.get(channel)
        call = self._calls.get(caller) if caller is not None else None
        if caller is None or call is None or call.talking != channel or call.talk_from is None or call.talk_told:
            return
        call.talk_told = True
        self._sink.set_ami_times(caller, bridge_seconds=round(max((at - call.talk_from).total_seconds(), 0.0), 3))

    def _hold(self, channel: str, at: dt.datetime) -> None:
        caller = self._owner.get(channel)
        call = self._calls.get(caller) if caller is not None else None
        if call is None:
            return
        if not call.held:
            call.held_since = at
        call.held.add(channel)

    def _unhold(self, channel: str, at: dt.datetime) -> None:
        caller = self._owner.get(channel)
        call = self._calls.get(caller) if caller is not None else None
        if caller is None or call is None or channel not in call.held:
            return
        call.held.discard(channel)
        if not call.held and call.held_since is not None:
            call.hold_total += max((at - call.held_since).total_seconds(), 0.0)
            call.held_since = None
            self._sink.set_ami_times(caller, hold_seconds=round(call.hold_total, 3))
