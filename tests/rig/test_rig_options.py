"""SIP OPTIONS: Asterisk qualifies registered contacts (qualify_frequency) and does not
ring one that stays silent. pjsua answers OPTIONS itself, also while one of its INVITEs
is pending: pyVoIP read the socket inside its INVITE and failed on the OPTIONS
(`SIPParseError: Unable to decipher SIP request: OPTIONS ...`)."""

from __future__ import annotations

import asyncio

from ivr.rig.phone import SipServer
from rigkit import PhoneMaker
from sipproxy import options


async def test_a_registered_phone_answers_options_through_the_proxy(phone: PhoneMaker, sip_proxy: SipServer) -> None:
    agent = await phone("agent")

    reply = await asyncio.to_thread(options, sip_proxy.port, agent.user, timeout=3.0)

    assert reply is not None and reply.startswith(b"SIP/2.0 200 OK\r\n"), reply


async def test_options_while_the_phones_invite_rings_leave_the_call_intact(phone: PhoneMaker, sip_proxy: SipServer) -> None:
    caller, callee = await phone("caller"), await phone("callee")
    dialling = asyncio.create_task(caller.dial(callee.user, timeout=10))
    ringing = await asyncio.wait_for(callee.incoming(), 10)

    reply = await asyncio.to_thread(options, sip_proxy.port, caller.user, timeout=3.0)
    await ringing.answer()
    calling = await dialling

    assert reply is not None and reply.startswith(b"SIP/2.0 200 OK\r\n"), reply
    assert not calling.ended and not ringing.ended
    await calling.hangup()
    assert await ringing.wait_ended(5)
