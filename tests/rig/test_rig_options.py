"""SIP OPTIONS: Asterisk qualifies registered contacts and does not ring one that stays
silent, so rig phones answer OPTIONS (pyVoIP does not)."""

from __future__ import annotations

import asyncio

from ivr.rig.phone import SipServer, options_ok
from rigkit import PhoneMaker
from sipproxy import options

# As Asterisk 22 sends it to a registered contact (qualify_frequency), after a proxy hop.
QUALIFY = (
    b"OPTIONS sip:1001@127.0.0.1:5070;transport=UDP SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK.proxy\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5060;rport;branch=z9hG4bKPj1f0e\r\n"
    b"From: <sip:1001@127.0.0.1>;tag=a3b0f2c1\r\n"
    b"To: <sip:1001@127.0.0.1;transport=UDP>\r\n"
    b"Contact: <sip:1001@127.0.0.1:5060>\r\n"
    b"Call-ID: 5ad3f0e1-qualify\r\n"
    b"CSeq: 18044 OPTIONS\r\n"
    b"Max-Forwards: 70\r\n"
    b"User-Agent: Asterisk PBX 22.10.1\r\n"
    b"Content-Length:  0\r\n\r\n"
)


def test_the_answer_to_options_echoes_the_transaction() -> None:
    reply = options_ok(QUALIFY)
    assert reply is not None
    lines = reply.decode().split("\r\n")

    assert lines[0] == "SIP/2.0 200 OK"
    assert [line for line in lines if line.startswith("Via: ")] == [
        "Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK.proxy",
        "Via: SIP/2.0/UDP 127.0.0.1:5060;rport;branch=z9hG4bKPj1f0e",
    ]
    assert "From: <sip:1001@127.0.0.1>;tag=a3b0f2c1" in lines
    assert any(line.startswith("To: <sip:1001@127.0.0.1;transport=UDP>;tag=") for line in lines)
    assert "Call-ID: 5ad3f0e1-qualify" in lines and "CSeq: 18044 OPTIONS" in lines
    assert reply.endswith(b"Content-Length: 0\r\n\r\n")


def test_compact_headers_are_understood() -> None:
    request = b"OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP 10.0.0.1\r\nf: <sip:x@b>;tag=1\r\nt: <sip:a@b>;tag=2\r\ni: c1\r\nCSeq: 1 OPTIONS\r\n\r\n"
    reply = options_ok(request)
    assert reply is not None
    assert b"Via: SIP/2.0/UDP 10.0.0.1\r\n" in reply and b"To: <sip:a@b>;tag=2\r\n" in reply and b"Call-ID: c1\r\n" in reply


def test_other_requests_are_left_to_pyvoip() -> None:
    assert options_ok(b"INVITE sip:a@b SIP/2.0\r\n\r\n") is None
    assert options_ok(b"SIP/2.0 200 OK\r\n\r\n") is None


async def test_a_registered_phone_answers_options_through_the_proxy(phone: PhoneMaker, sip_proxy: SipServer) -> None:
    agent = await phone("agent")

    reply = await asyncio.to_thread(options, sip_proxy.port, agent.user, timeout=3.0)

    assert reply is not None and reply.startswith(b"SIP/2.0 200 OK\r\n"), reply
