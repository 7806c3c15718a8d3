"""Tier 2: the real FastAGI server on a loopback port, driven by a raw Asterisk-like peer.

These cover the server's boundary: garbage, half-sent environments, vanished peers,
limits and the allow-list each close one session while the server keeps serving.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from ivr.agi.errors import AgiHangup
from ivr.agi.server import FastAgiServer, Router, ServerLimits
from ivr.agi.session import AgiSession

ENV = (
    b"agi_network: yes\n"
    b"agi_network_script: ivr?hotline=400\n"
    b"agi_request: agi://127.0.0.1:4573/ivr?hotline=400\n"
    b"agi_channel: Local/400@ivr-00000000;2\n"
    b"agi_uniqueid: 1795485396.1\n"
    b"agi_callerid: 13800138000\n"
    b"agi_extension: 400\n"
    b"agi_arg_1: arg1\n"
    b"\n"
)


@dataclass
class Seen:
    """What the handler observed, for assertions."""

    outcomes: list[str] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)


async def play_then_read(session: AgiSession, seen: Seen) -> None:
    try:
        result = await session.stream_file("welcome", "12")
        seen.outcomes.append(f"digit={result.digit}")
        seen.outcomes.append(f"var={await session.get_variable('MYVAR')}")
        await session.stream_file("menu")
        seen.outcomes.append("second prompt played")
    except AgiHangup as exc:
        seen.outcomes.append(f"hangup: {exc}")
        seen.outcomes.append(f"var after hangup={await session.get_variable('MYVAR')}"
                             if not session.closed else "closed")
    finally:
        seen.done.set()


@pytest.fixture
async def server() -> AsyncIterator[tuple[FastAgiServer, Seen]]:
    seen = Seen()
    router = Router()

    async def handler(session: AgiSession) -> None:
        await play_then_read(session, seen)

    router.add("ivr", handler)
    srv = FastAgiServer(router, port=0, limits=ServerLimits(max_sessions=3, idle_timeout=0.5, max_line=1024))
    await srv.start()
    yield srv, seen
    await srv.close(grace=1)
    assert srv.active_sessions == 0, "a session task leaked"


async def connect(srv: FastAgiServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", srv.bound_port)


async def expect_line(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.readline(), 2)


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    return await asyncio.wait_for(reader.read(), 2) == b""


async def good_call(srv: FastAgiServer, seen: Seen) -> None:
    reader, writer = await connect(srv)
    writer.write(ENV)
    assert await expect_line(reader) == b'STREAM FILE welcome "12"\n'
    writer.write(b"200 result=50 endpos=9600\n")
    assert await expect_line(reader) == b"GET VARIABLE MYVAR\n"
    writer.write(b"200 result=1 (x y)\n")
    assert await expect_line(reader) == b'STREAM FILE menu ""\n'
    writer.write(b"200 result=0 endpos=16000\n")
    # Asterisk never closes first; the server must.
    assert await closed_by_server(reader)
    writer.close()
    await asyncio.wait_for(seen.done.wait(), 2)


async def test_a_call_runs_and_the_server_closes_the_connection(server: tuple[FastAgiServer, Seen]) -> None:
    srv, seen = server
    await good_call(srv, seen)
    assert seen.outcomes == ["digit=2", "var=x y", "second prompt played"]
    assert srv.stats.completed == 1


async def test_hangup_line_then_511_unwinds_and_variables_still_answer(server: tuple[FastAgiServer, Seen]) -> None:
    srv, seen = server
    reader, writer = await connect(srv)
    writer.write(ENV)
    await expect_line(reader)
    writer.write(b"200 result=50 endpos=9600\n")
    assert await expect_line(reader) == b"GET VARIABLE MYVAR\n"
    writer.write(b"HANGUP\n200 result=1 (kept)\n")  # the caller hung up meanwhile
    # The media command is not even sent once the HANGUP line was seen: the handler
    # unwinds with AgiHangup and can still read variables.
    assert await expect_line(reader) == b"GET VARIABLE MYVAR\n"
    writer.write(b"200 result=1 (kept)\n")
    assert await closed_by_server(reader)
    await asyncio.wait_for(seen.done.wait(), 2)
    assert seen.outcomes[:2] == ["digit=2", "var=kept"]
    assert seen.outcomes[2].startswith("hangup:")
    assert seen.outcomes[3] == "var after hangup=kept"


async def test_prompt_cut_by_a_hang_up_unwinds_at_that_prompt(server: tuple[FastAgiServer, Seen]) -> None:
    """STREAM FILE -1 is "no such file" or "hung up"; CHANNEL STATUS answers 511 on a dead
    channel (agi-silent.txt), so the hang-up is known at the prompt it cut."""
    srv, seen = server
    reader, writer = await connect(srv)
    writer.write(ENV)
    await expect_line(reader)
    writer.write(b"200 result=-1 endpos=5600\n")
    assert await expect_line(reader) == b"CHANNEL STATUS\n"
    writer.write(b"HANGUP\n511 Command Not Permitted on a dead channel or intercept routine\n")
    assert await expect_line(reader) == b"GET VARIABLE MYVAR\n"
    writer.write(b"200 result=1 (kept)\n")
    assert await closed_by_server(reader)
    await asyncio.wait_for(seen.done.wait(), 2)
    assert seen.outcomes[0].startswith("hangup:") and seen.outcomes[1] == "var after hangup=kept"


async def test_missing_prompt_file_does_not_end_the_call(server: tuple[FastAgiServer, Seen]) -> None:
    srv, seen = server
    reader, writer = await connect(srv)
    writer.write(ENV)
    await expect_line(reader)
    writer.write(b"200 result=-1 endpos=0\n")  # Asterisk found no such file
    assert await expect_line(reader) == b"CHANNEL STATUS\n"
    writer.write(b"200 result=6\n")
    assert await expect_line(reader) == b"GET VARIABLE MYVAR\n"
    writer.write(b"200 result=1 (x)\n")
    assert await expect_line(reader) == b'STREAM FILE menu ""\n'
    writer.write(b"200 result=0 endpos=16000\n")
    assert await closed_by_server(reader)
    await asyncio.wait_for(seen.done.wait(), 2)
    assert seen.outcomes == ["digit=None", "var=x", "second prompt played"]


async def test_511_reply_raises_hangup(server: tuple[FastAgiServer, Seen]) -> None:
    srv, seen = server
    reader, writer = await connect(srv)
    writer.write(ENV)
    await expect_line(reader)
    writer.write(b"511 Command Not Permitted on a dead channel or intercept routine\n")
    assert await expect_line(reader) == b"GET VARIABLE MYVAR\n"
    writer.write(b"200 result=0\n")
    await asyncio.wait_for(seen.done.wait(), 2)
    assert seen.outcomes[0].startswith("hangup: 511")
    writer.close()


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\nHost: example\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)),
        b"agi_network: yes\nthis is not agi\n\n",
        b"A" * 5000,
    ],
)
async def test_garbage_closes_that_session_and_the_server_keeps_serving(
    server: tuple[FastAgiServer, Seen], garbage: bytes
) -> None:
    srv, seen = server
    reader, writer = await connect(srv)
    writer.write(garbage)
    assert await closed_by_server(reader)
    writer.close()
    assert srv.stats.protocol_errors == 1
    await good_call(srv, seen)
    assert srv.stats.completed == 1


async def test_garbage_instead_of_a_reply(server: tuple[FastAgiServer, Seen]) -> None:
    srv, seen = server
    reader, writer = await connect(srv)
    writer.write(ENV)
    await expect_line(reader)
    writer.write(b"what is this\n")
    assert await closed_by_server(reader)
    assert srv.stats.protocol_errors == 1
    writer.close()


async def test_half_sent_environment_then_the_peer_vanishes(server: tuple[FastAgiServer, Seen]) -> None:
    srv, seen = server
    reader, writer = await connect(srv)
    writer.write(ENV[:60])
    await writer.drain()
    writer.close()
    await asyncio.sleep(0.1)
    assert srv.stats.protocol_errors == 1
    await good_call(srv, seen)


async def test_silent_peer_is_dropped_after_the_idle_timeout(server: tuple[FastAgiServer, Seen]) -> None:
    srv, _ = server
    reader, writer = await connect(srv)
    writer.write(b"agi_network: yes\n")
    assert await closed_by_server(reader)  # idle_timeout is 0.5 s in this fixture
    writer.close()


async def test_peer_vanishing_mid_command_is_a_hangup_for_the_flow(server: tuple[FastAgiServer, Seen]) -> None:
    srv, seen = server
    reader, writer = await connect(srv)
    writer.write(ENV)
    await expect_line(reader)
    writer.close()
    await asyncio.wait_for(seen.done.wait(), 2)
    assert seen.outcomes[0].startswith("hangup: Asterisk closed the connection")
    assert seen.outcomes[1] == "closed"


async def test_sessions_over_the_limit_are_refused_at_once(server: tuple[FastAgiServer, Seen]) -> None:
    srv, _ = server
    held = []
    for _ in range(3):
        reader, writer = await connect(srv)
        writer.write(ENV)
        assert await expect_line(reader) == b'STREAM FILE welcome "12"\n'
        held.append((reader, writer))
    reader, writer = await connect(srv)
    assert await closed_by_server(reader)
    assert srv.stats.refused_busy == 1
    for _, w in held:
        w.close()
    writer.close()


async def test_unknown_script_is_closed() -> None:
    srv = FastAgiServer(Router(), port=0)
    await srv.start()
    reader, writer = await connect(srv)
    writer.write(ENV)
    assert await closed_by_server(reader)
    assert srv.stats.protocol_errors == 1
    writer.close()
    await srv.close()


async def test_hosts_outside_the_allow_list_are_refused() -> None:
    srv = FastAgiServer(Router(), port=0, allow=["10.0.0.0/8"])
    await srv.start()
    reader, writer = await connect(srv)
    assert await closed_by_server(reader)
    assert srv.stats.refused_host == 1
    writer.close()
    await srv.close()


def test_duplicate_script_names_fail_at_start_up() -> None:
    router = Router()

    async def handler(session: AgiSession) -> None:
        return None

    router.add("ivr", handler)
    with pytest.raises(ValueError, match="registered twice"):
        router.add("/ivr", handler)


async def test_a_failing_handler_is_contained() -> None:
    router = Router()

    async def broken(session: AgiSession) -> None:
        raise RuntimeError("bug")

    router.add("ivr", broken)
    srv = FastAgiServer(router, port=0)
    await srv.start()
    reader, writer = await connect(srv)
    writer.write(ENV)
    assert await closed_by_server(reader)
    assert srv.stats.handler_errors == 1
    writer.close()
    await srv.close()
