"""`ivr export calls|legs|intervals|agents|ivr`: the call records and the figures built on them,
as CSV or JSON Lines, for planners' spreadsheets and other tools.

- calls: one row per call that started on the days (its menu path, queues, when it entered
  the first queue, was answered, left the last one);
- legs: one row per stay in a queue, with enqueue, answer and end times (UTC) and every
  per-leg figure, so that other attributions than "the interval it entered the queue in"
  can be computed, and the agent's wrap-up code and note (calls: the last answered leg's):
  the code, `no_code` (none picked by the deadline), `pending`, or empty (none asked);
- intervals: per queue and interval, with the wait percentiles as columns, and a zero row
  for each interval between a queue's first and last one in which no call came;
- agents: per agent and interval: calls, handle time, logged-in time, occupancy;
- ivr: the menu funnel, a `node` row per menu node followed by an `option` row per choice.

Days are local to each hotline (inclusive). Progress goes to stderr, and only on a terminal,
so it never mixes with the data.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, cast

import click

from ivr.cli.common import (
    DEFAULT_CONFIG,
    UnknownQueue,
    check_queue,
    config_option,
    configured_queue,
    db_option,
    fail,
    load,
    reader_gone,
)
from ivr.metrics.model import EXPORT_KINDS as KINDS
from ivr.metrics.model import ExportKind as Kind

if TYPE_CHECKING:
    from ivr.config.loader import LoadedConfig
    from ivr.metrics.model import Width

MINUTES = {"15": 15, "30": 30, "60": 60, "day": 1440}


def days(command: str, since: dt.datetime | None, until: dt.datetime | None) -> tuple[dt.date | None, dt.date | None]:
    first = since.date() if since is not None else None
    last = until.date() if until is not None else None
    if first is not None and last is not None and last < first:
        fail(command, f"--until {last} is before --since {first}")
    return first, last


def reading(command: str, loaded: LoadedConfig, db: str | None, since: dt.datetime | None,
            until: dt.datetime | None, minutes: str | None) -> tuple[Path | str, dt.date | None, dt.date | None, Width]:
    """What a command reading the store was given: the store (no database: exit 2), the first
    and last day, and the interval width (--minutes, else server.yaml's)."""
    from ivr.metrics.source import NoDatabase, store_target

    try:
        target = store_target(loaded, db)
    except NoDatabase as exc:
        fail(command, str(exc))
    first, last = days(command, since, until)
    width = cast("Width", MINUTES[minutes] if minutes is not None else loaded.server.metrics.interval_minutes)
    return target, first, last, width


def clock(now: dt.datetime | None) -> dt.datetime:
    """--now (UTC when it has no offset), else the time now."""
    if now is None:
        return dt.datetime.now(dt.timezone.utc)
    return now if now.tzinfo is not None else now.replace(tzinfo=dt.timezone.utc)


@contextlib.contextmanager
def progress(description: str) -> Iterator[tuple[Callable[[int], None], Callable[[int], None]]]:
    """(set the total, advance by n) of a progress bar on stderr, drawn only on a terminal."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=console, transient=True, disable=not console.is_terminal)
    task = bar.add_task(description, total=None)
    with bar:
        yield (lambda total: bar.update(task, total=total)), (lambda n: bar.advance(task, n))


since_option = click.option("--since", type=click.DateTime(["%Y-%m-%d"]), default=None,
                            help="First day, inclusive (local to each hotline).  [default: the first call]")
until_option = click.option("--until", type=click.DateTime(["%Y-%m-%d"]), default=None,
                            help="Last day, inclusive.  [default: the last call]")
queue_option = click.option("--queue", default=None, help="Only this queue.")
hotline_option = click.option("--hotline", default=None, help="Only calls to this dialed number.")
minutes_option = click.option("--minutes", type=click.Choice(list(MINUTES)), default=None,
                              help="Interval length.  [default: server.yaml metrics.interval_minutes]")
jobs_option = click.option(
    "--jobs", type=click.IntRange(min=0), default=0, show_default=True,
    help="Processes that read a large range together (from 100,000 calls on); 0: one per CPU, 1: this one only.")
# Tests set the clock (agent presence is cut at now); an admin never needs to.
now_option = click.option("--now", type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S"]),
                          default=None, hidden=True)


@click.command("export")
@click.argument("kind", type=click.Choice(KINDS))
@config_option
@db_option
@since_option
@until_option
@queue_option
@hotline_option
@minutes_option
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file.  [default: standard output]")
@click.option("--unmasked", is_flag=True,
              help="calls: the caller number as stored (the privacy policy decided what was stored: a masked "
                   "or hashed number stays so).  Default: masked to its last 4 digits.")
@jobs_option
@now_option
def export(
    kind: Kind, config_dir: Path, db: str | None, since: dt.datetime | None, until: dt.datetime | None,
    queue: str | None, hotline: str | None, minutes: str | None, fmt: str, output: Path | None, unmasked: bool,
    jobs: int, now: dt.datetime | None,
) -> None:
    """Export calls, queue legs, interval figures, agent figures or the IVR funnel."""
    from ivr.metrics.exporting import Job, cpus, write_export
    from ivr.metrics.source import Hotlines, Scope, bulk_reading

    command = f"export {kind}"
    if kind == "ivr" and queue is not None:
        fail(command, "the IVR funnel is per hotline and menu version: --queue does not apply")
    loaded = load(command, config_dir)
    if kind == "agents" and queue is not None and loaded.routing is None:
        fail(command, "--queue needs routing.yaml to know which agents serve the queue")
    target, first, last, width = reading(command, loaded, db, since, until, minutes)
    settings = loaded.server.metrics
    hotlines = Hotlines.from_config(loaded)
    # Agents count the calls of every queue they took: their queue is chosen from routing.yaml.
    scope = Scope(first, last, None if kind == "agents" else queue, hotline)

    job = Job(target, hotlines.zones, settings, scope, kind, fmt, width, unmasked, now=clock(now))

    async def run(out: IO[str]) -> int:
        from ivr.metrics.source import Source
        from ivr.records.store import CallStore
        from survey_engine.store import SurveyStore

        store = await CallStore.open(target)
        try:
            if not configured_queue(loaded, queue):
                check_queue(loaded, queue, await store.queue_names())
            with progress(f"export {kind}") as (total, advance):
                source = Source(store, hotlines, settings, scope, surveys=SurveyStore(store.engine), on_read=advance)
                total(await source.count())
                return await write_export(job, source, out, jobs=jobs or cpus(), queue=queue,
                                          routing=loaded.routing, now=clock(now),
                                          scratch=None if output is None else output.parent)
        finally:
            await store.close()

    from ivr.records.store import StoreError

    try:
        with bulk_reading():
            if output is None:
                count = asyncio.run(run(sys.stdout))
            else:
                with open(output, "w", encoding="utf-8", newline="") as out:
                    count = asyncio.run(run(out))
    except (StoreError, UnknownQueue) as exc:
        fail(command, str(exc))
    except BrokenPipeError:
        reader_gone()
    except OSError as exc:  # the output file, or a SQLite file that cannot be opened
        fail(command, str(exc))
    if hotlines.unknown:
        click.echo(f"dialed numbers not in hotlines.yaml, counted in UTC: {', '.join(sorted(hotlines.unknown))}",
                   err=True)
    click.echo(f"{count} {kind} row(s)" + (f" written to {output}" if output is not None else ""), err=True)

