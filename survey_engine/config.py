"""surveys.yaml: the questions, who is asked, which answers open a follow-up, and the web form.

The file is optional: without it no caller is surveyed and the `survey` script lets the
caller go. `ivr check` reports its problems with file, line and column like every other file.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from ivr.config.models import PromptId, Strict
from survey_engine.model import QuestionKind, Urgency

QuestionId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+$")]


class Question(Strict):
    id: QuestionId
    kind: QuestionKind
    prompt: PromptId
    # Seconds to wait for the first digit after the prompt (and, for nps, for the second one).
    timeout: float = Field(5.0, gt=0, le=30)


class CommentSettings(Strict):
    """An optional spoken comment after the questions (RECORD FILE)."""

    prompt: PromptId
    max_seconds: int = Field(60, ge=1, le=600)
    silence_seconds: int = Field(3, ge=1, le=30)  # this much silence ends the recording
    beep: bool = True
    format: str = "wav"
    # Where Asterisk writes the file (its own file system): <directory>/<call_id>.<format>.
    directory: str = "/var/spool/asterisk/ivr-survey"


class Survey(Strict):
    intro: PromptId | None = None
    questions: tuple[Question, ...] = Field(min_length=1)
    # Played before the one re-ask of a question after an invalid digit or no input.
    invalid_prompt: PromptId | None = None
    no_input_prompt: PromptId | None = None  # defaults to invalid_prompt
    comment: CommentSettings | None = None
    thanks: PromptId | None = None

    @field_validator("questions")
    @classmethod
    def _unique_ids(cls, questions: tuple[Question, ...]) -> tuple[Question, ...]:
        seen: set[str] = set()
        for question in questions:
            if question.id in seen:
                raise ValueError(f"question id {question.id!r} is used twice")
            seen.add(question.id)
        return questions


class Selection(Strict):
    """Who is offered a survey. Callers who abandoned never are: the survey only follows an
    answered call."""

    survey: Name | None = None  # None: not surveyed
    # all: every answered caller; opt_in: only callers who pressed the digit of a
    # `survey_opt_in` menu node; sample: a random `share` of the answered callers.
    mode: Literal["all", "opt_in", "sample"] = "all"
    share: float = Field(1.0, ge=0, le=1)
    cooldown_days: int = Field(30, ge=0)  # never the same caller more than once in this many days
    # true: only when the agent hung up first (the normal re-entry after Dial/Queue);
    # false: also when the caller reaches `ivr-survey` another way (an agent's transfer).
    agent_hangup_only: bool = True


class SelectionOverride(Strict):
    """Per queue: what differs from `selection.default`."""

    survey: Name | None = None
    mode: Literal["all", "opt_in", "sample"] | None = None
    share: float | None = Field(None, ge=0, le=1)
    cooldown_days: int | None = Field(None, ge=0)
    agent_hangup_only: bool | None = None
    enabled: bool = True  # false: this queue's callers are never surveyed


class SelectionRules(Strict):
    default: Selection = Selection()
    queues: dict[str, SelectionOverride] = {}
    # Caller numbers (as Asterisk sends them) the cooldown never applies to: the SIP test
    # rig's callers, which must hear the survey on every run.
    cooldown_exempt: list[str] = []

    def for_queue(self, queue: str) -> Selection | None:
        """The selection for a queue's callers; None: they are not surveyed."""
        override = self.queues.get(queue)
        if override is None:
            return self.default if self.default.survey is not None else None
        if not override.enabled:
            return None
        changes = override.model_dump(exclude_none=True, exclude={"enabled"})
        chosen = self.default.model_copy(update=changes)
        return chosen if chosen.survey is not None else None


class Match(Strict):
    """Which answers a rule looks at: a question by id, or every question of a kind; then a
    value at most `at_most` or exactly `equals` (yes_no: 1 = yes, 0 = no)."""

    question: QuestionId | None = None
    kind: QuestionKind | None = None
    at_most: int | None = None
    equals: int | None = None

    @model_validator(mode="after")
    def _one_target_one_test(self) -> Match:
        if (self.question is None) == (self.kind is None):
            raise ValueError("give exactly one of `question` or `kind`")
        if (self.at_most is None) == (self.equals is None):
            raise ValueError("give exactly one of `at_most` or `equals`")
        return self


class FollowUpRule(Strict):
    when: Match
    category: Name
    urgency: Urgency


class Owners(Strict):
    categories: dict[str, str] = {}  # category -> owner (wins over the queue's)
    queues: dict[str, str] = {}  # queue -> owner
    default: str = "supervisor"

    def owner(self, category: str, queue: str) -> str:
        return self.categories.get(category) or self.queues.get(queue) or self.default


class Deadlines(Strict):
    """Hours from the response to the deadline, per urgency."""

    urgent: float = Field(24, gt=0)
    important: float = Field(72, gt=0)
    routine: float = Field(168, gt=0)

    def hours(self, urgency: Urgency) -> float:
        return float(getattr(self, urgency))


def _default_rules() -> tuple[FollowUpRule, ...]:
    return (
        FollowUpRule(when=Match(kind="yes_no", equals=0), category="unresolved", urgency="urgent"),
        FollowUpRule(when=Match(kind="scale", at_most=1), category="low-score", urgency="urgent"),
        FollowUpRule(when=Match(kind="scale", at_most=2), category="low-score", urgency="important"),
        FollowUpRule(when=Match(kind="nps", at_most=6), category="detractor", urgency="routine"),
    )


class FollowUps(Strict):
    # Every rule is tried; a response that matches any opens one item, with the category and
    # urgency of the most urgent rule that matched (the first such rule in this list).
    rules: tuple[FollowUpRule, ...] = Field(default_factory=_default_rules)
    owners: Owners = Owners()
    deadlines: Deadlines = Deadlines()
    keep_contact: bool = True  # store the caller's number on the item, to tell them the outcome


class WebForm(Strict):
    """The web feedback form: a signed per-call link, a 1-5 score and free text."""

    enabled: bool = False
    bind: str = "127.0.0.1"
    port: int = Field(8088, ge=0, le=65535)
    # The address callers open (behind a reverse proxy in production); links start with it.
    base_url: str = "http://127.0.0.1:8088"
    # The signing key is read from this environment variable, never from the YAML.
    secret_env: str = "IVR_FEEDBACK_SECRET"
    link_days: float = Field(7, gt=0)  # a link older than this is refused
    max_text: int = Field(2000, ge=1, le=20000)


class SurveysConfig(Strict):
    surveys: dict[Name, Survey] = {}
    selection: SelectionRules = SelectionRules()
    followups: FollowUps = FollowUps()
    web: WebForm = WebForm()
