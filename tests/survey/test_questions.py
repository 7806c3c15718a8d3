"""What the keys a caller pressed (as GET DATA returns them) mean for each question kind."""

from __future__ import annotations

import pytest

from survey_engine.model import QuestionKind
from survey_engine.questions import MAX_DIGITS, Reading, interpret


@pytest.mark.parametrize(("keys", "value"), [("1", 1), ("3", 3), ("5", 5)])
def test_scale_takes_one_key_from_1_to_5(keys: str, value: int) -> None:
    assert interpret("scale", keys) == Reading("answered", value)


@pytest.mark.parametrize("keys", ["0", "6", "9", "*", "*1"])
def test_scale_rejects_keys_outside_1_to_5(keys: str) -> None:
    assert interpret("scale", keys).outcome == "invalid"


def test_yes_no_stores_1_for_yes_and_0_for_no() -> None:
    assert interpret("yes_no", "1") == Reading("answered", 1)
    assert interpret("yes_no", "2") == Reading("answered", 0)
    assert interpret("yes_no", "0").outcome == "invalid"
    assert interpret("yes_no", "3").outcome == "invalid"


@pytest.mark.parametrize(
    ("keys", "value"),
    [
        ("10", 10),  # two keys: GET DATA returns at the digit limit
        ("7", 7),  # "7#" and "7" then the timeout both arrive as "7"
        ("0", 0),
    ],
)
def test_nps_takes_0_to_10(keys: str, value: int) -> None:
    assert interpret("nps", keys) == Reading("answered", value)


@pytest.mark.parametrize("keys", ["11", "55", "99", "*", "7*", "07", "00"])
def test_nps_rejects_other_entries_including_a_leading_zero(keys: str) -> None:
    assert interpret("nps", keys).outcome == "invalid"


@pytest.mark.parametrize("kind", ["scale", "yes_no", "nps"])
def test_nothing_pressed_is_no_input(kind: QuestionKind) -> None:
    assert interpret(kind, "") == Reading("no_input")


def test_only_nps_waits_for_a_second_key() -> None:
    assert MAX_DIGITS == {"scale": 1, "yes_no": 1, "nps": 2}
