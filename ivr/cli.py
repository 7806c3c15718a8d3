"""The `ivr` command: serve, check, reload, demo."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

import click

from ivr import __version__

DEFAULT_CONFIG = Path("config")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ivr")
def main() -> None:
    """Contact-center controller for Asterisk (FastAGI + AMI)."""


@main.command()
@click.option("--config", "config_dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_CONFIG, show_default=True)
@click.option("--port", type=int, default=None, help="Override fastagi.port.")
@click.option("-v", "--verbose", is_flag=True)
def serve(config_dir: Path, port: int | None, verbose: bool) -> None:
    """Run the FastAGI server, the call-record store and the AMI link."""
    from ivr.app import Controller, ControllerOptions
    from ivr.config.loader import ConfigError

    _setup_logging(verbose)
    try:
        controller = Controller(config_dir, ControllerOptions(port=port))
    except ConfigError as exc:
        _print_problems(exc.problems)
        sys.exit(2)

    async def run() -> None:
        await controller.start()
        await controller.serve_forever()

    asyncio.run(run())


@main.command()
@click.argument("config_dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_CONFIG)
def check(config_dir: Path) -> None:
    """Validate a configuration directory; list every problem and exit non-zero if any."""
    from ivr.config.loader import check_config

    problems = check_config(config_dir)
    if problems:
        _print_problems(problems)
        sys.exit(1)
    click.echo(f"{config_dir}: OK")


@main.command()
@click.option("--config", "config_dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_CONFIG, show_default=True)
def reload(config_dir: Path) -> None:
    """Ask the running `ivr serve` to reload its configuration (SIGHUP)."""
    from ivr.config.loader import ConfigError, check_config, load_config

    problems = check_config(config_dir)
    if problems:
        _print_problems(problems)
        click.echo("not reloaded: the running configuration stays live", err=True)
        sys.exit(1)
    try:
        server = load_config(config_dir).server
    except ConfigError as exc:  # pragma: no cover - check_config found nothing
        _print_problems(exc.problems)
        sys.exit(1)
    pidfile = server.pidfile if server.pidfile.is_absolute() else config_dir / server.pidfile
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError) as exc:
        click.echo(f"no running controller found via {pidfile}: {exc}", err=True)
        sys.exit(1)
    click.echo(f"reload requested from process {pid}")


@main.command()
@click.option("--config", "config_dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_CONFIG, show_default=True)
@click.option("--calls", type=click.IntRange(1, 100_000), default=300, show_default=True)
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=Path("var/demo.sqlite"), show_default=True)
@click.option("--seed", type=int, default=400, show_default=True)
def demo(config_dir: Path, calls: int, db: Path, seed: int) -> None:
    """Run the controller on embedded defaults and drive scripted calls through it."""
    from rich.console import Console

    from ivr.config.loader import ConfigError
    from ivr.demo import run_demo

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    db.unlink(missing_ok=True)
    try:
        asyncio.run(run_demo(config_dir, calls, db, seed, Console()))
    except ConfigError as exc:
        _print_problems(exc.problems)
        sys.exit(2)


def _print_problems(problems: object) -> None:
    items = list(problems)  # type: ignore[call-overload]
    for problem in items:
        click.echo(str(problem), err=True)
    click.echo(f"{len(items)} problem(s)", err=True)


if __name__ == "__main__":  # pragma: no cover
    main()
