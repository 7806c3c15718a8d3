"""`AgiSession.until_hangup`: backend work between commands, with the connection watched.

Asterisk sends the `HANGUP` line the moment a caller hangs up, even while no command is
outstanding; the controller must drop the work and unwind then, not when it next speaks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from ivr.agi.errors import AgiHangup, AgiProtocolError
from ivr.agi.server import FastAgiServer, Router, ServerLimits
from ivr.agi.session import AgiSession

ENV = b"agi_network: yes\nagi_network_script: ivr\nagi_channel: Local/400@ivr-00000000;2\nagi_uniqueid: 1.1\n\n"


@dataclass
class Work:
    """Backend work that takes `seconds`; says whether it finished or was cancelled."""

    seconds: float
    outcome: str = "running"
    started: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self) -> str:
        self.started.set()
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            self.outcome = "cancelled"
            raise
        self.outcome = "finished"
        return "answer"


@dataclass
class Handler:
    work: Work
    outcomes: list[str] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, session: AgiSession) -> None:
        try:
            self.outcomes.append(await session.until_hangup(self.work()))
            await session.stream_file("menu")
            self.outcomes.append("played")
        except AgiHangup:
            self.outcomes.append("hangup")
            if not session.closed:
                self.outcomes.append(f"var={await session.get_variable('MYVAR')}")
        except AgiProtocolError as exc:
            self.outcomes.append(f"protocol error: {exc}")
            raise
        finally:
            self.done.set()


Serve = Callable[[Work], Awaitable[tuple[Handler, asyncio.StreamReader, asyncio.StreamWriter]]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[FastAgiServer] = []

    async def start(work: Work) -> tuple[Handler, asyncio.StreamReader, asyncio.StreamWriter]:
        handler = Handler(work)
        router = Router()
        router.add("ivr", handler)
        server = FastAgiServer(router, port=0, limits=ServerLimits(idle_timeout=2))
        await server.start()
        servers.append(server)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.bound_port)
        writer.write(ENV)
        await asyncio.wait_for(work.started.wait(), 2)
        return handler, reader, writer

    yield start
    for server in servers:
        await server.close(grace=1)
        assert server.active_sessions == 0, "a session task leaked"


async def line(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.readline(), 2)


async def test_work_that_finishes_first_leaves_the_call_going(serve: Serve) -> None:
    handler, reader, writer = await serve(Work(0.05))
    assert await line(reader) == b'STREAM FILE menu ""\n'
    writer.write(b"200 result=0 endpos=8000\n")
    await asyncio.wait_for(handler.done.wait(), 2)
    assert handler.outcomes == ["answer", "played"]
    assert await asyncio.wait_for(reader.read(), 2) == b""  # the server closed


async def test_hangup_line_while_waiting_cancels_the_work(serve: Serve) -> None:
    handler, reader, writer = await serve(Work(30))
    writer.write(b"HANGUP\n")
    # No media command follows; variables still answer after a hang-up.
    assert await line(reader) == b"GET VARIABLE MYVAR\n"
    writer.write(b"200 result=1 (kept)\n")
    await asyncio.wait_for(handler.done.wait(), 2)
    assert handler.outcomes == ["hangup", "var=kept"]
    assert handler.work.outcome == "cancelled"


async def test_connection_closed_while_waiting_is_a_hangup(serve: Serve) -> None:
    handler, reader, writer = await serve(Work(30))
    writer.close()
    await asyncio.wait_for(handler.done.wait(), 2)
    assert handler.outcomes == ["hangup"]
    assert handler.work.outcome == "cancelled"


async def test_a_reply_nobody_asked_for_is_a_protocol_error(serve: Serve) -> None:
    handler, reader, writer = await serve(Work(30))
    writer.write(b"200 result=0\n")
    await asyncio.wait_for(handler.done.wait(), 2)
    assert handler.outcomes[0].startswith("protocol error: Reply(code=200")
    assert handler.work.outcome == "cancelled"
    assert await asyncio.wait_for(reader.read(), 2) == b""


async def test_no_channel_status_is_sent_after_result_minus_one_and_the_hangup_line(serve: Serve) -> None:
    """A real Asterisk 22 answers a prompt cut by the caller's hang-up with `result=-1` and
    sends the HANGUP line ~40 ms later; a CHANNEL STATUS sent meanwhile is logged as 511."""
    handler, reader, writer = await serve(Work(0.01))
    assert await line(reader) == b'STREAM FILE menu ""\n'
    writer.write(b"200 result=-1 endpos=12000\n")
    await writer.drain()
    await asyncio.sleep(0.04)
    writer.write(b"HANGUP\n")
    assert await line(reader) == b"GET VARIABLE MYVAR\n"  # a dead-channel command, nothing else
    writer.write(b"200 result=1 (kept)\n")
    await asyncio.wait_for(handler.done.wait(), 2)
    assert handler.outcomes == ["answer", "hangup", "var=kept"]


async def test_result_minus_one_without_a_hangup_line_is_a_missing_file(serve: Serve) -> None:
    handler, reader, writer = await serve(Work(0.01))
    assert await line(reader) == b'STREAM FILE menu ""\n'
    writer.write(b"200 result=-1 endpos=0\n")
    assert await line(reader) == b"CHANNEL STATUS\n"  # asked only once no HANGUP line came
    writer.write(b"200 result=6\n")
    await asyncio.wait_for(handler.done.wait(), 2)
    assert handler.outcomes == ["answer", "played"]
