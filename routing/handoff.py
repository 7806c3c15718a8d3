"""Hand-off of a caller from the IVR to a named queue.

Until the engine's own ACD owns agent selection, a queue is a place in the Asterisk
dialplan (`ivr-queue,<name>,1` runs app_queue). The IVR sets the variables the dialplan
and the post-call survey need, moves the channel there, and ends its AGI session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class Channel(Protocol):
    async def set_variable(self, name: str, value: str) -> None: ...

    async def continue_at(self, context: str, extension: str, priority: str = "1") -> None: ...


@dataclass(frozen=True)
class HandoffTarget:
    queue: str
    context: str
    extension: str
    timeout: int


@dataclass(frozen=True)
class CallInfo:
    call_id: str
    hotline: str
    language: str  # Asterisk language code


async def hand_off_to_dialplan(channel: Channel, call: CallInfo, target: HandoffTarget) -> None:
    """Move the caller to the queue's dialplan place; the AGI session must end after this."""
    for name, value in (
        ("IVR_CALL_ID", call.call_id),
        ("IVR_HOTLINE", call.hotline),
        ("IVR_LANGUAGE", call.language),
        ("IVR_QUEUE", target.queue),
        ("IVR_QUEUE_TIMEOUT", str(target.timeout)),
    ):
        await channel.set_variable(name, value)
    await channel.continue_at(target.context, target.extension)
