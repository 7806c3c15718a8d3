"""`ivr users`: the agent desktop's accounts (add, list, password, disable, enable).

Accounts live in the call-record store, so every controller sharing it knows them. A store
that does not exist yet is created: accounts are usually made before the first `ivr serve`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from ivr.cli.common import config_option, db_option, fail, load

if TYPE_CHECKING:
    from desk.accounts import AccountStore
    from ivr.config.loader import LoadedConfig

T = TypeVar("T")


async def _with_store(target: Path | str, work: Callable[[AccountStore], Awaitable[T]]) -> T:
    from desk.accounts import AccountStore
    from ivr.records.database import open_engine
    from ivr.records.schema import migrate

    if isinstance(target, Path):
        target.parent.mkdir(parents=True, exist_ok=True)
    engine = open_engine(target)
    try:
        async with engine.begin() as conn:
            await migrate(conn)
        return await work(AccountStore(engine))
    finally:
        await engine.dispose()


def _run(loaded: LoadedConfig, db: str | None, work: Callable[[AccountStore], Awaitable[T]]) -> T:
    """`work` on the accounts of the store `ivr serve` uses (or --db), created if missing."""
    from desk.accounts import AccountError
    from ivr.metrics.source import store_target

    try:
        return asyncio.run(_with_store(store_target(loaded, db, must_exist=False), work))
    except AccountError as exc:
        fail("users", str(exc))


def _password(given: str | None) -> str:
    if given is not None:
        return given
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@click.group()
def users() -> None:
    """Accounts of the agent desktop (server.yaml `desk`): agents, supervisors, admins."""


@users.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(["agent", "supervisor", "admin"]), default="agent", show_default=True)
@click.option("--agent", "agent_id", default=None, help="The ACD agent id (routing.yaml agents) an agent works as.")
@click.option("--language", type=click.Choice(["zh-CN", "en-US"]), default="zh-CN", show_default=True)
@click.option("--password", default=None, help="Without it, asked for (not echoed). For scripts: IVR_USER_PASSWORD.",
              envvar="IVR_USER_PASSWORD")
@config_option
@db_option
def add(username: str, role: str, agent_id: str | None, language: str, password: str | None, config_dir: Path,
        db: str | None) -> None:
    """Add an account."""
    from desk.accounts import Role

    loaded = load("users", config_dir)
    if agent_id is not None and (loaded.routing is None or agent_id not in loaded.routing.agents):
        known = sorted(loaded.routing.agents) if loaded.routing is not None else []
        fail("users", f"--agent {agent_id}: no such agent in routing.yaml"
                      + (f" (expected one of: {', '.join(known)})" if known else ""))
    secret = _password(password)

    async def work(store: AccountStore) -> None:
        await store.add(username, secret, Role(role), agent_id=agent_id, language=language,
                        now=dt.datetime.now(dt.timezone.utc))

    _run(loaded, db, work)
    click.echo(f"account {username} added ({role}{', agent ' + agent_id if agent_id else ''}, {language})")


@users.command("list")
@config_option
@db_option
def list_(config_dir: Path, db: str | None) -> None:
    """The accounts."""

    async def work(store: AccountStore) -> list[str]:
        return [f"{a.username}\t{a.role.value}\t{a.agent_id or '-'}\t{a.language}\t"
                f"{'disabled' if a.disabled else 'enabled'}" for a in await store.all()]

    lines = _run(load("users", config_dir), db, work)
    click.echo("username\trole\tagent\tlanguage\tstatus")
    for line in lines:
        click.echo(line)


@users.command("passwd")
@click.argument("username")
@click.option("--password", default=None, envvar="IVR_USER_PASSWORD", help="Without it, asked for.")
@config_option
@db_option
def passwd(username: str, password: str | None, config_dir: Path, db: str | None) -> None:
    """Set an account's password (its open sessions end)."""
    secret = _password(password)

    async def work(store: AccountStore) -> None:
        await store.set_password(username, secret)

    _run(load("users", config_dir), db, work)
    click.echo(f"password of {username} changed; its sessions have ended")


@users.command("disable")
@click.argument("username")
@config_option
@db_option
def disable(username: str, config_dir: Path, db: str | None) -> None:
    """Refuse an account's logins and end its sessions."""
    _set_disabled(username, True, config_dir, db)


@users.command("enable")
@click.argument("username")
@config_option
@db_option
def enable(username: str, config_dir: Path, db: str | None) -> None:
    """Let a disabled account log in again."""
    _set_disabled(username, False, config_dir, db)


def _set_disabled(username: str, disabled: bool, config_dir: Path, db: str | None) -> None:
    async def work(store: AccountStore) -> None:
        await store.set_disabled(username, disabled)

    _run(load("users", config_dir), db, work)
    click.echo(f"account {username} {'disabled' if disabled else 'enabled'}")
