"""Agent phones: rig phones registered as agent endpoints (e.g. PJSIP 1001..1004) that
answer after a delay, play audio and hang up after a hold time.

Right after answering, an agent phone identifies the call in-band: the DTMF tones
`*<serial>#` (twice), where the serial numbers the calls the pool has answered. A caller of
the rig that hears them knows which agent call is its own, however many scenarios run at
once and whichever agent the queue picked.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ivr.rig.audio import RATE
from ivr.rig.dtmf import Pcm, tones
from ivr.rig.lines import Call, Phone
from ivr.rig.phone import MAX_CALLS, PhoneError

log = logging.getLogger(__name__)

CODE = re.compile(r"\*(\d+)#")
_BEFORE_CODE = 0.5  # seconds after answering: the PBX may still be bridging the caller


@dataclass(frozen=True)
class AgentBehaviour:
    answer_after: float = 1.0  # seconds of ringing before answering
    hold: float = 5.0  # seconds from answering to hanging up
    audio: Pcm | None = None  # played after the identification tones


@dataclass
class AgentCall:
    serial: int
    agent: str  # the agent phone's SIP user
    sip_call_id: str
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    hung_up_by: str | None = None  # "agent" or "caller"

    @property
    def code(self) -> str:
        return f"*{self.serial}#"


def identification(code: str) -> Pcm:
    """The tones an agent plays on answering: the code twice, 0.3 s apart."""
    pause = np.zeros(round(0.3 * RATE), dtype=np.int16)
    return np.concatenate([tones(code, on=0.08, off=0.08), pause, tones(code, on=0.08, off=0.08)])


class AgentPool:
    def __init__(self, phones: list[Phone], behaviour: AgentBehaviour) -> None:
        self._phones = phones
        self._behaviour = behaviour
        self._serials = itertools.count(1)
        self._calls: dict[int, AgentCall] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def users(self) -> list[str]:
        return [p.user for p in self._phones]

    async def start(self) -> None:
        """Register every agent phone, then answer whatever rings."""
        await asyncio.gather(*(p.start() for p in self._phones))
        for phone in self._phones:
            self._spawn(self._serve(phone), f"rig-agent-{phone.user}")

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(p.stop() for p in self._phones), return_exceptions=True)

    async def dial_code(self, code: str, *, timeout: float = 20.0) -> None:
        """Each agent phone calls `code` (e.g. *71 to log in) and waits for the far end to
        hang up after its confirmation."""

        slots = asyncio.Semaphore(MAX_CALLS)  # the calls this process can hold at once

        async def one(phone: Phone) -> None:
            async with slots:
                await dial_and_wait(phone)

        async def dial_and_wait(phone: Phone) -> None:
            call = await phone.dial(code, timeout=timeout)
            if not await call.wait_ended(timeout):
                await call.hangup()
                raise PhoneError(f"{phone.user}: {code} did not hang up within {timeout:g} s")

        await asyncio.gather(*(one(p) for p in self._phones))

    def heard_code(self, keys: str) -> AgentCall | None:
        """The agent call whose identification is in `keys` (DTMF heard by a caller)."""
        for found in CODE.finditer(keys):
            call = self._calls.get(int(found.group(1)))
            if call is not None:
                return call
        return None

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, phone: Phone) -> None:
        while True:
            call = await phone.incoming()
            self._spawn(self._take(phone, call), f"rig-agent-{phone.user}-call")

    async def _take(self, phone: Phone, call: Call) -> None:
        try:
            await asyncio.sleep(self._behaviour.answer_after)
            if call.ended:
                return
            await call.answer()
            answered = time.monotonic()
            record = AgentCall(next(self._serials), phone.user, call.sip_call_id)
            self._calls[record.serial] = record
            log.info("agent %s answered %s (serial %d)", phone.user, call.sip_call_id, record.serial)
            try:
                await asyncio.sleep(_BEFORE_CODE)
                await call.play(identification(record.code))
                if self._behaviour.audio is not None:
                    await call.play(self._behaviour.audio)
                left = answered + self._behaviour.hold - time.monotonic()
                if await call.wait_ended(max(0.0, left)):
                    record.hung_up_by = "caller"
                else:
                    await call.hangup()
                    record.hung_up_by = "agent"
            finally:
                record.ended.set()
        except PhoneError as exc:
            log.error("agent %s: call %s: %s", phone.user, call.sip_call_id, exc)
        finally:
            call.finished.set()
