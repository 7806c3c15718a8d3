"""Dynamic speech: values as AGI actions, per language."""

from __future__ import annotations

import datetime as dt

import pytest

from ivr.prompts.speech import Play, PlayCore, SayDigits, SayNumber, SpeechError, perform, prompts_needed, speak


@pytest.mark.parametrize("language", ["zh-CN", "en-US"])
def test_whole_numbers_and_digits_use_asterisk_say(language: str) -> None:
    assert speak("number", "128", language) == (SayNumber(128),)
    assert speak("number", 128.0, language) == (SayNumber(128),)
    assert speak("number", "-3", language) == (SayNumber(-3),)
    assert speak("digits", "SF 1234-5678", language) == (SayDigits("12345678"),)


@pytest.mark.parametrize("language", ["zh-CN", "en-US"])
def test_decimals_say_point_then_digits(language: str) -> None:
    assert speak("number", "1234.50", language) == (SayNumber(1234), Play("say/point"), SayDigits("5"))
    assert speak("number", "-0.25", language) == (Play("say/minus"), SayNumber(0), Play("say/point"), SayDigits("25"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12.50", (SayNumber(12), Play("say/yuan"), SayNumber(5), Play("say/jiao"))),  # 十二元五角
        ("12.05", (SayNumber(12), Play("say/yuan"), SayNumber(0), SayNumber(5), Play("say/fen"))),  # 十二元零五分
        ("12.56", (SayNumber(12), Play("say/yuan"), SayNumber(5), Play("say/jiao"), SayNumber(6), Play("say/fen"))),
        ("0.5", (SayNumber(5), Play("say/jiao"))),  # 五角
        ("0", (SayNumber(0), Play("say/yuan"))),  # 零元
        ("200", (SayNumber(200), Play("say/yuan"))),
        ("-8.004", (Play("say/minus"), SayNumber(8), Play("say/yuan"))),
        ("1,280.995", (SayNumber(1281), Play("say/yuan"))),  # rounded half up to the fen
    ],
)
def test_amounts_in_chinese_use_yuan_jiao_fen(value: str, expected: tuple[object, ...]) -> None:
    assert speak("amount", value, "zh-CN") == expected


def test_amounts_in_english() -> None:
    assert speak("amount", "12.05", "en-US") == (SayNumber(12), Play("say/yuan"), SayNumber(5), Play("say/cents"))
    assert speak("amount", 7, "en-US") == (SayNumber(7), Play("say/yuan"))


def test_dates() -> None:
    day = dt.date(2026, 3, 5)
    # 二零二六年三月五日: the year digit by digit
    assert speak("date", day, "zh-CN") == (
        SayDigits("2026"), Play("say/year"), SayNumber(3), Play("say/month"), SayNumber(5), Play("say/day"),
    )
    # March fifth two thousand twenty six, with Asterisk's core sounds
    assert speak("date", "2026-03-05", "en-US") == (PlayCore("digits/mon-2"), PlayCore("digits/h-5"), SayNumber(2026))


@pytest.mark.parametrize(
    ("value", "zh", "en"),
    [
        ("14:05", (SayNumber(14), Play("say/oclock"), SayNumber(0), SayNumber(5), Play("say/minute")),
         (SayNumber(2), PlayCore("digits/oh"), SayNumber(5), PlayCore("digits/p-m"))),
        ("09:00", (SayNumber(9), Play("say/oclock")), (SayNumber(9), PlayCore("digits/oclock"), PlayCore("digits/a-m"))),
        ("00:30", (SayNumber(0), Play("say/oclock"), SayNumber(30), Play("say/minute")),
         (SayNumber(12), SayNumber(30), PlayCore("digits/a-m"))),
    ],
)
def test_times(value: str, zh: tuple[object, ...], en: tuple[object, ...]) -> None:
    assert speak("time", value, "zh-CN") == zh
    assert speak("time", dt.time.fromisoformat(value), "en-US") == en


def test_wait_time_in_minutes() -> None:
    assert speak("minutes", 3, "zh-CN") == (SayNumber(3), Play("say/minutes"))
    assert speak("minutes", 1, "en-US") == (SayNumber(1), Play("say/minute"))
    assert speak("minutes", "2.6", "en-US") == (SayNumber(3), Play("say/minutes"))


def test_bad_values_and_unknown_languages_are_refused() -> None:
    for kind, value in (("number", "12 yuan"), ("amount", "NaN"), ("date", "tomorrow"), ("time", "noon"),
                        ("minutes", -1), ("digits", "none")):
        with pytest.raises(SpeechError):
            speak(kind, value, "zh-CN")  # type: ignore[arg-type]
    assert speak("number", 5, "ja-JP") == (SayNumber(5),)
    with pytest.raises(SpeechError, match="no rule to say a amount in ja-JP"):
        speak("amount", 5, "ja-JP")


def test_every_prompt_speech_plays_is_listed_as_needed() -> None:
    samples = {"number": ["-0.5", "3.25"], "digits": ["12"], "amount": ["-12.05", "0.56", "3"],
               "date": ["2026-03-05"], "time": ["14:05", "09:00"], "minutes": [1, 2]}
    for language in ("zh-CN", "en-US"):
        for kind, values in samples.items():
            played = {a.prompt for v in values for a in speak(kind, v, language) if isinstance(a, Play)}  # type: ignore[arg-type]
            assert played <= prompts_needed(kind, language), (kind, language)  # type: ignore[arg-type]


async def test_perform_plays_in_order_and_stops_at_a_digit() -> None:
    log: list[str] = []

    class Channel:
        async def say_number(self, number: int, escape_digits: str = "") -> str | None:
            log.append(f"number:{number}")
            return None

        async def say_digits(self, digits: str, escape_digits: str = "") -> str | None:
            log.append(f"digits:{digits}")
            return "1" if digits == "9" else None

    async def play(prompt: str) -> str | None:
        log.append(f"play:{prompt}")
        return None

    async def core(name: str) -> str | None:
        log.append(f"core:{name}")
        return None

    actions = (SayNumber(12), Play("say/yuan"), PlayCore("digits/oh"), SayDigits("9"), SayNumber(1))
    assert await perform(actions, Channel(), play, core, "1") == "1"
    assert log == ["number:12", "play:say/yuan", "core:digits/oh", "digits:9"]
