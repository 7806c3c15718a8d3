"""Erlang B, C and A against published worked examples, an independent solution of the Erlang A
birth-death chain, their limits, and large loads."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from scipy.linalg import expm, solve  # type: ignore[import-untyped]

from ivr.metrics.erlang import QueueModel, StaffingTarget, erlang_b, erlang_c, estimate_patience, recommend

FOUR_PLACES = 5e-5  # |x - published| < 0.00005: equal when both are rounded to 4 decimal places


# --- published worked examples ----------------------------------------------------------------


def test_erlang_b_matches_the_erlang_com_calculator_manual() -> None:
    # Westbay Engineers' Erlang calculator manual ("How much traffic can a trunk group handle?",
    # erlang.com/calculatormanual): 15 lines at 1% blocking carry 8.108 Erlangs.
    assert erlang_b(8.108, 15) == pytest.approx(0.0100, abs=FOUR_PLACES)
    # erlang.com forum, "Trunk engineering": 1200 calls/h of 3 min = 33.333 Erlangs need 45 lines at 1%.
    assert erlang_b(33.333, 44) > 0.01 >= erlang_b(33.333, 45)


def test_erlang_c_matches_the_mitan_worked_example() -> None:
    # Mitan Ltd, "The Erlang-C formula" (mitan.co.uk/erlang/elgcmath.htm), the step-by-step example:
    # 360 calls per half hour, 4 minute calls, 55 agents, 15 s target answer time. Published:
    # probability of waiting 0.2387, average speed of answer 8.184 s, service level 0.8459
    # (the figures the Maxima "erlang.mac" worked example reproduces and says agree with the page).
    load = 360 / 1800 * 240
    queue = QueueModel(load, 240)
    assert load == pytest.approx(48)
    assert erlang_c(load, 55) == pytest.approx(0.2387, abs=FOUR_PLACES)
    assert queue.wait_probability(55) == pytest.approx(0.2387, abs=FOUR_PLACES)
    assert queue.asa(55) == pytest.approx(8.184, abs=5e-4)
    assert queue.service_level(55, 15) == pytest.approx(0.8459, abs=FOUR_PLACES)
    assert queue.occupancy(55) == pytest.approx(0.8727, abs=FOUR_PLACES)  # 48 / 55


def test_the_mitan_load_needs_55_agents_for_80_percent_in_15_seconds() -> None:
    target = StaffingTarget(service_level=0.8, service_level_seconds=15, max_occupancy=1.0, shrinkage=0.0)
    advice = recommend(48, 240, target)
    assert (advice.agents, advice.scheduled) == (55, 55)
    assert advice.service_level == pytest.approx(0.8459, abs=FOUR_PLACES)
    assert QueueModel(48, 240).service_level(54, 15) < 0.8  # one agent fewer misses it


# --- Erlang A: no published numeric example was found, so it is checked against an independent
# --- numerical solution of its birth-death chain and against its limits --------------------------


def _chain(load: float, aht: float, patience: float, agents: int, seconds: float) -> tuple[float, float, float, float]:
    """P(wait), P(abandon), P(answered within `seconds`) and the mean wait of answered callers of
    M/M/N+M, from the stationary distribution of the chain truncated far out in the queue, and
    each waiting caller's own chain (k ahead of it -> served or abandoned) solved numerically."""
    arrival, service, impatience = load / aht, 1 / aht, 1 / patience
    size = agents + 400
    log_p = [0.0]
    for j in range(1, size + 1):
        log_p.append(log_p[-1] + math.log(arrival / (min(j, agents) * service + max(j - agents, 0) * impatience)))
    p = np.exp(np.array(log_p) - max(log_p))
    p /= p.sum()
    waiting = float(p[agents:].sum())
    abandoned = impatience * float(sum((j - agents) * p[j] for j in range(agents, size + 1))) / arrival
    ahead = size - agents + 1  # a waiting caller with m callers ahead of it, m = 0 .. size - agents
    generator = np.zeros((ahead, ahead))
    to_service = np.zeros(ahead)
    for m in range(ahead):
        generator[m, m] = -(agents * service + m * impatience + impatience)
        if m:
            generator[m, m - 1] = agents * service + m * impatience
    to_service[0] = agents * service
    joined = np.zeros((ahead + 1, ahead + 1))
    joined[:ahead, :ahead] = generator
    joined[:ahead, ahead] = to_service
    served_by = expm(joined * seconds)[:ahead, ahead]
    service_level = float(p[:agents].sum() + (p[agents:] * served_by).sum())
    served = solve(-generator, to_service)
    wait_if_served = solve(-generator, served)  # E[wait; answered] from each start
    asa = float((p[agents:] * wait_if_served).sum()) / (1 - abandoned)
    return waiting, abandoned, service_level, asa


@pytest.mark.parametrize(
    ("load", "aht", "patience", "agents", "seconds"),
    [
        (10, 180, 120, 11, 20),  # patience shorter than a call
        (10, 180, 120, 9, 20),  # fewer agents than Erlangs: only abandons keep it stable
        (48, 240, 60, 50, 15),
        (4.8, 300, 600, 5, 30),
        (20, 100, 30, 25, 10),
        (20, 100, 5000, 22, 20),  # very patient callers
    ],
)
def test_erlang_a_matches_the_birth_death_chain(
    load: float, aht: float, patience: float, agents: int, seconds: float
) -> None:
    queue = QueueModel(load, aht, patience)
    waiting, abandoned, service_level, asa = _chain(load, aht, patience, agents, seconds)
    assert queue.wait_probability(agents) == pytest.approx(waiting, abs=FOUR_PLACES)
    assert queue.abandon_rate(agents) == pytest.approx(abandoned, abs=FOUR_PLACES)
    assert queue.service_level(agents, seconds) == pytest.approx(service_level, abs=FOUR_PLACES)
    assert queue.asa(agents) == pytest.approx(asa, abs=FOUR_PLACES)
    assert queue.occupancy(agents) == pytest.approx(load * (1 - abandoned) / agents, abs=FOUR_PLACES)


@pytest.mark.parametrize(("load", "aht", "agents", "seconds"), [(48, 240, 55, 15), (10, 180, 12, 20), (300, 200, 320, 20)])
def test_erlang_a_becomes_erlang_c_as_patience_grows(load: float, aht: float, agents: int, seconds: float) -> None:
    patient, erlang_c_queue = QueueModel(load, aht, 1e10), QueueModel(load, aht)
    assert patient.wait_probability(agents) == pytest.approx(erlang_c_queue.wait_probability(agents), abs=FOUR_PLACES)
    assert patient.service_level(agents, seconds) == pytest.approx(erlang_c_queue.service_level(agents, seconds),
                                                                   abs=FOUR_PLACES)
    assert patient.asa(agents) == pytest.approx(erlang_c_queue.asa(agents), abs=FOUR_PLACES)
    assert patient.abandon_rate(agents) < FOUR_PLACES


def test_erlang_a_becomes_erlang_b_as_patience_vanishes() -> None:
    # Callers who will not wait at all: whoever finds every agent busy leaves, as in Erlang B.
    queue = QueueModel(48, 240, 1e-4)
    assert queue.abandon_rate(50) == pytest.approx(erlang_b(48, 50), abs=FOUR_PLACES)
    assert queue.service_level(50, 20) == pytest.approx(1 - erlang_b(48, 50), abs=FOUR_PLACES)


# --- large loads and monotonicity --------------------------------------------------------------


@pytest.mark.parametrize("patience", [None, 30.0, 600.0])
def test_500_erlangs_give_finite_sane_figures(patience: float | None) -> None:
    queue = QueueModel(500, 300, patience)
    for agents in (400, 500, 520, 560):
        if patience is None and agents <= 500:
            assert queue.service_level(agents, 20) == 0.0 and queue.asa(agents) == math.inf
            continue
        predicted = queue.predict(agents, 20)
        for share in (predicted.wait_probability, predicted.service_level, predicted.abandon_rate, predicted.occupancy):
            assert 0.0 <= share <= 1.0
        assert math.isfinite(predicted.asa_seconds) and predicted.asa_seconds >= 0
    target = StaffingTarget(service_level=0.8, service_level_seconds=20, max_occupancy=1.0, shrinkage=0.0)
    advice = recommend(500, 300, target, patience)
    # Square-root staffing: a few sqrt(A) around A, not hundreds off.
    assert 480 <= advice.agents <= 500 + 2 * math.sqrt(500)
    assert advice.service_level >= 0.8


def test_5000_erlangs_with_impatient_callers() -> None:
    advice = recommend(5000, 300, StaffingTarget(max_occupancy=1.0, shrinkage=0.0), 120)
    assert 4900 <= advice.agents <= 5100
    assert 0.8 <= advice.service_level <= 1.0 and math.isfinite(advice.asa_seconds)


def test_an_overloaded_impatient_queue_loses_the_excess_load() -> None:
    # 500 Erlangs on 300 agents with patient callers: the agents carry 300, the rest abandons.
    queue = QueueModel(500, 300, 3000)
    assert queue.abandon_rate(300) == pytest.approx(1 - 300 / 500, abs=0.01)
    assert queue.occupancy(300) == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("patience", [None, 90.0])
def test_more_agents_never_serve_worse(patience: float | None) -> None:
    queue = QueueModel(48, 240, patience)
    first = 49 if patience is None else 35
    levels = [queue.service_level(n, 20) for n in range(first, 80)]
    asas = [queue.asa(n) for n in range(first, 80)]
    abandons = [queue.abandon_rate(n) for n in range(first, 80)]
    assert levels == sorted(levels) and levels[-1] > 0.999
    assert asas == sorted(asas, reverse=True)
    assert abandons == sorted(abandons, reverse=True)


def test_more_load_never_needs_fewer_agents() -> None:
    target = StaffingTarget(max_occupancy=1.0, shrinkage=0.0)
    for patience in (None, 120.0):
        agents = [recommend(load, 200, target, patience).agents for load in np.linspace(0.5, 200, 60)]
        assert agents == sorted(agents)


def test_patient_callers_abandon_less() -> None:
    abandons = [QueueModel(48, 240, patience).abandon_rate(48) for patience in (10, 60, 300, 3000)]
    assert abandons == sorted(abandons, reverse=True)


# --- the recommendation ---------------------------------------------------------------------


def test_the_occupancy_cap_raises_agents_the_service_level_would_leave_busier() -> None:
    # 100 Erlangs meet 80/20 with about 108 agents, who would be 92% busy; 85% needs 100 / 0.85.
    advice = recommend(100, 180, StaffingTarget(max_occupancy=0.85, shrinkage=0.0))
    assert QueueModel(100, 180).service_level(110, 20) >= 0.8
    assert advice.agents == 118
    assert advice.occupancy == pytest.approx(100 / 118)


def test_shrinkage_rounds_up_only_past_a_whole_agent() -> None:
    # 4 Erlangs need 7 agents for 80/20; 7 / (1 - 0.3) is 10, which floating point puts a hair
    # above 10: it must not become 11.
    advice = recommend(4.0, 180, StaffingTarget(max_occupancy=1.0, shrinkage=0.3))
    assert (advice.agents, advice.scheduled) == (7, 10)
    assert recommend(4.0, 180, StaffingTarget(max_occupancy=1.0, shrinkage=0.31)).scheduled == 11


def test_an_asa_target_replaces_the_service_level() -> None:
    target = StaffingTarget(asa_seconds=5, max_occupancy=1.0, shrinkage=0.0)
    for patience in (None, 120.0):
        advice = recommend(48, 240, target, patience)
        queue = QueueModel(48, 240, patience)
        assert queue.asa(advice.agents) <= 5 < queue.asa(advice.agents - 1)
        assert advice.asa_seconds == pytest.approx(queue.asa(advice.agents))


def test_erlang_a_staffs_the_smallest_number_meeting_the_target() -> None:
    target = StaffingTarget(service_level=0.9, service_level_seconds=30, max_occupancy=1.0, shrinkage=0.0)
    advice = recommend(10, 180, target, 60)
    queue = QueueModel(10, 180, 60)
    assert advice.model == "erlang_a"
    assert queue.service_level(advice.agents, 30) >= 0.9 > queue.service_level(advice.agents - 1, 30)
    assert advice.abandon_rate == pytest.approx(queue.abandon_rate(advice.agents))


def test_no_calls_need_no_agents() -> None:
    advice = recommend(0, 180, StaffingTarget())
    assert (advice.agents, advice.scheduled, advice.service_level, advice.occupancy) == (0, 0, 1.0, 0.0)


@pytest.mark.parametrize(
    "arguments",
    [dict(service_level=1.0), dict(service_level=0.0), dict(max_occupancy=0.0), dict(shrinkage=1.0),
     dict(asa_seconds=0.0), dict(service_level_seconds=-1.0)],
)
def test_impossible_targets_are_refused(arguments: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        StaffingTarget(**arguments)


def test_bad_queue_figures_are_refused() -> None:
    for load, aht, patience in ((-1.0, 180.0, None), (10.0, 0.0, None), (10.0, 180.0, 0.0), (math.nan, 180.0, None)):
        with pytest.raises(ValueError):
            QueueModel(load, aht, patience)


# --- patience estimate -------------------------------------------------------------------------


def test_patience_is_total_waiting_time_per_abandon() -> None:
    # Two abandons after 30 s and 50 s; answered callers waited 10, 20 and 0 s: 110 s / 2.
    assert estimate_patience([30, 50], [10, 20, 0]) == pytest.approx(55.0)


def test_no_abandons_or_no_waiting_give_no_estimate() -> None:
    assert estimate_patience([], [10, 20]) is None
    assert estimate_patience([0, 0], [0]) is None
    with pytest.raises(ValueError):
        estimate_patience([-1], [])


def test_patience_estimate_recovers_the_mean_of_censored_exponential_patience() -> None:
    # 20,000 callers with exponential patience of mean 90 s; each would be answered after an
    # exponential wait of mean 40 s, so most are answered and their patience is censored.
    generator = random.Random(5)
    abandon_waits: list[float] = []
    served_waits: list[float] = []
    for _ in range(20_000):
        patience, answer_after = generator.expovariate(1 / 90), generator.expovariate(1 / 40)
        (abandon_waits if patience < answer_after else served_waits).append(min(patience, answer_after))
    estimate = estimate_patience(abandon_waits, served_waits)
    assert estimate is not None and estimate == pytest.approx(90, rel=0.05)
    # Counting only the abandons (ignoring censoring) would say about 28 s.
    assert sum(abandon_waits) / len(abandon_waits) < 40
