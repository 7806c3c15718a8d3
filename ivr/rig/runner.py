"""Runs scenarios: one rig call each, several at once, every step within its time limit.

A scenario passes when every step did what it says. The call's *cursor* is the point of
the received audio that later steps look after: a heard prompt moves it to the prompt's
end, a key press to the moment the keys started to be sent, so "expect main-menu" after
"press 2" means the menu came after the key.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from ivr.rig import audio
from ivr.rig.agents import AgentCall, AgentPool
from ivr.rig.dtmf import HOP as DTMF_HOP
from ivr.rig.dtmf import Pcm, detect
from ivr.rig.lines import Call, Phone
from ivr.rig.phone import PhoneError
from ivr.rig.scenario import PlannedScenario, PlannedStep

log = logging.getLogger(__name__)

LOOK_EVERY = 0.1  # seconds between looks at what the call has heard
CODE_WINDOW = 5 * audio.RATE  # samples of audio searched for an agent's identification
Status = Literal["passed", "failed", "error"]
Finder = Callable[[Pcm], int | None]  # where in the received audio something was found


class StepFailed(Exception):
    """The step did not happen as written; the message says what was seen instead."""


@dataclass
class ScenarioResult:
    scenario: PlannedScenario
    status: Status
    reason: str = ""  # why it failed, with the step and its file:line:col
    call_id: str | None = None  # the SIP Call-ID of the rig's call (the PBX logs it)
    seconds: float = 0.0
    agent: str | None = None  # the agent phone that answered, if any
    log: list[str] = field(default_factory=list)  # what happened, step by step


@dataclass
class _Line:
    """A scenario's call while it runs."""

    call: Call
    cursor: int = 0  # sample of the received audio that later steps look after
    agent_call: AgentCall | None = None

    def at(self, sample: int) -> str:
        return f"{sample / audio.RATE:.1f} s"


class Runner:
    def __init__(self, caller: Phone, agents: AgentPool | None = None, *, concurrency: int = 4) -> None:
        self._caller = caller
        self._agents = agents
        self._slots = asyncio.Semaphore(concurrency)

    async def run(self, scenarios: list[PlannedScenario]) -> list[ScenarioResult]:
        """Every scenario, at most `concurrency` at a time; results in the given order."""
        return list(await asyncio.gather(*(self._guarded(s) for s in scenarios)))

    async def _guarded(self, scenario: PlannedScenario) -> ScenarioResult:
        async with self._slots:
            started = time.monotonic()
            result = ScenarioResult(scenario, "passed")
            try:
                await self._run_one(scenario, result)
            except Exception as exc:  # a bug of the rig fails this scenario, not the run
                log.exception("scenario %s crashed", scenario.name)
                result.status, result.reason = "error", f"rig error: {exc!r}"
            result.seconds = time.monotonic() - started
            return result

    async def _run_one(self, scenario: PlannedScenario, result: ScenarioResult) -> None:
        t0 = time.monotonic()
        try:
            call = await self._caller.dial(scenario.dial, timeout=scenario.answer_within)
        except PhoneError as exc:
            result.status, result.reason = "failed", f"dial {scenario.dial}: {exc}"
            return
        result.call_id = call.sip_call_id
        result.log.append(f"{time.monotonic() - t0:6.1f} s  dial {scenario.dial}: answered, call id {call.sip_call_id}")
        line = _Line(call)
        try:
            for step in scenario.steps:
                try:
                    note = await self._step(line, step)
                except (StepFailed, PhoneError) as exc:
                    result.status = "failed" if isinstance(exc, StepFailed) else "error"
                    result.reason = f"step {step.number} ({step.describe()}, {step.where}): {exc}"
                    result.log.append(f"{time.monotonic() - t0:6.1f} s  step {step.number} {step.describe()}: {exc}")
                    return
                result.log.append(f"{time.monotonic() - t0:6.1f} s  step {step.number} {step.describe()}: {note}")
        finally:
            if line.agent_call is not None:
                result.agent = line.agent_call.agent
            await call.hangup()

    async def _step(self, line: _Line, step: PlannedStep) -> str:
        s = step.step
        if s.prompt is not None:
            return await self._prompt(line, step)
        if s.audio is not None:
            seconds = s.audio.seconds
            end = await self._until(line, step, lambda pcm: audio.sound(pcm, start=line.cursor, seconds=seconds), "sound")
            line.cursor = end
            return f"sound until {line.at(end)}"
        if s.silence is not None:
            seconds = s.silence.seconds
            end = await self._until(line, step, lambda pcm: audio.silence(pcm, start=line.cursor, seconds=seconds), "silence")
            line.cursor = end
            return f"silence until {line.at(end)}"
        if s.press is not None:
            return await self._press(line, step, s.press.keys)
        if s.speak is not None:
            if line.call.ended:
                raise StepFailed("the far end had hung up")
            await line.call.play(audio.speech_like(s.speak.seconds))
            line.cursor = len(line.call.heard())
            return f"spoke {s.speak.seconds:g} s"
        if s.wait is not None:
            await asyncio.sleep(s.wait)
            return "waited"
        if s.language is not None:
            return "prompts from here on in this language"
        if s.agent is not None:
            return await self._agent(line, step)
        if s.agent_hangup is not None:
            return await self._agent_hangup(line, step)
        if s.far_hangup is not None:
            if not await line.call.wait_ended(step.within):
                raise StepFailed(f"the far end did not hang up within {step.within:g} s")
            return "the far end hung up"
        if line.call.ended:
            raise StepFailed("the far end had already hung up")
        await line.call.hangup()
        return "hung up"

    async def _until(self, line: _Line, step: PlannedStep, found: Finder, what: str) -> int:
        """Wait until `found` gives a sample position in the received audio."""
        deadline = time.monotonic() + step.within
        while True:
            end = found(line.call.heard())
            if end is not None:
                return end
            if line.call.ended:
                raise StepFailed(f"the far end hung up before the {what} was heard")
            if time.monotonic() >= deadline:
                raise StepFailed(f"no {what} within {step.within:g} s (looked from {line.at(line.cursor)} of the call)")
            await asyncio.sleep(LOOK_EVERY)

    async def _prompt(self, line: _Line, step: PlannedStep) -> str:
        template = step.template
        assert template is not None  # the scenario loader gives every prompt step one
        deadline = time.monotonic() + step.within
        while True:
            heard = line.call.heard()
            match = audio.find_prompt(template, heard, start=line.cursor, threshold=step.min_score)
            if match is not None:
                line.cursor = match.end
                return f"heard {line.at(match.start)}-{line.at(match.end)} (score {match.score:.2f})"
            ended = line.call.ended
            if ended or time.monotonic() >= deadline:
                best = audio.best_match(template, heard, start=line.cursor)
                seen = (
                    f"best score {best.score:.2f} at {line.at(best.start)}, needed {step.min_score:.2f}"
                    if best is not None
                    else f"only {line.at(len(heard) - line.cursor)} of audio after {line.at(line.cursor)}, "
                    f"the prompt lasts {template.seconds:.1f} s"
                )
                when = "before the far end hung up" if ended else f"within {step.within:g} s"
                raise StepFailed(f"not heard {when} ({seen})")
            await asyncio.sleep(LOOK_EVERY)

    async def _press(self, line: _Line, step: PlannedStep, keys: str) -> str:
        if line.call.ended:
            raise StepFailed("the far end had hung up")
        if step.dtmf == "rfc4733" and not line.call.telephone_events:
            raise StepFailed("the far end did not accept telephone-event (RFC 4733) for this call")
        inband = step.dtmf == "inband" or not line.call.telephone_events
        # The far end may answer a key before the last packet of it is sent (Asterisk acts on
        # the first packets of an event or tone): what follows is what came after the start.
        line.cursor = len(line.call.heard())
        await line.call.send_keys(keys, inband=inband)
        return "sent in-band" if inband else "sent as RFC 4733 events"

    async def _agent(self, line: _Line, step: PlannedStep) -> str:
        agents = self._agents
        if agents is None:
            raise StepFailed("the rig has no agent phones (--agents 0)")
        deadline = time.monotonic() + step.within
        while True:
            heard = line.call.heard()
            # The tones last about a second: the last few seconds are enough to look at.
            start = max(line.cursor, len(heard) - CODE_WINDOW)
            keys = detect(heard[start:])
            found = agents.heard_code("".join(k.key for k in keys))
            if found is not None:
                line.agent_call = found
                code_end = next(k for k in reversed(keys) if k.key == "#")
                line.cursor = start + code_end.start + 2 * DTMF_HOP
                return f"agent {found.agent} answered (its call {found.sip_call_id})"
            if line.call.ended:
                raise StepFailed("the far end hung up before an agent answered")
            if time.monotonic() >= deadline:
                raise StepFailed(f"no agent of the rig ({', '.join(agents.users)}) answered within {step.within:g} s")
            await asyncio.sleep(LOOK_EVERY)

    async def _agent_hangup(self, line: _Line, step: PlannedStep) -> str:
        agent_call = line.agent_call
        if agent_call is None:
            raise StepFailed("no agent answered before this step (add an `agent` step)")
        try:
            await asyncio.wait_for(agent_call.ended.wait(), step.within)
        except TimeoutError:
            raise StepFailed(f"agent {agent_call.agent} did not hang up within {step.within:g} s") from None
        if agent_call.hung_up_by != "agent":
            raise StepFailed(f"the call with agent {agent_call.agent} ended from the caller's side first")
        return f"agent {agent_call.agent} hung up"
