"""Caller classification: VIP, returning, priority and last-agent affinity."""

from __future__ import annotations

import pytest

from routing.classify import PastCall, classify, normalize_number
from routing.config import Classification, QueueConfig
from routing.model import Caller

NOW = 1_700_000_000.0
DAY = 86400.0
QUEUE = QueueConfig.model_validate(
    {"priority": {"base": 1, "vip": 10, "returning": 3, "new": 0}, "affinity": {"lookback_days": 14, "min_talk": 30, "hold": 20}}
)
RULES = Classification(returning_within_days=30, vip_numbers=("+86 138 0013 8000",))


def run(number: str, history: list[PastCall], *, queue: QueueConfig = QUEUE, rules: Classification = RULES) -> Caller:
    return classify(
        call_id="c1", queue_name="billing", queue=queue, caller_number=number, language="zh-CN",
        issue="refund", history=history, classification=rules, now=NOW,
    )


@pytest.mark.parametrize(
    "number",
    ["13800138000", "+8613800138000", "008613800138000", "8613800138000", "+86 138-0013-8000", "013800138000"],
)
def test_vip_compares_digits_without_country_or_trunk_prefix(number: str) -> None:
    c = run(number, [])
    assert c.vip and c.priority == 1 + 10 + 0


def test_landline_with_and_without_country_code() -> None:
    assert normalize_number("010-12345678") == normalize_number("+86 10 1234 5678") == "1012345678"
    assert normalize_number("86123456") == "86123456"  # a short local number keeps its 86


def test_new_caller() -> None:
    c = run("13900000000", [])
    assert c == Caller(call_id="c1", queue="billing", enqueued_at=NOW, language="zh-CN", priority=1, issue="refund")


def test_returning_within_the_days_only() -> None:
    recent = PastCall("+8613900000000", NOW - 29 * DAY, None, 0)
    old = PastCall("13900000000", NOW - 31 * DAY, "1001", 300)
    other = PastCall("13700000000", NOW - DAY, "1001", 300)
    assert run("13900000000", [recent]).returning
    assert run("13900000000", [recent]).priority == 1 + 3
    assert not run("13900000000", [old, other]).returning


def test_withheld_number_is_never_vip_returning_or_affine() -> None:
    rules = Classification(vip_numbers=("",))
    c = run("", [PastCall("", NOW - 10, "1001", 300)], rules=rules)
    assert (c.vip, c.returning, c.affinity_agent) == (False, False, None)


def test_affinity_to_the_agent_of_the_most_recent_long_enough_call() -> None:
    history = [
        PastCall("13900000000", NOW - 5 * DAY, "1001", 120),
        PastCall("13900000000", NOW - 2 * DAY, "1002", 45),  # the most recent long enough: 1002
        PastCall("13900000000", NOW - 1 * DAY, "1003", 10),  # too short to create affinity
        PastCall("13900000000", NOW - 0.5 * DAY, None, 100),  # abandoned: no agent
        PastCall("13700000000", NOW - 60, "1004", 300),  # someone else
    ]
    c = run("+86 139 0000 0000", history)
    assert c.affinity_agent == "1002"
    assert c.affinity_until == NOW + 20
    assert c.enqueued_at == NOW


def test_affinity_lookback_and_switch() -> None:
    old = [PastCall("13900000000", NOW - 15 * DAY, "1001", 300)]
    c = run("13900000000", old)
    assert c.affinity_agent is None and c.returning  # returning (30 days) but no affinity (14 days)
    off = QUEUE.model_copy(update={"affinity": QUEUE.affinity.model_copy(update={"enabled": False})})
    recent = [PastCall("13900000000", NOW - DAY, "1001", 300)]
    assert run("13900000000", recent, queue=off).affinity_agent is None
    assert run("13900000000", recent).affinity_agent == "1001"


def test_returning_vip_gets_base_plus_vip_plus_returning() -> None:
    c = run("13800138000", [PastCall("13800138000", NOW - DAY, "1001", 5)])
    assert (c.vip, c.returning, c.priority) == (True, True, 1 + 10 + 3)


def test_vip_flagged_by_the_flow_without_being_listed() -> None:
    c = classify(
        call_id="c1", queue_name="billing", queue=QUEUE, caller_number="13900008888", language="zh-CN",
        issue="gold", history=[], classification=RULES, now=NOW, flagged_vip=True,
    )
    assert c.vip and c.priority == 1 + 10 + 0 and c.issue == "gold"
    assert not run("13900008888", []).vip  # the same number, not flagged, is not on the list
