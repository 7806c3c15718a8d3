"""What is stored about a survey: one response per offer (voice or web), its answers, and the
follow-up items that low scores open."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

QuestionKind = Literal["scale", "yes_no", "nps"]  # 1-5; 1 = yes / 2 = no (stored 1 / 0); 0-10
Channel = Literal["voice", "web"]
# offered: selected and started to play, no answer given (yet); partial: at least one answer,
# then the caller hung up before the end; completed: every question was asked to the end
# (some may still be unanswered).
ResponseStatus = Literal["offered", "partial", "completed"]
Urgency = Literal["urgent", "important", "routine"]
URGENCY_ORDER: tuple[Urgency, ...] = ("urgent", "important", "routine")  # most pressing first
FollowUpStatus = Literal["open", "closed"]

# The web form's one score: a 1-5 scale question of this id.
WEB_SCORE_QUESTION = "overall"


@dataclass(frozen=True)
class Answer:
    question: str  # the question's id in surveys.yaml
    kind: QuestionKind
    value: int | None  # None: unanswered (no valid input after the one re-ask)
    attempts: int  # times the question was asked (1, or 2 after an invalid or missing input)
    answered_at: dt.datetime | None = None


@dataclass(frozen=True)
class SurveyResponse:
    response_id: str
    call_id: str
    channel: Channel
    survey: str  # the survey's name in surveys.yaml ("web" for the web form)
    status: ResponseStatus
    hotline: str  # the dialed hotline number
    queue: str
    agent: str
    language: str  # prompt language key (zh-CN)
    menu_version: str
    menu_path: str  # the IVR nodes the caller went through, joined with ">"
    hung_up_by: str  # who ended the agent leg: "agent", "caller", or "" when unknown
    caller_key: str | None  # HMAC of the caller's number (ivr.records.store.caller_key): the cooldown
    offered_at: dt.datetime
    started_at: dt.datetime | None = None  # first answer
    ended_at: dt.datetime | None = None
    answers: tuple[Answer, ...] = ()
    comment_file: str | None = None  # the spoken comment as Asterisk recorded it (path without extension)
    comment_seconds: float | None = None
    comment_text: str | None = None  # the web form's free text

    @property
    def started(self) -> bool:
        return any(answer.value is not None for answer in self.answers)

    def answer(self, question: str) -> Answer | None:
        return next((a for a in self.answers if a.question == question), None)


@dataclass(frozen=True)
class FollowUp:
    """A low score or an unresolved problem that somebody must act on before `deadline`."""

    item_id: str
    response_id: str
    call_id: str
    category: str
    urgency: Urgency
    owner: str  # who answers for it, by rule (queue or category)
    created_at: dt.datetime
    deadline: dt.datetime
    reasons: tuple[str, ...]  # every rule that matched, e.g. "resolved = no", "attitude = 1 (<= 2)"
    queue: str
    agent: str
    # The caller's number as received, so that somebody can tell them the outcome (kept only
    # when surveys.yaml followups.keep_contact is on, whatever calls.caller stores).
    contact: str | None = None
    status: FollowUpStatus = "open"
    assignee: str | None = None  # the person working it, set by `ivr followups assign`
    assigned_at: dt.datetime | None = None
    resolution: str | None = None  # what changed, set when closed: told to the caller
    closed_at: dt.datetime | None = None

    def overdue(self, now: dt.datetime) -> bool:
        return self.status == "open" and now > self.deadline
