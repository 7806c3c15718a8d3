"""Per-agent figures and mean agents logged in, Shanghai 10:00-10:45 in 15-minute intervals,
against hand computations from handcalls.py.

Busy spans (connected = talk_seconds from the answer, then wrap-up):
  a1: c01 10:01:10-10:03:10 +30 s wrap; c07 10:09:25-10:10:55 +10 s; c12 10:30:05-10:35:05 +60 s
  a2: c02 10:02:15 (AMI)-10:05:35 (170 talk + 30 hold) +20 s; c10 10:20:20-10:32:00 (630 + 70 hold)
  a3: c05 10:07:05-10:08:05; c16 10:10:12-10:10:57 +5 s
Presence: a1 ready (since 09:55), paused 10:20-10:25, ready, out 10:40; a2 ready 10:00, not
ready 10:30; a3 ready 10:05, out 10:35.
"""

from __future__ import annotations

import dataclasses

import pytest

from handcalls import AGENT_EVENTS, CALLS, REPEATED, SETTINGS, SHANGHAI, sh, zone_of
from ivr.metrics.agents import agent_intervals, staffed_intervals
from ivr.metrics.legs import call_legs
from ivr.metrics.model import AgentInterval


def rows() -> list[AgentInterval]:
    legs = list(call_legs(CALLS, zone_of, SETTINGS, REPEATED))
    return agent_intervals(legs, AGENT_EVENTS, SHANGHAI, sh(10, 0), sh(10, 45), 15)


def test_agent_rows_slice_calls_and_presence_by_interval() -> None:
    got = [
        (r.agent_id, r.interval_start.strftime("%H:%M"), r.calls_answered, r.talk_seconds, r.hold_seconds,
         r.wrap_seconds, r.handle_seconds, r.staffed_seconds, r.ready_seconds, r.paused_seconds,
         r.not_ready_seconds, r.occupancy)
        for r in rows()
    ]
    assert got == [
        # c01 + c07: talk 120 + 90, wrap 30 + 10; ready all 900 s (from before the range).
        ("a1", "10:00", 2, 210.0, 0.0, 40.0, 250.0, 900.0, 900.0, 0.0, 0.0, pytest.approx(250 / 900)),
        # Paused 10:20-10:25: staffed 900, ready 600; no call: occupancy 0.
        ("a1", "10:15", 0, 0.0, 0.0, 0.0, 0.0, 900.0, 600.0, 300.0, 0.0, 0.0),
        # c12 answered 10:30:05: 300 talk + 60 wrap; ready 10:30-10:40.
        ("a1", "10:30", 1, 300.0, 0.0, 60.0, 360.0, 600.0, 600.0, 0.0, 0.0, pytest.approx(0.6)),
        # c02 by AMI's answer: 170 talk + 30 hold + 20 wrap.
        ("a2", "10:00", 1, 170.0, 30.0, 20.0, 220.0, 900.0, 900.0, 0.0, 0.0, pytest.approx(220 / 900)),
        # c10's first 580 of 700 connected seconds: talk 630 x 580/700 = 522, hold 70 x 580/700 = 58.
        ("a2", "10:15", 1, pytest.approx(522.0), pytest.approx(58.0), 0.0, pytest.approx(580.0), 900.0, 900.0,
         0.0, 0.0, pytest.approx(580 / 900)),
        # The last 120 s of c10 (talk 108, hold 12) while not ready: busy 120 / (120 + 0 ready) = 1.
        ("a2", "10:30", 0, pytest.approx(108.0), pytest.approx(12.0), 0.0, pytest.approx(120.0), 900.0, 0.0, 0.0,
         900.0, pytest.approx(1.0)),
        # c05's second leg and c16 (through the London hotline): 60 + 45 talk, 5 wrap; ready from 10:05.
        ("a3", "10:00", 2, 105.0, 0.0, 5.0, 110.0, 600.0, 600.0, 0.0, 0.0, pytest.approx(110 / 600)),
        ("a3", "10:15", 0, 0.0, 0.0, 0.0, 0.0, 900.0, 900.0, 0.0, 0.0, 0.0),
        ("a3", "10:30", 0, 0.0, 0.0, 0.0, 0.0, 300.0, 300.0, 0.0, 0.0, 0.0),
    ]
    first = rows()[0]
    assert (first.timezone, first.interval_start, first.interval_end, first.interval_minutes) == (
        "Asia/Shanghai", sh(10, 0), sh(10, 15), 15)


def test_an_agent_not_ready_all_interval_without_calls_has_no_occupancy() -> None:
    (late,) = [r for r in agent_intervals([], AGENT_EVENTS, SHANGHAI, sh(10, 30), sh(10, 45), 15) if r.agent_id == "a2"]
    assert (late.staffed_seconds, late.not_ready_seconds, late.occupancy) == (900.0, 900.0, None)


def test_mean_agents_logged_in_per_interval_overall_and_per_queue() -> None:
    overall = staffed_intervals(rows())
    assert [(s.queue, s.interval_start.strftime("%H:%M"), s.interval_end.strftime("%H:%M"),
             s.agents_staffed, s.agents_ready) for s in overall] == [
        (None, "10:00", "10:15", pytest.approx(2400 / 900), pytest.approx(2400 / 900)),  # 900 + 900 + 600
        (None, "10:15", "10:30", 3.0, pytest.approx(2400 / 900)),  # ready: 600 + 900 + 900
        (None, "10:30", "10:45", 2.0, 1.0),  # staffed 600 + 900 + 300, ready 600 + 0 + 300
    ]
    by_queue = staffed_intervals(rows(), {"a1": ["billing"], "a2": ["billing", "general"], "a3": ["general"]})
    assert [(s.queue, s.interval_start.strftime("%H:%M"), s.agents_staffed) for s in by_queue] == [
        ("billing", "10:00", 2.0), ("billing", "10:15", 2.0), ("billing", "10:30", pytest.approx(1500 / 900)),
        ("general", "10:00", pytest.approx(1500 / 900)), ("general", "10:15", 2.0), ("general", "10:30", 4 / 3),
    ]


def test_handle_time_sliced_into_intervals_adds_up_to_the_legs() -> None:
    legs = list(call_legs(CALLS, zone_of, SETTINGS))
    # The whole day in hours: every answered leg's handle time lands somewhere, once.
    hours = agent_intervals(legs, AGENT_EVENTS, SHANGHAI, sh(0, 0), sh(0, 0, day=27), 60)
    assert sum(r.handle_seconds for r in hours) == pytest.approx(sum(leg.handle_seconds for leg in legs))
    assert sum(r.calls_answered for r in hours) == sum(leg.outcome == "answered" for leg in legs) == 8
    day = agent_intervals(legs, AGENT_EVENTS, SHANGHAI, sh(0, 0), sh(0, 0, day=26), 1440)
    a1 = next(r for r in day if r.agent_id == "a1")
    # 09:55-10:20 + 10:25-10:40 ready, 10:20-10:25 paused; until midnight: logged out.
    assert (a1.staffed_seconds, a1.ready_seconds, a1.paused_seconds) == (2700.0, 2400.0, 300.0)
    assert dataclasses.asdict(a1)["interval_end"] == sh(0, 0, day=26)
