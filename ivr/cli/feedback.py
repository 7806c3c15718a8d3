"""`ivr feedback`: signed links to the web feedback form, and the form served on its own."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ivr.cli.common import config_option, db_option, fail, load

if TYPE_CHECKING:  # the commands import what they use, so that `ivr --help` stays quick
    from ivr.config.loader import LoadedConfig
    from ivr.records.model import CallRow
    from survey_engine.config import SurveysConfig

def _settings(command: str, config_dir: Path, db: str | None) -> tuple[LoadedConfig, SurveysConfig, str, Path | str]:
    """The loaded configuration, its surveys.yaml, the signing key and the call-record store
    (--db, else the configuration's, as `ivr serve` uses it)."""
    from ivr.metrics.source import NoDatabase, store_target
    from survey_engine.links import SecretError, secret_from_env

    loaded = load(f"feedback {command}", config_dir)
    if loaded.surveys is None:
        fail(f"feedback {command}", f"{config_dir} has no surveys.yaml: the web form is set up in its `web` section")
    try:
        secret = secret_from_env(loaded.surveys.web, os.environ)
    except SecretError as exc:
        fail(f"feedback {command}", str(exc))
    try:
        return loaded, loaded.surveys, secret, store_target(loaded, db)
    except NoDatabase as exc:
        fail(f"feedback {command}", str(exc))


async def _call(loaded: LoadedConfig, db: Path | str, call_id: str) -> CallRow | None:
    from ivr.records.keys import caller_salt
    from ivr.records.store import CallStore

    privacy = loaded.server.privacy
    calls = await CallStore.open(db, privacy_policy=privacy.caller_number,
                                 salt=caller_salt(loaded.server, loaded.config_dir))
    try:
        return await calls.get_call(call_id)
    finally:
        await calls.close()


@click.group()
def feedback() -> None:
    """The web feedback form: a signed per-call link, a 1-5 score and free text."""


@feedback.command()
@click.argument("call_id")
@config_option
@db_option
def link(call_id: str, config_dir: Path, db: str | None) -> None:
    """Print the signed feedback link of an answered call."""
    from ivr.flow.context import utc_now
    from survey_engine.links import FeedbackLinks

    loaded, surveys, secret, target = _settings("link", config_dir, db)
    call = asyncio.run(_call(loaded, target, call_id))
    if call is None:
        from ivr.records.database import describe

        fail("feedback link", f"no call {call_id} in {describe(target)}")
    if call.answered_leg() is None:
        fail("feedback link", f"call {call_id} was not answered by an agent: there is nothing to rate")
    if not surveys.web.enabled:
        click.echo("ivr feedback link: warning: surveys.yaml web.enabled is false: `ivr serve` does not serve "
                   "the form (run `ivr feedback serve`)", err=True)
    click.echo(FeedbackLinks.from_settings(surveys.web, secret).link_for(call_id, call.language, utc_now()))


@feedback.command()
@config_option
@db_option
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Override surveys.yaml web.port (0 = any free port).")
def serve(config_dir: Path, db: str | None, port: int | None) -> None:
    """Serve the form on its own; stops on SIGTERM or SIGINT."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    loaded, surveys, secret, target = _settings("serve", config_dir, db)
    sys.exit(asyncio.run(_serve(loaded, surveys, secret, target, surveys.web.port if port is None else port)))


async def _serve(loaded: LoadedConfig, surveys: SurveysConfig, secret: str, db: Path | str, port: int) -> int:
    from ivr.records.keys import caller_salt
    from ivr.records.store import CallStore
    from survey_engine.store import SurveyStore
    from survey_engine.web import start_feedback_web

    privacy = loaded.server.privacy
    calls = await CallStore.open(db, privacy_policy=privacy.caller_number,
                                 salt=caller_salt(loaded.server, loaded.config_dir))
    store = SurveyStore(calls.engine)
    try:
        host = surveys.web.bind
        try:
            web = await start_feedback_web(calls, store, lambda: surveys, secret, host=host, port=port)
        except OSError as exc:
            click.echo(f"ivr feedback serve: cannot listen on {host}:{port}: {exc.strerror or exc}", err=True)
            return 2
        click.echo(f"feedback form on http://{host}:{web.port}/f/<token>; links start with {surveys.web.base_url}")
        sys.stdout.flush()  # a supervisor (or a test) waits for this line
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        try:
            await stop.wait()
        finally:
            await web.close()
    finally:
        await store.close()
        await calls.close()
    return 0
