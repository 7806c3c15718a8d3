"""`ivr report html`: the queue and menu figures of some days as an HTML page with plots
(ivr.metrics.html_report), written into a directory: open its index.html in a browser.
`ivr report wrapups`: calls by wrap-up code per queue and interval (ivr.metrics.wrapups)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ivr.cli.common import UnknownQueue, check_queue, config_option, configured_queue, db_option, fail, load
from ivr.cli.export import (
    clock,
    hotline_option,
    jobs_option,
    minutes_option,
    now_option,
    queue_option,
    reading,
    since_option,
    until_option,
)

if TYPE_CHECKING:
    from ivr.config.loader import LoadedConfig
    from ivr.metrics.wrapups import WrapUpInterval


def wrap_up_queues(loaded: LoadedConfig) -> set[str]:
    """The queues routing.yaml gives wrap-up codes."""
    routing = loaded.routing
    return set() if routing is None else {name for name, queue in routing.queues.items() if queue.wrap_up is not None}


def node_orders(loaded: LoadedConfig, dialed: set[str]) -> dict[str, list[str]]:
    """Each dialed hotline number's flow nodes in the flow's order (ivr_funnel.flow_order)."""
    from ivr.metrics.ivr_funnel import flow_order

    orders = {}
    for number in dialed:
        found = loaded.hotline_for(number)
        if found is not None:
            orders[number] = flow_order(loaded.flow_for(found[1]), loaded.entry_for(found[1]))
    return orders


@click.command("html")
@config_option
@db_option
@since_option
@until_option
@queue_option
@hotline_option
@minutes_option
@jobs_option
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=Path("report"), show_default=True,
              help="Directory for index.html and its PNG plots (created; files of an earlier report replaced).")
def report_html(
    config_dir: Path, db: str | None, since: dt.datetime | None, until: dt.datetime | None, queue: str | None,
    hotline: str | None, minutes: str | None, jobs: int, output: Path,
) -> None:
    """Offered vs answered, service level, waits, abandon curve, staffing, wrap-up codes and menu
    funnel as an HTML page with PNG plots and tables, all on one clock."""
    from ivr.metrics.exporting import Job, cpus, read_funnel
    from ivr.metrics.history import queues_of
    from ivr.metrics.html_report import ReportInput, leg_figures, render_report
    from ivr.metrics.report_staffing import Presence, staffing_figures
    from ivr.metrics.source import Hotlines, Scope, Source, bulk_reading, consume
    from ivr.metrics.staffing import policy_of
    from ivr.records.store import CallStore, StoreError
    from survey_engine.store import SurveyStore

    command = "report html"
    loaded = load(command, config_dir)
    target, first, last, width = reading(command, loaded, db, since, until, minutes)
    settings = loaded.server.metrics
    hotlines = Hotlines.from_config(loaded)
    scope = Scope(first, last, queue, hotline)
    # One clock for everything on the page: a queue fed by hotlines in two zones gets one row per day.
    zone = hotlines.planning_zone(hotline)
    # Staffing plans every hotline's calls (agents serve a queue whatever number was dialed):
    # with --hotline the page leaves it out rather than plan for part of the load.
    planned = hotline is None

    async def run() -> ReportInput:
        store = await CallStore.open(target)
        try:
            if not configured_queue(loaded, queue):
                check_queue(loaded, queue, await store.queue_names())
            # Every queue's legs: an agent's occupancy counts all its calls; the figures keep --queue's.
            source = Source(store, hotlines, settings, replace(scope, queue=None), surveys=SurveyStore(store.engine),
                            zone=zone)
            responses = await source.responses()
            presence = None
            if planned and loaded.routing is not None:
                events, start, end = await source.agent_events(zone, dt.datetime.now(dt.timezone.utc))
                presence = Presence(events, zone, start, end, queues_of(loaded.routing))
            # The funnel is counted (in worker processes, for many calls) while the legs are read.
            figures, funnel = await asyncio.gather(
                consume(source.legs(wrap_ups=True), lambda legs: leg_figures(
                    legs, settings, width, responses, queue=queue, presence=presence,
                    wrap_up_queues=wrap_up_queues(loaded))),
                read_funnel(Job(target, hotlines.zones, settings, scope, "ivr", zone=zone),
                            Source(store, hotlines, settings, scope, zone=zone), jobs=jobs or cpus()))
        finally:
            await store.close()
        filters = "".join(f", {name} {value}" for name, value in (("queue", queue), ("hotline", hotline)) if value)
        notes = [f"dialed numbers not in hotlines.yaml, counted in UTC: {', '.join(sorted(hotlines.unknown))}"
                 ] if hotlines.unknown else []
        staffing = None
        if planned:
            policy = policy_of(loaded.server.staffing, width)
            staffing = staffing_figures(figures.per_interval.rows, figures.queues, figures.agents, presence, policy)
        return ReportInput(
            title="Queue and menu report", period=f"{first or 'first call'} to {last or 'last call'}{filters}",
            zone=zone, settings=settings, width=width, figures=figures, funnel=funnel, notes=notes,
            node_order=node_orders(loaded, {node.hotline for node in funnel.nodes}), staffing=staffing,
            staffing_note="" if planned else "Left out with --hotline: agents serve a queue whatever number the "
            "caller dialed, so staffing is planned on every hotline's calls (run the report without --hotline).",
        )

    try:
        with bulk_reading():
            data = asyncio.run(run())
        index = render_report(data, output)
    except (StoreError, UnknownQueue) as exc:
        fail(command, str(exc))
    except OSError as exc:
        fail(command, f"cannot write the report into {output}: {exc}")
    click.echo(f"{index} ({data.figures.legs} queue legs); open it in a browser")


WRAP_UP_COLUMNS = ("queue", "timezone", "interval_start", "interval_end", "interval_minutes", "answered", "coded",
                   "no_code", "pending", "compliance", "code", "calls")


@click.command("wrapups")
@config_option
@db_option
@since_option
@until_option
@queue_option
@hotline_option
@minutes_option
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True,
              help="csv: one row per queue, interval and code (the interval's counts repeated on each).")
@now_option
def report_wrapups(
    config_dir: Path, db: str | None, since: dt.datetime | None, until: dt.datetime | None, queue: str | None,
    hotline: str | None, minutes: str | None, fmt: str, now: dt.datetime | None,
) -> None:
    """Answered calls by wrap-up code per queue and interval (each hotline's clock).

    \b
    no code         = asked for a code, and the time to pick one passed without
    pending         = asked, and there is still time
    code compliance = coded / answered
    """
    from ivr.metrics.source import Hotlines, Scope, Source, bulk_reading, consume
    from ivr.metrics.wrapups import wrap_up_intervals
    from ivr.records.store import CallStore, StoreError

    command = "report wrapups"
    loaded = load(command, config_dir)
    target, first, last, width = reading(command, loaded, db, since, until, minutes)
    settings = loaded.server.metrics
    hotlines = Hotlines.from_config(loaded)
    asked = wrap_up_queues(loaded)

    async def run() -> list[WrapUpInterval]:
        store = await CallStore.open(target)
        try:
            if not configured_queue(loaded, queue):
                check_queue(loaded, queue, await store.queue_names())
            source = Source(store, hotlines, settings, Scope(first, last, queue, hotline))
            return await consume(source.legs(wrap_ups=True, now=clock(now)),
                                 lambda legs: wrap_up_intervals(legs, width, asked))
        finally:
            await store.close()

    try:
        with bulk_reading():
            rows = asyncio.run(run())
    except (StoreError, UnknownQueue) as exc:
        fail(command, str(exc))
    if hotlines.unknown:
        click.echo(f"dialed numbers not in hotlines.yaml, counted in UTC: {', '.join(sorted(hotlines.unknown))}",
                   err=True)
    if fmt == "json":
        click.echo(json.dumps([_wrap_up_json(row) for row in rows], ensure_ascii=False, indent=2))
    elif fmt == "csv":
        from ivr.metrics.export import CsvWriter
        from ivr.metrics.wrapups import flat_rows

        writer = CsvWriter(sys.stdout, WRAP_UP_COLUMNS)
        for row, code, calls in flat_rows(rows):
            writer.write([row.queue, row.timezone, row.interval_start.isoformat(), row.interval_end.isoformat(),
                          row.interval_minutes, row.answered, row.coded, row.no_code, row.pending,
                          None if row.compliance is None else round(row.compliance, 4), code, calls])
    else:
        period = f"{first or 'first call'} to {last or 'last call'}"
        filters = "".join(f", {name} {value}" for name, value in (("queue", queue), ("hotline", hotline)) if value)
        _print_wrap_ups(rows, f"Wrap-up codes per queue and interval, {period}{filters}")


def _wrap_up_json(row: WrapUpInterval) -> dict[str, object]:
    return {
        "queue": row.queue, "timezone": row.timezone, "interval_start": row.interval_start.isoformat(),
        "interval_end": row.interval_end.isoformat(), "interval_minutes": row.interval_minutes,
        "answered": row.answered, "coded": row.coded, "no_code": row.no_code, "pending": row.pending,
        "compliance": row.compliance, "codes": dict(row.codes),
    }


def _print_wrap_ups(rows: list[WrapUpInterval], title: str) -> None:
    """One line per queue and interval; on a terminal as wide as it is, else as the table needs."""
    from rich.console import Console
    from rich.measure import Measurement
    from rich.table import Table

    from ivr.metrics.report_tables import WRAP_UP_HEADERS, wrap_up_rows

    table = Table(title=title, title_justify="left")
    for index, name in enumerate(WRAP_UP_HEADERS):
        table.add_column(name, justify="left" if index < 3 else "right", no_wrap=index < 2)
    for cells in wrap_up_rows(rows):
        table.add_row(*cells)
    console = Console(file=sys.stdout)
    if not console.is_terminal:
        console.width = max(console.width, Measurement.get(console, console.options.update_width(10_000),
                                                           table).maximum)
    console.print(table if rows else "no answered calls in queues with wrap-up codes")
