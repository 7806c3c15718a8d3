"""Fixtures for the call-record store on both backends: `target` is a fresh SQLite file or a
freshly emptied PostgreSQL database (one per test session, see tests/pgkit.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import pgkit


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    url = pgkit.create_database()
    yield url
    pgkit.drop_database(url)


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """The session's PostgreSQL database, emptied for this test."""
    pgkit.reset(pg_database)
    return pg_database


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def target(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Path | str:
    """Where a test's store lives: a new SQLite file, or the emptied PostgreSQL database."""
    if backend == "sqlite":
        return tmp_path / "calls.sqlite"
    url: str = request.getfixturevalue("pg_url")
    return url
