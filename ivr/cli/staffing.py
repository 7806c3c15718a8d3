"""`ivr staffing`: agents needed per queue and interval (Erlang C or Erlang A), next to the agents
that were logged in.

The load comes from a forecast file (--forecast) or from the call history. The history is read
by a loader handed to `staffing_command`; `staffing`, the command without one, needs --forecast.
Defaults come from server.yaml `staffing:` and `metrics.interval_minutes`; each has an option.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from ivr.cli.common import DEFAULT_CONFIG

from ivr.config.models import ServerConfig
from ivr.metrics.erlang import Model
from ivr.metrics.staffing import (
    EXPORT_COLUMNS,
    FORECAST_COLUMNS,
    ForecastError,
    IntervalLoad,
    StaffingPolicy,
    StaffingRow,
    export_values,
    plan,
    policy_of,
    read_forecast,
    short_intervals,
)

if TYPE_CHECKING:
    from rich.table import Table

    from ivr.config.loader import LoadedConfig



@dataclass(frozen=True)
class HistoryRequest:
    """What `ivr staffing` asks of the call history."""

    config: LoadedConfig
    since: dt.date | None  # first day, in each hotline's time zone; None: from the start
    until: dt.date | None  # last day, included; None: up to now
    queues: tuple[str, ...]  # empty: every queue
    interval_minutes: int
    db: str | None = None  # --db: a SQLite path or a postgresql:// URL; None: the configuration's store


class HistoryUnavailable(Exception):
    """The history cannot be read (no database, ...): the message says why, for the admin."""


# Offered calls, AHT, patience and logged-in agents per queue and interval, from the store.
HistoryLoader = Callable[[HistoryRequest], Sequence[IntervalLoad]]


def _fail(message: str) -> NoReturn:
    click.echo(f"ivr staffing: {message}", err=True)
    sys.exit(2)


def _configuration(config_dir: Path, needed: bool) -> LoadedConfig | None:
    """The loaded configuration; None when the directory does not exist and is not needed
    (a forecast alone runs on the defaults). A directory that exists must load."""
    from ivr.config.loader import ConfigError, load_config

    if not config_dir.exists() and not needed:
        return None
    try:
        return load_config(config_dir)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        _fail(f"the configuration in {config_dir} does not load ({len(exc.problems)} problem(s) above)")


_MODEL_NAMES: dict[Model, str] = {"erlang_c": "Erlang C", "erlang_a": "Erlang A"}


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def _table(rows: Sequence[StaffingRow], policy: StaffingPolicy) -> Table:
    from rich.markup import escape
    from rich.table import Table

    target = policy.target
    goal = (
        f"ASA <= {target.asa_seconds:g} s" if target.asa_seconds is not None
        else f"{_percent(target.service_level)} answered within {target.service_level_seconds:g} s"
    )
    table = Table(
        title=f"Staffing ({_MODEL_NAMES[policy.model]}): {goal}, max occupancy {_percent(target.max_occupancy)}, "
              f"shrinkage {_percent(target.shrinkage)}",
        caption=f"{len(rows)} interval(s), {short_intervals(rows)} short of agents. "
                "Diff = logged in - agents (negative: short).",
    )
    for name in ("Queue", "Interval", "Offered", "AHT s", "Erlangs", "Model", "Agents", "Scheduled",
                 "SL", "ASA s", "Abandon", "Occupancy", "Logged in", "Diff"):
        table.add_column(name, justify="left" if name in ("Queue", "Interval", "Model") else "right")
    for row in rows:
        short = row.difference is not None and row.difference < 0
        table.add_row(
            escape(row.queue),
            row.start.strftime("%Y-%m-%d %H:%M%z"),
            f"{row.offered:g}",
            f"{row.aht_seconds:.0f}",
            f"{row.load_erlangs:.2f}",
            _MODEL_NAMES[row.model],
            str(row.agents),
            str(row.scheduled),
            _percent(row.service_level),
            f"{row.asa_seconds:.1f}",
            _percent(row.abandon_rate),
            _percent(row.occupancy),
            "" if row.staffed_agents is None else f"{row.staffed_agents:.1f}",
            "" if row.difference is None else f"[red]{row.difference:+.1f}[/red]" if short else f"{row.difference:+.1f}",
        )
    return table


def _plain_table(rows: Sequence[StaffingRow], policy: StaffingPolicy) -> str:
    """The table as plain text, as wide as it needs (for a file or a pipe)."""
    from rich.console import Console
    from rich.measure import Measurement

    table = _table(rows, policy)
    measuring = Console(file=io.StringIO(), width=10_000)
    width = Measurement.get(measuring, measuring.options, table).maximum
    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None).print(table)
    return buffer.getvalue()


def _render(rows: Sequence[StaffingRow], policy: StaffingPolicy, output_format: str) -> str:
    if output_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(EXPORT_COLUMNS)
        writer.writerows(export_values(row) for row in rows)
        return buffer.getvalue()
    if output_format == "jsonl":
        return "".join(json.dumps(dict(zip(EXPORT_COLUMNS, export_values(row)))) + "\n" for row in rows)
    return _plain_table(rows, policy)


def staffing_command(history: HistoryLoader | None = None) -> click.Command:
    """The `staffing` command, reading the call history with `history` when there is no --forecast."""

    @click.command("staffing")
    @click.option("--config", "config_dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_CONFIG,
                  show_default=True, help="Configuration directory: server.yaml gives the defaults below.")
    @click.option("--forecast", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
                  help=f"CSV with columns {', '.join(FORECAST_COLUMNS)}[, patience_seconds] instead of the history.")
    @click.option("--model", type=click.Choice(["erlang_c", "erlang_a"]), default=None,
                  help="Erlang A counts callers who give up.  [default: server.yaml staffing.model]")
    @click.option("--sl-target", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
                  help="Share of calls to answer within --sl-seconds.  [default: staffing.service_level_target]")
    @click.option("--sl-seconds", type=click.FloatRange(0), default=None,
                  help="T of the service level.  [default: staffing.service_level_seconds]")
    @click.option("--asa-target", type=click.FloatRange(0, min_open=True), default=None, metavar="SECONDS",
                  help="Plan for this mean wait of answered calls instead of the service level.")
    @click.option("--max-occupancy", type=click.FloatRange(0, 1, min_open=True), default=None,
                  help="Highest share of time agents may spend on calls.  [default: staffing.max_occupancy]")
    @click.option("--shrinkage", type=click.FloatRange(0, 1, max_open=True), default=None,
                  help="Share of paid time agents are not taking calls.  [default: staffing.shrinkage]")
    @click.option("--patience", type=click.FloatRange(0, min_open=True), default=None, metavar="SECONDS",
                  help="Erlang A: mean patience for intervals without an estimate (else they get Erlang C).")
    @click.option("--interval-minutes", type=click.IntRange(1, 1440), default=None,
                  help="Length of each interval.  [default: server.yaml metrics.interval_minutes]")
    @click.option("--since", "--from", "since", type=click.DateTime(["%Y-%m-%d"]), default=None,
                  help="First day (YYYY-MM-DD), as in the other commands (--from: the same).")
    @click.option("--until", "--to", "until", type=click.DateTime(["%Y-%m-%d"]), default=None,
                  help="Last day, included (--to: the same).")
    @click.option("--db", default=None, metavar="PATH_OR_URL",
                  help="Call-record store: a SQLite file or a postgresql:// URL.  [default: the --config's store]")
    @click.option("--queue", "queues", multiple=True, metavar="NAME", help="Only this queue (repeatable).")
    @click.option("--format", "output_format", type=click.Choice(["table", "csv", "jsonl"]), default="table",
                  show_default=True)
    @click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
                  help="Write to this file instead of the terminal.")
    def command(
        config_dir: Path, forecast: Path | None, model: Model | None, sl_target: float | None,
        sl_seconds: float | None, asa_target: float | None, max_occupancy: float | None,
        shrinkage: float | None, patience: float | None, interval_minutes: int | None,
        since: dt.datetime | None, until: dt.datetime | None, db: str | None, queues: tuple[str, ...],
        output_format: str, output: Path | None,
    ) -> None:
        """Agents needed per queue and interval to meet a service-level (or ASA) target,
        next to the agents that were logged in."""
        if forecast is None and history is None:
            _fail("no call-history source is available to this command yet; give --forecast FILE "
                  f"(CSV columns: {', '.join(FORECAST_COLUMNS)}[, patience_seconds])")
        if since is not None and until is not None and until < since:
            _fail("--until is before --since")
        loaded = _configuration(config_dir, needed=forecast is None)
        server = loaded.server if loaded is not None else ServerConfig()
        minutes = interval_minutes or server.metrics.interval_minutes
        try:
            policy = policy_of(server.staffing, minutes, model=model, sl_target=sl_target, sl_seconds=sl_seconds,
                               asa_target=asa_target, max_occupancy=max_occupancy, shrinkage=shrinkage,
                               patience=patience)
        except ValueError as exc:
            _fail(str(exc))
        first = since.date() if since is not None else None
        last = until.date() if until is not None else None

        if forecast is not None:
            try:
                loads: Sequence[IntervalLoad] = read_forecast(forecast.read_text(encoding="utf-8-sig"), str(forecast))
            except ForecastError as exc:
                for problem in exc.problems:
                    click.echo(problem, err=True)
                _fail(f"{forecast}: {len(exc.problems)} problem(s) above")
            except (OSError, UnicodeDecodeError) as exc:
                _fail(f"cannot read {forecast}: {exc}")
            loads = [
                load for load in loads
                if (not queues or load.queue in queues)
                and (first is None or load.start.date() >= first)
                and (last is None or load.start.date() <= last)
            ]
        else:
            assert history is not None and loaded is not None
            try:
                loads = history(HistoryRequest(loaded, first, last, queues, minutes, db))
            except HistoryUnavailable as exc:
                _fail(str(exc))
        if not loads:
            _fail("no intervals to plan (check --since, --until and --queue)")

        rows = plan(loads, policy)
        if policy.model == "erlang_a":
            fallen = sorted({row.queue for row in rows if row.model == "erlang_c"})
            if fallen:  # said on stderr, not only in the model column
                click.echo(f"ivr staffing: Erlang C, not A, for queue(s) {', '.join(fallen)} in the intervals with no "
                           "patience to model (no abandons to estimate it from, and no --patience): callers there are "
                           "taken to wait for ever, which may overstate the agents needed", err=True)
        terminal = output is None and output_format == "table" and sys.stdout.isatty()
        if terminal:
            from rich.console import Console

            Console().print(_table(rows, policy))
            return
        text = _render(rows, policy, output_format)
        if output is None:
            click.echo(text, nl=False)
            return
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            _fail(f"cannot write {output}: {exc}")
        click.echo(f"{len(rows)} interval(s) written to {output}", err=True)

    return command


staffing = staffing_command()
