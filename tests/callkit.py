"""What whole-call tests share: a business-hours moment, the way to the billing queue, the
example flow's self-service backend, a poll for conditions reached asynchronously, and a
controller clock on which an answered Dial takes its time."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from zoneinfo import ZoneInfo

from ivr.pbxsim.caller import Press, Step
from ivr.pbxsim.channel import SimChannel
from ivr.pbxsim.peer import CallResult, SimCall

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


class DialClock:
    """The controller's ACD clock, on which an answered Dial lasts what it lasted on the peer's
    virtual clock (the agent's ringing and talk), as on a real PBX: the controller measures talk
    time around the Dial. The rest of the call keeps to `base` (real time), so that waits in the
    queue are as short as the tests make them. A `place_call` observer."""

    def __init__(self, base: Callable[[], float] = time.time) -> None:
        self.base = base
        self.ahead = 0.0
        self._reached: dict[str, float] = {}  # uniqueid -> its channel time after its last command

    def __call__(self) -> float:
        return self.base() + self.ahead

    def call_started(self, call: SimCall, uniqueid: str, channel: str, request: str) -> None:
        self._reached.setdefault(uniqueid, 0.0)

    def command(self, uniqueid: str, line: str, reply: list[str], channel: SimChannel) -> Iterator[float]:
        # Called before the reply goes out: the controller reads the clock after it.
        if line.startswith("EXEC Dial") and channel.variables.get("DIALSTATUS") == "ANSWER":
            self.ahead += channel.now - self._reached.get(uniqueid, 0.0)
        self._reached[uniqueid] = channel.now
        return iter(())

    def call_ended(self, result: CallResult) -> None:
        pass
