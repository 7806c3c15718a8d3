"""Scripted callers and agents."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Press:
    """Press `digits`: at `at` seconds of call time, or `after` seconds into the next
    prompt whose file name ends with `on_prompt`."""

    digits: str
    at: float | None = None
    on_prompt: str | None = None
    after: float = 0.5
    gap: float = 0.25


@dataclass(frozen=True)
class HangUp:
    """Hang up at `at` seconds of call time, `after` seconds into a prompt, or — with
    `idle` — once the controller has kept the caller waiting that many real seconds
    without sending a command (a slow backend, a stuck flow, music on hold in a queue).
    `on_prompt="ringing:PJSIP/1001"` hangs up `after` seconds into Dial ringing that target.
    `cause`: the channel's hang-up cause when not the caller's BYE (16), e.g. 18 "No user
    responding" when Asterisk tears the call down itself (a phone that never ACKed its 200 OK)."""

    at: float | None = None
    on_prompt: str | None = None
    after: float = 0.0
    idle: float | None = None
    cause: int | None = None


Step = Press | HangUp


@dataclass(frozen=True)
class CallerScript:
    steps: tuple[Step, ...] = ()
    caller_id: str = "13800138000"
    caller_name: str = "Test Caller"
    # Seconds the caller holds on after music on hold first starts (SET MUSIC ON: a queue)
    # before hanging up, unless an agent answers first; None: holds on for ever.
    patience: float | None = None


@dataclass(frozen=True)
class Agent:
    answer_after: float = 2.0
    talk: float = 30.0
    hangs_up_first: bool = True


@dataclass(frozen=True)
class NoAnswer:
    pass


@dataclass(frozen=True)
class Busy:
    pass


AgentBehaviour = Agent | NoAnswer | Busy
