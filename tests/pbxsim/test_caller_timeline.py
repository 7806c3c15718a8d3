"""The simulated caller's timeline where the controller is silent or listening: holding on
in a queue, and a comment recording the caller says nothing into."""

from __future__ import annotations

from ivr.pbxsim import Agent, CallerScript, SimChannel, SoundLibrary


def _channel(caller: CallerScript, **agents: Agent) -> SimChannel:
    return SimChannel(caller, SoundLibrary(), agents=dict(agents))


def test_a_silent_caller_leaves_one_second_not_the_whole_recording() -> None:
    """res_agi with s=3: three seconds of silence end it, and it keeps the first second."""
    channel = _channel(CallerScript())
    assert channel.handle('RECORD FILE /spool/c1 wav "#" 60000 0 s=3') == ["200 result=0 (timeout) endpos=8000"]
    assert channel.now == 3.0


def test_a_caller_on_hold_gives_up_after_their_patience() -> None:
    channel = _channel(CallerScript(patience=40.0))
    channel.handle("SET MUSIC ON default")
    assert channel.hangup_due() == 40.0
    channel.pass_time(39.0)
    assert channel.alive
    channel.pass_time(41.0)
    assert (channel.alive, channel.hung_up_by, channel.hung_up_at) == (False, "caller", 40.0)


def test_an_agent_answering_ends_the_callers_patience() -> None:
    channel = _channel(CallerScript(patience=40.0), **{"PJSIP/1001": Agent(answer_after=2, talk=100)})
    channel.handle("SET MUSIC ON default")
    channel.handle("SET MUSIC OFF")
    assert channel.handle("EXEC Dial PJSIP/1001,15,g") == ["200 result=0"]
    assert channel.alive and channel.hangup_due() is None and channel.now == 102.0
