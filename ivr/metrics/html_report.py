"""`ivr report html`: an HTML page with PNG plots and tables of the main queue figures and the
IVR funnel, written into one directory (index.html beside its PNG files, linked by relative
path, so the directory can be copied or mailed whole).

Plots (matplotlib, drawn on Figure objects with the Agg renderer: no display, no pyplot state):
- offered vs answered (and abandoned) per interval, all selected queues together;
- the wait distribution: histograms of answered and of abandoned waits, T marked;
- service level per interval against the target, all queues and each queue (up to 6);
- the abandon curve: the share of callers who would have hung up by each wait, the
  Kaplan-Meier estimate of patience (scipy.stats.ecdf; answered and overflowed callers are
  censored at their wait: they were still waiting then), with the exponential patience
  that Erlang A assumes (mean from erlang.estimate_patience) dashed beside it;
- the menu funnel of each hotline and menu version: callers who reached each node, and of
  them those who gave up there and those served without an agent (contained).
Tables: per queue and day, per interval (all queues), and the funnel's nodes.
"""

from __future__ import annotations

import datetime as dt
import math
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from jinja2 import Environment, PackageLoader, select_autoescape
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, DateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter
from scipy.stats import CensoredData, ecdf  # type: ignore[import-untyped]

from ivr.config.models import MetricsSettings
from ivr.metrics.buckets import interval_start, intervals, utc
from ivr.metrics.erlang import estimate_patience
from ivr.metrics.intervals import IntervalTable, IntervalTallies
from ivr.metrics.ivr_funnel import Funnel
from ivr.metrics.model import DAY, FunnelNode, LegRow, QueueInterval, Width
from ivr.metrics.stats import share
from survey_engine.model import SurveyResponse

INDEX = "index.html"
MAX_QUEUE_LINES = 6
_SIZE = (10.0, 4.0)  # inches; at _DPI a PNG of 1000 x 400 pixels
_DPI = 100


@dataclass(frozen=True)
class LegFigures:
    """What the report shows of the queue legs, made in one pass over them (`leg_figures`):
    the legs themselves are not kept, a month of a busy centre is millions of them."""

    legs: int
    per_interval: IntervalTable
    per_day: IntervalTable
    answered_waits: Sequence[float]
    abandoned_waits: Sequence[float]
    other_waits: Sequence[float]  # overflowed: censored in the abandon curve like the answered


def leg_figures(legs: Iterable[LegRow], settings: MetricsSettings, width: Width,
                responses: Iterable[SurveyResponse] = ()) -> LegFigures:
    responses = list(responses)
    per_interval = IntervalTallies(settings, width, responses)
    per_day = IntervalTallies(settings, DAY, responses)
    waits = {"answered": array("d"), "abandoned": array("d"), "overflowed": array("d")}
    count = 0
    for leg in legs:
        per_interval.add(leg)
        per_day.add(leg)
        waits[leg.outcome].append(leg.wait_seconds)
        count += 1
    return LegFigures(count, per_interval.table(), per_day.table(), waits["answered"], waits["abandoned"],
                      waits["overflowed"])


@dataclass(frozen=True)
class ReportInput:
    title: str
    period: str  # the days, as the page says them
    zone: ZoneInfo  # the clock the plots' time axes show
    settings: MetricsSettings
    width: Width
    figures: LegFigures
    funnel: Funnel
    notes: Sequence[str] = ()


@dataclass(frozen=True)
class Plot:
    file: str
    title: str
    caption: str


@dataclass(frozen=True)
class Totals:
    """All selected queues in one interval: sums of the queues' counts."""

    start: dt.datetime
    offered: int
    answered: int
    abandoned: int
    short_abandons: int
    overflowed: int
    answered_within_t: int

    @property
    def service_level(self) -> float | None:
        return share(self.answered_within_t, self.offered - self.short_abandons)


def totals(rows: Sequence[QueueInterval], zone: ZoneInfo, width: Width) -> list[Totals]:
    """The rows' counts summed per interval of `width` in `zone` (rows of hotlines in other
    zones go to the interval of `zone` their start falls in), from the first to the last (an
    interval without calls gets zeros, so plots show the gap)."""
    sums: dict[dt.datetime, list[int]] = {}
    for row in rows:
        values = sums.setdefault(utc(interval_start(row.interval_start, zone, width)), [0] * 6)
        for index, count in enumerate((row.offered, row.answered, row.abandoned, row.short_abandons,
                                       row.overflowed, row.answered_within_t)):
            values[index] += count
    if not sums:
        return []
    grid = intervals(min(sums), max(sums) + dt.timedelta(seconds=1), zone, width)
    return [Totals(start, *sums.get(utc(start), [0] * 6)) for start, _ in grid]


def _figure() -> tuple[Figure, Axes]:
    figure = Figure(figsize=_SIZE, dpi=_DPI, layout="constrained")
    return figure, figure.add_subplot()


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def _x(moment: dt.datetime) -> float:
    """A moment on matplotlib's date axis: days since its epoch, 1970-01-01 UTC."""
    return moment.timestamp() / 86400


def _time_axis(axes: Axes, zone: ZoneInfo) -> None:
    # matplotlib.dates has no type hints; both take the zone the axis labels are shown in.
    axes.xaxis.set_major_locator(AutoDateLocator(tz=zone))  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_formatter(DateFormatter("%m-%d %H:%M", tz=zone))  # type: ignore[no-untyped-call]
    axes.set_xlabel(f"interval start ({zone.key})")


def _nothing(axes: Axes, text: str) -> None:
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes, fontsize=14, color="grey")
    axes.set_xticks([])
    axes.set_yticks([])


def plot_offered(path: Path, series: Sequence[Totals], data: ReportInput) -> None:
    figure, axes = _figure()
    if not series:
        _nothing(axes, "no calls entered a queue")
    else:
        days = data.width / (24 * 60)
        starts = [_x(item.start) for item in series]
        axes.bar(starts, [item.offered for item in series], width=days, align="edge", color="#c6dbef",
                 edgecolor="#6baed6", label="offered")
        axes.bar(starts, [item.answered for item in series], width=days * 0.6, align="edge", color="#2171b5",
                 label="answered")
        axes.plot([start + days / 2 for start in starts], [item.abandoned for item in series],
                  "o-", color="#cb181d", markersize=3, label="abandoned")
        _time_axis(axes, data.zone)
        axes.set_ylabel("calls")
        axes.legend(loc="upper left")
    axes.set_title(f"Offered vs answered per {data.width}-minute interval")
    figure.savefig(path)


def plot_waits(path: Path, figures: LegFigures, settings: MetricsSettings) -> None:
    figure, axes = _figure()
    answered, abandoned = figures.answered_waits, figures.abandoned_waits
    if not answered and not abandoned:
        _nothing(axes, "no answered or abandoned calls")
    else:
        both = np.concatenate([np.asarray(answered), np.asarray(abandoned)])
        edges = [float(edge) for edge in np.histogram_bin_edges(both, bins="auto")]
        if len(edges) > 61:
            edges = [float(edge) for edge in np.linspace(edges[0], edges[-1], 61)]
        axes.hist([answered, abandoned], bins=edges, label=[f"answered ({len(answered)})", f"abandoned ({len(abandoned)})"],
                  color=["#2171b5", "#cb181d"], alpha=0.8)
        axes.axvline(settings.service_level_seconds, color="black", linestyle="--",
                     label=f"T = {settings.service_level_seconds} s")
        axes.set_xlabel("wait in the queue (s)")
        axes.set_ylabel("calls")
        axes.legend()
    axes.set_title("Wait distribution")
    figure.savefig(path)


def plot_service_level(path: Path, series: Sequence[Totals], rows: Sequence[QueueInterval], data: ReportInput) -> None:
    figure, axes = _figure()
    # An interval without a service level is a gap in its line (nan), not a line across it.
    points = [(_x(item.start), _nan(item.service_level)) for item in series]
    if all(math.isnan(value) for _, value in points):
        _nothing(axes, "no interval with a service level")
    else:
        queues = sorted({row.queue for row in rows})
        if 1 < len(queues) <= MAX_QUEUE_LINES:
            for queue in queues:
                mine = [(_x(item.start), _nan(item.service_level))
                        for item in totals([row for row in rows if row.queue == queue], data.zone, data.width)]
                axes.plot([at for at, _ in mine], [value for _, value in mine], ".-", linewidth=1, alpha=0.7,
                          label=queue)
        axes.plot([at for at, _ in points], [value for _, value in points], "o-", color="black", linewidth=2,
                  label="all queues" if len(queues) > 1 else queues[0])
        target = data.settings.service_level_target
        axes.axhline(target, color="#cb181d", linestyle="--", label=f"target {target:.0%}")
        axes.set_ylim(0, 1.05)
        axes.yaxis.set_major_formatter(PercentFormatter(1.0))
        axes.set_ylabel(f"answered within {data.settings.service_level_seconds} s")
        _time_axis(axes, data.zone)
        axes.legend(loc="lower left", fontsize="small")
    axes.set_title("Service level vs target (answered within T / (offered - short abandons))")
    figure.savefig(path)


def plot_abandon_curve(path: Path, figures: LegFigures) -> None:
    figure, axes = _figure()
    abandoned = np.asarray(figures.abandoned_waits)
    censored = np.concatenate([np.asarray(figures.answered_waits), np.asarray(figures.other_waits)])
    if not len(abandoned):
        _nothing(axes, "nobody abandoned")
    else:
        survival = ecdf(CensoredData(uncensored=abandoned, right=censored)).sf
        times = np.concatenate([[0.0], survival.quantiles])
        gone = np.concatenate([[0.0], 1.0 - survival.probabilities])
        axes.step(times, gone, where="post", color="#cb181d", linewidth=2,
                  label=f"observed (Kaplan-Meier; {len(abandoned)} abandons, {len(censored)} censored)")
        patience = estimate_patience(figures.abandoned_waits, chain(figures.answered_waits, figures.other_waits))
        if patience is not None:
            grid = np.linspace(0.0, float(times[-1]), 200)
            axes.plot(grid, 1.0 - np.exp(-grid / patience), "--", color="grey",
                      label=f"exponential, mean patience {patience:.0f} s")
        axes.set_ylim(0, 1.0)
        axes.yaxis.set_major_formatter(PercentFormatter(1.0))
        axes.set_xlabel("wait in the queue (s)")
        axes.set_ylabel("callers who would have hung up")
        axes.legend(loc="lower right", fontsize="small")
    axes.set_title("Abandon curve: share of callers abandoned by each wait")
    figure.savefig(path)


def plot_funnel(path: Path, nodes: Sequence[FunnelNode], title: str) -> None:
    height = max(3.0, 0.35 * len(nodes) + 1.2)
    figure = Figure(figsize=(_SIZE[0], height), dpi=_DPI, layout="constrained")
    axes = figure.add_subplot()
    names = [f"{node.node} ({node.node_type})" for node in nodes]
    places = np.arange(len(nodes))
    axes.barh(places, [node.reached for node in nodes], color="#c6dbef", edgecolor="#6baed6", label="reached")
    axes.barh(places, [node.contained for node in nodes], height=0.4, align="edge", color="#41ab5d",
              label="contained (served without an agent)")
    axes.barh(places, [node.gave_up for node in nodes], height=-0.4, align="edge", color="#cb181d",
              label="gave up here")
    axes.set_yticks(places, names)
    axes.invert_yaxis()
    axes.set_xlabel("callers")
    axes.legend(loc="lower right", fontsize="small")
    axes.set_title(title)
    figure.savefig(path)


# --- the page --------------------------------------------------------------------------------


def _number(value: float | None, places: int = 1) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{places}f}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _day_rows(rows: Sequence[QueueInterval], p90: dict[tuple[str, str, dt.datetime], float | None]) -> list[list[str]]:
    return [
        [row.queue, row.interval_start.strftime("%Y-%m-%d"), str(row.offered), str(row.answered),
         f"{row.abandoned} ({row.short_abandons})", str(row.overflowed), _percent(row.service_level),
         _number(row.asa_seconds), _number(p90.get((row.queue, row.timezone, utc(row.interval_start)))),
         _number(row.aht_seconds), str(row.transfers), str(row.repeat_calls), _percent(row.csat)]
        for row in rows
    ]


def render_report(data: ReportInput, out_dir: Path) -> Path:
    """Write index.html and its PNG plots into `out_dir` (created); returns the page's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = data.settings
    per_interval = data.figures.per_interval.rows
    series = totals(per_interval, data.zone, data.width)
    days = data.figures.per_day
    p90 = {(p.queue, p.timezone, utc(p.interval_start)): p.wait_seconds
           for p in days.percentiles if p.waits == "answered" and p.percentile == 90}

    plots = [
        Plot("offered_answered.png", "Offered vs answered", "Calls entering the queues per interval (light), "
             "answered (dark) and abandoned (red), counted in the interval they entered the queue in."),
        Plot("wait_distribution.png", "Wait distribution", "How long answered and abandoned callers waited."),
        Plot("service_level.png", "Service level vs target",
             f"Answered within {settings.service_level_seconds} s / (offered - short abandons) per interval."),
        Plot("abandon_curve.png", "Abandon curve", "The share of callers who would have hung up by each wait "
             "(Kaplan-Meier: answered and overflowed callers count as still waiting up to their wait)."),
    ]
    plot_offered(out_dir / plots[0].file, series, data)
    plot_waits(out_dir / plots[1].file, data.figures, settings)
    plot_service_level(out_dir / plots[2].file, series, per_interval, data)
    plot_abandon_curve(out_dir / plots[3].file, data.figures)

    funnels: dict[tuple[str, str], list[FunnelNode]] = {}
    for node in data.funnel.nodes:
        funnels.setdefault((node.hotline, node.menu_version), []).append(node)
    funnel_plots = []
    for number, ((hotline, version), nodes) in enumerate(funnels.items(), start=1):
        plot = Plot(f"funnel_{number}.png", f"Menu funnel: {hotline}, menu {version}",
                    f"{nodes[0].calls} calls; callers who reached each node, gave up there, or were served "
                    "without an agent.")
        plot_funnel(out_dir / plot.file, nodes, plot.title)
        funnel_plots.append(plot)

    environment = Environment(loader=PackageLoader("ivr.metrics", "templates"),
                              autoescape=select_autoescape(["html"]))
    page = environment.get_template("report.html").render(
        data=data,
        plots=plots,
        funnel_plots=funnel_plots,
        day_rows=_day_rows(days.rows, p90),
        interval_rows=[[item.start.strftime("%Y-%m-%d %H:%M"), str(item.offered), str(item.answered),
                        str(item.abandoned), str(item.overflowed), _percent(item.service_level)] for item in series],
        funnel_rows=[[node.hotline, node.menu_version, node.node, node.node_type, str(node.reached),
                      str(node.timed_out), str(node.invalid), str(node.gave_up), str(node.contained)]
                     for node in data.funnel.nodes],
        generated=dt.datetime.now(data.zone).strftime("%Y-%m-%d %H:%M %Z"),
    )
    index = out_dir / INDEX
    index.write_text(page, encoding="utf-8")
    return index
