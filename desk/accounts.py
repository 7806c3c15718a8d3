"""Who may use the web application, and as what: accounts kept by the controller.

An account has a role (agent, supervisor, admin), a page language, and, for an agent, the
ACD agent id it works as. Passwords are hashed with argon2id (argon2-cffi, memory-hard: a
stolen table costs an attacker memory as well as time per guess). Hashing and verifying
take tens of milliseconds of CPU by design, so they run in a worker thread: the event loop
keeps answering calls while someone logs in.

`session_epoch` is raised by a password change or a disable, which refuses every session
cookie issued before (desk.sessions carries the epoch).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import RowMapping, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.records.schema import desk_accounts

LANGUAGES = ("zh-CN", "en-US")
MIN_PASSWORD = 10  # characters
# argon2id at 19 MiB, 2 passes: OWASP's minimum for argon2id (a login costs ~20 ms of CPU).
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified against when a username is unknown, so that a wrong name takes as long as a wrong
# password and the answer's timing does not tell which names exist.
_DUMMY_HASH = _HASHER.hash("no account has this password")


class Role(StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class AccountError(Exception):
    """A change that cannot be made (a name taken, a password too short, ...)."""


@dataclass(frozen=True)
class Account:
    username: str
    role: Role
    agent_id: str | None
    language: str
    created_at: dt.datetime
    disabled: bool = False
    session_epoch: int = 0

    def may(self, role: Role) -> bool:
        """Roles nest: an admin may do what a supervisor may, a supervisor what an agent may
        (but only an account linked to an agent id has an agent's own page)."""
        order = (Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
        return order.index(self.role) >= order.index(role)


def _account(m: RowMapping) -> Account:
    return Account(username=m["username"], role=Role(m["role"]), agent_id=m["agent_id"], language=m["language"],
                   created_at=m["created_at"], disabled=bool(m["disabled"]), session_epoch=m["session_epoch"])


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")


class AccountStore:
    """Accounts in the call-record database (table `desk_accounts`, schema v11)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def add(self, username: str, password: str, role: Role, *, agent_id: str | None, language: str,
                  now: dt.datetime) -> Account:
        username = username.strip()
        if not username or any(ch.isspace() for ch in username):
            raise AccountError("a username is one word")
        if language not in LANGUAGES:
            raise AccountError(f"language {language!r}: expected one of {', '.join(LANGUAGES)}")
        if role is Role.AGENT and not agent_id:
            raise AccountError("an agent account needs the ACD agent id it works as (--agent)")
        check_new_password(password)
        hashed = await asyncio.to_thread(_HASHER.hash, password)
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(desk_accounts).values(
                    username=username, password_hash=hashed, role=role.value, agent_id=agent_id or None,
                    language=language, created_at=now, disabled=False, session_epoch=0))
        except IntegrityError:
            raise AccountError(f"account {username!r} exists") from None
        return Account(username, role, agent_id or None, language, now)

    async def get(self, username: str) -> Account | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(desk_accounts).where(desk_accounts.c.username == username))).mappings().first()
        return None if row is None else _account(row)

    async def all(self) -> list[Account]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(desk_accounts).order_by(desk_accounts.c.username))).mappings().all()
        return [_account(row) for row in rows]

    async def for_agent(self, agent_id: str) -> list[Account]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(desk_accounts).where(desk_accounts.c.agent_id == agent_id))).mappings().all()
        return [_account(row) for row in rows]

    async def verify(self, username: str, password: str) -> Account | None:
        """The account if the password is right and the account is enabled; None otherwise."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(desk_accounts).where(desk_accounts.c.username == username))).mappings().first()
        stored = _DUMMY_HASH if row is None else row["password_hash"]
        try:
            await asyncio.to_thread(_HASHER.verify, stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None or row["disabled"]:
            return None
        return _account(row)

    async def set_password(self, username: str, password: str) -> None:
        check_new_password(password)
        hashed = await asyncio.to_thread(_HASHER.hash, password)
        await self._change(username, password_hash=hashed, session_epoch=desk_accounts.c.session_epoch + 1)

    async def set_disabled(self, username: str, disabled: bool) -> None:
        await self._change(username, disabled=disabled, session_epoch=desk_accounts.c.session_epoch + 1)

    async def _change(self, username: str, **values: object) -> None:
        async with self.engine.begin() as conn:
            changed = (await conn.execute(
                update(desk_accounts).where(desk_accounts.c.username == username).values(**values))).rowcount
        if not changed:
            raise AccountError(f"no account {username!r}")
