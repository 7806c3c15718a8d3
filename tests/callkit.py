"""What whole-call tests share: a business-hours moment, the way to the billing queue, the
example flow's self-service backend, and a poll for conditions reached asynchronously."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
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


class Backend:
    """The example flow's self-service backend on a loopback port: account 12345678 has a
    balance, others are not found; `delay` makes it slow."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.server: asyncio.Server | None = None

    async def start(self) -> Backend:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return self

    def close(self) -> None:
        if self.server is not None:
            self.server.close()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = (await reader.readline()).decode()
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        await asyncio.sleep(self.delay)
        path = request.split()[1]
        body = {"found": True, "balance": 128} if "account=12345678" in path else {"found": False}
        data = json.dumps(body).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                     + str(len(data)).encode() + b"\r\nConnection: close\r\n\r\n" + data)
        await writer.drain()
        writer.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
