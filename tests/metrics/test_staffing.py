"""Staffing per interval: the plan, the forecast file and what `ivr staffing` prints and exports."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ivr.cli.staffing import HistoryRequest, HistoryUnavailable, staffing, staffing_command
from ivr.metrics.erlang import QueueModel, StaffingTarget, recommend
from ivr.metrics.staffing import ForecastError, IntervalLoad, StaffingPolicy, plan, read_forecast
from servekit import copy_config

PARIS = dt.timezone(dt.timedelta(hours=1))
NINE = dt.datetime(2025, 3, 3, 9, 0, tzinfo=PARIS)
QUARTER = dt.timedelta(minutes=15)
# The Mitan Erlang-C worked example (see test_erlang.py): 360 calls per half hour of 240 s,
# 80% within 15 s needs 55 agents: P(wait) 0.2387, ASA 8.184 s, service level 0.8459.
MITAN_OPTIONS = ["--model", "erlang_c", "--interval-minutes", "30", "--sl-target", "0.8", "--sl-seconds", "15",
                 "--max-occupancy", "1", "--shrinkage", "0"]


def _policy(**overrides: object) -> StaffingPolicy:
    values: dict[str, object] = dict(model="erlang_a", target=StaffingTarget(), interval=QUARTER)
    values.update(overrides)
    return StaffingPolicy(**values)  # type: ignore[arg-type]


# --- the plan ---------------------------------------------------------------------------------


def test_offered_calls_times_aht_over_the_interval_is_the_load() -> None:
    # 100 calls of 180 s in 15 minutes: 20 Erlangs; in 30 minutes the same calls are 10 Erlangs.
    load = IntervalLoad("sales", NINE, 100, 180, patience_seconds=120)
    quarter, = plan([load], _policy())
    half, = plan([load], _policy(interval=dt.timedelta(minutes=30)))
    assert quarter.load_erlangs == pytest.approx(20) and half.load_erlangs == pytest.approx(10)
    expected = recommend(20, 180, StaffingTarget(), 120)
    assert (quarter.model, quarter.agents, quarter.scheduled) == ("erlang_a", expected.agents, expected.scheduled)
    assert quarter.service_level == pytest.approx(expected.service_level)
    assert half.agents < quarter.agents


def test_erlang_a_takes_the_interval_patience_then_the_default_then_falls_back_to_erlang_c() -> None:
    loads = [
        IntervalLoad("sales", NINE, 100, 180, patience_seconds=30),
        IntervalLoad("sales", NINE + QUARTER, 100, 180),
    ]
    own, bare = plan(loads, _policy())
    assert (own.model, own.patience_seconds, bare.model, bare.patience_seconds) == ("erlang_a", 30, "erlang_c", None)
    assert bare.abandon_rate == 0.0 and own.abandon_rate > 0
    _, defaulted = plan(loads, _policy(default_patience_seconds=300))
    assert (defaulted.model, defaulted.patience_seconds) == ("erlang_a", 300)
    erlang_c_rows = plan(loads, _policy(model="erlang_c"))
    assert [row.model for row in erlang_c_rows] == ["erlang_c", "erlang_c"]
    assert erlang_c_rows[0].agents == recommend(20, 180, StaffingTarget()).agents


def test_rows_put_the_logged_in_agents_next_to_the_recommendation() -> None:
    loads = [
        IntervalLoad("support", NINE, 360, 240, staffed_agents=120.5),
        IntervalLoad("sales", NINE + QUARTER, 0, 0, staffed_agents=2),
        IntervalLoad("sales", NINE, 100, 180, staffed_agents=20.25),
    ]
    rows = plan(loads, _policy(model="erlang_c"))
    assert [(row.queue, row.start) for row in rows] == [("sales", NINE), ("sales", NINE + QUARTER), ("support", NINE)]
    busy, idle, support = rows
    assert busy.difference == pytest.approx(20.25 - busy.agents) and 20.25 < busy.agents
    assert (idle.agents, idle.scheduled, idle.difference) == (0, 0, 2)
    assert support.difference == pytest.approx(120.5 - support.agents) and 120.5 > support.agents


def test_an_interval_without_a_utc_offset_is_refused() -> None:
    with pytest.raises(ValueError, match="UTC offset"):
        IntervalLoad("sales", dt.datetime(2025, 3, 3, 9), 10, 180)
    with pytest.raises(ValueError, match="AHT"):
        IntervalLoad("sales", NINE, 10, 0)


# --- the forecast file ------------------------------------------------------------------------


def test_a_forecast_reads_with_and_without_patience() -> None:
    text = (
        "queue,interval_start,offered,aht_seconds,patience_seconds\n"
        "sales,2025-03-03T09:00:00+01:00,100,180,120\n"
        "sales,2025-03-03T09:15:00+01:00,12.5,200,\n"
    )
    first, second = read_forecast(text, "f.csv")
    assert first == IntervalLoad("sales", NINE, 100, 180, 120)
    assert second == IntervalLoad("sales", NINE + QUARTER, 12.5, 200, None)
    only_required = read_forecast("queue,interval_start,offered,aht_seconds\nq,2025-03-03T09:00:00Z,1,60\n", "g.csv")
    assert only_required[0].start == dt.datetime(2025, 3, 3, 9, tzinfo=dt.timezone.utc)


def test_every_forecast_problem_is_reported_with_its_line() -> None:
    text = (
        "queue,interval_start,offered,aht_seconds,patience_seconds\n"
        "sales,2025-03-03T09:00:00+01:00,100,180,120\n"
        "sales,2025-03-03T09:15:00,100,180,\n"  # no offset
        "sales,2025-03-03T09:30:00+01:00,lots,180,\n"
        "sales,2025-03-03T09:45:00+01:00,5,0,\n"
        "sales,2025-03-03T09:00:00+01:00,7,180,\n"  # again
        "sales,2025-03-03T10:00:00+01:00,7,180,-3\n"
    )
    with pytest.raises(ForecastError) as caught:
        read_forecast(text, "f.csv")
    assert caught.value.problems == [
        "f.csv:3: interval_start: '2025-03-03T09:15:00' has no UTC offset (add e.g. +01:00)",
        "f.csv:4: offered: expected a number, got 'lots'",
        "f.csv:5: aht_seconds: must be positive when calls are offered",
        "f.csv:6: queue sales at 2025-03-03T09:00:00+01:00 is already on line 2",
        "f.csv:7: patience_seconds: must be positive (leave it empty for none)",
    ]


def test_a_forecast_with_wrong_columns_says_which() -> None:
    with pytest.raises(ForecastError) as caught:
        read_forecast("queue,start,offered,aht_seconds,patience\n", "f.csv")
    assert caught.value.problems == [
        "f.csv:1: missing column(s): interval_start",
        "f.csv:1: unknown column(s): start, patience "
        "(expected queue, interval_start, offered, aht_seconds, patience_seconds)",
    ]


# --- ivr staffing -----------------------------------------------------------------------------


def _forecast(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "forecast.csv"
    path.write_text("queue,interval_start,offered,aht_seconds,patience_seconds\n" + "".join(r + "\n" for r in rows))
    return path


def _run(arguments: list[str], command: object = staffing) -> Result:
    return CliRunner().invoke(command, arguments)  # type: ignore[arg-type]


def test_the_mitan_example_exports_to_csv(tmp_path: Path) -> None:
    forecast = _forecast(tmp_path, "support,2025-03-03T09:00:00+01:00,360,240,")
    result = _run(["--forecast", str(forecast), "--config", str(tmp_path / "none"), "--format", "csv", *MITAN_OPTIONS])
    assert result.exit_code == 0, result.output
    (row,) = list(csv.DictReader(io.StringIO(result.stdout)))
    assert row == {
        "queue": "support", "interval_start": "2025-03-03T09:00:00+01:00", "offered": "360",
        "aht_seconds": "240.0", "load_erlangs": "48.0", "model": "erlang_c", "patience_seconds": "",
        "agents": "55", "scheduled": "55", "service_level": "0.8459", "asa_seconds": "8.18",
        "abandon_rate": "0.0", "occupancy": "0.8727", "staffed_agents": "", "difference": "",
    }


def test_jsonl_export_and_filters(tmp_path: Path) -> None:
    forecast = _forecast(
        tmp_path,
        "support,2025-03-03T09:00:00+01:00,360,240,90",
        "support,2025-03-04T09:00:00+01:00,360,240,90",
        "sales,2025-03-03T09:00:00+01:00,100,180,",
    )
    result = _run(["--forecast", str(forecast), "--config", str(tmp_path / "none"), "--format", "jsonl",
                   "--queue", "support", "--from", "2025-03-03", "--to", "2025-03-03", "--patience", "60"])
    assert result.exit_code == 0, result.output
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    advice = recommend(360 * 240 / 900, 240, StaffingTarget(), 90)  # server.yaml defaults: Erlang A, 80/20
    assert record["interval_start"] == "2025-03-03T09:00:00+01:00"
    assert (record["model"], record["patience_seconds"], record["agents"], record["scheduled"]) == (
        "erlang_a", 90, advice.agents, advice.scheduled)
    assert record["abandon_rate"] == round(advice.abandon_rate, 4) and record["staffed_agents"] is None


def test_the_table_goes_to_a_file(tmp_path: Path) -> None:
    forecast = _forecast(tmp_path, "support,2025-03-03T09:00:00+01:00,360,240,")
    out = tmp_path / "plan.txt"
    result = _run(["--forecast", str(forecast), "--config", str(tmp_path / "none"), "--output", str(out),
                   *MITAN_OPTIONS])
    assert result.exit_code == 0, result.output
    assert "1 interval(s) written to" in result.stderr
    text = out.read_text()
    assert "Staffing (Erlang C): 80.0% answered within 15 s, max occupancy 100.0%, shrinkage 0.0%" in text
    line = next(line for line in text.splitlines() if "support" in line)
    cells = [cell.strip() for cell in line.split("│")[1:-1]]
    assert cells == ["support", "2025-03-03 09:00+0100", "360", "240", "48.00", "Erlang C", "55", "55", "84.6%",
                     "8.2", "0.0%", "87.3%", "", ""]


def test_without_a_forecast_or_a_history_source_it_says_what_to_give() -> None:
    result = _run([])
    assert result.exit_code == 2
    assert "no call-history source is available to this command yet; give --forecast FILE" in result.stderr


def test_forecast_problems_are_listed_and_nothing_is_planned(tmp_path: Path) -> None:
    forecast = _forecast(tmp_path, "support,yesterday,360,240,", "support,2025-03-03T09:00:00+01:00,-1,240,")
    result = _run(["--forecast", str(forecast), "--config", str(tmp_path / "none")])
    assert result.exit_code == 2 and result.stdout == ""
    assert f"{forecast}:2: interval_start: expected ISO 8601" in result.stderr
    assert f"{forecast}:3: offered: must not be negative" in result.stderr


def test_server_yaml_gives_the_defaults(tmp_path: Path) -> None:
    config = copy_config(tmp_path)
    with (config / "server.yaml").open("a") as server:
        server.write("staffing:\n  model: erlang_c\n  shrinkage: 0.5\n  service_level_seconds: 15\n"
                     "metrics:\n  interval_minutes: 30\n")
    forecast = _forecast(tmp_path, "support,2025-03-03T09:00:00+01:00,360,240,90")
    result = _run(["--forecast", str(forecast), "--config", str(config), "--format", "jsonl",
                   "--max-occupancy", "1"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert (record["model"], record["load_erlangs"], record["agents"], record["scheduled"]) == ("erlang_c", 48, 55, 110)


def test_a_broken_server_yaml_is_an_error_not_a_default(tmp_path: Path) -> None:
    config = copy_config(tmp_path)
    with (config / "server.yaml").open("a") as server:
        server.write("staffing:\n  shrinkage: 1.5\n")
    forecast = _forecast(tmp_path, "support,2025-03-03T09:00:00+01:00,360,240,")
    result = _run(["--forecast", str(forecast), "--config", str(config)])
    assert result.exit_code == 2
    assert "staffing.shrinkage" in result.stderr and "does not load" in result.stderr


def test_history_rows_show_who_was_logged_in(tmp_path: Path) -> None:
    config = copy_config(tmp_path)
    asked: list[HistoryRequest] = []

    def history(request: HistoryRequest) -> list[IntervalLoad]:
        asked.append(request)
        return [
            IntervalLoad("support", NINE, 360, 240, staffed_agents=50),
            IntervalLoad("support", NINE + QUARTER, 180, 240, staffed_agents=60),
        ]

    result = _run(["--config", str(config), "--from", "2025-03-03", "--queue", "support", "--format", "csv",
                   "--model", "erlang_c", "--max-occupancy", "1"], staffing_command(history))
    assert result.exit_code == 0, result.output
    (request,) = asked
    assert (request.since, request.until, request.queues, request.interval_minutes) == (
        dt.date(2025, 3, 3), None, ("support",), 15)
    assert request.config.config_dir == config
    busy, calm = csv.DictReader(io.StringIO(result.stdout))
    busy_agents = recommend(96, 240, StaffingTarget(max_occupancy=1.0)).agents  # 360 calls x 240 s / 900 s
    assert busy["agents"] == str(busy_agents)
    assert (float(busy["staffed_agents"]), float(busy["difference"])) == (50, 50 - busy_agents)
    assert float(calm["difference"]) == 60 - int(calm["agents"]) > 0
    # The logged-in agents would not have met 80/20 in the busy interval.
    assert QueueModel(96, 240).service_level(50, 20) < 0.8


def test_the_table_counts_intervals_short_of_agents(tmp_path: Path) -> None:
    config = copy_config(tmp_path)

    def history(request: HistoryRequest) -> list[IntervalLoad]:
        return [IntervalLoad("support", NINE, 360, 240, staffed_agents=50),
                IntervalLoad("support", NINE + QUARTER, 180, 240, staffed_agents=90)]

    result = _run(["--config", str(config)], staffing_command(history))
    assert result.exit_code == 0, result.output
    assert "2 interval(s), 1 short of agents." in result.stdout


def test_a_history_source_that_cannot_read_says_why(tmp_path: Path) -> None:
    config = copy_config(tmp_path)

    def history(request: HistoryRequest) -> list[IntervalLoad]:
        raise HistoryUnavailable(f"no call-record database at {config}/var/calls.sqlite")

    result = _run(["--config", str(config)], staffing_command(history))
    assert result.exit_code == 2
    assert f"ivr staffing: no call-record database at {config}/var/calls.sqlite" in result.stderr


def test_erlang_a_falling_back_to_erlang_c_is_said_on_stderr(tmp_path: Path) -> None:
    forecast = _forecast(tmp_path, "support,2025-03-03T09:00:00+01:00,360,240,90", "sales,2025-03-03T09:00:00+01:00,100,180,")

    result = _run(["--forecast", str(forecast), "--config", str(tmp_path / "none"), "--format", "csv", "--model", "erlang_a"])

    assert result.exit_code == 0, result.output
    assert "Erlang C, not A, for queue(s) sales in the intervals with no patience to model" in result.stderr
    assert "support" not in result.stderr
