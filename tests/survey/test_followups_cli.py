"""`ivr followups list|assign|close|export` as a supervisor uses them, on items that low scores
opened by the follow-up rules, stored in the example configuration's call-record database.

    item  queue    answers                      rule (category, urgency)  owner         opened (UTC)  deadline (UTC)
    F-1   sales    attitude 1                   low-score, urgent         sales-lead    03-02 02:00   03-03 02:00
    F-2   support  attitude 4, resolved no      unresolved, urgent        quality-team  03-02 05:00   03-03 05:00
    F-3   sales    attitude 2                   low-score, important      sales-lead    03-02 03:00   03-05 03:00
    F-4   support  recommend 5                  detractor, routine        support-lead  03-01 08:00   03-08 08:00
    -     sales    attitude 5, resolved yes     (no rule matches: no item)

The category owner (quality-team for unresolved) wins over the queue's. At NOW (03-03 12:00 UTC)
F-1 and F-2 are overdue. Times in the table are Asia/Shanghai (UTC+8), the first hotline's.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ivr.cli.main import main
from servekit import copy_config
from survey_engine.config import FollowUps
from survey_engine.followup import follow_up
from survey_engine.model import Answer, FollowUp, SurveyResponse
from survey_engine.store import SurveyStore

NOW = "2026-03-03T12:00:00+00:00"
RULES = FollowUps.model_validate(
    {
        "owners": {"categories": {"unresolved": "quality-team"},
                   "queues": {"sales": "sales-lead", "support": "support-lead"}},
        "deadlines": {"urgent": 24, "important": 72, "routine": 168},
    }
)


def _at(day: int, hour: int) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, tzinfo=dt.timezone.utc)


def _response(rid: str, queue: str, offered: dt.datetime, *answers: Answer) -> SurveyResponse:
    return SurveyResponse(
        response_id=rid, call_id=f"call-{rid}", channel="voice", survey="default", status="completed",
        hotline="4008001234", queue=queue, agent="a1", language="zh-CN", menu_version="v1", menu_path="main",
        hung_up_by="agent", caller_key=None, offered_at=offered, answers=answers,
    )


def opened_items() -> list[FollowUp | None]:
    """What the rules open for each response, as the voice survey would store them."""
    cases = [
        ("F-1", _response("P1", "sales", _at(2, 2), Answer("attitude", "scale", 1, 1)), "13800138000"),
        ("F-2", _response("P2", "support", _at(2, 5), Answer("attitude", "scale", 4, 1),
                          Answer("resolved", "yes_no", 0, 1)), "13900139000"),
        ("F-3", _response("P3", "sales", _at(2, 3), Answer("attitude", "scale", 2, 1)), None),
        ("F-4", _response("P4", "support", _at(1, 8), Answer("recommend", "nps", 5, 1)), "13700137000"),
        ("F-5", _response("P5", "sales", _at(2, 4), Answer("attitude", "scale", 5, 1),
                          Answer("resolved", "yes_no", 1, 1)), "13600136000"),
    ]
    return [follow_up(r, RULES, now=r.offered_at, item_id=item_id, contact=contact) for item_id, r, contact in cases]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    config = copy_config(tmp_path)

    async def write() -> None:
        store = await SurveyStore.open(config / "var" / "calls.sqlite")
        try:
            for item in opened_items():
                if item is not None:
                    await store.save_followup(item)
        finally:
            await store.close()

    asyncio.run(write())
    return config


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["followups", *args, "--config", str(config)], catch_exceptions=False)


def row_of(output: str, item_id: str) -> list[str]:
    line = next(line for line in output.splitlines() if f"│ {item_id} " in line)
    return [cell.strip() for cell in line.split("│")[1:-1]]


TABLE_COLUMNS = ["item", "urgency", "category", "owner", "assignee", "queue", "agent", "created", "deadline",
                 "status", "overdue", "reasons"]


def test_a_high_score_opens_no_item() -> None:
    assert opened_items()[-1] is None


def test_list_shows_each_open_item_with_its_owner_and_local_deadline_and_flags_the_overdue(config: Path) -> None:
    result = run(config, "list", "--now", NOW)
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if "│ F-" in line]
    assert [cells.split("│")[1].strip() for cells in rows] == ["F-1", "F-2", "F-3", "F-4"]  # earliest deadline first
    assert dict(zip(TABLE_COLUMNS, row_of(result.stdout, "F-1"))) == {
        "item": "F-1", "urgency": "urgent", "category": "low-score", "owner": "sales-lead", "assignee": "",
        "queue": "sales", "agent": "a1", "created": "2026-03-02 10:00", "deadline": "2026-03-03 10:00",
        "status": "open", "overdue": "OVERDUE", "reasons": "attitude = 1 (<= 1)",
    }
    f2 = dict(zip(TABLE_COLUMNS, row_of(result.stdout, "F-2")))
    assert (f2["category"], f2["owner"], f2["deadline"], f2["overdue"]) == (
        "unresolved", "quality-team", "2026-03-03 13:00", "OVERDUE")
    f3 = dict(zip(TABLE_COLUMNS, row_of(result.stdout, "F-3")))
    assert (f3["urgency"], f3["owner"], f3["deadline"], f3["overdue"]) == (
        "important", "sales-lead", "2026-03-05 11:00", "")
    f4 = dict(zip(TABLE_COLUMNS, row_of(result.stdout, "F-4")))
    assert (f4["urgency"], f4["owner"], f4["deadline"], f4["overdue"]) == (
        "routine", "support-lead", "2026-03-08 16:00", "")
    assert "4 item(s), 2 overdue" in result.stdout
    assert "times in Asia/Shanghai" in result.stdout

    # A day earlier nothing is late yet.
    earlier = run(config, "list", "--now", "2026-03-02T12:00:00+00:00")
    assert "OVERDUE" not in earlier.stdout and "4 item(s), 0 overdue" in earlier.stdout


def test_list_filters_by_owner_and_overdue_as_csv_and_json_lines(config: Path) -> None:
    listed = run(config, "list", "--now", NOW, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(listed.stdout)))
    assert [(r["item_id"], r["owner"], r["deadline"], r["overdue"]) for r in rows] == [
        ("F-1", "sales-lead", "2026-03-03T02:00:00+00:00", "yes"),
        ("F-2", "quality-team", "2026-03-03T05:00:00+00:00", "yes"),
        ("F-3", "sales-lead", "2026-03-05T03:00:00+00:00", "no"),
        ("F-4", "support-lead", "2026-03-08T08:00:00+00:00", "no"),
    ]
    assert rows[1]["reasons"] == "resolved = no"
    assert "contact" not in rows[0] and "13900139000" not in listed.stdout  # the number is only for --contacts

    overdue = run(config, "list", "--now", NOW, "--overdue", "--format", "jsonl")
    assert [json.loads(line)["item_id"] for line in overdue.stdout.splitlines()] == ["F-1", "F-2"]

    owned = run(config, "list", "--now", NOW, "--owner", "sales-lead", "--format", "jsonl")
    assert [json.loads(line)["item_id"] for line in owned.stdout.splitlines()] == ["F-1", "F-3"]


def test_assign_gives_an_item_to_a_person_who_then_finds_it_under_their_name(config: Path) -> None:
    result = run(config, "assign", "F-3", "li.wei", "--now", NOW)
    assert result.exit_code == 0, result.output
    assert result.stdout == "F-3 assigned to li.wei (owner sales-lead)\n"
    mine = run(config, "list", "--now", NOW, "--owner", "li.wei", "--format", "jsonl")
    [item] = [json.loads(line) for line in mine.stdout.splitlines()]
    assert (item["item_id"], item["assignee"], item["assigned_at"], item["owner"]) == (
        "F-3", "li.wei", "2026-03-03T12:00:00+00:00", "sales-lead")
    table = run(config, "list", "--now", NOW)
    assert dict(zip(TABLE_COLUMNS, row_of(table.stdout, "F-3")))["assignee"] == "li.wei"


def test_close_records_the_resolution_and_the_item_leaves_the_open_list(config: Path) -> None:
    result = run(config, "close", "F-1", "--resolution", "Agent coached; refund sent", "--now", NOW)
    assert result.exit_code == 0, result.output
    assert result.stdout == "F-1 closed (after its deadline): Agent coached; refund sent\n"

    still_open = run(config, "list", "--now", NOW)
    assert "│ F-1 " not in still_open.stdout
    assert "3 item(s), 1 overdue" in still_open.stdout

    closed = run(config, "list", "--now", NOW, "--status", "closed")
    row = row_of(closed.stdout, "F-1")
    assert row[TABLE_COLUMNS.index("status")] == "closed"
    assert row[TABLE_COLUMNS.index("overdue")] == ""  # closed late, but no longer waiting on anyone
    assert row[-1] == "Agent coached; refund sent"
    assert "1 item(s), 0 overdue" in closed.stdout

    on_time = run(config, "close", "F-4", "--resolution", "Called back", "--now", NOW)
    assert on_time.stdout == "F-4 closed: Called back\n"


def test_unknown_items_closing_twice_and_an_empty_resolution_are_refused_with_exit_code_2(config: Path) -> None:
    assert run(config, "close", "F-1", "--resolution", "Refund sent", "--now", NOW).exit_code == 0

    again = run(config, "close", "F-1", "--resolution", "Something else", "--now", NOW)
    assert again.exit_code == 2
    assert again.stderr == "ivr followups close: item F-1 is already closed (Refund sent)\n"

    unknown = run(config, "close", "F-9", "--resolution", "x")
    assert unknown.exit_code == 2 and unknown.stderr == "ivr followups close: no follow-up item 'F-9'\n"
    unknown_assign = run(config, "assign", "F-9", "li.wei")
    assert unknown_assign.exit_code == 2 and "no follow-up item 'F-9'" in unknown_assign.stderr

    closed_assign = run(config, "assign", "F-1", "li.wei")
    assert closed_assign.exit_code == 2 and "item F-1 is closed" in closed_assign.stderr

    blank = run(config, "close", "F-2", "--resolution", "  ")
    assert blank.exit_code == 2 and "the resolution is what the caller is told" in blank.stderr
    [item] = [json.loads(line) for line in run(config, "list", "--owner", "quality-team", "--format", "jsonl")
              .stdout.splitlines()]
    assert (item["item_id"], item["status"], item["resolution"]) == ("F-2", "open", None)


def test_export_writes_every_item_as_csv_or_json_lines(config: Path, tmp_path: Path) -> None:
    run(config, "close", "F-4", "--resolution", "Called back", "--now", NOW)
    exported = run(config, "export", "--now", NOW)
    assert exported.exit_code == 0, exported.output
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [(r["item_id"], r["status"], r["overdue"], r["resolution"]) for r in rows] == [
        ("F-1", "open", "yes", ""), ("F-2", "open", "yes", ""), ("F-3", "open", "no", ""),
        ("F-4", "closed", "no", "Called back"),
    ]
    assert rows[3]["closed_at"] == "2026-03-03T12:00:00+00:00"

    target = tmp_path / "items.jsonl"
    written = run(config, "export", "--format", "jsonl", "--output", str(target), "--now", NOW)
    assert written.exit_code == 0 and written.stdout == ""
    assert f"4 item(s) written to {target}" in written.stderr
    items = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [(i["item_id"], i["category"], i["urgency"], i["reasons"]) for i in items] == [
        ("F-1", "low-score", "urgent", ["attitude = 1 (<= 1)"]),
        ("F-2", "unresolved", "urgent", ["resolved = no"]),
        ("F-3", "low-score", "important", ["attitude = 2 (<= 2)"]),
        ("F-4", "detractor", "routine", ["recommend = 5 (<= 6)"]),
    ]


def test_contacts_export_lists_who_to_tell_what_changed(config: Path) -> None:
    # F-4 is closed first, then F-1; F-3 is closed but the caller left no number; F-2 stays open.
    run(config, "close", "F-4", "--resolution", "Called back; plan changed", "--now", "2026-03-03T09:00:00+00:00")
    run(config, "close", "F-1", "--resolution", "Agent coached; refund sent", "--now", NOW)
    run(config, "close", "F-3", "--resolution", "Menu fixed", "--now", NOW)

    result = run(config, "export", "--contacts")
    assert result.exit_code == 0, result.output
    assert list(csv.DictReader(io.StringIO(result.stdout))) == [
        {"item_id": "F-4", "contact": "13700137000", "call_id": "call-P4", "category": "detractor",
         "resolution": "Called back; plan changed", "closed_at": "2026-03-03T09:00:00+00:00"},
        {"item_id": "F-1", "contact": "13800138000", "call_id": "call-P1", "category": "low-score",
         "resolution": "Agent coached; refund sent", "closed_at": "2026-03-03T12:00:00+00:00"},
    ]
    as_jsonl = run(config, "export", "--contacts", "--format", "jsonl")
    assert [json.loads(line)["contact"] for line in as_jsonl.stdout.splitlines()] == ["13700137000", "13800138000"]


def test_a_configuration_that_does_not_load_or_a_missing_database_is_a_clear_error(config: Path, tmp_path: Path) -> None:
    broken = run(tmp_path / "nowhere", "list")
    assert broken.exit_code == 2
    assert "hotlines.yaml: not found" in broken.stderr and "does not load" in broken.stderr

    elsewhere = CliRunner().invoke(main, ["followups", "list", "--config", str(config), "--db",
                                          str(tmp_path / "other.sqlite")])
    assert elsewhere.exit_code == 2
    assert f"no call-record database at {tmp_path / 'other.sqlite'}" in elsewhere.stderr


def test_contact_opens_the_sealed_number_and_records_who_asked_and_why(config: Path) -> None:
    """Under the example's `mask` policy an item shows the masked number and keeps the number
    to call back sealed with var/contact.key."""
    from ivr.config.loader import load_config
    from ivr.records.keys import contact_key
    from survey_engine.contacts import ContactSeal

    loaded = load_config(config)
    seal = ContactSeal("mask", contact_key(loaded.server, config))
    contact = seal.seal("13900139000")

    async def sealed_item() -> list[tuple[dt.datetime, str, str]]:
        store = await SurveyStore.open(config / "var" / "calls.sqlite")
        try:
            item = follow_up(_response("P9", "sales", _at(2, 9), Answer("attitude", "scale", 1, 1)), RULES,
                             now=_at(2, 9), item_id="F-9", contact=contact.shown)
            assert item is not None
            await store.save_followup(item, sealed=contact.sealed)
            await store.save_followup(replace(item, assignee="li.wei"))  # a later save keeps the sealed number
            saved = await store.get_followup("F-9")
            assert saved is not None and saved.contact == "*******9000"
            return await store.contact_reveals("F-9")
        finally:
            await store.close()

    assert asyncio.run(sealed_item()) == []

    opened = run(config, "contact", "F-9", "--reason", "tell the outcome", "--now", NOW)

    assert opened.exit_code == 0, opened.output
    assert opened.stdout == "13900139000\n"

    async def reveals() -> list[tuple[dt.datetime, str, str]]:
        store = await SurveyStore.open(config / "var" / "calls.sqlite")
        try:
            return await store.contact_reveals("F-9")
        finally:
            await store.close()

    [(_, who, why)] = asyncio.run(reveals())
    assert who and why == "tell the outcome"
    refused = run(config, "contact", "F-404", "--reason", "x", "--now", NOW)
    assert refused.exit_code == 2 and "no follow-up item F-404" in refused.output
