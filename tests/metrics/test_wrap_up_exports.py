"""Wrap-up codes in `ivr export calls|legs` and `ivr report wrapups|html`: each answered leg
carries its own agent's code (calls: the last answered leg's), `no_code` once the time to pick
one passed, `pending` before, empty when none was asked; the report counts them per queue
and interval with the share of answered calls coded.

The hand-made calls (handcalls.py) plus w1: answered in billing by a1, then sent on to
general and answered there by a3."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from exportkit import SALT, make_config, write_handcalls
from handcalls import A, GENERAL, answered, call, sh
from ivr.cli.main import main
from ivr.records.model import CallEnded, CallStarted
from ivr.records.store import CallStore
from ivr.records.wrapups import WrapUpStore

DAYS = ("--since", "2026-11-25", "--until", "2026-11-26")
NOW = ("--now", "2026-11-27T00:00:00+0000")
LATER = dt.datetime(2026, 11, 28, tzinfo=dt.timezone.utc)  # after NOW: still time to pick a code
W1 = call("w1", sh(10, 59), A, GENERAL, (answered("billing", sh(11, 0), 10, "a1", 60),
                                          answered("general", sh(11, 1, 20), 5, "a3", 90)))


async def write_wrap_ups(db: Path) -> None:
    store = await CallStore.open(db, privacy_policy="mask", salt=SALT)
    try:
        store.call_started(CallStarted(W1.call_id, W1.uniqueid, W1.channel, W1.dialed, "13800000009", W1.hotline,
                                       W1.language, W1.menu_version, W1.config_version, W1.started_at))
        assert W1.ended_at is not None and W1.disposition is not None
        store.call_ended(CallEnded(W1.call_id, W1.ended_at, W1.disposition, "", W1.language, None, None, None,
                                   "caller", W1.events, W1.queue_legs))
        await store.flush()
        wrap_ups = WrapUpStore(store.engine)
        end = sh(12, 0)
        for call_id, agent, queue, deadline, code, note in (
            ("c01", "a1", "billing", end, "billing/refund/approved", "refund, sent today"),
            ("c01", "a2", "billing", end, "other", None),  # another agent's row: not c01's leg
            ("c02", "a2", "billing", sh(10, 10), None, None),  # the time passed: no code
            ("c10", "a2", "billing", LATER, None, None),  # still time: pending
            ("w1", "a1", "billing", end, "other", None),
            ("w1", "a3", "general", end, "solved", "fixed on the call"),
        ):
            await wrap_ups.open(call_id, agent, queue, sh(10, 0), deadline)
            if code is not None:
                assert (await wrap_ups.set_code(call_id, agent, code, note, at=sh(10, 30), by=agent)).value == "stored"
    finally:
        await store.close()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    db = tmp_path / "calls.sqlite"
    asyncio.run(write_handcalls(db))
    asyncio.run(write_wrap_ups(db))
    return make_config(tmp_path, db)


def run(config: Path, *args: str) -> Result:
    result = CliRunner().invoke(main, [*args, "--config", str(config)])
    assert result.exit_code == 0, result.output + result.stderr
    return result


def csv_rows(result: Result) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(result.stdout)))


def test_each_leg_carries_its_own_agents_code(config: Path) -> None:
    legs = {(r["call_id"], r["leg"]): r for r in csv_rows(run(config, "export", "legs", *DAYS, *NOW))}
    wrap = {key: (row["wrap_code"], row["wrap_note"]) for key, row in legs.items()}
    assert wrap["c01", "1"] == ("billing/refund/approved", "refund, sent today")  # a1's, not a2's
    assert wrap["c02", "1"] == ("no_code", "")
    assert wrap["c10", "1"] == ("pending", "")
    assert wrap["w1", "1"] == ("other", "") and wrap["w1", "2"] == ("solved", "fixed on the call")
    assert wrap["c05", "1"] == wrap["c05", "2"] == ("", "")  # overflowed; answered, never asked
    assert wrap["c07", "1"] == ("", "")
    assert list(legs["c01", "1"])[-2:] == ["wrap_code", "wrap_note"]


def test_a_call_carries_its_last_answered_legs_code(config: Path) -> None:
    calls = {r["call_id"]: r for r in csv_rows(run(config, "export", "calls", *DAYS, *NOW))}
    assert (calls["w1"]["wrap_code"], calls["w1"]["wrap_note"]) == ("solved", "fixed on the call")
    assert (calls["c01"]["wrap_code"], calls["c02"]["wrap_code"], calls["c10"]["wrap_code"]) == (
        "billing/refund/approved", "no_code", "pending")
    assert calls["c13"]["wrap_code"] == calls["c05"]["wrap_code"] == ""  # self-served; never asked
    as_json = {r["call_id"]: r for r in map(json.loads, run(
        config, "export", "calls", *DAYS, *NOW, "--format", "jsonl").stdout.splitlines())}
    assert (as_json["c01"]["wrap_note"], as_json["c05"]["wrap_code"]) == ("refund, sent today", None)


def test_before_the_deadline_an_uncoded_call_is_pending_and_after_it_no_code(config: Path) -> None:
    later = ("--now", "2026-11-29T00:00:00+0000")
    calls = {r["call_id"]: r for r in csv_rows(run(config, "export", "calls", *DAYS, *later))}
    assert calls["c10"]["wrap_code"] == "no_code"


def test_report_counts_codes_per_queue_and_interval(config: Path) -> None:
    rows = json.loads(run(config, "report", "wrapups", *DAYS, *NOW, "--minutes", "30", "--format", "json").stdout)
    by_key = {(r["queue"], r["interval_start"]): r for r in rows}
    # 10:00-10:30 Shanghai in billing: c01 coded, c02 no code, c10 pending, c07 and c12 never asked.
    morning = by_key["billing", "2026-11-25T10:00:00+08:00"]
    assert {k: morning[k] for k in ("answered", "coded", "no_code", "pending", "compliance", "codes")} == {
        "answered": 5, "coded": 1, "no_code": 1, "pending": 1, "compliance": 0.2,
        "codes": {"billing/refund/approved": 1}}
    eleven = by_key["billing", "2026-11-25T11:00:00+08:00"]
    assert (eleven["answered"], eleven["codes"], eleven["compliance"]) == (1, {"other": 1}, 1.0)
    # General has no codes in routing.yaml, yet a3 was asked on w1: its calls are counted too.
    general = by_key["general", "2026-11-25T11:00:00+08:00"]
    assert (general["answered"], general["codes"]) == (1, {"solved": 1})
    # A queue with codes configured but no answered calls gets no rows.
    assert not any(r["queue"] == "technical" for r in rows)


def test_report_csv_has_a_line_per_code_with_no_code_and_pending(config: Path) -> None:
    lines = csv_rows(run(config, "report", "wrapups", *DAYS, *NOW, "--minutes", "30", "--format", "csv",
                         "--queue", "billing"))
    morning = [(r["code"], r["calls"], r["compliance"]) for r in lines
               if r["interval_start"] == "2026-11-25T10:00:00+08:00"]
    assert morning == [("billing/refund/approved", "1", "0.2"), ("no_code", "1", "0.2"), ("pending", "1", "0.2")]
    assert {r["queue"] for r in lines} == {"billing"}


def test_report_table_and_html_section(config: Path, tmp_path: Path) -> None:
    table = run(config, "report", "wrapups", *DAYS, *NOW, "--minutes", "30").stdout
    assert "billing/refund/approved 1" in table and "20.0%" in table
    out = tmp_path / "report"
    run(config, "report", "html", *DAYS, "--output", str(out), "--minutes", "30", "--jobs", "1")
    page = (out / "index.html").read_text(encoding="utf-8")
    section = page[page.index('<table id="wrap-ups">'):]
    section = section[:section.index("</table>")]
    # One clock on the page: c16 (London) is in Shanghai's 10:00 too; c10's deadline has passed by now.
    assert "billing/refund/approved 1" in section and "solved 1" in section and "16.7%" in section
