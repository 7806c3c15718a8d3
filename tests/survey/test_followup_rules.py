"""Low scores and unresolved problems open one follow-up item, owned and due by the rules."""

from __future__ import annotations

import datetime as dt

import pytest

from survey_engine.config import FollowUps
from survey_engine.followup import FollowUpError, assign, close, follow_up
from survey_engine.model import Answer, SurveyResponse

NOW = dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.timezone.utc)

RULES = FollowUps.model_validate(
    {
        "rules": [
            {"when": {"kind": "yes_no", "equals": 0}, "category": "unresolved", "urgency": "urgent"},
            {"when": {"question": "attitude", "at_most": 2}, "category": "agent-conduct", "urgency": "important"},
            {"when": {"kind": "scale", "at_most": 2}, "category": "low-score", "urgency": "important"},
            {"when": {"kind": "nps", "at_most": 6}, "category": "detractor", "urgency": "routine"},
        ],
        "owners": {"categories": {"agent-conduct": "qa-team"}, "queues": {"billing": "billing-lead"},
                   "default": "cs-supervisor"},
        "deadlines": {"urgent": 24, "important": 72, "routine": 168},
    }
)


def answered(*answers: Answer, queue: str = "billing") -> SurveyResponse:
    return SurveyResponse(
        response_id="r1", call_id="c1", channel="voice", survey="standard", status="completed",
        hotline="4008001234", queue=queue, agent="1002", language="en-US", menu_version="v1",
        menu_path="main", hung_up_by="agent", caller_key=None, offered_at=NOW, answers=answers,
    )


def test_not_resolved_is_urgent_due_in_24_hours_and_owned_by_the_queue() -> None:
    item = follow_up(answered(Answer("resolved", "yes_no", 0, 1)), RULES, now=NOW, item_id="f1", contact="13800138000")
    assert item is not None
    assert (item.category, item.urgency, item.owner) == ("unresolved", "urgent", "billing-lead")
    assert item.deadline == NOW + dt.timedelta(hours=24)
    assert item.reasons == ("resolved = no",)
    assert item.contact == "13800138000"


def test_a_category_owner_wins_over_the_queue_owner() -> None:
    item = follow_up(answered(Answer("attitude", "scale", 1, 1)), RULES, now=NOW, item_id="f1", contact=None)
    assert item is not None
    assert (item.category, item.owner, item.deadline) == ("agent-conduct", "qa-team", NOW + dt.timedelta(hours=72))
    assert item.reasons == ("attitude = 1 (<= 2)",)  # once, though two rules match it


def test_the_most_urgent_match_decides_and_every_match_is_a_reason() -> None:
    item = follow_up(
        answered(Answer("speed", "scale", 2, 1), Answer("resolved", "yes_no", 0, 1), Answer("nps", "nps", 3, 1),
                 queue="technical"),
        RULES, now=NOW, item_id="f1", contact=None,
    )
    assert item is not None
    assert (item.category, item.urgency, item.owner) == ("unresolved", "urgent", "cs-supervisor")
    assert item.reasons == ("speed = 2 (<= 2)", "resolved = no", "nps = 3 (<= 6)")


def test_good_scores_and_unanswered_questions_open_nothing() -> None:
    response = answered(
        Answer("speed", "scale", 3, 1), Answer("resolved", "yes_no", 1, 1), Answer("nps", "nps", 7, 1),
        Answer("attitude", "scale", None, 2),
    )
    assert follow_up(response, RULES, now=NOW, item_id="f1", contact=None) is None


def test_the_contact_is_dropped_when_the_config_says_not_to_keep_it() -> None:
    rules = RULES.model_copy(update={"keep_contact": False})
    item = follow_up(answered(Answer("resolved", "yes_no", 0, 1)), rules, now=NOW, item_id="f1", contact="138")
    assert item is not None and item.contact is None


def test_an_item_is_assigned_closed_with_what_changed_and_never_closed_twice() -> None:
    item = follow_up(answered(Answer("resolved", "yes_no", 0, 1)), RULES, now=NOW, item_id="f1", contact=None)
    assert item is not None
    assert item.overdue(NOW + dt.timedelta(hours=25)) and not item.overdue(NOW + dt.timedelta(hours=23))
    mine = assign(item, "li.wei", NOW + dt.timedelta(hours=1))
    assert (mine.assignee, mine.status) == ("li.wei", "open")
    done = close(mine, "refund issued", NOW + dt.timedelta(hours=30))
    assert (done.status, done.resolution) == ("closed", "refund issued")
    assert not done.overdue(NOW + dt.timedelta(days=30))  # closed items are never overdue
    with pytest.raises(FollowUpError):
        close(done, "again", NOW)
    with pytest.raises(FollowUpError):
        close(mine, "   ", NOW)
