"""What the keys a caller pressed mean for each kind of survey question (pure).

The keys are what GET DATA returns: those pressed before `#`, the digit limit or the
timeout; `#` itself is never among them, so "7#" and "7" then a silence both arrive as "7".

* scale: one key 1-5.
* yes_no: 1 = yes (stored 1), 2 = no (stored 0).
* nps: 0-10 in up to two keys: "10" ends the input at once; a single key needs `#` or the
  timeout. A two-key entry with a leading zero ("07") is invalid, not 7: a caller who
  pressed 0 and then another key did not say which score they meant, and the one re-ask
  settles it.

Anything else (11, 55, *, 6 for a scale) is invalid; nothing pressed (or `#` alone) is no input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from survey_engine.model import QuestionKind

Outcome = Literal["answered", "invalid", "no_input"]

# GET DATA's digit limit per kind: it returns as soon as this many keys are pressed.
MAX_DIGITS: dict[QuestionKind, int] = {"scale": 1, "yes_no": 1, "nps": 2}


@dataclass(frozen=True)
class Reading:
    outcome: Outcome
    value: int | None = None  # the value to store when answered


NO_INPUT = Reading("no_input")
INVALID = Reading("invalid")


def interpret(kind: QuestionKind, keys: str) -> Reading:
    if not keys:
        return NO_INPUT
    if not keys.isdigit():
        return INVALID
    if kind == "scale":
        return Reading("answered", int(keys)) if keys in ("1", "2", "3", "4", "5") else INVALID
    if kind == "yes_no":
        return {"1": Reading("answered", 1), "2": Reading("answered", 0)}.get(keys, INVALID)
    if len(keys) == 1 or keys == "10":
        return Reading("answered", int(keys))
    return INVALID
