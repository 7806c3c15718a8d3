"""`ivr demo`, the newcomer's first command: the real controller, scripted calls, a report."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

from rich.console import Console

from ivr.demo import run_demo

REPO = Path(__file__).resolve().parents[2]


async def test_demo_routes_calls_to_agents_surveys_callers_and_reports(tmp_path: Path) -> None:
    out = io.StringIO()
    db = tmp_path / "demo.sqlite"
    await run_demo(REPO / "config", 30, db, seed=7, console=Console(file=out, width=120))
    printed = out.getvalue()
    assert "agents logged in to the ACD: 1001, 1002, 1003, 1004" in printed
    for title in ("calls by disposition", "ACD queues", "Agents", "IVR paths taken", "Post-call surveys"):
        assert title in printed
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM calls WHERE ended_at IS NOT NULL").fetchone() == (30,)
        answered = conn.execute("SELECT count(*) FROM queue_legs WHERE outcome = 'answered'"
                                " AND agent_id IS NOT NULL").fetchone()[0]
        # Callers whose agent hung up first went on into the survey and answered it.
        surveyed = conn.execute("SELECT count(*) FROM survey_answers WHERE value IS NOT NULL").fetchone()[0]
    assert answered > 0
    assert surveyed > 0
