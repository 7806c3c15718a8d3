"""Caller classification: the routing inputs a waiting caller carries (priority, VIP,
returning, last-agent affinity), from the caller's number, the menu's issue type and the
caller's past calls. Pure: the history and `now` are passed in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from routing.config import Classification, QueueConfig
from routing.model import Caller

__all__ = ["PastCall", "classify", "normalize_number"]

_DAY = 86400.0


@dataclass(frozen=True)
class PastCall:
    caller: str  # caller number as received
    ended_at: float
    agent_id: str | None
    talk_seconds: float


def normalize_number(number: str) -> str:
    """Digits only, without the Chinese country code or trunk prefix, so that
    `+86 138 0013 8000`, `008613800138000`, `8613800138000` and `13800138000` compare equal
    (and `010-12345678` equals `+86 10 1234 5678`).

    `0086` is always dropped; `86` only from numbers of 11 or more digits (so a short local
    number that happens to start with 86 keeps it); then leading zeros (trunk `0`, and the
    `00` of other international numbers, so `00852...` equals `+852...`)."""
    digits = "".join(ch for ch in number if "0" <= ch <= "9")
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) >= 11:
        digits = digits[2:]
    return digits.lstrip("0")


def classify(
    *,
    call_id: str,
    queue_name: str,
    queue: QueueConfig,
    caller_number: str,
    language: str,
    issue: str | None,
    history: Sequence[PastCall],
    classification: Classification,
    now: float,
    flagged_vip: bool = False,
) -> Caller:
    """The caller as it enters the queue `queue_name` at `now`.

    - returning: a past call from the same number (compared with `normalize_number`) ended
      within `classification.returning_within_days` before `now`;
    - vip: the number is in `classification.vip_numbers` (same comparison), or the flow
      flagged the caller (`flagged_vip`: a lookup branch set the call variable `vip`);
    - priority: `queue.priority.base` + `vip` if VIP + `returning` if returning else `new`;
    - affinity (if `queue.affinity.enabled`): among the past calls from the same number that
      ended within `affinity.lookback_days`, were handled by an agent and talked at least
      `affinity.min_talk` seconds, the most recent one's agent, until `now + affinity.hold`.

    An empty or digit-less number (withheld) is never VIP, returning or affine.
    """
    number = normalize_number(caller_number)
    mine = [past for past in history if number and normalize_number(past.caller) == number]

    returning_since = now - classification.returning_within_days * _DAY
    returning = any(past.ended_at >= returning_since for past in mine)
    listed = bool(number) and number in {normalize_number(v) for v in classification.vip_numbers}
    vip = flagged_vip or listed

    rules = queue.priority
    priority = rules.base + (rules.vip if vip else 0) + (rules.returning if returning else rules.new)

    affinity_agent: str | None = None
    affinity_until = 0.0
    affinity = queue.affinity
    if affinity.enabled:
        since = now - affinity.lookback_days * _DAY
        qualifying = [
            past
            for past in mine
            if past.agent_id is not None and past.ended_at >= since and past.talk_seconds >= affinity.min_talk
        ]
        if qualifying:
            latest = max(qualifying, key=lambda past: past.ended_at)
            affinity_agent = latest.agent_id
            affinity_until = now + affinity.hold

    return Caller(
        call_id=call_id,
        queue=queue_name,
        enqueued_at=now,
        language=language,
        priority=priority,
        issue=issue,
        returning=returning,
        vip=vip,
        affinity_agent=affinity_agent,
        affinity_until=affinity_until,
    )
