"""What the scenario runner and the agent phones need of a phone and a call: met by the
in-process `RigPhone`/`RigCall` (`ivr.rig.phone`) and by phones in host processes
(`ivr.rig.farm`)."""

from __future__ import annotations

import asyncio
import threading
from typing import Protocol

from ivr.rig.dtmf import Pcm


class Call(Protocol):
    sip_call_id: str
    finished: threading.Event  # set once the call is over for the rig

    @property
    def ended(self) -> bool: ...

    @property
    def telephone_events(self) -> bool: ...

    async def wait_ended(self, timeout: float) -> bool: ...

    async def answer(self) -> None: ...

    def heard(self) -> Pcm: ...

    async def play(self, pcm: Pcm) -> None: ...

    async def send_keys(self, keys: str, *, inband: bool) -> None: ...

    async def hangup(self) -> None: ...


class Phone(Protocol):
    user: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def dial(self, number: str, *, timeout: float) -> Call: ...

    async def incoming(self) -> Call: ...


async def wait_for_end(ended: asyncio.Event, timeout: float) -> bool:
    """Whether a call's end event is set within `timeout` seconds (a call's `wait_ended`)."""
    try:
        await asyncio.wait_for(ended.wait(), timeout)
    except TimeoutError:
        return ended.is_set()
    return True
