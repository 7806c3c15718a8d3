"""The `ivr` command: serve, check, reload, agents, queues, demo, prompts build/check."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ivr.cli.common import DEFAULT_CONFIG

from ivr import __version__
from ivr.cli.export import export
from ivr.cli.feedback import feedback
from ivr.cli.report import report_html, report_wrapups
from ivr.cli.rig import rig
from ivr.cli.staffing import staffing_command
from ivr.cli.survey import followups, report
from ivr.cli.users import users

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ivr.admin import PresenceOp
    from ivr.cli.staffing import HistoryRequest
    from ivr.metrics.staffing import IntervalLoad



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
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Override fastagi.port (0 = any free port).")
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG: every AGI command and reply, AMI events, ACD decisions.")
def serve(config_dir: Path, port: int | None, verbose: bool) -> None:
    """Run the FastAGI server, the call-record store and the AMI link."""
    from ivr.app import Controller, ControllerOptions
    from ivr.config.loader import ConfigError

    _setup_logging(verbose)
    # Call records, their spool, the salt and the pid file hold callers' data: owner only.
    # (The admin socket sets its own mode, 0660.)
    os.umask(0o077)
    try:
        controller = Controller(config_dir, ControllerOptions(port=port, admin=True, desk=True))
    except ConfigError as exc:
        _print_problems(exc.problems, config_dir)
        sys.exit(2)

    async def run() -> int:
        from ivr.admin import AdminSocketError
        from ivr.records.keys import SaltError
        from survey_engine.links import SecretError

        try:
            await controller.start()
        except AdminSocketError as exc:
            await controller.stop()
            click.echo(f"ivr serve: admin socket: {exc}", err=True)
            return 2
        except SecretError as exc:
            await controller.stop()
            click.echo(f"ivr serve: web feedback form: {exc}", err=True)
            return 2
        except SaltError as exc:
            await controller.stop()
            click.echo(f"ivr serve: caller keys: {exc}", err=True)
            return 2
        except OSError as exc:  # a port taken (FastAGI or the feedback form)
            await controller.stop()
            click.echo(f"ivr serve: {exc}", err=True)
            return 2
        await controller.serve_forever()
        return 0

    sys.exit(asyncio.run(run()))


@main.command()
@click.argument("config_arg", metavar="[CONFIG_DIR]", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--config", "config_option", type=click.Path(file_okay=False, path_type=Path), default=None,
              help=f"The configuration folder, as in the other commands (CONFIG_DIR: the same).  [default: {DEFAULT_CONFIG}]")
def check(config_arg: Path | None, config_option: Path | None) -> None:
    """Validate a configuration directory; list every problem and exit non-zero if any."""
    if config_arg is not None and config_option is not None and config_arg != config_option:
        raise click.BadParameter(f"two folders: {config_arg} and {config_option}", param_hint="--config")
    config_dir = config_option or config_arg or DEFAULT_CONFIG
    from ivr.config.loader import check_config

    from ivr.config.loader import load_config
    from ivr.config.pbx_needs import pbx_directories

    problems = check_config(config_dir)
    errors = [p for p in problems if not p.warning]
    if errors:
        _print_problems(problems, config_dir)
        sys.exit(1)
    for warning in problems:  # shown, yet the configuration works
        click.echo(warning.from_folder(config_dir))
    # What Asterisk must have that no config file can make: said, and checked where Asterisk runs here.
    for needed in pbx_directories(load_config(config_dir)):
        click.echo(f"{'warning' if needed.problem else 'note'}: {needed.message}")
    click.echo(f"{config_dir}: OK")


@main.command()
@click.option("--config", "config_dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_CONFIG, show_default=True)
def reload(config_dir: Path) -> None:
    """Ask the running `ivr serve` to reload its configuration (SIGHUP)."""
    from ivr.config.loader import ConfigError, check_config, load_config

    problems = [p for p in check_config(config_dir) if not p.warning]
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
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The SQLite file to write (replaced).  [default: var/demo.sqlite in the --config folder, "
                   "where `ivr serve` keeps store.sqlite_path]")
@click.option("--seed", type=int, default=400, show_default=True, help="The same seed gives the same day.")
def demo(config_dir: Path, calls: int, db: Path | None, seed: int) -> None:
    """A business day of scripted calls through the real controller (on virtual time),
    into a call-record database the reporting commands can read."""
    from rich.console import Console

    from ivr.config.loader import ConfigError
    from ivr.demo import run_demo

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        run_demo(config_dir, calls, db.absolute() if db is not None else None, seed, Console())
    except ConfigError as exc:
        _print_problems(exc.problems)
        sys.exit(2)


# --- the admin interface of a running controller (ivr.admin) ------------------------------------

_CONFIG_OPTION_HELP = "The running controller's configuration directory (its server.yaml names the admin socket)."


def _admin_socket(config_dir: Path) -> Path:
    from ivr.admin_client import ConfigProblems, socket_path

    try:
        return socket_path(config_dir)
    except ConfigProblems as exc:
        _print_problems(exc.problems)
        sys.exit(2)


def _show(config_dir: Path, what: str, watch: bool, as_json: bool) -> None:
    """`ivr agents` / `ivr queues`: once, or every second until Ctrl-C."""
    import datetime as dt
    import time

    from rich.console import Console, Group, RenderableType
    from rich.live import Live
    from rich.text import Text

    from ivr.admin import AgentsResponse, QueuesResponse
    from ivr.admin_client import AdminClient, AdminRefused, AdminUnavailable, agents_table, queues_view

    path = _admin_socket(config_dir)

    def render(response: AgentsResponse | QueuesResponse) -> RenderableType:
        return agents_table(response) if isinstance(response, AgentsResponse) else queues_view(response)

    try:
        with AdminClient(path) as client:
            fetch = client.agents if what == "agents" else client.queues
            if as_json:
                while True:
                    response = fetch()
                    click.echo(response.model_dump_json(indent=None if watch else 2))
                    if not watch:
                        return
                    time.sleep(1.0)
            console = Console()
            if not console.is_terminal:
                console.width = max(console.width, 140)  # piped: do not squeeze the columns
            if not watch:
                console.print(render(fetch()))
                return

            def frame() -> RenderableType:
                response = fetch()
                at = dt.datetime.fromtimestamp(response.at).strftime("%H:%M:%S")
                return Group(Text(f"{at}  {path}  (Ctrl-C to stop)", style="dim"), render(response))

            with Live(frame(), console=console, auto_refresh=False) as live:
                while True:
                    time.sleep(1.0)
                    live.update(frame(), refresh=True)
    except KeyboardInterrupt:
        return
    except (AdminUnavailable, AdminRefused) as exc:
        click.echo(f"ivr {what}: {exc}", err=True)
        sys.exit(1)


@main.group(invoke_without_command=True)
@click.option("--config", "config_dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_CONFIG,
              show_default=True, help=_CONFIG_OPTION_HELP)
@click.option("--watch", is_flag=True, help="Refresh every second until Ctrl-C.")
@click.option("--json", "as_json", is_flag=True, help="The controller's answer as JSON (one line a second with --watch).")
@click.pass_context
def agents(ctx: click.Context, config_dir: Path, watch: bool, as_json: bool) -> None:
    """Live agent states of the running controller; `login|logout|pause|unpause AGENT_ID`."""
    ctx.obj = config_dir
    if ctx.invoked_subcommand is None:
        _show(config_dir, "agents", watch, as_json)


def _presence_command(op: PresenceOp, summary: str) -> None:
    @click.argument("agent_id")
    @click.option("--config", "config_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                  help=_CONFIG_OPTION_HELP + f"  [default: {DEFAULT_CONFIG}]")
    @click.pass_context
    def command(ctx: click.Context, agent_id: str, config_dir: Path | None, reason: str | None = None) -> None:
        from ivr.admin_client import AdminClient, AdminRefused, AdminUnavailable, presence_line

        where = config_dir or (ctx.obj if isinstance(ctx.obj, Path) else DEFAULT_CONFIG)
        path = _admin_socket(where)
        try:
            with AdminClient(path) as client:
                response = client.presence(op, agent_id, reason=reason)
        except (AdminUnavailable, AdminRefused) as exc:
            click.echo(f"ivr agents {op}: {exc}", err=True)
            sys.exit(1)
        click.echo(presence_line(response))

    if op == "pause":
        command = click.option(
            "--reason", default=None, metavar="CODE",
            help="Why: a code of routing.yaml pause_reasons (break, lunch, ...)  [default: supervisor]")(command)
    agents.command(op, help=f"{summary} (AGENT_ID as in routing.yaml).")(command)


_PRESENCE_COMMANDS: tuple[tuple[PresenceOp, str], ...] = (
    ("login", "Log an agent in: ready for calls"),
    ("logout", "Log an agent out"),
    ("pause", "Pause a logged-in agent: no calls offered"),
    ("unpause", "Make a paused or not-ready agent ready again"),
)
for _op, _summary in _PRESENCE_COMMANDS:
    _presence_command(_op, _summary)


@main.command()
@click.option("--config", "config_dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_CONFIG,
              show_default=True, help=_CONFIG_OPTION_HELP)
@click.option("--watch", is_flag=True, help="Refresh every second until Ctrl-C.")
@click.option("--json", "as_json", is_flag=True, help="The controller's answer as JSON (one line a second with --watch).")
def queues(config_dir: Path, watch: bool, as_json: bool) -> None:
    """Live ACD queues of the running controller: waiting callers, estimates, agents."""
    _show(config_dir, "queues", watch, as_json)


DEFAULT_CATALOG = Path("prompts/catalog.yaml")


@main.group()
def prompts() -> None:
    """The prompt catalog: build the audio Asterisk plays, check it."""


@prompts.command("build")
@click.option("--catalog", "catalog_path", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_CATALOG,
              show_default=True)
@click.option("--engine", type=click.Choice(["auto", "edge-tts", "espeak-ng"]), default="auto", show_default=True,
              help="auto: edge-tts when its service is reachable, espeak-ng (offline) otherwise.")
@click.option("--ulaw", is_flag=True, help="Also write <id>.ulaw (raw G.711 mu-law) beside each .wav.")
@click.option("--force", is_flag=True, help="Rebuild everything, even what the manifest says is up to date.")
@click.option("--prompt", "only_prompts", multiple=True, metavar="ID", help="Only this prompt (repeatable).")
@click.option("--language", "only_languages", multiple=True, metavar="LANG", help="Only this language (repeatable).")
@click.option("--probe-timeout", type=click.FloatRange(0.1, 30), default=2.0, show_default=True,
              help="Seconds to wait for edge-tts's service before going offline.")
def prompts_build(
    catalog_path: Path, engine: str, ulaw: bool, force: bool, only_prompts: tuple[str, ...],
    only_languages: tuple[str, ...], probe_timeout: float,
) -> None:
    """Synthesise every missing or changed prompt into 8 kHz mono 16-bit WAV."""
    from ivr.prompts.build import Builder, Outcome
    from ivr.prompts.catalog import load_catalog
    from ivr.prompts.engines import ESPEAK, EspeakEngine, choose_engine

    loaded, problems = load_catalog(catalog_path)
    if loaded is None or problems:
        _print_problems(problems)
        sys.exit(2)
    chosen, why = choose_engine(engine, probe_timeout=probe_timeout)
    click.echo(f"engine: {chosen.name} ({why}); output: {loaded.output_dir}")
    fallback = EspeakEngine() if engine == "auto" and chosen.name != ESPEAK else None
    builder = Builder(loaded, chosen, fallback=fallback, ulaw=ulaw, force=force)

    def progress(n: int, total: int, outcome: Outcome) -> None:
        if outcome.status == "unchanged":
            return
        width = len(str(total))
        line = f"[{n:>{width}}/{total}] {outcome.language}/{outcome.prompt}: {outcome.status}"
        click.echo(f"{line} ({outcome.detail})" if outcome.detail else line, err=outcome.status == "failed")

    report = asyncio.run(
        builder.run(prompts=only_prompts or None, languages=only_languages or None, progress=progress)
    )
    for name in builder.stale():
        click.echo(f"stale: {name} (no longer in the catalog; left in place)")
    click.echo(
        f"{report.count('built')} built, {report.count('unchanged')} unchanged, {report.count('failed')} failed"
    )
    if not report.ok:
        sys.exit(1)


@prompts.command("check")
@click.option("--config", "config_dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_CONFIG,
              show_default=True)
@click.option("--catalog", "catalog_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Default: catalog.yaml beside the config's prompts.local_dir, else prompts/catalog.yaml.")
def prompts_check(config_dir: Path, catalog_path: Path | None) -> None:
    """Every prompt a hotline uses has a text in each of its languages; every file plays."""
    from ivr.config.loader import check_config, load_config, ConfigError
    from ivr.prompts.catalog import load_catalog
    from ivr.prompts.check import catalog_beside, file_problems

    found = []
    if catalog_path is None:
        catalog_path = DEFAULT_CATALOG
        if config_dir.is_dir():
            try:
                catalog_path = catalog_beside(load_config(config_dir).prompt_dir)
            except ConfigError:
                pass  # the problems are listed below
    loaded, problems = load_catalog(catalog_path)
    found += [str(p) for p in problems]
    in_config: list[str] = []
    if config_dir.is_dir():
        prompt_words = ("prompt", "translation", "catalog", ".wav")
        in_config = [p.from_folder(config_dir) for p in check_config(config_dir) if any(w in str(p) for w in prompt_words)]
    if loaded is not None:
        # A file the configuration's check already names (where a flow uses it) is said once.
        for problem in file_problems(loaded, Path.cwd()):
            said = f"/{Path(problem.file).parent.name}/{Path(problem.file).stem}."
            if not any(said in line for line in in_config):
                found.append(str(problem))
    found += in_config
    if found:
        _print_problems(sorted(dict.fromkeys(found)))
        sys.exit(1)
    click.echo(f"{os.path.normpath(catalog_path)}: OK")


def _print_problems(problems: object, config_dir: Path | None = None) -> None:
    """One line each; configuration problems (with `config_dir`) name their file from here."""
    items = list(problems)  # type: ignore[call-overload]
    for problem in items:
        click.echo(problem.from_folder(config_dir) if config_dir is not None else str(problem), err=True)
    click.echo(f"{len(items)} problem(s)", err=True)


def _staffing_history(request: HistoryRequest) -> Sequence[IntervalLoad]:
    from ivr.metrics.history import history_loader

    return history_loader(echo=lambda text: click.echo(text, err=True))(request)


report.add_command(report_html)
report.add_command(report_wrapups)
main.add_command(report)
main.add_command(export)
main.add_command(staffing_command(history=_staffing_history))
main.add_command(followups)
main.add_command(feedback)
main.add_command(rig)
main.add_command(users)

