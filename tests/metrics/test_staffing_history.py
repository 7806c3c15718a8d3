"""`ivr staffing` from the call history: the hand-made calls (handcalls.py) written through the
store, planned on Shanghai's clock (the first hotline's zone, so London's c16 at 02:10 joins
billing's 10:00 interval), next to the agents who were logged in (routing.yaml of
exportkit.py: billing is served by a1, a2 and a3; general by a2 and a3)."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from pathlib import Path

import pytest
from click.testing import CliRunner

from exportkit import make_config, write_handcalls
from handcalls import sh
from ivr.cli.main import main
from ivr.cli.staffing import staffing_command
from ivr.metrics.history import history_loader
from ivr.metrics.staffing import EXPORT_COLUMNS, IntervalLoad, StaffingPolicy, export_values, plan

NOW = dt.datetime(2026, 11, 27, tzinfo=dt.timezone.utc)
DAY = ("--from", "2026-11-25", "--to", "2026-11-25")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    db = tmp_path / "calls.sqlite"
    asyncio.run(write_handcalls(db))
    return make_config(tmp_path, db)


def staffing(config: Path, *args: str) -> tuple[list[dict[str, str]], list[str]]:
    said: list[str] = []
    command = staffing_command(history=history_loader(echo=said.append, now=lambda: NOW))
    result = CliRunner().invoke(command, ["--config", str(config), "--format", "csv", *args])
    assert result.exit_code == 0, result.output + result.stderr
    return list(csv.DictReader(io.StringIO(result.stdout))), said


def expected(load: IntervalLoad) -> dict[str, str]:
    """What the command must print for this load: the bridge is checked, not Erlang A."""
    (row,) = plan([load], StaffingPolicy())
    return {name: "" if value is None else str(value) for name, value in zip(EXPORT_COLUMNS, export_values(row))}


def test_history_gives_offered_aht_pooled_patience_and_logged_in_agents(config: Path) -> None:
    rows, said = staffing(config, *DAY, "--queue", "billing")
    by_start = {r["interval_start"]: r for r in rows}
    # 10 legs entered billing 10:00-10:15 (c01-c09 and c16); AHT (150 + 220 + 100 + 50) / 4.
    # Patience over the day, short abandons left out: waits 50 + 18 (abandoned) + 100 (answered)
    # + 120 (overflowed) = 288 s over 2 abandons. Logged in: a1 900 + a2 900 + a3 600 s of 900.
    assert by_start["2026-11-25T10:00:00+08:00"] == expected(
        IntervalLoad("billing", sh(10, 0), 10, 130.0, 144.0, 2400 / 900))
    assert by_start["2026-11-25T10:15:00+08:00"] == expected(  # c10 c11 c12: (700 + 360) / 2
        IntervalLoad("billing", sh(10, 15), 3, 530.0, 144.0, 3.0))
    # No call, 3 agents for part of it: planned with the day's AHT, (150+220+100+700+360+600+50) / 7.
    quiet = by_start["2026-11-25T10:30:00+08:00"]
    assert quiet == expected(IntervalLoad("billing", sh(10, 30), 0, 2180 / 7, 144.0, 2.0))
    assert (quiet["agents"], quiet["difference"]) == ("0", "2.0")
    # a1 logged in at 09:55; a2 stays logged in (not ready) from 10:30 to the end of the day.
    assert by_start["2026-11-25T09:45:00+08:00"]["staffed_agents"] == "0.33"
    assert by_start["2026-11-25T23:45:00+08:00"]["offered"] == "1"  # c14
    assert len(rows) == 57 and {r["queue"] for r in rows} == {"billing"}  # 09:45 ... 23:45
    assert said == ["intervals in Asia/Shanghai"]


def test_the_recommendation_falls_short_where_too_few_were_logged_in(config: Path) -> None:
    rows, _ = staffing(config, *DAY, "--queue", "general", "--model", "erlang_c")
    first = rows[0]
    # c05's second leg and c20: 2 offered, AHT 60 (c05), logged in a2 900 + a3 600 s.
    assert first == expected(IntervalLoad("general", sh(10, 0), 2, 60.0, None, 1500 / 900))
    assert first["model"] == "erlang_c"


def test_a_queue_without_an_answered_call_cannot_be_planned(tmp_path: Path, config: Path) -> None:
    # On the 26th billing only had c15, abandoned: no AHT; general had nobody either.
    said: list[str] = []
    command = staffing_command(history=history_loader(echo=said.append, now=lambda: NOW))
    result = CliRunner().invoke(command, ["--config", str(config), "--from", "2026-11-26", "--to", "2026-11-26",
                                          "--queue", "billing", "--format", "csv"])
    assert said[0] == "queue billing: no call was answered in these days, so there is no AHT to plan with"
    assert result.exit_code == 2 and "no intervals to plan" in result.stderr


def test_staffing_is_an_ivr_command_that_reads_the_configured_store(config: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    assert "staffing" in runner.invoke(main, ["--help"]).output
    ran = runner.invoke(main, ["staffing", "--config", str(config), *DAY, "--queue", "general", "--format", "csv"])
    assert ran.exit_code == 0, ran.stderr
    assert ran.stdout.splitlines()[0] == ",".join(EXPORT_COLUMNS)
    assert "intervals in Asia/Shanghai" in ran.stderr
    elsewhere = make_config(tmp_path / "other", tmp_path / "missing.sqlite")
    missing = runner.invoke(main, ["staffing", "--config", str(elsewhere)])
    assert missing.exit_code == 2 and "no call-record database at" in missing.stderr


def test_presence_holds_until_the_next_event_past_the_last_day_with_one(tmp_path: Path) -> None:
    """a1 logged in on the 25th (its only event) and answered a call on the 26th: without a
    date range the plan runs to the last call's day, and a1 is counted as logged in there."""
    from ivr.records.model import AgentEvent, CallEnded, CallStarted, Disposition, QueueLeg
    from ivr.records.store import CallStore

    db = tmp_path / "calls.sqlite"

    async def write() -> None:
        store = await CallStore.open(db)
        start = sh(10, 5, day=26)
        store.call_started(CallStarted("n1", "u-n1", "PJSIP/t-1", "4008001234", "13800138000", "4008001234",
                                       "zh-CN", "v1", "cfg", start))
        leg = QueueLeg("billing", start, start + dt.timedelta(seconds=200), "answered",
                       answered_at=start + dt.timedelta(seconds=20), agent_id="a1", talk_seconds=180.0, offers=1)
        store.call_ended(CallEnded("n1", start + dt.timedelta(seconds=200), Disposition.ANSWERED, "", "zh-CN",
                                   None, None, None, "agent", (), (leg,)))
        store.agent_event(AgentEvent("a1", sh(9, 0), "ready"))
        await store.close()

    asyncio.run(write())
    rows, _ = staffing(make_config(tmp_path, db), "--queue", "billing")

    [row] = [r for r in rows if r["interval_start"] == "2026-11-26T10:00:00+08:00"]
    assert (row["offered"], row["staffed_agents"]) == ("1", "1.0")
