"""Real SIP and RTP on loopback: rig phones registered with kamailio call each other.

No mocks: INVITE/200/ACK/BYE go through kamailio, audio and telephone events are RTP
packets between the phones. What is checked is what a person on either phone would notice:
which prompt was heard, which keys arrived, that the other side hung up.
"""

from __future__ import annotations

import asyncio

from ivr.rig import audio
from ivr.rig.agents import AgentBehaviour, AgentPool
from ivr.rig.dtmf import detect_keys
from ivr.rig.phone import RigCall, RigPhone, SipServer
from rigkit import PhoneMaker, eventually, local_address, prompt


async def _connect(caller: RigPhone, callee: RigPhone) -> tuple[RigCall, RigCall]:
    dialled = asyncio.create_task(caller.dial(callee.user, timeout=10))
    answering = await asyncio.wait_for(callee.incoming(), 10)
    await answering.answer()
    return await dialled, answering


def _all_of(keys: str, count: int) -> str | None:
    return keys if len(keys) >= count else None


async def test_the_caller_recognises_the_prompt_the_answering_phone_plays(phone: PhoneMaker) -> None:
    caller, callee = await phone("caller"), await phone("ivr")
    calling, answering = await _connect(caller, callee)
    await answering.play(prompt("en-US", "welcome"))

    welcome = audio.Template.of("welcome", prompt("en-US", "welcome"))
    match = await eventually(lambda: audio.find_prompt(welcome, calling.heard()))
    assert match is not None and match.score > 0.95
    # a prompt that was not played is not "heard"
    assert audio.find_prompt(audio.Template.of("goodbye", prompt("en-US", "goodbye")), calling.heard()) is None
    await calling.hangup()


async def test_rfc4733_keys_reach_the_other_phone_both_ways(phone: PhoneMaker) -> None:
    caller, callee = await phone("caller"), await phone("ivr")
    calling, answering = await _connect(caller, callee)
    assert calling.telephone_events and answering.telephone_events  # both offered 101

    await calling.send_keys("159*#0", inband=False)
    await answering.send_keys("2", inband=False)

    assert await eventually(lambda: _all_of(answering.keys_received(), 6)) == "159*#0"
    assert await eventually(lambda: _all_of(calling.keys_received(), 1)) == "2"
    # events replace audio packets: no tone was in the audio
    assert detect_keys(answering.heard()) == ""
    await calling.hangup()


async def test_inband_keys_are_found_by_the_goertzel_detector(phone: PhoneMaker) -> None:
    caller, callee = await phone("caller"), await phone("ivr")
    calling, answering = await _connect(caller, callee)

    await calling.send_keys("2468#", inband=True)

    assert await eventually(lambda: _all_of(detect_keys(answering.heard()), 5)) == "2468#"
    assert answering.keys_received() == ""  # no telephone event was sent
    await calling.hangup()


async def test_the_answering_phone_notices_the_caller_hang_up(phone: PhoneMaker) -> None:
    caller, callee = await phone("caller"), await phone("ivr")
    calling, answering = await _connect(caller, callee)
    assert not answering.ended

    await calling.hangup()

    assert await answering.wait_ended(5)
    assert calling.ended


async def test_the_caller_notices_the_answering_phone_hang_up(phone: PhoneMaker) -> None:
    caller, callee = await phone("caller"), await phone("ivr")
    calling, answering = await _connect(caller, callee)
    assert not calling.ended

    await answering.hangup()

    assert await calling.wait_ended(5)


async def test_an_agent_phone_answers_identifies_itself_and_hangs_up_after_its_hold_time(
    phone: PhoneMaker, sip_proxy: SipServer
) -> None:
    caller = await phone("caller")
    agent_phone = RigPhone(sip_proxy, f"agent-{caller.user}", "secret", local_address())
    pool = AgentPool([agent_phone], AgentBehaviour(answer_after=0.2, hold=4.0))
    await pool.start()
    try:
        calling = await caller.dial(agent_phone.user, timeout=10)
        agent_call = await eventually(lambda: pool.heard_code(detect_keys(calling.heard())))
        assert agent_call is not None and agent_call.agent == agent_phone.user
        assert not calling.ended  # identified well before the hold time is over

        assert await calling.wait_ended(5)  # the agent hung up after its hold time
        await asyncio.wait_for(agent_call.ended.wait(), 2)
        assert agent_call.hung_up_by == "agent"
    finally:
        await pool.stop()
