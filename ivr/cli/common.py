"""What the reading commands (report, followups, export) share: how they give up and how they
load the configuration they read the database path and time zones from."""

from __future__ import annotations

import os
import sys
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

if TYPE_CHECKING:
    from ivr.config.loader import LoadedConfig


DEFAULT_CONFIG = Path("config")
config_option = click.option(
    "--config", "config_dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_CONFIG,
    show_default=True, help="Configuration directory: server.yaml names the database, hotlines.yaml the time zones.")
db_option = click.option("--db", default=None, metavar="PATH_OR_URL",
                         help="The call-record store: a SQLite file or a postgresql:// URL.  [default: server.yaml's store]")


def reader_gone() -> NoReturn:
    """Standard output's reader stopped reading (`ivr export legs | head`): stop quietly, as
    Unix tools do, with no error printed at exit either."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(0)


class UnknownQueue(Exception):
    """--queue names a queue neither the configuration nor the records know."""


def configured_queues(loaded: LoadedConfig) -> set[str]:
    """The queues hotlines.yaml and routing.yaml define."""
    return set(loaded.directory.queues) | (set(loaded.routing.queues) if loaded.routing is not None else set())


def configured_queue(loaded: LoadedConfig, queue: str | None) -> bool:
    """Whether --queue needs no look at the records: not given, or a configured queue."""
    return queue is None or queue in configured_queues(loaded)


def check_queue(loaded: LoadedConfig, queue: str | None, seen: Collection[str] = ()) -> None:
    """A --queue that would select nothing raises UnknownQueue, naming the known queues
    (the configured ones and `seen`: those in the records, which may hold a queue since
    renamed or removed)."""
    if configured_queue(loaded, queue) or queue in seen:
        return
    from ivr.config.problems import one_of

    known = configured_queues(loaded) | set(seen)
    raise UnknownQueue(f"--queue {queue}: no such queue ({one_of(known, queue)})")


def fail(command: str, message: str) -> NoReturn:
    """`ivr <command>: <message>` on stderr, exit status 2 (bad input)."""
    click.echo(f"ivr {command}: {message}", err=True)
    sys.exit(2)


def load(command: str, config_dir: Path) -> LoadedConfig:
    """The configuration, or every problem on stderr and exit status 2."""
    from ivr.config.loader import ConfigError, load_config

    try:
        return load_config(config_dir)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(problem.from_folder(config_dir), err=True)
        fail(command, f"the configuration in {config_dir} does not load ({len(exc.problems)} problem(s) above)")
