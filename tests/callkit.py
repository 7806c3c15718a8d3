"""What whole-call tests share: a business-hours moment, the way to the billing queue, and a
poll for conditions reached asynchronously."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from zoneinfo import ZoneInfo

from ivr.pbxsim.caller import Press, Step

OPEN = dt.datetime(2026, 11, 25, 10, 30, tzinfo=ZoneInfo("Asia/Shanghai"))  # a Wednesday morning
# English, billing (1), an agent (2): the example flow's billing-queue node.
TO_BILLING: tuple[Step, ...] = (
    Press("2", on_prompt="choose-language"), Press("1", on_prompt="main-menu"), Press("2", on_prompt="billing-menu"),
)


async def eventually(check: Callable[[], Awaitable[bool]] | Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll `check` until it is true; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"not true within {timeout} s: {check}")
        await asyncio.sleep(0.02)
