"""Opening hours: is a schedule open at a given moment? Pure functions, no clock.

The day's plan is chosen in this order: a holiday (closed, or its `hours` for a half day),
then a make-up working day (its `hours`), then the weekly plan. Times are wall-clock
times in the schedule's time zone (else the hotline's), so a DST change moves nothing:
09:00-18:00 stays 09:00-18:00 local time. A range is start <= t < end; an end of 24:00
runs to midnight. A range never crosses midnight: write 22:00-24:00 and 00:00-06:00.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from ivr.config.models import Schedule

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
END_OF_DAY = 24 * 60


class SpecError(ValueError):
    """A weekday spec or a time range that cannot be read; the text says what was expected."""


def _weekday(name: str, spec: str) -> int:
    word = name.strip().lower()
    if word in WEEKDAYS:
        return WEEKDAYS.index(word)
    if word in _FULL_NAMES:
        return _FULL_NAMES.index(word)
    raise SpecError(
        f"invalid weekday {name.strip()!r} in {spec!r} (expected mon, tue, wed, thu, fri, sat, sun, "
        "a range like mon-fri, or a comma list like sat,sun)"
    )


def parse_weekdays(spec: str) -> frozenset[int]:
    """`mon-fri` -> {0..4}; `sat,sun` -> {5, 6}; `wed` -> {2} (Monday is 0)."""
    days: set[int] = set()
    if not spec.strip():
        raise SpecError("empty weekday spec (expected mon, tue, ..., sun or a range like mon-fri)")
    for part in spec.split(","):
        if "-" in part:
            first, _, last = part.partition("-")
            start, end = _weekday(first, spec), _weekday(last, spec)
            if end < start:
                raise SpecError(
                    f"weekday range {part.strip()!r} runs backwards (expected the first day before the last, "
                    "Monday to Sunday, e.g. mon-fri; write sat-sun,mon for a range over the weekend)"
                )
            days.update(range(start, end + 1))
        else:
            days.add(_weekday(part, spec))
    return frozenset(days)


def _minutes(text: str, whole: str) -> int:
    hours, _, minutes = text.partition(":")
    h, m = int(hours), int(minutes)
    if m > 59 or h > 24 or (h == 24 and m != 0):
        raise SpecError(f"{text} in {whole!r} is not a time of day (expected 00:00 to 23:59, or 24:00 as an end)")
    return h * 60 + m


def parse_range(text: str) -> tuple[int, int]:
    """`09:00-18:00` -> (540, 1080) in minutes after midnight; end may be 24:00 (1440)."""
    start_text, sep, end_text = text.partition("-")
    if not sep or ":" not in start_text or ":" not in end_text:
        raise SpecError(f"invalid time range {text!r} (expected HH:MM-HH:MM, e.g. 09:00-18:00)")
    try:
        start, end = _minutes(start_text, text), _minutes(end_text, text)
    except ValueError as exc:
        if isinstance(exc, SpecError):
            raise
        raise SpecError(f"invalid time range {text!r} (expected HH:MM-HH:MM, e.g. 09:00-18:00)") from None
    if start == END_OF_DAY:
        raise SpecError(f"time range {text!r} starts at 24:00 (expected a start from 00:00 to 23:59)")
    if end <= start:
        raise SpecError(
            f"time range {text!r} ends before it starts (expected start < end; a range cannot cross "
            "midnight: split it into ..-24:00 and 00:00-..)"
        )
    return start, end


def _open_in(ranges: tuple[str, ...], minute: int) -> bool:
    for text in ranges:
        start, end = parse_range(text)
        if start <= minute < end:
            return True
    return False


def ranges_for(schedule: Schedule, day: dt.date) -> tuple[str, ...]:
    """The open ranges of one local calendar day."""
    for holiday in schedule.holidays:
        if holiday.date <= day <= (holiday.until or holiday.date):
            return holiday.hours
    for working in schedule.working_days:
        if working.date == day:
            return working.hours
    weekday = day.weekday()
    for spec, ranges in schedule.weekly.items():
        if weekday in parse_weekdays(spec):
            return ranges
    return ()


def is_open(schedule: Schedule, at: dt.datetime, default_tz: str) -> bool:
    """Whether `schedule` is open at the instant `at` (an aware datetime).

    `default_tz` (the hotline's time zone) applies when the schedule names none.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("is_open needs an aware datetime (with a time zone), got a naive one")
    local = at.astimezone(ZoneInfo(schedule.timezone or default_tz))
    minute = local.hour * 60 + local.minute
    return _open_in(ranges_for(schedule, local.date()), minute)
