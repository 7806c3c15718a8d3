"""The plots of `ivr report html`, drawn on matplotlib Figure objects with the Agg renderer (no
display, no pyplot state). Each `*_figure` function returns its Figure, so that tests can read
what was plotted (bar widths, tick labels) instead of pixels; `save` writes it as a PNG.

Time axes: x is matplotlib's date number (days since 1970-01-01 UTC). The axis is pinned to
the data's range (the first interval's start to the last one's end) and its ticks are set
once, labelled on the report's clock (`time_ticks`): left to autoscale, a single interval
widened the axis to years, and every label read `01-01 00:00`.

Sizes: a plot is 7.2 x 3.6 inches at 150 dpi (1080 x 540 pixels), with 12-point text, so that
it stays readable when the page shows two plots side by side at about 600 pixels each.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from itertools import chain
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, num2date
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter
from scipy.stats import CensoredData, ecdf  # type: ignore[import-untyped]

from ivr.config.models import MetricsSettings
from ivr.metrics.buckets import interval_end, intervals
from ivr.metrics.erlang import estimate_patience
from ivr.metrics.model import DAY, FunnelNode, Width

SIZE = (7.2, 3.6)  # inches
DPI = 150  # a plot is 1080 x 540 pixels
FONT = 12  # points
MAX_QUEUE_LINES = 6
MAX_DAY_TICKS = 10
OFFERED, ANSWERED, ABANDONED, CONTAINED, TARGET = "#9ecae1", "#08519c", "#cb181d", "#238b45", "#cb181d"


def x_of(moment: dt.datetime) -> float:
    """A moment on matplotlib's date axis: days since its epoch, 1970-01-01 UTC."""
    return moment.timestamp() / 86400


def figure(height: float = SIZE[1]) -> tuple[Figure, Axes]:
    drawn = Figure(figsize=(SIZE[0], height), dpi=DPI, layout="constrained")
    axes = drawn.add_subplot()
    axes.tick_params(labelsize=FONT - 1)
    return drawn, axes


def save(drawn: Figure, path: Path) -> None:
    drawn.savefig(path)


def nothing(axes: Axes, text: str) -> None:
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes, fontsize=FONT + 3, color="grey")
    axes.set_xticks([])
    axes.set_yticks([])


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def _label_format(ticks: Sequence[dt.datetime], end: dt.datetime) -> str:
    """Labels as short as they can be while naming each tick apart: times only within one day
    (the day goes in the axis label), days only when every tick is a midnight."""
    if all(tick.hour == 0 and tick.minute == 0 for tick in ticks):
        return "%a %d %b"
    if ticks[0].date() == (end - dt.timedelta(microseconds=1)).date():
        return "%H:%M"
    return "%d %b\n%H:%M"


def time_ticks(start: dt.datetime, end: dt.datetime, zone: ZoneInfo) -> tuple[list[float], list[str], str]:
    """Ticks for a time axis over [start, end): their positions, labels on `zone`'s clock, and
    the axis label (the clock, and the day when the labels leave it out)."""
    locator = AutoDateLocator(tz=zone, minticks=3, maxticks=7)  # type: ignore[no-untyped-call]
    low, high = x_of(start), x_of(end)
    positions = [float(at) for at in locator.tick_values(start, end)  # type: ignore[no-untyped-call]
                 if low - 1e-9 <= at <= high + 1e-9]
    ticks = [num2date(at, tz=zone) for at in positions]  # type: ignore[no-untyped-call]
    local_end = end.astimezone(zone)
    form = _label_format(ticks, local_end) if ticks else "%H:%M"
    label = f"interval start ({zone.key})"
    if form == "%H:%M" and ticks:
        label = f"interval start, {ticks[0]:%a %d %b %Y} ({zone.key})"
    elif ticks:
        label = f"interval start, {ticks[0]:%Y} ({zone.key})"
    return positions, [tick.strftime(form) for tick in ticks], label


def day_ticks(first: dt.datetime, last: dt.datetime, zone: ZoneInfo) -> tuple[list[float], list[str], str]:
    """Ticks for an axis of whole days first..last (local midnights): one in the middle of each
    day (of every n-th day beyond MAX_DAY_TICKS), labelled with the day."""
    days = list(intervals(first, interval_end(last.astimezone(zone), DAY), zone, DAY))
    step = math.ceil(len(days) / MAX_DAY_TICKS)
    chosen = days[::step]
    return ([(x_of(start) + x_of(end)) / 2 for start, end in chosen], [start.strftime("%a %d %b") for start, _ in chosen],
            f"day, {chosen[0][0]:%Y} ({zone.key})")


def time_axis(axes: Axes, first: dt.datetime, last: dt.datetime, zone: ZoneInfo, width: Width) -> None:
    """Pin the x axis to the intervals first..last (their starts) and label it on `zone`'s clock."""
    end = interval_end(last.astimezone(zone), width)
    axes.set_xlim(x_of(first), x_of(end))
    positions, labels, title = day_ticks(first, last, zone) if width == DAY else time_ticks(first, end, zone)
    axes.set_xticks(positions, labels)
    axes.set_xlabel(title, fontsize=FONT)


def _legend_below(drawn: Figure, axes: Axes, count: int) -> None:
    """The legend in a row under the plot, outside it (the constrained layout makes room)."""
    handles, labels = axes.get_legend_handles_labels()
    drawn.legend(handles, labels, loc="outside lower center", ncols=min(count, 4), fontsize=FONT - 1, frameon=False)


def offered_figure(starts: Sequence[dt.datetime], offered: Sequence[int], answered: Sequence[int],
                   abandoned: Sequence[int], zone: ZoneInfo, width: Width) -> Figure:
    """Offered and answered calls per interval as bars of the interval's full width, answered
    drawn over offered (what is left of the light bar is what was not answered), abandoned
    as a line through the intervals' middles."""
    drawn, axes = figure()
    if not starts:
        nothing(axes, "no calls entered a queue")
        return drawn
    ends = [interval_end(start.astimezone(zone), width) for start in starts]
    lefts = [x_of(start) for start in starts]
    widths = [x_of(end) - left for end, left in zip(ends, lefts)]
    axes.bar(lefts, offered, width=widths, align="edge", color=OFFERED, edgecolor="white", linewidth=0.3,
             label="offered")
    axes.bar(lefts, answered, width=widths, align="edge", color=ANSWERED, edgecolor="white", linewidth=0.3,
             label="answered")
    axes.plot([left + size / 2 for left, size in zip(lefts, widths)], abandoned, "o-", color=ABANDONED,
              markersize=3, linewidth=1.2, label="abandoned")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel("calls", fontsize=FONT)
    time_axis(axes, starts[0], starts[-1], zone, width)
    _legend_below(drawn, axes, 3)
    return drawn


def waits_figure(answered: Sequence[float], abandoned: Sequence[float], settings: MetricsSettings) -> Figure:
    drawn, axes = figure()
    if not answered and not abandoned:
        nothing(axes, "no answered or abandoned calls")
        return drawn
    both = np.concatenate([np.asarray(answered), np.asarray(abandoned)])
    edges = [float(edge) for edge in np.histogram_bin_edges(both, bins="auto")]
    if len(edges) > 61:
        edges = [float(edge) for edge in np.linspace(edges[0], edges[-1], 61)]
    axes.hist([answered, abandoned], bins=edges, label=[f"answered ({len(answered)})", f"abandoned ({len(abandoned)})"],
              color=[ANSWERED, ABANDONED], alpha=0.85)
    axes.axvline(settings.service_level_seconds, color="black", linestyle="--",
                 label=f"T = {settings.service_level_seconds} s")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("wait in the queue (s)", fontsize=FONT)
    axes.set_ylabel("calls", fontsize=FONT)
    axes.legend(fontsize=FONT - 1)
    return drawn


SlSeries = tuple[str, Sequence[dt.datetime], Sequence[float | None]]  # label, interval starts, service levels


def service_level_figure(total: SlSeries, queues: Sequence[SlSeries], settings: MetricsSettings, zone: ZoneInfo,
                         width: Width) -> Figure:
    """The service level per interval of all queues (black) and of each queue (up to
    MAX_QUEUE_LINES), against the target; an interval without one is a gap in its line."""
    drawn, axes = figure()
    label, starts, levels = total
    if all(level is None for level in levels):
        nothing(axes, "no interval with a service level")
        return drawn
    # A point in the middle of its interval, like the offered plot's abandoned line.
    def middles(at: Sequence[dt.datetime]) -> list[float]:
        return [(x_of(start) + x_of(interval_end(start.astimezone(zone), width))) / 2 for start in at]

    lines = list(queues) if 1 < len(queues) <= MAX_QUEUE_LINES else []
    for name, at, values in lines:
        axes.plot(middles(at), [_nan(value) for value in values], ".-", linewidth=1, alpha=0.75, label=name)
    axes.plot(middles(starts), [_nan(value) for value in levels], "o-", color="black", linewidth=2, markersize=4,
              label=label)
    target = settings.service_level_target
    axes.axhline(target, color=TARGET, linestyle="--", label=f"target {target:.0%}")
    axes.set_ylim(0, 1.05)
    axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    axes.set_ylabel(f"answered within {settings.service_level_seconds} s", fontsize=FONT)
    time_axis(axes, starts[0], starts[-1], zone, width)
    _legend_below(drawn, axes, len(lines) + 2)
    return drawn


def abandon_figure(answered: Sequence[float], abandoned_waits: Sequence[float], other: Sequence[float]) -> Figure:
    """The Kaplan-Meier share of callers who would have hung up by each wait (answered and
    overflowed callers censored at their wait), with Erlang A's exponential patience."""
    drawn, axes = figure()
    abandoned = np.asarray(abandoned_waits)
    censored = np.concatenate([np.asarray(answered), np.asarray(other)])
    if not len(abandoned):
        nothing(axes, "nobody abandoned")
        return drawn
    survival = ecdf(CensoredData(uncensored=abandoned, right=censored)).sf
    times = np.concatenate([[0.0], survival.quantiles])
    gone = np.concatenate([[0.0], 1.0 - survival.probabilities])
    axes.step(times, gone, where="post", color=ABANDONED, linewidth=2,
              label=f"observed (Kaplan-Meier; {len(abandoned)} abandons, {len(censored)} censored)")
    patience = estimate_patience(abandoned_waits, chain(answered, other))
    if patience is not None:
        grid = np.linspace(0.0, float(times[-1]), 200)
        axes.plot(grid, 1.0 - np.exp(-grid / patience), "--", color="grey",
                  label=f"exponential, mean patience {patience:.0f} s")
    axes.set_ylim(0, 1.0)
    axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    axes.set_xlabel("wait in the queue (s)", fontsize=FONT)
    axes.set_ylabel("would have hung up", fontsize=FONT)
    axes.legend(loc="lower right", fontsize=FONT - 1)
    return drawn


def funnel_figure(nodes: Sequence[FunnelNode]) -> Figure:
    """One menu version's nodes top to bottom in the order given (the flow's): callers who
    reached each, of them those served there without an agent and those who gave up there."""
    drawn, axes = figure(max(2.6, 0.32 * len(nodes) + 1.4))
    names = [f"{node.node} ({node.node_type})" for node in nodes]
    places = np.arange(len(nodes))
    axes.barh(places, [node.reached for node in nodes], color=OFFERED, label="reached")
    axes.barh(places, [node.contained for node in nodes], height=0.4, align="edge", color=CONTAINED,
              label="contained (served without an agent)")
    axes.barh(places, [node.gave_up for node in nodes], height=-0.4, align="edge", color=ABANDONED,
              label="gave up here")
    axes.set_yticks(places, names)
    axes.invert_yaxis()
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("callers", fontsize=FONT)
    _legend_below(drawn, axes, 3)
    return drawn
