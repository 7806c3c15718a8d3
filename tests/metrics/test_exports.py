"""`ivr export` of the hand-made calls (handcalls.py) written through the store: the figures a
planner opens in a spreadsheet are the hand-computed ones, in CSV and in JSON Lines alike.

Days 2026-11-25..26 in each hotline's zone hold every call; T = 20 s, short abandons under
5 s, percentiles 50 and 90 (nearest rank)."""

from __future__ import annotations

import asyncio
import datetime as dt
import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from exportkit import make_config, write_handcalls
from handcalls import H2
from ivr.cli.main import main

DAYS = ("--since", "2026-11-25", "--until", "2026-11-26")
NOW = ("--now", "2026-11-27T00:00:00+0000")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    db = tmp_path / "calls.sqlite"
    asyncio.run(write_handcalls(db))
    return make_config(tmp_path, db)


def export(config: Path, kind: str, *args: str, fmt: str = "csv") -> Result:
    result = CliRunner().invoke(main, ["export", kind, "--config", str(config), "--format", fmt, *args])
    assert result.exit_code == 0, result.output + result.stderr
    return result


def csv_rows(result: Result) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(result.stdout)))


def jsonl_rows(result: Result) -> list[dict[str, object]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def as_csv_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def test_intervals_export_gives_the_hand_computed_figures_and_fills_empty_intervals(config: Path) -> None:
    result = export(config, "intervals", *DAYS)
    rows = csv_rows(result)
    keys = [(r["queue"], r["timezone"], r["interval_start"]) for r in rows]
    # billing in Shanghai: 10:00, 10:15, 53 empty intervals 10:30..23:30, 23:45, 00:00; London; general.
    assert len(rows) == 59
    assert keys[:3] == [("billing", "Asia/Shanghai", "2026-11-25T10:00:00+08:00"),
                        ("billing", "Asia/Shanghai", "2026-11-25T10:15:00+08:00"),
                        ("billing", "Asia/Shanghai", "2026-11-25T10:30:00+08:00")]
    assert keys[54:] == [("billing", "Asia/Shanghai", "2026-11-25T23:30:00+08:00"),
                         ("billing", "Asia/Shanghai", "2026-11-25T23:45:00+08:00"),
                         ("billing", "Asia/Shanghai", "2026-11-26T00:00:00+08:00"),
                         ("billing", "Europe/London", "2026-11-25T02:00:00+00:00"),
                         ("general", "Asia/Shanghai", "2026-11-25T10:00:00+08:00")]
    first = rows[0]
    assert {name: first[name] for name in (
        "interval_end", "offered", "answered", "abandoned", "short_abandons", "overflowed", "overflowed_timeout",
        "overflowed_no_agents", "answered_within_t", "abandoned_within_t", "service_level", "asa_seconds",
        "average_wait_seconds", "talk_seconds", "hold_seconds", "wrap_seconds", "aht_seconds", "transfers",
        "repeat_calls", "csat_answers", "csat_satisfied", "csat", "p50_answered_wait_seconds",
        "p90_answered_wait_seconds", "p50_wait_seconds", "p90_wait_seconds")} == {
        "interval_end": "2026-11-25T10:15:00+08:00", "offered": "9", "answered": "3", "abandoned": "3",
        "short_abandons": "1", "overflowed": "3", "overflowed_timeout": "2", "overflowed_no_agents": "1",
        "answered_within_t": "2",  # c02 by AMI's answer time (15 s), not the controller's (40 s)
        "abandoned_within_t": "2",
        "service_level": "0.25",  # 2 / (9 - 1)
        "asa_seconds": "16.6667",  # (10 + 15 + 25) / 3
        "average_wait_seconds": "26.7778",  # 241 / 9
        "talk_seconds": "380.0", "hold_seconds": "30.0", "wrap_seconds": "60.0",
        "aht_seconds": "156.6667",  # 470 / 3
        "transfers": "2", "repeat_calls": "1", "csat_answers": "4", "csat_satisfied": "2", "csat": "0.5",
        "p50_answered_wait_seconds": "15.0", "p90_answered_wait_seconds": "25.0",
        "p50_wait_seconds": "18.0", "p90_wait_seconds": "60.0",
    }
    empty = rows[2]
    assert (empty["interval_end"], empty["offered"], empty["answered"], empty["service_level"],
            empty["asa_seconds"], empty["aht_seconds"], empty["p90_wait_seconds"]) == (
        "2026-11-25T10:45:00+08:00", "0", "0", "", "", "", "")
    london = rows[-2]
    assert (london["offered"], london["answered"], london["asa_seconds"], london["aht_seconds"]) == (
        "1", "1", "12.0", "50.0")
    assert "59 intervals row(s)" in result.stderr


def test_half_hour_intervals_of_one_queue_and_day(config: Path) -> None:
    rows = csv_rows(export(config, "intervals", "--since", "2026-11-25", "--until", "2026-11-25",
                           "--queue", "general", "--minutes", "30"))
    (general,) = rows
    assert (general["interval_start"], general["interval_minutes"], general["offered"], general["service_level"]) == (
        "2026-11-25T10:00:00+08:00", "30", "2", "1.0")


def test_every_export_says_the_same_in_csv_and_jsonl(config: Path) -> None:
    for kind in ("calls", "legs", "intervals", "agents", "ivr"):
        as_csv = csv_rows(export(config, kind, *DAYS, *NOW))
        as_json = jsonl_rows(export(config, kind, *DAYS, *NOW, fmt="jsonl"))
        assert as_csv and len(as_csv) == len(as_json), kind
        for text_row, json_row in zip(as_csv, as_json):
            assert list(text_row) == list(json_row), kind
            assert text_row == {name: as_csv_text(value) for name, value in json_row.items()}, kind
    numbers = jsonl_rows(export(config, "intervals", *DAYS, fmt="jsonl"))[0]
    assert (numbers["offered"], numbers["service_level"], numbers["csat"]) == (9, 0.25, 0.5)


def test_calls_export_has_path_queues_and_reconciled_times(config: Path) -> None:
    rows = {r["call_id"]: r for r in csv_rows(export(config, "calls", *DAYS))}
    assert sorted(rows) == [f"c{n:02d}" for n in range(1, 21)]
    c02 = rows["c02"]
    assert {name: c02[name] for name in (
        "hotline", "caller", "menu_version", "started_at", "disposition", "hangup_cause", "path", "queues",
        "enqueued_at", "answered_at", "answer_source", "agent_id", "left_queue_at", "hold_seconds")} == {
        "hotline": "4008001234", "caller": "*******0002", "menu_version": "2026.1",
        "started_at": "2026-11-25T02:01:30+00:00", "disposition": "answered", "hangup_cause": "16",
        "path": "welcome > choose-language > main-menu > billing-menu > billing-queue", "queues": "billing",
        "enqueued_at": "2026-11-25T02:02:00+00:00",
        "answered_at": "2026-11-25T02:02:15+00:00", "answer_source": "ami",  # AMI's DialEnd, not 02:02:40
        "agent_id": "a2", "left_queue_at": "2026-11-25T02:06:00+00:00", "hold_seconds": "30.0",
    }
    c05 = rows["c05"]
    assert (c05["queues"], c05["answered_at"], c05["answer_source"], c05["agent_id"]) == (
        "billing > general", "2026-11-25T02:07:05+00:00", "controller", "a3")
    assert (rows["c13"]["queues"], rows["c13"]["enqueued_at"], rows["c13"]["disposition"]) == ("", "", "self_served")
    assert rows["c01"]["caller"] == "anonymous"


def test_calls_export_filters_by_day_hotline_and_queue(config: Path) -> None:
    def ids(*args: str) -> list[str]:
        return [r["call_id"] for r in csv_rows(export(config, "calls", *args))]

    # The 26th in Shanghai: c15 (00:04) and c13; c16 started on the 25th in London.
    assert ids("--since", "2026-11-26", "--until", "2026-11-26") == ["c15", "c13"]
    # A dialed number with a trunk prefix is the same hotline.
    assert ids(*DAYS, "--hotline", "0" + H2) == ["c16"]
    assert ids(*DAYS, "--queue", "general") == ["c05", "c20"]


def test_callers_are_masked_unless_unmasked_was_asked(tmp_path: Path) -> None:
    db = tmp_path / "full.sqlite"
    asyncio.run(write_handcalls(db, policy="full"))
    config = make_config(tmp_path, db)
    masked = {r["call_id"]: r["caller"] for r in csv_rows(export(config, "calls", *DAYS))}
    unmasked = {r["call_id"]: r["caller"] for r in csv_rows(export(config, "calls", *DAYS, "--unmasked"))}
    assert (masked["c12"], unmasked["c12"]) == ("*******0002", "13800000002")
    assert (masked["c07"], unmasked["c07"]) == ("*************0001", "+86 138 0000 0001")
    assert masked["c01"] == unmasked["c01"] == "anonymous"


def test_hashed_callers_stay_hashed(tmp_path: Path) -> None:
    db = tmp_path / "hashed.sqlite"
    asyncio.run(write_handcalls(db, policy="hash"))
    config = make_config(tmp_path, db)
    callers = {r["call_id"]: r["caller"] for r in csv_rows(export(config, "calls", *DAYS))}
    assert callers["c12"].startswith("sha256:") and len(callers["c12"]) == len("sha256:") + 64
    assert "13800000002" not in json.dumps(callers)


def test_legs_export_has_enqueue_answer_and_end_of_each_stay(config: Path) -> None:
    legs = {(r["call_id"], r["leg"]): r for r in csv_rows(export(config, "legs", *DAYS))}
    assert len(legs) == 17
    c12 = legs["c12", "1"]
    # Entered at 10:29:55 (its interval), answered at 10:30:05 (the next).
    assert (c12["interval_start"], c12["enqueued_at"], c12["answered_at"], c12["left_at"], c12["wait_seconds"],
            c12["handle_seconds"]) == ("2026-11-25T10:15:00+08:00", "2026-11-25T02:29:55+00:00",
                                       "2026-11-25T02:30:05+00:00", "2026-11-25T02:35:05+00:00", "10.0", "360.0")
    assert (legs["c05", "1"]["outcome"], legs["c05", "1"]["overflow"], legs["c05", "1"]["transferred"],
            legs["c05", "2"]["queue"]) == ("overflowed", "timeout", "true", "general")
    assert (legs["c07", "1"]["repeated"], legs["c14", "1"]["repeated"], legs["c12", "1"]["repeated"]) == (
        "true", "true", "false")


def test_agents_export_per_agent_and_interval(config: Path) -> None:
    rows = csv_rows(export(config, "agents", "--since", "2026-11-25", "--until", "2026-11-25", *NOW))
    found = {(r["agent_id"], r["interval_start"]): r for r in rows}
    a1 = found["a1", "2026-11-25T10:00:00+08:00"]
    assert (a1["calls_answered"], a1["handle_seconds"], a1["staffed_seconds"], a1["occupancy"]) == (
        "2", "250.0", "900.0", "0.2778")  # c01 + c07: 250 s busy of 900 s ready
    a2 = found["a2", "2026-11-25T10:15:00+08:00"]
    assert (a2["talk_seconds"], a2["hold_seconds"], a2["occupancy"]) == ("522.0", "58.0", "0.6444")
    # Not ready from 10:30 to the end of the day: logged in; no occupancy without a call (c14 at 23:50).
    late = found["a2", "2026-11-25T22:00:00+08:00"]
    assert (late["staffed_seconds"], late["not_ready_seconds"], late["occupancy"]) == ("900.0", "900.0", "")
    assert found["a1", "2026-11-25T09:45:00+08:00"]["ready_seconds"] == "300.0"  # ready from 09:55
    # The next day: a2's last event before it (not ready) holds all day; a1 and a3 logged out.
    next_day = csv_rows(export(config, "agents", "--since", "2026-11-26", "--until", "2026-11-26", *NOW))
    assert len(next_day) == 96 and {r["agent_id"] for r in next_day} == {"a2"}
    assert {r["not_ready_seconds"] for r in next_day} == {"900.0"}
    # general is served by a2 and a3 (routing.yaml skills), not a1.
    general = csv_rows(export(config, "agents", "--since", "2026-11-25", "--until", "2026-11-25",
                              "--queue", "general", *NOW))
    assert {r["agent_id"] for r in general} == {"a2", "a3"}


def test_agent_presence_stops_at_now(config: Path) -> None:
    rows = csv_rows(export(config, "agents", "--since", "2026-11-25", "--until", "2026-11-25",
                           "--now", "2026-11-25T03:00:00+0000"))  # 11:00 in Shanghai
    assert max(r["interval_start"] for r in rows) == "2026-11-25T10:45:00+08:00"


def test_ivr_export_lists_each_node_then_its_options(config: Path) -> None:
    rows = csv_rows(export(config, "ivr", *DAYS))
    assert rows[0]["kind"] == "node"
    billing_menu = next(i for i, r in enumerate(rows) if r["kind"] == "node" and r["node"] == "billing-menu"
                        and r["menu_version"] == "2026.1" and r["hotline"] == "4008001234")
    node, *options = rows[billing_menu:billing_menu + 3]
    assert (node["reached"], node["invalid"], node["contained"], node["pressed"], node["option"]) == (
        "15", "1", "1", "", "")
    assert [(o["kind"], o["node"], o["option"], o["pressed"], o["reached"]) for o in options] == [
        ("option", "billing-menu", "2", "14", ""), ("option", "billing-menu", "1", "1", "")]
    versions = {(r["hotline"], r["menu_version"], r["calls"]) for r in rows if r["kind"] == "node"}
    assert versions == {("4008001234", "2026.1", "18"), ("4008001234", "2026.2", "1"), ("4008005678", "2026.1", "1")}


def test_output_file_and_refusals(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "calls.jsonl"
    result = export(config, "calls", *DAYS, "--output", str(out), fmt="jsonl")
    assert result.stdout == "" and "20 calls row(s) written to" in result.stderr
    assert len(out.read_text().splitlines()) == 20
    runner = CliRunner()
    refused = runner.invoke(main, ["export", "ivr", "--config", str(config), "--queue", "billing"])
    assert refused.exit_code == 2 and "--queue does not apply" in refused.stderr
    backwards = runner.invoke(main, ["export", "calls", "--config", str(config), "--since", "2026-11-26",
                                     "--until", "2026-11-25"])
    assert backwards.exit_code == 2 and "before --since" in backwards.stderr
    missing = runner.invoke(main, ["export", "calls", "--config", str(config), "--db", str(tmp_path / "none.db")])
    assert missing.exit_code == 2 and "no call-record database" in missing.stderr


def test_calls_and_legs_exports_show_the_recording_proof_and_the_first_estimate(tmp_path: Path) -> None:
    from ivr.records.model import CallEnded, CallStarted, Disposition, QueueLeg
    from ivr.records.store import CallStore

    db = tmp_path / "proof.sqlite"
    start = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.timezone.utc)

    async def write() -> None:
        store = await CallStore.open(db)
        store.call_started(CallStarted("p1", "u-p1", "PJSIP/t-1", "4008001234", "13800138000", "4008001234",
                                       "zh-CN", "v1", "cfg", start))
        leg = QueueLeg("billing", start + dt.timedelta(seconds=20), start + dt.timedelta(seconds=95), "abandoned",
                       first_estimate=60.0)
        store.call_ended(CallEnded("p1", start + dt.timedelta(seconds=95), Disposition.QUEUE_ABANDONED, "", "zh-CN",
                                   start + dt.timedelta(seconds=4), start + dt.timedelta(seconds=4.5),
                                   "4008001234/20261125/u-p1.wav", "caller", (), (leg,)))
        await store.close()

    asyncio.run(write())
    config = make_config(tmp_path, db)

    [call] = csv_rows(export(config, "calls"))
    [stay] = csv_rows(export(config, "legs"))

    assert (call["notice_played_at"], call["recording_started_at"], call["recording_file"]) == (
        "2026-11-25T02:00:04+00:00", "2026-11-25T02:00:04.500+00:00", "4008001234/20261125/u-p1.wav")
    assert (stay["wait_seconds"], stay["first_estimate_seconds"]) == ("75.0", "60.0")
