"""Survey figures per agent, queue, menu version, day or hotline, from stored responses.

Pure: responses in, typed figures out. For each group, and for all responses together:

    offered          every response row (one per survey offer, voice or web)
    started          responses with at least one answered question
    completed        responses of status `completed` (every question asked to the end)
    partial          responses of status `partial` (the caller left after an answer)
    response rate    = started / offered * 100
    completion rate  = completed / offered * 100
    comments         responses with a recorded comment or a non-blank web text

and per question, over its answered answers only (an unanswered question counts nowhere):

    scale (1-5)      CSAT = answers of 4 or 5 / answered * 100;  mean = sum of answers / answered
    yes_no           resolution rate = yes (stored 1) / answered * 100
    nps (0-10)       NPS = (answers 9-10 - answers 0-6) / answered * 100, from -100 to 100

A rate over nothing (no offer, no answer) is None, never 0: "nobody answered" is not "all
unhappy". Days are local dates of `offered_at` in the report's time zone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from survey_engine.model import QuestionKind, SurveyResponse

GroupBy = Literal["agent", "queue", "menu_version", "day", "hotline"]
GROUP_BY: tuple[GroupBy, ...] = ("agent", "queue", "menu_version", "day", "hotline")
TOTAL = "all"  # the key of the row over every response
_KIND_ORDER: tuple[QuestionKind, ...] = ("scale", "yes_no", "nps")


def _percent(part: int, whole: int) -> float | None:
    return part * 100 / whole if whole else None


@dataclass(frozen=True)
class ScaleFigures:
    question: str
    answered: int
    satisfied: int  # answers of 4 or 5
    total: int  # sum of the answers

    @property
    def csat(self) -> float | None:
        """Satisfied share of the answered, in percent."""
        return _percent(self.satisfied, self.answered)

    @property
    def mean(self) -> float | None:
        return self.total / self.answered if self.answered else None


@dataclass(frozen=True)
class ResolutionFigures:
    question: str
    answered: int
    yes: int

    @property
    def rate(self) -> float | None:
        """Yes share of the answered, in percent."""
        return _percent(self.yes, self.answered)


@dataclass(frozen=True)
class NpsFigures:
    question: str
    answered: int
    promoters: int  # 9-10
    passives: int  # 7-8
    detractors: int  # 0-6

    @property
    def nps(self) -> float | None:
        """Promoters' share minus detractors' share, in points (-100 to 100)."""
        return _percent(self.promoters - self.detractors, self.answered)


@dataclass(frozen=True)
class GroupFigures:
    key: str  # the agent, queue, menu version, hotline or ISO day; TOTAL for every response
    offered: int
    started: int
    completed: int
    partial: int
    comments: int
    scale: tuple[ScaleFigures, ...]
    resolution: tuple[ResolutionFigures, ...]
    nps: tuple[NpsFigures, ...]

    @property
    def response_rate(self) -> float | None:
        return _percent(self.started, self.offered)

    @property
    def completion_rate(self) -> float | None:
        return _percent(self.completed, self.offered)


@dataclass(frozen=True)
class SurveyReport:
    by: GroupBy
    zone: ZoneInfo  # the zone days are counted in
    # Every question seen in the responses, by kind (scale, yes_no, nps), then first seen first:
    # every group has figures for each, in this order, so that columns line up.
    questions: tuple[tuple[QuestionKind, str], ...]
    groups: tuple[GroupFigures, ...]  # sorted by key
    total: GroupFigures


def group_key(response: SurveyResponse, by: GroupBy, zone: ZoneInfo) -> str:
    if by == "day":
        return local_day(response.offered_at, zone).isoformat()
    if by == "agent":
        return response.agent
    if by == "queue":
        return response.queue
    if by == "menu_version":
        return response.menu_version
    return response.hotline


def local_day(moment: dt.datetime, zone: ZoneInfo) -> dt.date:
    return moment.astimezone(zone).date()


def _questions(responses: Iterable[SurveyResponse]) -> tuple[tuple[QuestionKind, str], ...]:
    seen = dict.fromkeys((answer.kind, answer.question) for r in responses for answer in r.answers)
    return tuple(sorted(seen, key=lambda kind_question: _KIND_ORDER.index(kind_question[0])))


def _values(responses: Sequence[SurveyResponse], kind: QuestionKind, question: str) -> list[int]:
    return [
        answer.value
        for r in responses
        for answer in r.answers
        if answer.kind == kind and answer.question == question and answer.value is not None
    ]


def _has_comment(response: SurveyResponse) -> bool:
    return response.comment_file is not None or bool((response.comment_text or "").strip())


def group_figures(
    key: str, responses: Sequence[SurveyResponse], questions: Sequence[tuple[QuestionKind, str]]
) -> GroupFigures:
    scale: list[ScaleFigures] = []
    resolution: list[ResolutionFigures] = []
    nps: list[NpsFigures] = []
    for kind, question in questions:
        values = _values(responses, kind, question)
        if kind == "scale":
            scale.append(ScaleFigures(question, len(values), sum(v >= 4 for v in values), sum(values)))
        elif kind == "yes_no":
            resolution.append(ResolutionFigures(question, len(values), sum(v == 1 for v in values)))
        else:
            promoters = sum(v >= 9 for v in values)
            detractors = sum(v <= 6 for v in values)
            nps.append(NpsFigures(question, len(values), promoters, len(values) - promoters - detractors, detractors))
    return GroupFigures(
        key=key,
        offered=len(responses),
        started=sum(r.started for r in responses),
        completed=sum(r.status == "completed" for r in responses),
        partial=sum(r.status == "partial" for r in responses),
        comments=sum(_has_comment(r) for r in responses),
        scale=tuple(scale),
        resolution=tuple(resolution),
        nps=tuple(nps),
    )


def build_report(responses: Sequence[SurveyResponse], by: GroupBy, zone: ZoneInfo) -> SurveyReport:
    """The figures of `responses` (already filtered by period, queue, hotline) per `by` group."""
    questions = _questions(responses)
    groups: dict[str, list[SurveyResponse]] = {}
    for response in responses:
        groups.setdefault(group_key(response, by, zone), []).append(response)
    return SurveyReport(
        by=by,
        zone=zone,
        questions=questions,
        groups=tuple(group_figures(key, groups[key], questions) for key in sorted(groups)),
        total=group_figures(TOTAL, responses, questions),
    )
