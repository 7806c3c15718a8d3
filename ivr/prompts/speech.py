"""Dynamic speech: a value of some kind, in a language, as a sequence of AGI actions.

Pure: `speak(kind, value, language)` returns actions, the caller plays them. Asterisk's
SAY commands are used where they fit (SAY NUMBER and SAY DIGITS follow the channel's
language: Asterisk has number grammars for zh and en); what no SAY command covers is
spoken with prompts from the catalog (`say/...`, built like every other prompt) or, for
English, with Asterisk's core sounds (`digits/mon-2`, `digits/p-m`).

| kind    | value                  | zh-CN                          | en-US                          |
|---------|------------------------|--------------------------------|--------------------------------|
| number  | 128, -3, 12.5          | SAY NUMBER (点 + SAY DIGITS)   | SAY NUMBER (point + SAY DIGITS)|
| digits  | "138 0013 8000"        | SAY DIGITS                     | SAY DIGITS                     |
| amount  | 12.05 (yuan)           | 十二 元 零 五 分               | twelve yuan five cents         |
| date    | 2026-03-05             | 二零二六 年 三 月 五 日         | March fifth two thousand ...   |
| time    | 14:05                  | 十四 点 零 五 分               | two oh five p.m.               |
| minutes | 3 (a wait time)        | 三 分钟                        | three minutes                  |

Other languages: number and digits only (SAY), the rest raises `SpeechError`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Literal, Protocol

Kind = Literal["number", "digits", "amount", "date", "time", "minutes"]
KINDS: tuple[Kind, ...] = ("number", "digits", "amount", "date", "time", "minutes")


@dataclass(frozen=True)
class SayNumber:
    number: int


@dataclass(frozen=True)
class SayDigits:
    digits: str


@dataclass(frozen=True)
class Play:
    """One of our prompts: <asterisk_dir>/<language>/<prompt>."""

    prompt: str


@dataclass(frozen=True)
class PlayCore:
    """An Asterisk core sound, found by Asterisk in the channel's language (digits/oh)."""

    name: str


Action = SayNumber | SayDigits | Play | PlayCore


class SpeechError(ValueError):
    """The value cannot be spoken as that kind, or not in that language."""


# Catalog prompts each kind may use, per base language. `ivr check` requires them.
PROMPTS: dict[str, dict[Kind, frozenset[str]]] = {
    "zh": {
        "number": frozenset({"say/point", "say/minus"}),
        "digits": frozenset(),
        "amount": frozenset({"say/yuan", "say/jiao", "say/fen", "say/minus"}),
        "date": frozenset({"say/year", "say/month", "say/day"}),
        "time": frozenset({"say/oclock", "say/minute"}),
        "minutes": frozenset({"say/minutes"}),
    },
    "en": {
        "number": frozenset({"say/point", "say/minus"}),
        "digits": frozenset(),
        "amount": frozenset({"say/yuan", "say/cents", "say/minus"}),
        "date": frozenset(),
        "time": frozenset(),
        "minutes": frozenset({"say/minute", "say/minutes"}),
    },
}


def _base(language: str) -> str:
    return language.split("-")[0].split("_")[0].lower()


def prompts_needed(kind: Kind, language: str) -> frozenset[str]:
    """Catalog prompts that speaking `kind` in `language` may play."""
    return PROMPTS.get(_base(language), {}).get(kind, frozenset())


def _decimal(value: object) -> Decimal:
    try:
        number = Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation:
        raise SpeechError(f"{value!r} is not a number") from None
    if not number.is_finite():
        raise SpeechError(f"{value!r} is not a finite number")
    return number


def _number(value: object) -> tuple[Action, ...]:
    number = _decimal(value)
    if number == number.to_integral_value():
        return (SayNumber(int(number)),)
    whole = int(number)  # towards zero: -3.5 -> -3, point, 5
    fraction = format(abs(number), "f").split(".")[1].rstrip("0")
    head: tuple[Action, ...] = (SayNumber(whole),)
    if whole == 0 and number < 0:
        head = (Play("say/minus"), SayNumber(0))
    return (*head, Play("say/point"), SayDigits(fraction))


def _digits(value: object) -> tuple[Action, ...]:
    digits = "".join(ch for ch in str(value) if ch.isdigit())
    if not digits:
        raise SpeechError(f"{value!r} has no digits to say")
    return (SayDigits(digits),)


def _amount(value: object, base: str) -> tuple[Action, ...]:
    amount = _decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    out: list[Action] = [Play("say/minus")] if amount < 0 else []
    cents = int(abs(amount) * 100)
    yuan, jiao, fen = cents // 100, cents // 10 % 10, cents % 10
    if base == "zh":
        if yuan or not (jiao or fen):
            out += [SayNumber(yuan), Play("say/yuan")]
        if jiao:
            out += [SayNumber(jiao), Play("say/jiao")]
        elif fen and yuan:
            out.append(SayNumber(0))  # 零: 十二元零五分
        if fen:
            out += [SayNumber(fen), Play("say/fen")]
        return tuple(out)
    out += [SayNumber(yuan), Play("say/yuan")]
    if cents % 100:
        out += [SayNumber(cents % 100), Play("say/cents")]
    return tuple(out)


def _date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise SpeechError(f"{value!r} is not a date (expected YYYY-MM-DD)") from None


def _time(value: object) -> dt.time:
    if isinstance(value, dt.datetime):
        return value.time()
    if isinstance(value, dt.time):
        return value
    try:
        return dt.time.fromisoformat(str(value))
    except ValueError:
        raise SpeechError(f"{value!r} is not a time of day (expected HH:MM)") from None


def _minutes(value: object) -> int:
    minutes = _decimal(value)
    if minutes < 0:
        raise SpeechError(f"{value!r} is not a wait time (expected minutes >= 0)")
    return int(minutes.to_integral_value(rounding=ROUND_HALF_UP))


def speak(kind: Kind, value: object, language: str) -> tuple[Action, ...]:
    """What to play to say `value` as `kind` in `language` (a prompt language key: zh-CN)."""
    base = _base(language)
    if kind == "number":
        return _number(value)
    if kind == "digits":
        return _digits(value)
    if base not in PROMPTS:
        raise SpeechError(f"no rule to say a {kind} in {language} (numbers and digits only)")
    if kind == "amount":
        return _amount(value, base)
    if kind == "date":
        day = _date(value)
        if base == "zh":
            return (SayDigits(f"{day.year:04d}"), Play("say/year"), SayNumber(day.month), Play("say/month"),
                    SayNumber(day.day), Play("say/day"))
        return (PlayCore(f"digits/mon-{day.month - 1}"), PlayCore(f"digits/h-{day.day}"), SayNumber(day.year))
    if kind == "time":
        moment = _time(value)
        if base == "zh":
            out: list[Action] = [SayNumber(moment.hour), Play("say/oclock")]
            if moment.minute:
                if moment.minute < 10:
                    out.append(SayNumber(0))
                out += [SayNumber(moment.minute), Play("say/minute")]
            return tuple(out)
        out = [SayNumber(moment.hour % 12 or 12)]
        if moment.minute == 0:
            out.append(PlayCore("digits/oclock"))
        elif moment.minute < 10:
            out += [PlayCore("digits/oh"), SayNumber(moment.minute)]
        else:
            out.append(SayNumber(moment.minute))
        out.append(PlayCore("digits/a-m" if moment.hour < 12 else "digits/p-m"))
        return tuple(out)
    if kind == "minutes":
        minutes = _minutes(value)
        if base == "zh":
            return (SayNumber(minutes), Play("say/minutes"))
        return (SayNumber(minutes), Play("say/minute" if minutes == 1 else "say/minutes"))
    raise SpeechError(f"unknown kind {kind!r} (expected one of: {', '.join(KINDS)})")


class SayChannel(Protocol):
    async def say_digits(self, digits: str, escape_digits: str = "") -> str | None: ...

    async def say_number(self, number: int, escape_digits: str = "") -> str | None: ...


async def perform(
    actions: tuple[Action, ...],
    channel: SayChannel,
    play: Callable[[str], Awaitable[str | None]],
    play_core: Callable[[str], Awaitable[str | None]],
    escape_digits: str = "",
) -> str | None:
    """Play the actions in order; stop at a digit from `escape_digits` and return it."""
    for action in actions:
        if isinstance(action, SayNumber):
            digit = await channel.say_number(action.number, escape_digits)
        elif isinstance(action, SayDigits):
            digit = await channel.say_digits(action.digits, escape_digits)
        elif isinstance(action, Play):
            digit = await play(action.prompt)
        else:
            digit = await play_core(action.name)
        if digit:
            return digit
    return None
