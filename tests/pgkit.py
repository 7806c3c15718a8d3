"""PostgreSQL for tests: a database of a test session's own on the server at `IVR_TEST_PG`
(default: postgresql://postgres@127.0.0.1:5432/postgres, trust authentication), created
for the session and dropped after it.

When the server cannot be reached the tests that need it skip, except when CI=true: then
they fail, so that CI never passes without having run them.
"""

from __future__ import annotations

import asyncio
import os
import uuid

import asyncpg
import pytest

ADMIN_URL = os.environ.get("IVR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(ADMIN_URL, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def create_database() -> str:
    """A new empty database; its postgresql:// URL. Skips (fails under CI=true) when the
    server is unreachable."""
    name = f"ivr_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        message = f"PostgreSQL at {ADMIN_URL} unavailable: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return _with_database(ADMIN_URL, name)


def drop_database(url: str) -> None:
    name = url.rpartition("/")[2]
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def reset(url: str) -> None:
    """Empty the database: no tables, no schema version (a fresh store creates them)."""

    async def run() -> None:
        connection = await asyncpg.connect(url, timeout=5)
        try:
            await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        finally:
            await connection.close()

    asyncio.run(run())
