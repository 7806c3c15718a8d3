"""Who is offered a survey: answered calls only, the agent hanging up first, opt-in, sampling
and the per-caller cooldown."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from typing import Literal

from ivr.records.model import Disposition, QueueLeg
from survey_engine.config import Selection, SelectionOverride, SelectionRules
from survey_engine.selection import Candidate, Offer, Skip, decide

NOW = dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.timezone.utc)
ALL = Selection(survey="standard", mode="all", cooldown_days=30)


def leg(outcome: Literal["answered", "abandoned", "overflowed"] = "answered", queue: str = "billing") -> QueueLeg:
    return QueueLeg(queue, NOW - dt.timedelta(minutes=5), NOW, outcome, agent_id="1001", ended_by="agent")


ACD_ANSWERED = Candidate(queue="billing", hung_up_by="agent", opted_in=None, disposition=Disposition.ANSWERED,
                         legs=(leg(),), last_offered=None)


def choose(selection: Selection | None, candidate: Candidate = ACD_ANSWERED, seed: int = 1) -> Offer | Skip:
    return decide(selection, candidate, now=NOW, rng=random.Random(seed))


def test_an_answered_call_the_agent_ended_gets_the_queues_survey() -> None:
    assert choose(ALL) == Offer("standard")


def test_app_queue_calls_count_as_answered_when_the_agent_hung_up() -> None:
    queued = dataclasses.replace(ACD_ANSWERED, disposition=Disposition.QUEUED, legs=())
    assert choose(ALL, queued) == Offer("standard")
    assert choose(ALL, dataclasses.replace(queued, hung_up_by="")) == Skip("the call was not answered by an agent")


def test_callers_who_abandoned_or_overflowed_are_never_surveyed() -> None:
    for gone, disposition in ((leg("abandoned"), Disposition.QUEUE_ABANDONED), (leg("overflowed"), Disposition.OVERFLOWED)):
        candidate = dataclasses.replace(ACD_ANSWERED, legs=(gone,), disposition=disposition)
        assert choose(ALL, candidate) == Skip("the call was not answered by an agent")
    elsewhere = dataclasses.replace(ACD_ANSWERED, legs=(leg(queue="general"),))
    assert choose(ALL, elsewhere) == Skip("the call was not answered by an agent")


def test_the_caller_hanging_up_first_is_never_surveyed() -> None:
    candidate = dataclasses.replace(ACD_ANSWERED, hung_up_by="caller")
    lenient = ALL.model_copy(update={"agent_hangup_only": False})
    assert choose(lenient, candidate) == Skip("the caller hung up on the agent")


def test_unknown_hang_up_side_is_surveyed_only_when_configured() -> None:
    transferred = dataclasses.replace(ACD_ANSWERED, hung_up_by="")
    assert choose(ALL, transferred) == Skip("the agent did not hang up first")
    assert choose(ALL.model_copy(update={"agent_hangup_only": False}), transferred) == Offer("standard")


def test_queue_without_a_survey_is_skipped() -> None:
    rules = SelectionRules(queues={"billing": SelectionOverride(enabled=False)})
    assert choose(rules.for_queue("billing")) == Skip("queue 'billing' is not surveyed")
    assert choose(Selection()) == Skip("queue 'billing' is not surveyed")


def test_a_cooldown_exempt_test_caller_is_surveyed_on_every_call() -> None:
    yesterday = dataclasses.replace(ACD_ANSWERED, last_offered=NOW - dt.timedelta(days=1))
    assert isinstance(choose(ALL, yesterday), Skip)
    assert choose(ALL, dataclasses.replace(yesterday, cooldown_exempt=True)) == Offer("standard")
    # Exempt from the cooldown only: a sample still draws.
    sample = Selection(survey="standard", mode="sample", share=0.0)
    assert isinstance(choose(sample, dataclasses.replace(yesterday, cooldown_exempt=True)), Skip)


def test_cooldown_keeps_a_caller_from_a_second_survey_within_n_days() -> None:
    recent = dataclasses.replace(ACD_ANSWERED, last_offered=NOW - dt.timedelta(days=29, hours=23))
    assert choose(ALL, recent) == Skip("offered a survey 29 day(s) ago (cooldown 30 days)")
    older = dataclasses.replace(ACD_ANSWERED, last_offered=NOW - dt.timedelta(days=30))
    assert choose(ALL, older) == Offer("standard")
    assert choose(ALL.model_copy(update={"cooldown_days": 0}), recent) == Offer("standard")


def test_opt_in_surveys_only_callers_who_pressed_the_key() -> None:
    opt_in = ALL.model_copy(update={"mode": "opt_in"})
    yes = dataclasses.replace(ACD_ANSWERED, opted_in=True)
    no = dataclasses.replace(ACD_ANSWERED, opted_in=False)
    assert choose(opt_in, yes) == Offer("standard")
    assert choose(opt_in, no) == Skip("the caller did not opt in")
    assert choose(opt_in, ACD_ANSWERED) == Skip("the caller was not asked to opt in")


def test_sample_takes_about_its_share_of_callers() -> None:
    half = ALL.model_copy(update={"mode": "sample", "share": 0.5})
    rng = random.Random(7)
    offers = sum(isinstance(decide(half, ACD_ANSWERED, now=NOW, rng=rng), Offer) for _ in range(2000))
    assert 900 < offers < 1100
    assert choose(ALL.model_copy(update={"mode": "sample", "share": 0.0})) == Skip("not drawn in the 0% sample")
    assert choose(ALL.model_copy(update={"mode": "sample", "share": 1.0})) == Offer("standard")


def test_the_sample_draws_only_for_callers_who_could_be_surveyed() -> None:
    half = ALL.model_copy(update={"mode": "sample", "share": 0.5})
    rng = random.Random(3)
    before = rng.getstate()
    decide(half, dataclasses.replace(ACD_ANSWERED, hung_up_by="caller"), now=NOW, rng=rng)
    assert rng.getstate() == before
