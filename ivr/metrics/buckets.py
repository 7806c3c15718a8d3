"""Intervals on the local clock of a time zone: 15/30/60 minutes from local midnight, or a
local calendar day.

Python compares and subtracts two datetimes of the same zone on their wall clocks, ignoring
`fold`, so the repeated hour of a daylight-saving change would merge two intervals: keys,
comparisons and durations use `utc()`; local datetimes are only shown."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

from ivr.metrics.model import DAY, Width


def utc(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo is dt.timezone.utc else at.astimezone(dt.timezone.utc)


def seconds_between(start: dt.datetime, end: dt.datetime) -> float:
    return (utc(end) - utc(start)).total_seconds()


def interval_start(at: dt.datetime, zone: ZoneInfo, minutes: Width) -> dt.datetime:
    """The start of the interval holding the instant `at`, in `zone`."""
    local = at.astimezone(zone)
    if minutes == DAY:
        return dt.datetime.combine(local.date(), dt.time(0), tzinfo=zone)
    since_midnight = local.hour * 60 + local.minute
    floor = since_midnight - since_midnight % minutes
    return local.replace(hour=floor // 60, minute=floor % 60, second=0, microsecond=0)


QUARTER_HOUR = 900  # seconds


class IntervalStarts:
    """`interval_start` of many instants, memoized per UTC quarter hour: (local start, the
    same in UTC). Every zone in use is a whole number of quarter hours off UTC and changes
    its offset on a quarter hour, so all instants of one UTC quarter hour lie in one local
    interval of any width. A quarter hour where that does not hold (a historical local mean
    time) is computed for each instant and never kept."""

    def __init__(self, minutes: Width) -> None:
        self.minutes = minutes
        self._known: dict[tuple[ZoneInfo, int], tuple[dt.datetime, dt.datetime]] = {}

    def __call__(self, at: dt.datetime, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
        quarter = int(at.timestamp() // QUARTER_HOUR)
        found = self._known.get((zone, quarter))
        if found is None:
            start = interval_start(at, zone, self.minutes)
            found = (start, utc(start))
            if _steady(zone, quarter):
                self._known[zone, quarter] = found
        return found


def _steady(zone: ZoneInfo, quarter: int) -> bool:
    """Whether `zone` keeps one offset, a whole number of quarter hours, over the quarter."""
    first = dt.datetime.fromtimestamp(quarter * QUARTER_HOUR, dt.timezone.utc)
    offset = first.astimezone(zone).utcoffset()
    last = first + dt.timedelta(seconds=QUARTER_HOUR) - dt.timedelta.resolution
    return (offset is not None and offset == last.astimezone(zone).utcoffset()
            and offset % dt.timedelta(seconds=QUARTER_HOUR) == dt.timedelta(0))


def interval_end(start: dt.datetime, minutes: Width) -> dt.datetime:
    """The end of the interval starting at `start` (an `interval_start` result): elapsed time
    for minutes, the next local midnight for a day (23 or 25 hours on a change)."""
    zone = start.tzinfo
    assert isinstance(zone, ZoneInfo)
    if minutes == DAY:
        return dt.datetime.combine(start.date() + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
    return (utc(start) + dt.timedelta(minutes=minutes)).astimezone(zone)


def intervals(since: dt.datetime, until: dt.datetime, zone: ZoneInfo, minutes: Width) -> Iterator[
        tuple[dt.datetime, dt.datetime]]:
    """(start, end), local, of every interval that overlaps [since, until), in order."""
    start = interval_start(since, zone, minutes)
    while utc(start) < utc(until):
        end = interval_end(start, minutes)
        yield start, end
        start = end


def minutes_between(start: dt.datetime, end: dt.datetime) -> int:
    """An interval's real length: a day of 23 or 25 hours when the clocks change is 1380 or
    1500 minutes, not 1440."""
    return round(seconds_between(start, end) / 60)
