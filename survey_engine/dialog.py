"""One voice survey on a channel: intro, the questions, an optional spoken comment, thanks.

Business logic only: it speaks through `SurveyChannel` (the AGI session's typed API). A
caller who hangs up raises `AgiHangup` out of `run_survey`; everything given until then is
in the `Progress` the caller of `run_survey` passed in, so that it can be saved.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ivr.agi.commands import DigitInput, Playback, Recording
from ivr.agi.errors import AgiRecordNotWritten
from survey_engine.config import CommentSettings, Question, Survey
from survey_engine.model import Answer
from survey_engine.questions import MAX_DIGITS, interpret

log = logging.getLogger(__name__)

# RECORD FILE's endpos counts samples; the formats Asterisk records a call in are 8 kHz.
SAMPLES_PER_SECOND = 8000


class SurveyChannel(Protocol):
    async def stream_file(self, filename: str, escape_digits: str = "") -> Playback: ...

    async def get_data(self, filename: str, timeout_ms: int, max_digits: int) -> DigitInput: ...

    async def record_file(
        self,
        filename: str,
        fmt: str = "wav",
        *,
        escape_digits: str = "#",
        timeout_ms: int = -1,
        beep: bool = False,
        silence_s: int | None = None,
    ) -> Recording: ...


@dataclass
class Progress:
    """What the caller has given so far."""

    answers: list[Answer] = field(default_factory=list)  # one per question asked to the end
    finished: bool = False  # every question was asked (the comment and thanks may follow)
    comment_file: str | None = None  # without extension, as Asterisk wrote it
    comment_seconds: float | None = None


@dataclass(frozen=True)
class SurveyDialog:
    channel: SurveyChannel
    survey: Survey
    prompt_path: Callable[[str], str]  # prompt id -> what STREAM FILE / GET DATA get
    clock: Callable[[], dt.datetime]

    async def run(self, progress: Progress, comment_name: str) -> None:
        """The whole survey; `comment_name` names the comment file in the comment directory."""
        survey = self.survey
        if survey.intro is not None:
            await self._play(survey.intro)
        for question in survey.questions:
            progress.answers.append(await self.ask(question))
        progress.finished = True
        if survey.comment is not None:
            hung_up = await self._comment(survey.comment, comment_name, progress)
            if hung_up:  # the usual way to end a comment: nothing more can be played
                return
        if survey.thanks is not None:
            await self._play(survey.thanks)

    async def ask(self, question: Question) -> Answer:
        """Ask; after an invalid key or none, say so and ask once more; then unanswered."""
        for attempt in (1, 2):
            keys = await self.channel.get_data(
                self.prompt_path(question.prompt), int(question.timeout * 1000), MAX_DIGITS[question.kind]
            )
            reading = interpret(question.kind, keys.digits)
            if reading.outcome == "answered":
                return Answer(question.id, question.kind, reading.value, attempt, self.clock())
            if attempt == 1:
                retry = self.survey.invalid_prompt
                if reading.outcome == "no_input":
                    retry = self.survey.no_input_prompt or retry
                if retry is not None:
                    await self._play(retry)
        return Answer(question.id, question.kind, None, 2)

    async def _comment(self, comment: CommentSettings, name: str, progress: Progress) -> bool:
        """Record the comment; True when the caller hung up to end it. A # pressed during the
        beep ends the comment before it starts (nothing recorded); a comment directory that
        Asterisk cannot write to loses the comment, not the survey: the thanks still play."""
        await self._play(comment.prompt)
        filename = f"{comment.directory.rstrip('/')}/{name}"
        try:
            recorded = await self.channel.record_file(
                filename,
                comment.format,
                escape_digits="#",
                timeout_ms=comment.max_seconds * 1000,
                beep=comment.beep,
                silence_s=comment.silence_seconds,
            )
        except AgiRecordNotWritten:
            log.warning("survey comment %s not recorded: Asterisk cannot write to %s (create it on the PBX, "
                        "writable by the asterisk user)", name, comment.directory)
            return False
        if recorded.endpos > 0:
            progress.comment_file = filename
            progress.comment_seconds = recorded.endpos / SAMPLES_PER_SECOND
        return recorded.ended_by == "hangup"

    async def _play(self, prompt: str) -> None:
        await self.channel.stream_file(self.prompt_path(prompt))
