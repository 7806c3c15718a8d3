"""Percentiles for the benchmarks' figures (shared by agi_load.py and acd_routing.py)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (q in 0..1)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass(frozen=True)
class Stat:
    count: int
    p50: float  # in the unit of the values given
    p99: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat:
        ordered = sorted(values)
        return cls(len(ordered), percentile(ordered, 0.50), percentile(ordered, 0.99),
                   ordered[-1] if ordered else math.nan)
