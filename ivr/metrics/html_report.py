"""`ivr report html`: an HTML page with PNG plots and tables of the main queue figures, the
staffing they called for and the IVR funnel, written into one directory (index.html beside
its PNG files, linked by relative path, so the directory can be copied or mailed whole).

Everything on the page is on one clock, the report's zone (`ReportInput.zone`): the legs are
read in it (`Source(zone=...)`), so a queue fed by hotlines in two zones has one row per day.

The page, top to bottom: the title with the period and the clock; a summary (offered,
answered, service level, abandon rate, AHT); the plots (report_plots: offered vs answered,
service level vs target, the wait distribution, the abandon curve); per queue and day; the
staffing per queue and interval (report_staffing: what `ivr staffing` prints, with the
agents' occupancy); per queue and interval; the menu funnel of each hotline and menu version
in the flow's order (ivr_funnel.flow_order).
"""

from __future__ import annotations

import datetime as dt
from array import array
from collections import deque
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, select_autoescape

from ivr.config.models import MetricsSettings
from ivr.metrics import report_plots as plots
from ivr.metrics import report_tables as tables
from ivr.metrics.agents import agent_intervals
from ivr.metrics.buckets import interval_start, intervals, utc
from ivr.metrics.history import QueueHistory, pooled
from ivr.metrics.intervals import IntervalTable, IntervalTallies
from ivr.metrics.ivr_funnel import Funnel, in_flow_order
from ivr.metrics.model import DAY, AgentInterval, FunnelNode, LegRow, QueueInterval, Width
from ivr.metrics.report_staffing import Presence, StaffingFigures
from ivr.metrics.stats import share
from ivr.metrics.wrapups import WrapUpInterval, WrapUpTallies
from survey_engine.model import SurveyResponse

INDEX = "index.html"


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
    queues: Mapping[str, QueueHistory]  # each queue's legs pooled, as `ivr staffing` pools them
    agents: Sequence[AgentInterval] | None = None  # with presence: every agent's intervals
    wrap_ups: Sequence[WrapUpInterval] = ()  # calls by wrap-up code per queue and interval


class _Tally:
    """The report's figures of the legs of the selected queue(s), a leg at a time."""

    def __init__(self, settings: MetricsSettings, width: Width, responses: Iterable[SurveyResponse],
                 queue: str | None, wrap_up_queues: Collection[str] = ()) -> None:
        responses = list(responses)
        self.queue = queue
        self.wrap_ups = WrapUpTallies(width, wrap_up_queues)
        self.per_interval = IntervalTallies(settings, width, responses)
        self.per_day = IntervalTallies(settings, DAY, responses)
        self.waits = {"answered": array("d"), "abandoned": array("d"), "overflowed": array("d")}
        self.queues: dict[str, QueueHistory] = {}
        self.count = 0

    def counted(self, legs: Iterable[LegRow]) -> Iterator[LegRow]:
        """Every leg, unchanged, pooled into its queue's history; those of the selected
        queue(s) counted on the way."""
        queue, per_interval, per_day, waits = self.queue, self.per_interval, self.per_day, self.waits
        for leg in pooled(legs, self.queues):
            if queue is None or leg.queue == queue:
                per_interval.add(leg)
                per_day.add(leg)
                self.wrap_ups.add(leg)
                waits[leg.outcome].append(leg.wait_seconds)
                self.count += 1
            yield leg

    def figures(self, agents: Sequence[AgentInterval] | None) -> LegFigures:
        waits = self.waits
        return LegFigures(self.count, self.per_interval.table(), self.per_day.table(), waits["answered"],
                          waits["abandoned"], waits["overflowed"], self.queues, agents, self.wrap_ups.rows())


def leg_figures(legs: Iterable[LegRow], settings: MetricsSettings, width: Width,
                responses: Iterable[SurveyResponse] = (), *, queue: str | None = None,
                presence: Presence | None = None, wrap_up_queues: Collection[str] = ()) -> LegFigures:
    """The figures of the legs of `queue` (None: all), in one pass. Given the agents'
    presence, every leg (any queue: an agent's occupancy counts all its calls) also goes into
    the agents' intervals, on the grid of `presence` (whose zone must be the legs').
    `wrap_up_queues`: the queues with wrap-up codes (ivr.metrics.wrapups)."""
    tally = _Tally(settings, width, responses, queue, wrap_up_queues)
    counted = tally.counted(legs)
    if presence is None:
        deque(counted, maxlen=0)
        return tally.figures(None)
    agents = agent_intervals(counted, presence.events, presence.zone, presence.since, presence.until, width)
    return tally.figures(agents)


@dataclass(frozen=True)
class ReportInput:
    title: str
    period: str  # the days, as the page says them
    zone: ZoneInfo  # the one clock of everything on the page
    settings: MetricsSettings
    width: Width
    figures: LegFigures
    funnel: Funnel
    notes: Sequence[str] = ()
    node_order: Mapping[str, Sequence[str]] = field(default_factory=dict)  # hotline (as funnel rows name it) -> flow_order
    staffing: StaffingFigures | None = None  # None: no staffing section ...
    staffing_note: str = ""  # ... and why


@dataclass(frozen=True)
class Plot:
    file: str
    title: str
    caption: str


@dataclass(frozen=True)
class Table:
    id: str  # the element's id: the page's links and the tests find tables by it
    headers: Sequence[str]
    rows: Sequence[tables.Row]
    text_columns: int  # the first columns are text (left-aligned), the rest numbers
    empty: str  # what the table says when it has no rows


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
    """The rows' counts summed per interval of `width` in `zone` (the report's rows are all on
    its clock; a row on another would go to the interval of `zone` its start falls in), from
    the first to the last (an interval without calls gets zeros, so plots show the gap)."""
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


def _p90(table: IntervalTable) -> dict[tuple[str, dt.datetime], float | None]:
    return {(p.queue, utc(p.interval_start)): p.wait_seconds
            for p in table.percentiles if p.waits == "answered" and p.percentile == 90}


def _draw_plots(data: ReportInput, series: Sequence[Totals], out_dir: Path) -> list[Plot]:
    settings, zone, width = data.settings, data.zone, data.width
    rows = data.figures.per_interval.rows
    starts = [item.start for item in series]
    queues = sorted({row.queue for row in rows})
    per_queue = [(queue, [item.start for item in mine], [item.service_level for item in mine])
                 for queue in queues for mine in [totals([row for row in rows if row.queue == queue], zone, width)]]
    figures = data.figures
    drawn = [
        (Plot("offered_answered.png", f"Offered vs answered per {_width_name(width)}",
              "Calls that entered the queues (light) and were answered (dark, drawn over the offered bar: the "
              "light part left is what was not answered), abandoned (red), by the interval they entered the "
              "queue in."),
         plots.offered_figure(starts, [item.offered for item in series], [item.answered for item in series],
                              [item.abandoned for item in series], zone, width)),
        (Plot("service_level.png", "Service level vs target",
              f"Answered within {settings.service_level_seconds} s / (offered - short abandons) per "
              f"{_width_name(width)}, all queues (black) and each queue; the dashed line is the target."),
         plots.service_level_figure(("all queues" if len(queues) != 1 else queues[0], starts,
                                     [item.service_level for item in series]), per_queue, settings, zone, width)),
        (Plot("wait_distribution.png", "Wait distribution", "How long answered and abandoned callers waited."),
         plots.waits_figure(figures.answered_waits, figures.abandoned_waits, settings)),
        (Plot("abandon_curve.png", "Abandon curve", "The share of callers who would have hung up by each wait "
              "(Kaplan-Meier: answered and overflowed callers count as still waiting up to their wait)."),
         plots.abandon_figure(figures.answered_waits, figures.abandoned_waits, figures.other_waits)),
    ]
    for plot, figure in drawn:
        plots.save(figure, out_dir / plot.file)
    return [plot for plot, _ in drawn]


def _width_name(width: Width) -> str:
    return "day" if width == DAY else f"{width}-minute interval"


def funnels(data: ReportInput) -> dict[tuple[str, str], list[FunnelNode]]:
    """The funnel's nodes per hotline and menu version, each in its flow's order."""
    grouped: dict[tuple[str, str], list[FunnelNode]] = {}
    for node in data.funnel.nodes:
        grouped.setdefault((node.hotline, node.menu_version), []).append(node)
    return {key: in_flow_order(nodes, data.node_order.get(key[0], ())) for key, nodes in grouped.items()}


def _draw_funnels(grouped: Mapping[tuple[str, str], Sequence[FunnelNode]], out_dir: Path) -> list[Plot]:
    drawn = []
    for number, ((hotline, version), nodes) in enumerate(grouped.items(), start=1):
        plot = Plot(f"funnel_{number}.png", f"Menu funnel: {hotline}, menu {version}",
                    f"{nodes[0].calls:,} calls; nodes in the order the flow defines them: callers who "
                    "reached each node, gave up there, or were served there without an agent.")
        plots.save(plots.funnel_figure(nodes), out_dir / plot.file)
        drawn.append(plot)
    return drawn


def _tables(data: ReportInput, series: Sequence[Totals],
            grouped: Mapping[tuple[str, str], Sequence[FunnelNode]]) -> dict[str, Table]:
    figures = data.figures
    none = "no calls entered a queue"
    made = [
        Table("per-day", tables.DAY_HEADERS, tables.day_rows(figures.per_day.rows, _p90(figures.per_day)), 2, none),
        Table("per-queue-interval", tables.INTERVAL_HEADERS,
              tables.interval_rows(figures.per_interval.rows, _p90(figures.per_interval)), 2, none),
        Table("per-interval", ["interval start", "offered", "answered", "abandoned", "overflowed", "service level"],
              [[item.start.strftime("%a %Y-%m-%d %H:%M"), f"{item.offered:,}", f"{item.answered:,}",
                f"{item.abandoned:,}", f"{item.overflowed:,}", tables.percent(item.service_level)] for item in series],
              1, none),
        Table("wrap-ups", tables.WRAP_UP_HEADERS, tables.wrap_up_rows(figures.wrap_ups), 3,
              "no queue asks for wrap-up codes, or none of their calls was answered"),
        Table("funnel", tables.FUNNEL_HEADERS, tables.funnel_rows(node for nodes in grouped.values() for node in nodes),
              4, "No menu paths recorded."),
    ]
    if data.staffing is not None:
        made.append(Table("staffing", tables.STAFFING_HEADERS, tables.staffing_rows(data.staffing), 2,
                          "no interval to plan"))
    return {table.id: table for table in made}


def _staffing_goal(figures: StaffingFigures) -> str:
    target = figures.policy.target
    goal = (f"ASA at most {target.asa_seconds:g} s" if target.asa_seconds is not None
            else f"{tables.percent(target.service_level)} answered within {target.service_level_seconds:g} s")
    return (f"{tables.MODEL_NAMES[figures.policy.model]}, {goal}, occupancy at most "
            f"{tables.percent(target.max_occupancy)}, shrinkage {tables.percent(target.shrinkage)}")


def render_report(data: ReportInput, out_dir: Path) -> Path:
    """Write index.html and its PNG plots into `out_dir` (created); returns the page's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    series = totals(data.figures.per_interval.rows, data.zone, data.width)
    grouped = funnels(data)
    environment = Environment(loader=PackageLoader("ivr.metrics", "templates"),
                              autoescape=select_autoescape(["html"]))
    staffing = data.staffing
    page = environment.get_template("report.html").render(
        data=data,
        width_name=_width_name(data.width),
        cards=tables.summary(data.figures.per_day.rows).cards(data.settings.service_level_seconds),
        plots=_draw_plots(data, series, out_dir),
        funnel_plots=_draw_funnels(grouped, out_dir),
        tables=_tables(data, series, grouped),
        staffing_goal=None if staffing is None else _staffing_goal(staffing),
        short_intervals=None if staffing is None else sum(
            1 for row in staffing.rows if row.difference is not None and row.difference < 0),
        generated=dt.datetime.now(data.zone).strftime("%Y-%m-%d %H:%M %Z"),
    )
    index = out_dir / INDEX
    index.write_text(page, encoding="utf-8")
    return index
