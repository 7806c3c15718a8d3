"""`ivr report html`: the queue and menu figures of some days as an HTML page with plots
(ivr.metrics.html_report), written into a directory: open its index.html in a browser."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import cast

import click

from ivr.cli.common import UnknownQueue, check_queue, config_option, configured_queue, db_option, fail, load
from ivr.cli.export import (
    MINUTES,
    days,
    hotline_option,
    jobs_option,
    minutes_option,
    queue_option,
    since_option,
    until_option,
)


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
    """Offered vs answered, waits, service level, abandon curve and menu funnel as an HTML
    page with PNG plots, plus tables per queue and day."""
    from ivr.metrics.exporting import Job, cpus, read_funnel
    from ivr.metrics.html_report import ReportInput, leg_figures, render_report
    from ivr.metrics.model import Width
    from ivr.metrics.source import Hotlines, NoDatabase, Scope, Source, bulk_reading, consume, store_target
    from ivr.records.store import CallStore, StoreError
    from survey_engine.store import SurveyStore

    command = "report html"
    loaded = load(command, config_dir)
    try:
        target = store_target(loaded, db)
    except NoDatabase as exc:
        fail(command, str(exc))
    first, last = days(command, since, until)
    settings = loaded.server.metrics
    width = cast(Width, MINUTES[minutes] if minutes is not None else settings.interval_minutes)
    hotlines = Hotlines.from_config(loaded)
    scope = Scope(first, last, queue, hotline)

    async def run() -> ReportInput:
        store = await CallStore.open(target)
        try:
            if not configured_queue(loaded, queue):
                check_queue(loaded, queue, await store.queue_names())
            source = Source(store, hotlines, settings, scope, surveys=SurveyStore(store.engine))
            responses = await source.responses()
            # The funnel is counted (in worker processes, for many calls) while the legs are read.
            figures, funnel = await asyncio.gather(
                consume(source.legs(), lambda legs: leg_figures(legs, settings, width, responses)),
                read_funnel(Job(target, hotlines.zones, settings, scope, "ivr"), source, jobs=jobs or cpus()))
        finally:
            await store.close()
        filters = "".join(f", {name} {value}" for name, value in (("queue", queue), ("hotline", hotline)) if value)
        notes = [f"dialed numbers not in hotlines.yaml, counted in UTC: {', '.join(sorted(hotlines.unknown))}"
                 ] if hotlines.unknown else []
        return ReportInput(
            title="Queue and menu report", period=f"{first or 'first call'} to {last or 'last call'}{filters}",
            zone=hotlines.planning_zone(hotline), settings=settings, width=width, figures=figures, funnel=funnel,
            notes=notes,
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
