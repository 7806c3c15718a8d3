"""Which survey answers open a follow-up item, and the item's life: assigned, then closed with
what changed (which is what the caller is told)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from survey_engine.config import FollowUpRule, FollowUps
from survey_engine.model import URGENCY_ORDER, Answer, FollowUp, SurveyResponse


class FollowUpError(Exception):
    """A change that does not apply to the item as it is (e.g. closing a closed item)."""


def _matches(rule: FollowUpRule, answer: Answer) -> bool:
    when = rule.when
    if answer.value is None:
        return False
    if when.question is not None and when.question != answer.question:
        return False
    if when.kind is not None and when.kind != answer.kind:
        return False
    if when.at_most is not None:
        return answer.value <= when.at_most
    return answer.value == when.equals


def _reason(rule: FollowUpRule, answer: Answer) -> str:
    if answer.kind == "yes_no":
        return f"{answer.question} = {'yes' if answer.value else 'no'}"
    if rule.when.at_most is not None:
        return f"{answer.question} = {answer.value} (<= {rule.when.at_most})"
    return f"{answer.question} = {answer.value}"


def follow_up(
    response: SurveyResponse, settings: FollowUps, *, now: dt.datetime, item_id: str, contact: str | None
) -> FollowUp | None:
    """The item a response opens, or None when no rule matches any of its answers.

    One item per response: every match is listed in `reasons`; the category and urgency are
    those of the most urgent matching rule (the first of them in the list)."""
    matched: list[tuple[int, FollowUpRule, Answer]] = [
        (index, rule, answer)
        for answer in response.answers
        for index, rule in enumerate(settings.rules)
        if _matches(rule, answer)
    ]
    if not matched:
        return None
    _, chosen, _ = min(matched, key=lambda match: (URGENCY_ORDER.index(match[1].urgency), match[0]))
    # One reason per answer (its first matching rule), not one per rule it crosses.
    first: dict[str, str] = {}
    for _, rule, answer in matched:
        first.setdefault(answer.question, _reason(rule, answer))
    reasons = tuple(first.values())
    return FollowUp(
        item_id=item_id,
        response_id=response.response_id,
        call_id=response.call_id,
        category=chosen.category,
        urgency=chosen.urgency,
        owner=settings.owners.owner(chosen.category, response.queue),
        created_at=now,
        deadline=now + dt.timedelta(hours=settings.deadlines.hours(chosen.urgency)),
        reasons=reasons,
        queue=response.queue,
        agent=response.agent,
        contact=contact if settings.keep_contact else None,
    )


def assign(item: FollowUp, assignee: str, now: dt.datetime) -> FollowUp:
    if item.status == "closed":
        raise FollowUpError(f"item {item.item_id} is closed")
    if not assignee.strip():
        raise FollowUpError("an assignee is needed")
    return dataclasses.replace(item, assignee=assignee.strip(), assigned_at=now)


def close(item: FollowUp, resolution: str, now: dt.datetime) -> FollowUp:
    if item.status == "closed":
        raise FollowUpError(f"item {item.item_id} is already closed ({item.resolution})")
    if not resolution.strip():
        raise FollowUpError("say what was done: the resolution is what the caller is told")
    return dataclasses.replace(item, status="closed", resolution=resolution.strip(), closed_at=now)
