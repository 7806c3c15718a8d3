"""Commands meet bad input with one line and exit 2, never a traceback; a reader that stops
reading (`| head`) ends an export quietly."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
from pathlib import Path

import pytest

from ivr.records.model import CallEnded, CallStarted, Disposition, QueueLeg
from ivr.records.store import CallStore
from servekit import IVR, REPO

T0 = dt.datetime(2026, 3, 16, 2, 0, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("command", [["export", "calls"], ["export", "legs"], ["report", "survey"], ["report", "html"],
                                     ["followups", "list"], ["followups", "export"]])  # fmt: skip
def test_a_file_that_is_not_a_database_is_named_not_traced(tmp_path: Path, command: list[str]) -> None:
    fake = tmp_path / "x.sqlite"
    fake.write_text("ivr-host\n")

    done = subprocess.run([*IVR, *command, "--db", str(fake)], capture_output=True, text=True, timeout=60, cwd=REPO)

    assert done.returncode == 2, done.stderr
    assert f"ivr {' '.join(command)}: {fake}: not a call-record database" in done.stderr
    assert "Traceback" not in done.stderr


def seeded(tmp_path: Path, calls: int = 20) -> Path:
    """A store of `calls` abandoned calls, each with a leg in queue "retired" (a queue the
    example configuration no longer has)."""
    db = tmp_path / "calls.sqlite"

    async def seed() -> None:
        store = await CallStore.open(db)
        for n in range(calls):
            start = T0 + dt.timedelta(seconds=n)
            store.call_started(CallStarted(f"c{n}", f"u{n}", f"PJSIP/t-{n}", "4008001234", "13800138000", "4008001234",
                                           "zh-CN", "v1", "cfg", start))
            leg = QueueLeg("retired", start + dt.timedelta(seconds=5), start + dt.timedelta(seconds=25), "abandoned")
            store.call_ended(CallEnded(f"c{n}", start + dt.timedelta(seconds=30), Disposition.ABANDONED, "queue",
                                       "zh-CN", None, None, None, "caller", (), (leg,)))
        await store.close()

    asyncio.run(seed())
    return db


def test_an_export_into_a_pipe_closed_early_ends_quietly(tmp_path: Path) -> None:
    db = seeded(tmp_path, calls=3000)
    export = subprocess.Popen([*IVR, "export", "calls", "--db", str(db)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, cwd=REPO)  # fmt: skip
    assert export.stdout is not None and export.stderr is not None
    export.stdout.readline()  # the header, then the reader goes away
    export.stdout.close()
    assert export.wait(timeout=60) == 0
    assert export.stderr.read().decode() == ""


@pytest.mark.parametrize("command", [["export", "legs"], ["export", "calls"], ["report", "html"]])
def test_a_queue_only_the_records_know_is_accepted(tmp_path: Path, command: list[str]) -> None:
    args = ["--output", str(tmp_path / "report")] if command == ["report", "html"] else []
    done = subprocess.run([*IVR, *command, "--queue", "retired", "--db", str(seeded(tmp_path)), *args],
                          capture_output=True, text=True, timeout=120, cwd=REPO)  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("command", [["export", "legs"], ["export", "calls"], ["report", "survey"], ["report", "html"]])
def test_an_unknown_queue_is_named_with_the_known_ones_instead_of_an_empty_result(tmp_path: Path, command: list[str]) -> None:
    done = subprocess.run([*IVR, *command, "--queue", "biling", "--db", str(seeded(tmp_path))],
                          capture_output=True, text=True, timeout=60, cwd=REPO)  # fmt: skip

    assert done.returncode == 2, done.stderr
    assert f"ivr {' '.join(command)}: --queue biling: no such queue (did you mean 'billing'? expected one of: " in done.stderr


def test_every_command_names_the_configuration_and_the_store_alike() -> None:
    """`--config DIR` and `--db PATH_OR_URL` in every command that reads them; `ivr check`
    takes `--config` too; `ivr staffing` takes `--since/--until` (and its old `--from/--to`)."""
    from click.testing import CliRunner

    from ivr.cli.main import main

    for command in (["check"], ["serve"], ["export", "calls"], ["report", "html"], ["report", "survey"],
                    ["followups", "list"], ["feedback", "link"], ["staffing"]):
        usage = CliRunner().invoke(main, [*command, "--help"]).output
        assert "--config" in usage, command
    for command in (["export", "calls"], ["report", "html"], ["report", "survey"], ["followups", "list"],
                    ["feedback", "link"], ["staffing"]):
        usage = CliRunner().invoke(main, [*command, "--help"]).output
        assert "--db PATH_OR_URL" in usage, command
    staffing = CliRunner().invoke(main, ["staffing", "--help"]).output
    assert "--since, --from" in staffing and "--until, --to" in staffing
    serve = CliRunner().invoke(main, ["serve", "--help"]).output
    assert "Log at DEBUG" in serve
