"""What the record writer writes, and its JSON Lines form for the spool.

Every write is idempotent, so a record replayed after a partial write (or written twice for
any other reason) leaves the same rows: a start is inserted unless the call exists, an end
overwrites the call's end columns and replaces its events and legs, AMI facts are set (the
first answer and bridge win, the hold total is a running total, not an increment), a
presence change is keyed by agent, moment and presence.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter

from ivr.records.model import AgentEvent, CallEnded, CallStarted


@dataclass(frozen=True)
class Started:
    """A call's start as stored: `call.caller` already masked per the privacy policy."""

    call: CallStarted
    caller_key: str | None
    controller: str | None = None  # None in spools written before v8


@dataclass(frozen=True)
class HangupCause:
    uniqueid: str
    cause: int
    text: str


@dataclass(frozen=True)
class AmiTimes:
    """What AMI saw of the call on channel `uniqueid`; None leaves a column as it is."""

    uniqueid: str
    agent_answered_at: dt.datetime | None = None
    bridged_at: dt.datetime | None = None
    hold_seconds: float | None = None  # the call's hold total so far
    bridge_seconds: float | None = None  # the agent's channel's BridgeEnter..BridgeLeave: the talk time


Write = Started | CallEnded | HangupCause | AmiTimes | AgentEvent

_ADAPTERS: dict[str, TypeAdapter[Any]] = {
    "started": TypeAdapter(Started),
    "ended": TypeAdapter(CallEnded),
    "hangup": TypeAdapter(HangupCause),
    "ami": TypeAdapter(AmiTimes),
    "agent": TypeAdapter(AgentEvent),
}
_OPS: dict[type, str] = {Started: "started", CallEnded: "ended", HangupCause: "hangup", AmiTimes: "ami",
                         AgentEvent: "agent"}


class BadLine(ValueError):
    """A spool line that is not a write (e.g. the last line, cut by a crash mid-append)."""


def encode(write: Write) -> bytes:
    """One JSON line (with its newline)."""
    op = _OPS[type(write)]
    return b'{"op":"%s","record":%s}\n' % (op.encode(), _ADAPTERS[op].dump_json(write))


def decode(line: bytes) -> Write:
    try:
        item = json.loads(line)
        write: Write = _ADAPTERS[item["op"]].validate_python(item["record"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BadLine(f"not a spooled record: {line[:80]!r}: {exc}") from exc
    return write
