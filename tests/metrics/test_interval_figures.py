"""Queue interval figures of the hand-made calls (handcalls.py) against hand computations.

T = 20 s, short abandon < 5 s, percentiles 50 and 90 by nearest rank (the ceil(p/100 n)-th
smallest wait)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from handcalls import CALLS, H1, H2, LONDON, REPEATED, RESPONSES, SETTINGS, abandoned, call, sh, zone_of
from ivr.metrics.intervals import IntervalTable, queue_intervals
from ivr.metrics.legs import call_legs
from ivr.metrics.model import LegRow, QueueInterval, WaitPercentile
from ivr.records.model import Disposition


def legs() -> list[LegRow]:
    return list(call_legs(CALLS, zone_of, SETTINGS, REPEATED))


def table(minutes: int | None = None) -> IntervalTable:
    return queue_intervals(legs(), SETTINGS, minutes, RESPONSES)


def row(result: IntervalTable, queue: str, start: dt.datetime) -> QueueInterval:
    # London's 02:00 is the same instant as Shanghai's 10:00: the zone tells the rows apart.
    (found,) = [r for r in result.rows if r.queue == queue and r.timezone == str(start.tzinfo)
                and r.interval_start == start]
    return found


def figures(r: QueueInterval) -> dict[str, object]:
    return {f.name: getattr(r, f.name) for f in dataclasses.fields(r)}


def percentiles(result: IntervalTable, queue: str, start: dt.datetime, minutes: int) -> dict[tuple[str, int], float | None]:
    return {(p.waits, p.percentile): p.wait_seconds for p in result.percentiles
            if p.queue == queue and p.timezone == str(start.tzinfo) and p.interval_start == start
            and p.interval_minutes == minutes}


def test_leg_rows_carry_waits_handle_time_and_flags_with_ami_times_preferred() -> None:
    rows = {(leg.call_id, leg.leg): leg for leg in legs()}
    assert len(rows) == 17  # 16 calls with queue legs, c05 with two
    summary = {
        key: (leg.queue, leg.outcome, leg.overflow, leg.wait_seconds, leg.answer_source, leg.talk_seconds,
              leg.hold_seconds, leg.wrap_seconds, leg.handle_seconds, leg.short_abandon, leg.answered_within_t,
              leg.abandoned_within_t, leg.transferred, leg.repeated)
        for key, leg in rows.items()
    }
    assert summary == {
        ("c01", 1): ("billing", "answered", None, 10, "controller", 120, 0, 30, 150, False, True, False, False, False),
        # AMI answer 10:02:15 - 10:02:00; talk = talk_seconds 200 - hold 30.
        ("c02", 1): ("billing", "answered", None, 15, "ami", 170, 30, 20, 220, False, True, False, False, False),
        ("c03", 1): ("billing", "abandoned", None, 3, None, 0, 0, 0, 0, True, False, True, False, False),
        ("c04", 1): ("billing", "abandoned", None, 50, None, 0, 0, 0, 0, False, False, False, False, False),
        # Overflow to another queue: the first leg is a transfer.
        ("c05", 1): ("billing", "overflowed", "timeout", 60, None, 0, 0, 0, 0, False, False, False, True, False),
        ("c05", 2): ("general", "answered", None, 5, "controller", 60, 0, 0, 60, False, True, False, False, False),
        # Voicemail after the overflow: a TRANSFER event, but of a voicemail node.
        ("c06", 1): ("billing", "overflowed", "no_agents", 0, None, 0, 0, 0, 0, False, False, False, False, False),
        # The survey re-entry (TRANSFER at the queue node) is no transfer; K1 called again.
        ("c07", 1): ("billing", "answered", None, 25, "controller", 90, 0, 10, 100, False, False, False, False, True),
        ("c08", 1): ("billing", "overflowed", "timeout", 60, None, 0, 0, 0, 0, False, False, False, True, False),
        ("c09", 1): ("billing", "abandoned", None, 18, None, 0, 0, 0, 0, False, False, True, False, False),
        # Exactly T is within T.
        ("c10", 1): ("billing", "answered", None, 20, "controller", 630, 70, 0, 700, False, True, False, False, False),
        ("c11", 1): ("billing", "overflowed", "full", 0, None, 0, 0, 0, 0, False, False, False, False, False),
        ("c12", 1): ("billing", "answered", None, 10, "controller", 300, 0, 60, 360, False, True, False, False, False),
        ("c14", 1): ("billing", "answered", None, 8, "controller", 600, 0, 0, 600, False, True, False, False, True),
        ("c15", 1): ("billing", "abandoned", None, 30, None, 0, 0, 0, 0, False, False, False, False, False),
        ("c16", 1): ("billing", "answered", None, 12, "controller", 45, 0, 5, 50, False, True, False, False, False),
        ("c20", 1): ("general", "abandoned", None, 2, None, 0, 0, 0, 0, True, False, True, False, False),
    }
    c02 = rows["c02", 1]
    assert c02.answered_at == sh(10, 2, 15) and c02.enqueued_at == sh(10, 2) and c02.left_at == sh(10, 6)
    assert c02.agent_id == "a2" and c02.hotline == H1 and c02.timezone == "Asia/Shanghai"
    # Attributed to the interval it entered the queue in, though answered in the next.
    assert rows["c12", 1].interval_start == sh(10, 15)
    assert rows["c16", 1].interval_start == dt.datetime(2026, 11, 25, 2, 0, tzinfo=LONDON)
    assert rows["c16", 1].hotline == H2 and rows["c16", 1].timezone == "Europe/London"
    assert rows["c15", 1].interval_start == sh(0, 0, day=26)


def test_billing_10_00_interval_matches_the_hand_computation() -> None:
    result = table()
    assert figures(row(result, "billing", sh(10, 0))) == {
        "queue": "billing", "timezone": "Asia/Shanghai", "interval_start": sh(10, 0), "interval_end": sh(10, 15),
        "interval_minutes": 15,
        # c01 c02 c03 c04 c05 c06 c07 c08 c09
        "offered": 9, "answered": 3, "abandoned": 3, "short_abandons": 1,
        "overflowed": 3, "overflowed_timeout": 2, "overflowed_no_agents": 1, "overflowed_full": 0,
        "overflowed_state_down": 0,
        "service_level_seconds": 20,
        "answered_within_t": 2,  # c01 (10 s), c02 (15 s by AMI; 40 s by the controller's guess)
        "abandoned_within_t": 2,  # c03 (3 s), c09 (18 s)
        "service_level": 0.25,  # 2 / (9 - 1)
        "asa_seconds": pytest.approx(50 / 3),  # (10 + 15 + 25) / 3
        "average_wait_seconds": pytest.approx(241 / 9),  # 10+15+3+50+60+0+25+60+18
        "talk_seconds": 380.0,  # 120 + (200 - 30) + 90
        "hold_seconds": 30.0,
        "wrap_seconds": 60.0,  # 30 + 20 + 10
        "handle_seconds": 470.0,
        "aht_seconds": pytest.approx(470 / 3),
        "transfers": 2,  # c05 (to general), c08 (transfer node)
        "repeat_calls": 1,  # c07
        "csat_answers": 4, "csat_satisfied": 2, "csat": 0.5,  # c01 5 4, c02 2, c07 3
    }
    assert percentiles(result, "billing", sh(10, 0), 15) == {
        ("answered", 50): 15, ("answered", 90): 25,  # [10 15 25]: 2nd, 3rd
        ("all", 50): 18, ("all", 90): 60,  # [0 3 10 15 18 25 50 60 60]: 5th, 9th
    }


def test_billing_10_15_interval_counts_a_leg_answered_after_its_end() -> None:
    result = table()
    assert figures(row(result, "billing", sh(10, 15))) == {
        "queue": "billing", "timezone": "Asia/Shanghai", "interval_start": sh(10, 15), "interval_end": sh(10, 30),
        "interval_minutes": 15,
        "offered": 3, "answered": 2, "abandoned": 0, "short_abandons": 0,  # c10 c11 c12
        "overflowed": 1, "overflowed_timeout": 0, "overflowed_no_agents": 0, "overflowed_full": 1,
        "overflowed_state_down": 0, "service_level_seconds": 20,
        "answered_within_t": 2, "abandoned_within_t": 0,  # c10 at exactly 20 s, c12 10 s
        "service_level": pytest.approx(2 / 3),
        "asa_seconds": 15.0, "average_wait_seconds": 10.0,  # (20 + 10) / 2, (20 + 0 + 10) / 3
        "talk_seconds": 930.0, "hold_seconds": 70.0, "wrap_seconds": 60.0,  # 630 + 300, 70, 60
        "handle_seconds": 1060.0, "aht_seconds": 530.0,
        "transfers": 0, "repeat_calls": 0,  # c12's caller came back after 24 h 1.5 min
        "csat_answers": 1, "csat_satisfied": 1, "csat": 1.0,  # c10: 4
    }
    assert percentiles(result, "billing", sh(10, 15), 15) == {
        ("answered", 50): 10, ("answered", 90): 20, ("all", 50): 10, ("all", 90): 20}


def test_general_interval_takes_the_overflowed_call_and_a_short_abandon() -> None:
    result = table()
    assert figures(row(result, "general", sh(10, 0))) == {
        "queue": "general", "timezone": "Asia/Shanghai", "interval_start": sh(10, 0), "interval_end": sh(10, 15),
        "interval_minutes": 15,
        "offered": 2, "answered": 1, "abandoned": 1, "short_abandons": 1,  # c05's 2nd leg, c20
        "overflowed": 0, "overflowed_timeout": 0, "overflowed_no_agents": 0, "overflowed_full": 0,
        "overflowed_state_down": 0, "service_level_seconds": 20,
        "answered_within_t": 1, "abandoned_within_t": 1,
        "service_level": 1.0,  # 1 / (2 - 1)
        "asa_seconds": 5.0, "average_wait_seconds": 3.5,
        "talk_seconds": 60.0, "hold_seconds": 0.0, "wrap_seconds": 0.0, "handle_seconds": 60.0, "aht_seconds": 60.0,
        "transfers": 0, "repeat_calls": 0,
        "csat_answers": 1, "csat_satisfied": 1, "csat": 1.0,
    }


def test_intervals_around_local_midnight_and_in_another_zone() -> None:
    result = table()
    before = row(result, "billing", sh(23, 45))
    after = row(result, "billing", sh(0, 0, day=26))
    assert (before.interval_end, before.offered, before.answered, before.service_level, before.asa_seconds,
            before.aht_seconds, before.repeat_calls) == (sh(0, 0, day=26), 1, 1, 1.0, 8.0, 600.0, 1)
    assert (after.offered, after.abandoned, after.short_abandons, after.abandoned_within_t, after.service_level,
            after.asa_seconds, after.average_wait_seconds, after.aht_seconds, after.csat) == (
        1, 1, 0, 0, 0.0, None, 30.0, None, None)
    # c16 came in at the same instant as Shanghai's 10:10, through a London hotline: its own row.
    london = row(result, "billing", dt.datetime(2026, 11, 25, 2, 0, tzinfo=LONDON))
    assert (london.timezone, london.offered, london.answered, london.asa_seconds, london.handle_seconds,
            london.aht_seconds, london.service_level) == ("Europe/London", 1, 1, 12.0, 50.0, 50.0, 1.0)
    assert [(r.queue, r.timezone, r.interval_start.isoformat()) for r in result.rows] == [
        ("billing", "Asia/Shanghai", "2026-11-25T10:00:00+08:00"),
        ("billing", "Asia/Shanghai", "2026-11-25T10:15:00+08:00"),
        ("billing", "Asia/Shanghai", "2026-11-25T23:45:00+08:00"),
        ("billing", "Asia/Shanghai", "2026-11-26T00:00:00+08:00"),
        ("billing", "Europe/London", "2026-11-25T02:00:00+00:00"),
        ("general", "Asia/Shanghai", "2026-11-25T10:00:00+08:00"),
    ]


def test_half_hour_rollup_adds_counts_and_recomputes_waits_from_the_legs() -> None:
    half = table(30)
    quarter = table(15)
    rolled = row(half, "billing", sh(10, 0))
    parts = [row(quarter, "billing", sh(10, 0)), row(quarter, "billing", sh(10, 15))]
    for name in ("offered", "answered", "abandoned", "short_abandons", "overflowed", "overflowed_timeout",
                 "overflowed_no_agents", "overflowed_full", "answered_within_t", "abandoned_within_t",
                 "transfers", "repeat_calls", "csat_answers", "csat_satisfied"):
        assert getattr(rolled, name) == sum(getattr(p, name) for p in parts), name
    assert (rolled.interval_end, rolled.interval_minutes, rolled.offered, rolled.answered) == (sh(10, 30), 30, 12, 5)
    assert rolled.service_level == pytest.approx(4 / 11)  # (2 + 2) / (12 - 1)
    assert rolled.asa_seconds == 16.0  # (10 + 15 + 25 + 20 + 10) / 5: not the mean of 16.67 and 15
    assert rolled.average_wait_seconds == pytest.approx(271 / 12)
    assert rolled.aht_seconds == pytest.approx(1530 / 5)  # (470 + 1060) / 5
    assert rolled.csat == pytest.approx(3 / 5)
    # Answered [10 10 15 20 25]: 3rd and 5th; all [0 0 3 10 10 15 18 20 25 50 60 60]: 6th and 11th.
    # The 15-minute medians were 18 and 10: percentiles are not averaged.
    assert percentiles(half, "billing", sh(10, 0), 30) == {
        ("answered", 50): 15, ("answered", 90): 25, ("all", 50): 15, ("all", 90): 60}
    hour = row(table(60), "billing", sh(10, 0))
    assert {f.name: getattr(hour, f.name) for f in dataclasses.fields(hour)
            if f.name not in ("interval_end", "interval_minutes")} == \
        {f.name: getattr(rolled, f.name) for f in dataclasses.fields(rolled)
         if f.name not in ("interval_end", "interval_minutes")}
    assert hour.interval_end == sh(11, 0)


def test_day_rows_start_at_local_midnight() -> None:
    days = table(1440)
    assert [(r.queue, r.timezone, r.interval_start.isoformat(), r.interval_end.isoformat(), r.offered)
            for r in days.rows] == [
        ("billing", "Asia/Shanghai", "2026-11-25T00:00:00+08:00", "2026-11-26T00:00:00+08:00", 13),  # c01-c12, c14
        ("billing", "Asia/Shanghai", "2026-11-26T00:00:00+08:00", "2026-11-27T00:00:00+08:00", 1),  # c15
        ("billing", "Europe/London", "2026-11-25T00:00:00+00:00", "2026-11-26T00:00:00+00:00", 1),  # c16
        ("general", "Asia/Shanghai", "2026-11-25T00:00:00+08:00", "2026-11-26T00:00:00+08:00", 2),
    ]
    day = days.rows[0]
    assert (day.answered, day.abandoned, day.overflowed, day.answered_within_t) == (6, 3, 4, 5)
    assert day.service_level == pytest.approx(5 / 12)
    assert day.asa_seconds == pytest.approx(88 / 6)  # (80 + 8) / 6
    assert (day.repeat_calls, day.transfers, day.handle_seconds) == (2, 2, 2130.0)  # 470 + 1060 + 600
    assert percentiles(days, "billing", sh(0, 0), 1440)[("answered", 50)] == 10  # [8 10 10 15 20 25]: 3rd


def test_every_row_keeps_the_identities() -> None:
    for minutes in (15, 30, 60, 1440):
        for r in table(minutes).rows:
            assert r.offered == r.answered + r.abandoned + r.overflowed
            assert r.overflowed == r.overflowed_timeout + r.overflowed_no_agents + r.overflowed_full \
                + r.overflowed_state_down
            assert r.handle_seconds == r.talk_seconds + r.hold_seconds + r.wrap_seconds


def test_rows_have_plain_fields_for_generic_exports() -> None:
    plain = (str, int, float, dt.datetime, type(None))
    result = table()
    for item in [*legs(), *result.rows, *result.percentiles]:
        for f in dataclasses.fields(item):
            assert isinstance(getattr(item, f.name), plain), (type(item).__name__, f.name)
    assert all(isinstance(p, WaitPercentile) for p in result.percentiles)
    assert len(result.percentiles) == len(result.rows) * 4  # 2 percentiles x (answered, all)


def test_the_repeated_hour_of_a_daylight_saving_change_keeps_two_rows() -> None:
    new_york = ZoneInfo("America/New_York")
    hotline = "18005550100"
    first = dt.datetime(2026, 11, 1, 5, 20, tzinfo=dt.timezone.utc)  # 01:20 EDT
    second = first + dt.timedelta(hours=1)  # 01:20 again, EST
    calls = [call(f"ny{n}", at, Disposition.QUEUE_ABANDONED, [], (abandoned("billing", at, 30),), dialed=hotline)
             for n, at in enumerate((first, second))]
    rows = queue_intervals(call_legs(calls, lambda _: new_york, SETTINGS), SETTINGS).rows
    assert [(r.interval_start.isoformat(), r.offered) for r in rows] == [
        ("2026-11-01T01:15:00-04:00", 1), ("2026-11-01T01:15:00-05:00", 1)]
    (day,) = queue_intervals(call_legs(calls, lambda _: new_york, SETTINGS), SETTINGS, 1440).rows
    assert (day.offered, (day.interval_end - day.interval_start.astimezone(dt.timezone.utc))) == (
        2, dt.timedelta(hours=25))
    assert day.interval_minutes == 1500  # the day is 25 hours long, not 1440 minutes
    assert [r.interval_minutes for r in rows] == [15, 15]
