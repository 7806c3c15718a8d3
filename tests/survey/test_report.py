"""`ivr report survey` on a fixture data set whose every figure is computed by hand below.

The nine responses are written through SurveyStore into the SQLite file the copied example
configuration names (config/var/calls.sqlite), then read back by the report and the command.
The example's first hotline is in Asia/Shanghai (UTC+8): R2 (15:30 UTC) falls on 1 March
there and R3 (16:30 UTC) on 2 March, though both are 1 March in UTC.

    id  agent queue   menu hotline     status     offered (UTC)     local day  answers            comment
    R1  a1    sales   v1   4008001234  completed  03-01 02:00       03-01      att 5 res y rec 10  file
    R2  a1    sales   v1   4008001234  completed  03-01 15:30       03-01      att 4 res n rec 7
    R3  a1    support v2   4008001234  partial    03-01 16:30       03-02      att 2
    R4  a2    support v2   4008005678  offered    03-02 01:00       03-02      (none)
    R5  a2    support v2   4008001234  partial    03-02 03:00       03-02      att - res y
    R6  a3    sales   v1   4008005678  completed  03-02 05:00       03-02      att 3 res y rec 9
    R7  a3    sales   v2   4008001234  completed  03-02 06:00 (web) 03-02      overall 1          text
    R8  a2    sales   v1   4008001234  completed  03-01 10:00       03-01      att 1 res n rec 6   file
    R9  a3    support v1   4008001234  completed  03-01 12:00       03-01      att - res - rec -

att = attitude (scale 1-5), res = resolved (yes_no), rec = recommend (nps 0-10), "-" = asked,
no valid answer. Started = at least one answer: all but R4 and R9 (7 of 9).
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result

from ivr.cli.main import main
from servekit import copy_config
from survey_engine.model import Answer, QuestionKind, ResponseStatus, SurveyResponse
from survey_engine.report import GroupBy, GroupFigures, SurveyReport, build_report
from survey_engine.store import SurveyStore

SHANGHAI = ZoneInfo("Asia/Shanghai")
HL1, HL2 = "4008001234", "4008005678"


def _at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=dt.timezone.utc)


def _answers(**values: int | None) -> tuple[Answer, ...]:
    kinds: dict[str, QuestionKind] = {"attitude": "scale", "resolved": "yes_no", "recommend": "nps", "overall": "scale"}
    return tuple(
        Answer(question, kinds[question], value, 1 if value is not None else 2) for question, value in values.items()
    )


def _response(
    rid: str, agent: str, queue: str, menu: str, hotline: str, status: ResponseStatus, offered: dt.datetime,
    answers: tuple[Answer, ...], **extra: str,
) -> SurveyResponse:
    web = "comment_text" in extra
    return SurveyResponse(
        response_id=rid, call_id=f"call-{rid}", channel="web" if web else "voice", survey="web" if web else "default",
        status=status, hotline=hotline, queue=queue, agent=agent, language="zh-CN", menu_version=menu,
        menu_path="welcome>main-menu>" + queue, hung_up_by="agent", caller_key=f"key-{rid}", offered_at=offered,
        started_at=offered + dt.timedelta(seconds=5) if any(a.value is not None for a in answers) else None,
        ended_at=offered + dt.timedelta(seconds=40), answers=answers,
        comment_file=extra.get("comment_file"), comment_text=extra.get("comment_text"),
    )


def fixture_responses() -> list[SurveyResponse]:
    return [
        _response("R1", "a1", "sales", "v1", HL1, "completed", _at(1, 2), _answers(attitude=5, resolved=1, recommend=10),
                  comment_file="/var/spool/asterisk/ivr-survey/call-R1"),
        _response("R2", "a1", "sales", "v1", HL1, "completed", _at(1, 15, 30), _answers(attitude=4, resolved=0, recommend=7)),
        _response("R3", "a1", "support", "v2", HL1, "partial", _at(1, 16, 30), _answers(attitude=2)),
        _response("R4", "a2", "support", "v2", HL2, "offered", _at(2, 1), ()),
        _response("R5", "a2", "support", "v2", HL1, "partial", _at(2, 3), _answers(attitude=None, resolved=1)),
        _response("R6", "a3", "sales", "v1", HL2, "completed", _at(2, 5), _answers(attitude=3, resolved=1, recommend=9)),
        _response("R7", "a3", "sales", "v2", HL1, "completed", _at(2, 6), _answers(overall=1),
                  comment_text="waited too long"),
        _response("R8", "a2", "sales", "v1", HL1, "completed", _at(1, 10), _answers(attitude=1, resolved=0, recommend=6),
                  comment_file="/var/spool/asterisk/ivr-survey/call-R8"),
        _response("R9", "a3", "support", "v1", HL1, "completed", _at(1, 12),
                  _answers(attitude=None, resolved=None, recommend=None)),
    ]


@dataclass(frozen=True)
class Want:
    """One report row as computed by hand: rates in percent, None where nothing was answered."""

    offered: int
    started: int
    completed: int
    partial: int
    response_rate: float | None
    completion_rate: float | None
    comments: int
    attitude: tuple[int, float | None, float | None]  # answered, CSAT %, mean
    overall: tuple[int, float | None, float | None]  # answered, CSAT %, mean
    resolved: tuple[int, float | None]  # answered, resolution %
    recommend: tuple[int, float | None]  # answered, NPS


NONE3: tuple[int, None, None] = (0, None, None)

# All nine: attitude answers 5 4 2 3 1 -> 2 of 5 are 4-5 (40 %), mean 15/5 = 3; resolved y n y y n
# -> 3/5 (60 %); recommend 10 7 9 6 -> promoters 2, passive 1, detractor 1: (2-1)/4 = 25.
ALL = Want(9, 7, 6, 2, 700 / 9, 600 / 9, 3, (5, 40.0, 3.0), (1, 0.0, 1.0), (5, 60.0), (4, 25.0))

BY: dict[GroupBy, dict[str, Want]] = {
    "agent": {
        # R1 R2 R3: attitude 5 4 2 -> 2/3, mean 11/3; resolved y n -> 50 %; recommend 10 7 -> (1-0)/2 = 50.
        "a1": Want(3, 3, 2, 1, 100.0, 200 / 3, 1, (3, 200 / 3, 11 / 3), NONE3, (2, 50.0), (2, 50.0)),
        # R4 R5 R8: started R5 R8; attitude 1 (R5 unanswered); resolved y n; recommend 6 -> -100.
        "a2": Want(3, 2, 1, 1, 200 / 3, 100 / 3, 1, (1, 0.0, 1.0), NONE3, (2, 50.0), (1, -100.0)),
        # R6 R7 R9: R9 completed with no answer; attitude 3; overall 1; resolved y; recommend 9.
        "a3": Want(3, 2, 3, 0, 200 / 3, 100.0, 1, (1, 0.0, 3.0), (1, 0.0, 1.0), (1, 100.0), (1, 100.0)),
    },
    "queue": {
        # R1 R2 R6 R7 R8: attitude 5 4 3 1 -> 2/4, mean 13/4; resolved y n y n; recommend 10 7 9 6 -> 25.
        "sales": Want(5, 5, 5, 0, 100.0, 100.0, 3, (4, 50.0, 3.25), (1, 0.0, 1.0), (4, 50.0), (4, 25.0)),
        # R3 R4 R5 R9: started R3 R5; attitude 2; resolved y; no recommend answer: NPS empty.
        "support": Want(4, 2, 1, 2, 50.0, 25.0, 0, (1, 0.0, 2.0), NONE3, (1, 100.0), (0, None)),
    },
    "menu_version": {
        # R1 R2 R6 R8 R9: as sales without R7, plus R9 (not started).
        "v1": Want(5, 4, 5, 0, 80.0, 100.0, 2, (4, 50.0, 3.25), NONE3, (4, 50.0), (4, 25.0)),
        # R3 R4 R5 R7.
        "v2": Want(4, 3, 1, 2, 75.0, 25.0, 1, (1, 0.0, 2.0), (1, 0.0, 1.0), (1, 100.0), (0, None)),
    },
    "day": {
        # Shanghai days. R1 R2 R8 R9: attitude 5 4 1 -> 2/3, mean 10/3; resolved y n n -> 1/3;
        # recommend 10 7 6 -> (1-1)/3 = 0.
        "2026-03-01": Want(4, 3, 4, 0, 75.0, 100.0, 2, (3, 200 / 3, 10 / 3), NONE3, (3, 100 / 3), (3, 0.0)),
        # R3 R4 R5 R6 R7: attitude 2 3 -> 0/2, mean 2.5; resolved y y; recommend 9.
        "2026-03-02": Want(5, 4, 2, 2, 80.0, 40.0, 1, (2, 0.0, 2.5), (1, 0.0, 1.0), (2, 100.0), (1, 100.0)),
    },
    "hotline": {
        # R1 R2 R3 R5 R7 R8 R9: attitude 5 4 2 1 -> 2/4, mean 3; resolved y n y n; recommend 10 7 6 -> 0.
        HL1: Want(7, 6, 5, 2, 600 / 7, 500 / 7, 3, (4, 50.0, 3.0), (1, 0.0, 1.0), (4, 50.0), (3, 0.0)),
        # R4 R6.
        HL2: Want(2, 1, 1, 0, 50.0, 50.0, 0, (1, 0.0, 3.0), NONE3, (1, 100.0), (1, 100.0)),
    },
}


def flat(want: Want) -> list[float | None]:
    return [
        want.offered, want.started, want.completed, want.partial, want.response_rate, want.completion_rate,
        want.comments, *want.attitude, *want.overall, *want.resolved, *want.recommend,
    ]


def assert_row(got: Want, want: Want) -> None:
    assert flat(got) == pytest.approx(flat(want))


def figures_of(group: GroupFigures) -> Want:
    [attitude, overall] = group.scale
    [resolved] = group.resolution
    [recommend] = group.nps
    assert (attitude.question, overall.question, resolved.question, recommend.question) == (
        "attitude", "overall", "resolved", "recommend")
    return Want(
        group.offered, group.started, group.completed, group.partial, group.response_rate,
        group.completion_rate, group.comments, (attitude.answered, attitude.csat, attitude.mean),
        (overall.answered, overall.csat, overall.mean), (resolved.answered, resolved.rate),
        (recommend.answered, recommend.nps),
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """The example configuration with the fixture responses in its call-record database."""
    config = copy_config(tmp_path)

    async def write() -> None:
        store = await SurveyStore.open(config / "var" / "calls.sqlite")
        try:
            for response in fixture_responses():
                await store.save_response(response)
        finally:
            await store.close()

    asyncio.run(write())
    return config


async def stored_report(config: Path, by: GroupBy, zone: ZoneInfo) -> SurveyReport:
    store = await SurveyStore.open(config / "var" / "calls.sqlite")
    try:
        return build_report(await store.responses(), by, zone)
    finally:
        await store.close()


# --- the figures, computed from what the store gives back ----------------------------------------


@pytest.mark.parametrize("by", list(BY))
async def test_every_figure_of_every_group_matches_the_hand_computed_values(config: Path, by: GroupBy) -> None:
    report = await stored_report(config, by, SHANGHAI)
    assert [g.key for g in report.groups] == list(BY[by])
    for group in report.groups:
        assert_row(figures_of(group), BY[by][group.key])
    assert report.total.key == "all"
    assert_row(figures_of(report.total), ALL)


async def test_days_are_counted_in_the_given_time_zone(config: Path) -> None:
    # In UTC, R2 and R3 (15:30 and 16:30 on 1 March) are both on 1 March: 5 + 4 instead of 4 + 5.
    report = await stored_report(config, "day", ZoneInfo("UTC"))
    assert [(g.key, g.offered) for g in report.groups] == [("2026-03-01", 5), ("2026-03-02", 4)]


def test_rates_over_nothing_are_empty_not_zero() -> None:
    report = build_report([], "agent", SHANGHAI)
    assert report.groups == ()
    assert (report.total.offered, report.total.response_rate, report.total.completion_rate) == (0, None, None)
    only_offered = build_report(fixture_responses()[3:4], "queue", SHANGHAI)  # R4: offered, nothing answered
    assert only_offered.questions == ()
    assert (only_offered.total.response_rate, only_offered.total.completion_rate) == (0.0, 0.0)


# --- through the command ------------------------------------------------------------------------


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def json_row(row: dict[str, Any]) -> Want:
    scale, resolution, nps = row["scale"], row["resolution"], row["nps"]
    # A question nobody in the chosen responses was asked has no entry: nothing answered.
    nothing = {"answered": 0, "csat_pct": None, "mean": None, "rate_pct": None, "nps": None}
    att, ovr = scale.get("attitude", nothing), scale.get("overall", nothing)
    res, rec = resolution.get("resolved", nothing), nps.get("recommend", nothing)
    return Want(
        row["offered"], row["started"], row["completed"], row["partial"], row["response_rate_pct"],
        row["completion_rate_pct"], row["comments"],
        (att["answered"], att["csat_pct"], att["mean"]), (ovr["answered"], ovr["csat_pct"], ovr["mean"]),
        (res["answered"], res["rate_pct"]), (rec["answered"], rec["nps"]),
    )


@pytest.mark.parametrize("by", list(BY))
def test_json_report_gives_every_hand_computed_figure(config: Path, by: GroupBy) -> None:
    result = run("report", "survey", "--config", config, "--by", by, "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (document["by"], document["timezone"]) == (by, "Asia/Shanghai")
    assert [g["key"] for g in document["groups"]] == list(BY[by])
    for row in document["groups"]:
        assert_row(json_row(row), BY[by][row["key"]])
    assert_row(json_row(document["total"]), ALL)
    assert "days in Asia/Shanghai (the time zone of 4008001234, the first hotline in hotlines.yaml)" in result.stderr


def test_csv_report_has_one_row_per_agent_and_a_total_row_rounded_to_two_decimals(config: Path) -> None:
    result = run("report", "survey", "--config", config, "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == [
        "agent", "offered", "started", "completed", "partial", "response_rate_pct", "completion_rate_pct",
        "attitude.answered", "attitude.csat_pct", "attitude.mean", "overall.answered", "overall.csat_pct",
        "overall.mean", "resolved.answered", "resolved.resolved_pct", "recommend.answered", "recommend.nps", "comments",
    ]
    by_key = {row["agent"]: row for row in rows}
    assert list(by_key) == ["a1", "a2", "a3", "all"]
    assert by_key["a1"] == {
        "agent": "a1", "offered": "3", "started": "3", "completed": "2", "partial": "1", "response_rate_pct": "100.0",
        "completion_rate_pct": "66.67", "attitude.answered": "3", "attitude.csat_pct": "66.67", "attitude.mean": "3.67",
        "overall.answered": "0", "overall.csat_pct": "", "overall.mean": "", "resolved.answered": "2",
        "resolved.resolved_pct": "50.0", "recommend.answered": "2", "recommend.nps": "50.0", "comments": "1",
    }
    total = by_key["all"]
    assert (total["offered"], total["started"], total["response_rate_pct"], total["completion_rate_pct"]) == (
        "9", "7", "77.78", "66.67")
    assert (total["attitude.csat_pct"], total["attitude.mean"], total["resolved.resolved_pct"], total["recommend.nps"]) == (
        "40.0", "3.0", "60.0", "25.0")


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.split("│")[1:-1]]


def test_table_report_shows_each_agent_and_the_total(config: Path) -> None:
    result = run("report", "survey", "--config", config)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "Survey responses by agent, start to now (days in Asia/Shanghai)" in result.stdout
    a2 = next(line for line in lines if " a2 " in line)
    # offered started completed partial response% completion% | attitude CSAT (answers) mean |
    # overall (nothing answered: "-") | resolved yes% (answers) | recommend NPS (answers) | comments
    assert cells(a2) == ["a2", "3", "2", "1", "1", "66.7", "33.3", "0.0 (1)", "1.00", "-", "-", "50.0 (2)",
                         "-100.0 (1)", "1"]
    total = next(line for line in lines if " all " in line)
    assert cells(total) == ["all", "9", "7", "6", "2", "77.8", "66.7", "40.0 (5)", "3.00", "0.0 (1)", "1.00",
                            "60.0 (5)", "25.0 (4)", "3"]


def test_queue_filter_and_a_period_of_local_days(config: Path) -> None:
    # A tenth response on 4 March (local) is outside --until 2026-03-02.
    async def add_late() -> None:
        store = await SurveyStore.open(config / "var" / "calls.sqlite")
        try:
            await store.save_response(_response("R10", "a1", "sales", "v2", HL1, "completed", _at(3, 16, 30),
                                                 _answers(attitude=5, resolved=1, recommend=10)))
        finally:
            await store.close()

    asyncio.run(add_late())
    support = json.loads(run("report", "survey", "--config", config, "--queue", "support", "--format", "json").stdout)
    assert_row(json_row(support["total"]), BY["queue"]["support"])
    assert [g["key"] for g in support["groups"]] == ["a1", "a2", "a3"]

    # From local midnight of 2 March (16:00 UTC on 1 March): R3 is in, R2 (15:30 UTC) is out.
    second = run("report", "survey", "--config", config, "--by", "day", "--since", "2026-03-02", "--until", "2026-03-02",
                 "--format", "json")
    document = json.loads(second.stdout)
    assert [g["key"] for g in document["groups"]] == ["2026-03-02"]
    assert_row(json_row(document["total"]), BY["day"]["2026-03-02"])
    assert (document["since"], document["until"]) == ("2026-03-02", "2026-03-02")

    everything = json.loads(run("report", "survey", "--config", config, "--by", "day", "--format", "json").stdout)
    assert [g["key"] for g in everything["groups"]] == ["2026-03-01", "2026-03-02", "2026-03-04"]


def test_one_hotline_is_reported_in_its_own_time_zone(config: Path) -> None:
    hotlines = config / "hotlines.yaml"
    text = hotlines.read_text()
    second = text.index('"4008005678":')
    hotlines.write_text(text[:second] + text[second:].replace("timezone: Asia/Shanghai", "timezone: America/New_York", 1))
    # +86 prefix: the hotline as a caller might dial it. In New York (UTC-5), R4 (01:00 UTC on
    # 2 March) is on 1 March and R6 (05:00 UTC) just on 2 March.
    result = run("report", "survey", "--config", config, "--hotline", "+864008005678", "--by", "day", "--format", "json")
    assert result.exit_code == 0, result.output
    assert "days in America/New_York (hotline 4008005678's time zone)" in result.stderr
    document = json.loads(result.stdout)
    assert [(g["key"], g["offered"], g["started"]) for g in document["groups"]] == [
        ("2026-03-01", 1, 0), ("2026-03-02", 1, 1)]
    assert_row(json_row(document["total"]), BY["hotline"][HL2])


def test_a_configuration_that_does_not_load_or_a_missing_database_is_a_clear_error(config: Path, tmp_path: Path) -> None:
    broken = run("report", "survey", "--config", tmp_path / "nowhere")
    assert broken.exit_code == 2
    assert "hotlines.yaml: not found" in broken.stderr and "does not load" in broken.stderr

    missing = run("report", "survey", "--config", config, "--db", tmp_path / "none.sqlite")
    assert missing.exit_code == 2
    assert f"no call-record database at {tmp_path / 'none.sqlite'}" in missing.stderr
    assert not (tmp_path / "none.sqlite").exists()

    backwards = run("report", "survey", "--config", config, "--since", "2026-03-02", "--until", "2026-03-01")
    assert backwards.exit_code == 2 and "--until 2026-03-01 is before --since 2026-03-02" in backwards.stderr
