"""Intervals on a local clock, where daylight saving makes it tricky (America/New_York,
2026-11-01: 02:00 EDT becomes 01:00 EST, so 01:00-02:00 happens twice)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from ivr.metrics.buckets import interval_end, interval_start, intervals, seconds_between

NEW_YORK = ZoneInfo("America/New_York")
UTC = dt.timezone.utc


def test_the_repeated_hour_gives_two_intervals_with_their_own_offsets() -> None:
    first = interval_start(dt.datetime(2026, 11, 1, 5, 20, tzinfo=UTC), NEW_YORK, 15)  # 01:20 EDT
    second = interval_start(dt.datetime(2026, 11, 1, 6, 20, tzinfo=UTC), NEW_YORK, 15)  # 01:20 EST
    assert (first.isoformat(), second.isoformat()) == ("2026-11-01T01:15:00-04:00", "2026-11-01T01:15:00-05:00")
    assert seconds_between(first, second) == 3600
    assert interval_end(first, 60).isoformat() == "2026-11-01T01:15:00-05:00"


def test_the_day_of_the_change_lasts_25_hours_and_has_100_quarter_hours() -> None:
    start = interval_start(dt.datetime(2026, 11, 1, 15, 0, tzinfo=UTC), NEW_YORK, 1440)
    end = interval_end(start, 1440)
    assert (start.isoformat(), end.isoformat()) == ("2026-11-01T00:00:00-04:00", "2026-11-02T00:00:00-05:00")
    assert seconds_between(start, end) == 25 * 3600
    quarters = list(intervals(start, end, NEW_YORK, 15))
    assert len(quarters) == 100
    assert all(seconds_between(a, b) == 900 for a, b in quarters)
    assert [a.strftime("%H:%M%z") for a, _ in quarters[4:10]] == [
        "01:00-0400", "01:15-0400", "01:30-0400", "01:45-0400", "01:00-0500", "01:15-0500"]


def test_half_hours_and_hours_start_on_the_local_clock_of_a_half_hour_zone() -> None:
    kolkata = ZoneInfo("Asia/Kolkata")  # UTC+05:30
    at = dt.datetime(2026, 11, 25, 4, 50, tzinfo=UTC)  # 10:20 local
    assert interval_start(at, kolkata, 30).isoformat() == "2026-11-25T10:00:00+05:30"
    assert interval_start(at, kolkata, 60).isoformat() == "2026-11-25T10:00:00+05:30"
    assert interval_start(at, kolkata, 15).isoformat() == "2026-11-25T10:15:00+05:30"
