"""Helpers for the rig's tests: prompt audio, phone addresses, and a stand-in IVR phone."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from ivr.rig.audio import load_wav
from ivr.rig.dtmf import Pcm, detect_keys
from ivr.rig.phone import LocalAddress, RigCall, RigPhone, free_udp_port

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
PROMPTS = REPO / "prompts" / "sounds"

_ranges = itertools.count()

PhoneMaker = Callable[[str], Awaitable[RigPhone]]  # the `phone` fixture: a registered phone for a role


async def eventually(check: Callable[[], T | None], *, within: float = 5.0) -> T | None:
    """The first non-None result of `check`, looked at every 50 ms (None if none in time):
    the far phone's threads may be slow to process what was sent on a busy machine."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result is not None or time.monotonic() >= deadline:
            return result
        await asyncio.sleep(0.05)


def prompt(language: str, prompt_id: str) -> Pcm:
    return load_wav(PROMPTS / language / f"{prompt_id}.wav")


def local_address() -> LocalAddress:
    """A SIP port and 20 RTP ports of their own for each phone of a test run."""
    start = 21000 + (next(_ranges) % 150) * 20  # below the ephemeral ports (32768-)
    return LocalAddress("127.0.0.1", free_udp_port("127.0.0.1"), range(start, start + 20))


class FakeIvr:
    """Stands in for the PBX and the IVR in the loopback tests: a rig phone that answers,
    plays the English welcome and language menu, waits for a key (RFC 4733 event or
    in-band tone) and plays goodbye after 2, invalid-option after anything else, then
    hangs up. `log` says, per call, what it got and how."""

    def __init__(self, phone: RigPhone) -> None:
        self.phone = phone
        self.log: list[str] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def serve(self) -> None:
        while True:
            call = await self.phone.incoming()
            task = asyncio.create_task(self._handle(call))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _handle(self, call: RigCall) -> None:
        try:
            await call.answer()
            for prompt_id in ("welcome", "choose-language"):
                await call.play(prompt("en-US", prompt_id))
            listening_from = len(call.heard())
            deadline = time.monotonic() + 10
            events = tones = ""
            while not (events or tones) and not call.ended and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                events, tones = call.keys_received(), detect_keys(call.heard()[listening_from:])
            if call.ended:
                self.log.append("caller hung up")
                return
            self.log.append(f"key {events} via rfc4733" if events else f"key {tones} via inband")
            await call.play(prompt("en-US", "goodbye" if (events or tones) == "2" else "invalid-option"))
            await call.hangup()
        finally:
            call.finished.set()
