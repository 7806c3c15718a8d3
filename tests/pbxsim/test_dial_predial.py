"""pbxsim's Dial with the b() pre-dial handler: options parsed as app_dial/app.c do, the
handler's arguments as Gosub gets them, and the SIP headers [ivr-agent-headers] adds to
the agent's INVITE (on a PJSIP channel only)."""

from __future__ import annotations

from ivr.pbxsim import Agent, CallerScript, NoAnswer, SimChannel, SoundLibrary
from ivr.pbxsim.channel import parse_options, separate_args


def _channel(**agents: Agent | NoAnswer) -> SimChannel:
    return SimChannel(CallerScript(), SoundLibrary(), agents=dict(agents))


def test_the_handler_adds_the_headers_and_g_still_holds() -> None:
    channel = _channel(**{"PJSIP/1001": Agent(answer_after=1, talk=5)})
    line = "EXEC Dial PJSIP/1001,15,gb(ivr-agent-headers^s^1(c1^billing^4008001234^zh-CN^vip^https://x.example/?a=1%2C2))"
    assert channel.handle(line) == ["200 result=0"]  # g: the agent hung up, the caller goes on
    (leg,) = channel.dials
    assert leg.status == "ANSWER" and leg.predial == (
        "ivr-agent-headers", "s", "1", ("c1", "billing", "4008001234", "zh-CN", "vip", "https://x.example/?a=1%2C2"))
    assert leg.headers == {"X-IVR-Call-Id": "c1", "X-IVR-Queue": "billing", "X-IVR-Hotline": "4008001234",
                           "X-IVR-Language": "zh-CN", "X-IVR-Customer": "vip", "X-IVR-Pop-Url": "https://x.example/?a=1%2C2"}


def test_an_unanswered_leg_carried_the_headers_too_and_a_local_channel_none() -> None:
    channel = _channel(**{"PJSIP/1001": NoAnswer(), "Local/1002@agents": NoAnswer()})
    channel.handle("EXEC Dial PJSIP/1001,2,gb(ivr-agent-headers^s^1(c1^q^h^en-US^new))")
    channel.handle("EXEC Dial Local/1002@agents,2,gb(ivr-agent-headers^s^1(c1^q^h^en-US^new))")
    pjsip, local = channel.dials
    assert (pjsip.status, "X-IVR-Pop-Url" in pjsip.headers, pjsip.headers["X-IVR-Customer"]) == ("NOANSWER", False, "new")
    assert local.headers == {} and local.predial is not None


def test_asterisks_splitting_is_what_an_unescaped_value_would_break() -> None:
    """Why the controller percent-encodes: a raw `,` `(` or `^` moves the arguments."""
    assert separate_args("PJSIP/1,15,gb(h^s^1(a,b))") == ["PJSIP/1", "15", "gb(h^s^1(a,b))"]  # inside (): kept
    assert separate_args('PJSIP/1,15,g"b(x,y"') == ["PJSIP/1", "15", "gb(x,y"]  # quotes removed, comma kept
    assert separate_args("a\\,b,c") == ["a,b", "c"]  # backslash removed
    assert parse_options("gb(h^s^1(a)b)") == {"g": None, "b": "h^s^1(a)b"}
    assert parse_options("gb(h^s^1(a))x)") == {"g": None, "b": "h^s^1(a)", ")": None, "x": None}
