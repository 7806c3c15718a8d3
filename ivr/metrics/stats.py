"""Means and percentiles as planners compute them by hand."""

from __future__ import annotations

from collections.abc import Sequence


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def share(part: int, whole: int) -> float | None:
    return part / whole if whole > 0 else None


def nearest_rank(ordered: Sequence[float], percentile: int) -> float | None:
    """The nearest-rank percentile of sorted values: the smallest value that at least
    `percentile` % of the values do not exceed, i.e. the ceil(p/100 * n)-th smallest. Always
    an observed wait ("90 % waited at most 42 s"); no interpolation between callers."""
    if not ordered:
        return None
    rank = -(-percentile * len(ordered) // 100)  # ceil without floats
    return ordered[max(rank, 1) - 1]
