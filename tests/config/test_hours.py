"""Opening hours: weekly plan, holidays (ranges, half days), make-up days, time zones, 24:00."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from ivr.config.hours import SpecError, is_open, parse_range, parse_weekdays
from ivr.config.loader import load_config
from ivr.config.models import Schedule

from configkit import EXAMPLE_CONFIG

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
UTC = dt.timezone.utc


@pytest.fixture(scope="module")
def standard() -> Schedule:
    return load_config(EXAMPLE_CONFIG).directory.schedules["standard"]


def at(y: int, mo: int, d: int, h: int, mi: int = 0, tz: dt.tzinfo = SHANGHAI) -> dt.datetime:
    return dt.datetime(y, mo, d, h, mi, tzinfo=tz)


def test_weekday_hours(standard: Schedule) -> None:
    assert is_open(standard, at(2026, 3, 10, 9, 0), "UTC")  # Tuesday 09:00: opens
    assert is_open(standard, at(2026, 3, 10, 20, 59), "UTC")
    assert not is_open(standard, at(2026, 3, 10, 21, 0), "UTC")  # end is exclusive
    assert not is_open(standard, at(2026, 3, 10, 8, 59), "UTC")


def test_weekend_hours(standard: Schedule) -> None:
    assert not is_open(standard, at(2026, 3, 14, 9, 30), "UTC")  # Saturday opens at 10
    assert is_open(standard, at(2026, 3, 14, 10, 0), "UTC")
    assert not is_open(standard, at(2026, 3, 15, 18, 0), "UTC")  # Sunday closes at 18


def test_instant_is_read_in_the_schedules_time_zone(standard: Schedule) -> None:
    # 01:30 UTC on Tuesday is 09:30 in Shanghai.
    assert is_open(standard, dt.datetime(2026, 3, 10, 1, 30, tzinfo=UTC), "America/New_York")


def test_holiday_range_is_closed_all_days(standard: Schedule) -> None:
    for day in range(1, 8):  # National Day 2026-10-01..07, weekdays included
        assert not is_open(standard, at(2026, 10, day, 12), "UTC"), day
    assert is_open(standard, at(2026, 10, 8, 12), "UTC")  # Thursday after


def test_half_day(standard: Schedule) -> None:
    assert is_open(standard, at(2026, 12, 31, 11, 59), "UTC")
    assert not is_open(standard, at(2026, 12, 31, 12, 0), "UTC")


def test_make_up_working_day(standard: Schedule) -> None:
    # Saturday 2026-10-10 is a working day: weekday hours, open at 09:00 although Saturdays open at 10.
    assert is_open(standard, at(2026, 10, 10, 9, 0), "UTC")
    assert is_open(standard, at(2026, 10, 10, 20, 0), "UTC")
    assert not is_open(standard, at(2026, 10, 17, 9, 0), "UTC")  # the next Saturday: weekend hours


def test_dst_change_keeps_local_wall_clock_hours() -> None:
    schedule = Schedule(weekly={"mon-sun": ("09:00-17:00",)})  # no time zone: the hotline's
    # 2026-03-08: New York springs forward. 09:00 EST on Friday = 14:00 UTC; 09:00 EDT on Monday = 13:00 UTC.
    assert is_open(schedule, dt.datetime(2026, 3, 6, 14, 0, tzinfo=UTC), "America/New_York")
    assert not is_open(schedule, dt.datetime(2026, 3, 6, 13, 30, tzinfo=UTC), "America/New_York")
    assert is_open(schedule, dt.datetime(2026, 3, 9, 13, 0, tzinfo=UTC), "America/New_York")
    assert not is_open(schedule, dt.datetime(2026, 3, 9, 21, 0, tzinfo=UTC), "America/New_York")  # 17:00 EDT
    # Fall back (2026-11-01): 16:30 EST = 21:30 UTC is open.
    assert is_open(schedule, dt.datetime(2026, 11, 2, 21, 30, tzinfo=UTC), "America/New_York")
    # The same instant given in New York time: the hotline's time zone decides, not the input's.
    assert is_open(schedule, dt.datetime(2026, 11, 2, 16, 30, tzinfo=NEW_YORK), "America/New_York")
    assert not is_open(schedule, dt.datetime(2026, 11, 2, 16, 30, tzinfo=NEW_YORK), "UTC")  # 21:30 UTC


def test_range_ending_at_24_00_runs_to_midnight() -> None:
    schedule = Schedule(timezone="Asia/Shanghai", weekly={"fri": ("18:00-24:00",), "sat": ("00:00-02:00",)})
    assert is_open(schedule, at(2026, 3, 13, 23, 59), "UTC")
    assert is_open(schedule, at(2026, 3, 14, 0, 0), "UTC")  # Saturday 00:00 via sat
    assert not is_open(schedule, at(2026, 3, 14, 2, 0), "UTC")
    assert parse_range("00:00-24:00") == (0, 1440)


def test_day_not_in_the_weekly_plan_is_closed() -> None:
    assert not is_open(Schedule(weekly={"mon": ("09:00-17:00",)}), at(2026, 3, 10, 10), "Asia/Shanghai")


def test_naive_datetime_is_refused(standard: Schedule) -> None:
    with pytest.raises(ValueError, match="aware"):
        is_open(standard, dt.datetime(2026, 3, 10, 10, 0), "UTC")


def test_weekday_specs() -> None:
    assert parse_weekdays("mon-fri") == frozenset(range(5))
    assert parse_weekdays("sat,sun") == frozenset({5, 6})
    assert parse_weekdays("Wednesday") == frozenset({2})
    assert parse_weekdays("sat-sun,mon") == frozenset({0, 5, 6})
    for bad in ("fri-mon", "mon-fry", "", "weekdays"):
        with pytest.raises(SpecError):
            parse_weekdays(bad)


@pytest.mark.parametrize("text", ["25:00-26:00", "09:00-25:00", "09:60-10:00", "18:00-09:00", "10:00-10:00", "24:00-24:00"])
def test_bad_ranges(text: str) -> None:
    with pytest.raises(SpecError):
        parse_range(text)
