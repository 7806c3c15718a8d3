"""`ivr demo`, the newcomer's first command: a business day through the real controller,
into a database that survives the checks a planner would make on real data."""

from __future__ import annotations

import csv
import io
import logging
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from ivr.cli.main import main
from ivr.demo import run_demo

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config"
CALLS = 120  # enough for the busy hour to queue callers and some of them to give up


@dataclass(frozen=True)
class Day:
    db: Path
    printed: str
    seconds: float


def _run(db: Path, seed: int = 7, calls: int = CALLS) -> Day:
    out = io.StringIO()
    began = time.perf_counter()
    run_demo(CONFIG, calls, db, seed=seed, console=Console(file=out, width=200))
    return Day(db, out.getvalue(), time.perf_counter() - began)


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Day:
    return _run(tmp_path_factory.mktemp("demo") / "demo.sqlite")


def _export(db: Path, what: str) -> str:
    result = CliRunner().invoke(main, ["export", what, "--config", str(CONFIG), "--db", str(db)])
    assert result.exit_code == 0, result.output
    return result.stdout  # without the row count said on stderr


def _rows(db: Path, what: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(_export(db, what))))


def test_agents_log_in_take_calls_log_out_and_the_day_is_reported(day: Day) -> None:
    assert "09:00 agents log in to the ACD: 1001, 1002, 1003, 1004" in day.printed
    assert "agents log out" in day.printed
    for title in ("calls by disposition", "ACD queues", "Agents", "IVR paths taken", "Post-call surveys"):
        assert title in day.printed
    with sqlite3.connect(day.db) as conn:
        assert conn.execute("SELECT count(*) FROM calls WHERE ended_at IS NOT NULL").fetchone() == (CALLS,)
        presence = conn.execute("SELECT agent_id, presence FROM agent_events ORDER BY at").fetchall()
        surveyed = conn.execute("SELECT count(*) FROM survey_answers WHERE value IS NOT NULL").fetchone()[0]
    assert {agent for agent, state in presence if state == "ready"} == {"1001", "1002", "1003", "1004"}
    assert {agent for agent, state in presence if state == "logged_out"} == {"1001", "1002", "1003", "1004"}
    assert surveyed > 0


def test_every_record_is_on_one_clock_in_the_demo_day(day: Day) -> None:
    calls = {row["call_id"]: row for row in _rows(day.db, "calls")}
    assert all(row["started_at"].startswith("2026-11-25") for row in calls.values())
    assert all(row["ended_at"] >= row["started_at"] for row in calls.values())
    assert sum(row["ended_at"] > row["started_at"] for row in calls.values()) == CALLS  # every call lasts
    legs = _rows(day.db, "legs")
    assert legs
    for leg in legs:
        call = calls[leg["call_id"]]
        assert float(leg["wait_seconds"]) >= 0
        assert call["started_at"] <= leg["enqueued_at"] <= leg["left_at"] <= call["ended_at"]
    # Callers hold on for a while and some give up: the abandon curve has data.
    assert any(leg["outcome"] == "abandoned" for leg in legs)
    assert max(float(leg["wait_seconds"]) for leg in legs) > 30


def test_no_agent_talks_longer_than_they_are_logged_in(day: Day) -> None:
    talk: dict[str, float] = defaultdict(float)
    staffed: dict[str, float] = defaultdict(float)
    for row in _rows(day.db, "agents"):
        assert float(row["talk_seconds"]) <= float(row["staffed_seconds"]) + 1e-6, row
        talk[row["agent_id"]] += float(row["talk_seconds"])
        staffed[row["agent_id"]] += float(row["staffed_seconds"])
    assert set(talk) == {"1001", "1002", "1003", "1004"}
    assert all(0 < talk[agent] < staffed[agent] for agent in talk)
    assert max(staffed.values()) < 10 * 3600  # they went home


def test_callers_who_skip_the_comment_leave_no_recording(day: Day) -> None:
    with sqlite3.connect(day.db) as conn:
        completed = conn.execute("SELECT count(*) FROM survey_responses WHERE status = 'completed'").fetchone()[0]
        comments = [seconds for (seconds,) in conn.execute(
            "SELECT comment_seconds FROM survey_responses WHERE comment_seconds IS NOT NULL")]
    assert completed > 0
    assert len(comments) < completed / 2  # most callers skip the comment
    assert all(seconds < 60 for seconds in comments)


def test_the_commands_it_prints_next_work_on_its_data(day: Day, tmp_path: Path) -> None:
    shown = day.printed.split("read them as a planner would.")[1]
    typed = [shlex.split(line) for line in shown.splitlines() if line.strip()]
    # As the user can type it: `ivr` on PATH, else the venv's script the README's set-up made.
    assert all(argv[0] == "ivr" or (Path(argv[0]).name == "ivr" and Path(argv[0]).is_file()) for argv in typed), typed
    commands = [argv[1:] for argv in typed]
    assert {tuple(argv[:2]) for argv in commands} >= {("report", "html"), ("export", "calls"), ("staffing", "--config")}
    for argv in commands:
        assert argv[argv.index("--db") + 1] == str(day.db)
        if "--output" in argv:  # the report goes where the test says, not beside the database
            argv[argv.index("--output") + 1] = str(tmp_path / "report")
        result = CliRunner().invoke(main, argv)
        assert result.exit_code == 0, (argv, result.output)
        assert result.output.strip(), argv
    assert any((tmp_path / "report").iterdir())


def test_staffing_models_the_queues_callers_abandoned_with_erlang_a(day: Day) -> None:
    """Patience is estimated from the abandons: no queue that had some falls back to Erlang C."""
    abandoned = {leg["queue"] for leg in _rows(day.db, "legs") if leg["outcome"] == "abandoned"}
    result = CliRunner().invoke(main, ["staffing", "--config", str(CONFIG), "--db", str(day.db), "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = [row for row in csv.DictReader(io.StringIO(result.stdout)) if row["queue"] in abandoned]
    assert {"billing", "technical"} <= abandoned
    assert rows and {row["model"] for row in rows} == {"erlang_a"}
    assert all(float(row["patience_seconds"]) > 0 for row in rows)


def test_the_demo_store_is_where_serve_would_put_it(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """No --db: var/demo.sqlite in the configuration folder, resolved as `ivr serve` resolves
    server.yaml's store.sqlite_path (beside it: var/calls.sqlite). Nothing to warn about: no
    Asterisk is asked to write anything (the survey comment folder is the PBX's)."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config, ignore=shutil.ignore_patterns("var"))
    (tmp_path / "prompts").symlink_to(REPO / "prompts")  # server.yaml's ../prompts/sounds
    out = io.StringIO()
    run = run_demo(config, 5, None, seed=1, console=Console(file=out, width=200))
    assert run.db == config / "var" / "demo.sqlite"
    assert run.db.is_file()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


@pytest.fixture
def busy_loop() -> Iterator[None]:
    """A process spinning on a CPU for the length of the test: the machine is loaded."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


def test_the_same_seed_gives_the_same_records_at_any_load(day: Day, tmp_path: Path, busy_loop: None) -> None:
    again = _run(tmp_path / "again.sqlite")
    for what in ("calls", "legs", "agents"):
        assert _export(again.db, what) == _export(day.db, what), what
    other = _run(tmp_path / "other.sqlite", seed=8, calls=20)
    assert _export(other.db, "calls") != _export(day.db, "calls")

