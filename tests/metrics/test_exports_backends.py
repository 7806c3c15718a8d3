"""The same calls written to SQLite and to PostgreSQL give byte-identical exports, in every kind
and format: a planner gets the same file whichever store the controllers write to.

PostgreSQL: a database of this module's own (tests/pgkit.py); when the server cannot be
reached the test skips, except under CI=true, where it fails."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import pgkit
from exportkit import make_config, write_handcalls
from ivr.cli.main import main


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    url = pgkit.create_database()
    yield url
    pgkit.drop_database(url)


def exported(config: Path, kind: str, fmt: str) -> bytes:
    result = CliRunner().invoke(main, ["export", kind, "--config", str(config), "--format", fmt, "--since",
                                       "2026-11-25", "--until", "2026-11-26", "--now", "2026-11-27T00:00:00+0000"])
    assert result.exit_code == 0, result.output + result.stderr
    return result.stdout_bytes


def test_sqlite_and_postgresql_exports_are_identical(tmp_path: Path, pg_url: str) -> None:
    sqlite = tmp_path / "calls.sqlite"
    asyncio.run(write_handcalls(sqlite))
    asyncio.run(write_handcalls(pg_url))
    on_sqlite = make_config(tmp_path / "sqlite", sqlite)
    on_postgresql = make_config(tmp_path / "postgresql", pg_url)
    for kind in ("calls", "legs", "intervals", "agents", "ivr"):
        for fmt in ("csv", "jsonl"):
            lite, pg = exported(on_sqlite, kind, fmt), exported(on_postgresql, kind, fmt)
            assert lite.count(b"\n") > 1, (kind, fmt)
            assert lite == pg, (kind, fmt)
