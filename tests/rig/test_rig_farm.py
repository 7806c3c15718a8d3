"""Phones in host processes (ivr.rig.farm, ivr.rig.host): the wire between them, a call
between two hosts through kamailio, and a host that dies."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np
import pytest

from ivr.rig import audio
from ivr.rig import hostwire as wire
from ivr.rig.farm import PhoneFarm, RemoteCall, RemotePhone
from ivr.rig.phone import LocalAddress, PhoneError, SipServer
from rigkit import eventually, local_address, prompt


def test_messages_cross_the_wire_whole_however_the_bytes_are_cut() -> None:
    messages: list[wire.Message] = [
        wire.AddPhone(1, 7, SipServer("127.0.0.1", 5060), "1001", "pw", LocalAddress("127.0.0.1", 5070, range(20000, 20010)), 300, True),
        wire.Play(2, 3, np.arange(800, dtype="<i2").tobytes()),
        wire.Done(2, telephone_events=True),
        wire.Heard(3, b"\x01\x00" * 160),
        wire.Ended(3, "200 OK"),
    ]
    stream = b"".join(wire.encode(m) for m in messages)
    decoder = wire.Decoder()

    got = [m for i in range(0, len(stream), 7) for m in decoder.feed(stream[i : i + 7])]

    assert got == messages
    decoder.at_end()


def test_garbage_and_a_cut_stream_are_wire_errors() -> None:
    with pytest.raises(wire.WireError, match="not the rig's host protocol"):
        wire.Decoder().feed(b"GET / HTTP/1.1\r\n\r\n")
    with pytest.raises(wire.WireError, match="undecodable"):
        wire.Decoder().feed(b"\x00\x00\x00\x03abc")
    cut = wire.Decoder()
    cut.feed(wire.encode(wire.Ended(1, ""))[:-2])
    with pytest.raises(wire.WireError, match="inside a frame"):
        cut.at_end()


@dataclass
class Pair:
    """An agent phone (4 calls: a host of its own) and a caller phone in another host, the
    caller's call answered by the agent."""

    farm: PhoneFarm
    agent: RemotePhone
    caller: RemotePhone
    outgoing: RemoteCall
    incoming: RemoteCall


@pytest.fixture
async def pair(sip_proxy: SipServer) -> AsyncIterator[Pair]:
    farm = PhoneFarm(sip_proxy)
    try:
        agent = await farm.phone(f"farm-agent-{uuid.uuid4().hex[:8]}", "x", local_address(), calls=4)
        caller = await farm.phone(f"farm-caller-{uuid.uuid4().hex[:8]}", "x", local_address(), calls=1)
        await asyncio.gather(agent.start(), caller.start())
        ringing = asyncio.create_task(agent.incoming())
        outgoing, incoming = await asyncio.wait_for(asyncio.gather(caller.dial(agent.user, timeout=10), _answer(ringing)), 20)
        yield Pair(farm, agent, caller, outgoing, incoming)
    finally:
        await farm.close()


async def _answer(ringing: asyncio.Task[RemoteCall]) -> RemoteCall:
    call = await ringing
    await call.answer()
    return call


async def test_a_call_between_phones_of_two_hosts_carries_audio_both_ways(pair: Pair) -> None:
    assert pair.farm.hosts == 2  # the agent's 4 calls fill one host
    await pair.incoming.play(prompt("en-US", "goodbye"))
    template = audio.Template.of("goodbye", prompt("en-US", "goodbye"))
    heard = await eventually(lambda: audio.find_prompt(template, pair.outgoing.heard()), within=5)
    assert heard is not None, "the caller did not hear the agent's prompt"

    await pair.outgoing.hangup()

    assert pair.outgoing.ended and await pair.incoming.wait_ended(5)


async def test_a_host_that_dies_ends_its_calls_and_fails_what_is_asked_of_it(pair: Pair) -> None:
    os.kill(pair.agent._host.pid, signal.SIGKILL)

    assert await pair.incoming.wait_ended(5) and pair.incoming.status == "phone host exited"
    with pytest.raises(PhoneError, match="exited"):
        await pair.agent.dial(pair.caller.user, timeout=5)
    assert not pair.outgoing.ended  # the other host and its call live on
    await pair.outgoing.hangup()
