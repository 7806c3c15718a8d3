"""`ivr report survey` and `ivr followups list|assign|close|export`: what callers said after
their calls, and the follow-up items low scores opened, read from the call-record database.

Both read the configuration for two things only: where the database is (server.yaml
`store.sqlite_path`) and the time zone days and times are shown in (hotlines.yaml).
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar
from zoneinfo import ZoneInfo

import click

from ivr.cli.common import UnknownQueue, check_queue, config_option, db_option, fail, load

from survey_engine.model import FollowUp
from survey_engine.report import GROUP_BY, GroupBy, GroupFigures, SurveyReport, build_report

if TYPE_CHECKING:
    from rich.table import Table

    from ivr.config.loader import LoadedConfig
    from survey_engine.store import SurveyStore

_T = TypeVar("_T")
Cell = str | int | float | None


# --- shared by every command ----------------------------------------------------------------


# Tests set the clock; an admin never needs to.
_now_option = click.option(
    "--now", type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S"]), default=None, hidden=True
)


def _clock(now: dt.datetime | None) -> dt.datetime:
    """--now (UTC when it has no offset), else the time now."""
    if now is None:
        return dt.datetime.now(dt.timezone.utc)
    return now if now.tzinfo is not None else now.replace(tzinfo=dt.timezone.utc)


def _database(command: str, loaded: LoadedConfig, db: str | None) -> Path | str:
    """--db, else the configuration's store, as `ivr serve` uses it (`store_target`)."""
    from ivr.metrics.source import NoDatabase, store_target

    try:
        return store_target(loaded, db)
    except NoDatabase as exc:
        fail(command, str(exc))


def _with_store(command: str, db: Path | str, action: Callable[[SurveyStore], Awaitable[_T]]) -> _T:
    from ivr.records.store import StoreError
    from survey_engine.store import SurveyStore

    async def run() -> _T:
        store = await SurveyStore.open(db)
        try:
            return await action(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except StoreError as exc:
        fail(command, str(exc))


def _zone(loaded: LoadedConfig, hotline: str | None) -> tuple[ZoneInfo, str]:
    """The zone days and times are shown in, and a note saying why that one."""
    note = ""
    if hotline is not None:
        found = loaded.hotline_for(hotline)
        if found is not None:
            return ZoneInfo(found[1].timezone), f"hotline {found[0]}'s time zone"
        note = f"hotline {hotline} is not in hotlines.yaml; "
    first = next(iter(loaded.directory.hotlines.items()), None)
    if first is None:
        return ZoneInfo("UTC"), note + "no hotline in hotlines.yaml"
    return ZoneInfo(first[1].timezone), note + f"the time zone of {first[0]}, the first hotline in hotlines.yaml"


def _print_table(table: Table, *after: str) -> None:
    """On a terminal, as wide as it is; piped or redirected, as wide as the table needs."""
    from rich.console import Console
    from rich.measure import Measurement

    console = Console(file=sys.stdout)
    if not console.is_terminal:
        unbounded = console.options.update_width(10_000)
        console.width = max(console.width, Measurement.get(console, unbounded, table).maximum)
    console.print(table)
    for line in after:
        console.print(line)


def _csv_text(header: Sequence[str], rows: Sequence[Sequence[Cell]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


# --- ivr report survey ------------------------------------------------------------------------


@click.group()
def report() -> None:
    """Reports from the call-record database."""


def _header(result: SurveyReport) -> list[str]:
    """The report's flat column names (the CSV header), in the order of `_values`."""
    names = ["offered", "started", "completed", "partial", "response_rate_pct", "completion_rate_pct"]
    for kind, q in result.questions:
        if kind == "scale":
            names += [f"{q}.answered", f"{q}.csat_pct", f"{q}.mean"]
        elif kind == "yes_no":
            names += [f"{q}.answered", f"{q}.resolved_pct"]
        else:
            names += [f"{q}.answered", f"{q}.nps"]
    return [*names, "comments"]


def _values(group: GroupFigures) -> list[Cell]:
    """A group's figures in `_header` order (every group has the report's questions, in order)."""
    values: list[Cell] = [
        group.offered, group.started, group.completed, group.partial, group.response_rate, group.completion_rate,
    ]
    for s in group.scale:
        values += [s.answered, s.csat, s.mean]
    for r in group.resolution:
        values += [r.answered, r.rate]
    for n in group.nps:
        values += [n.answered, n.nps]
    return [*values, group.comments]


def _group_json(group: GroupFigures) -> dict[str, object]:
    return {
        "key": group.key,
        "offered": group.offered,
        "started": group.started,
        "completed": group.completed,
        "partial": group.partial,
        "response_rate_pct": group.response_rate,
        "completion_rate_pct": group.completion_rate,
        "comments": group.comments,
        "scale": {
            s.question: {"answered": s.answered, "satisfied": s.satisfied, "csat_pct": s.csat, "mean": s.mean}
            for s in group.scale
        },
        "resolution": {r.question: {"answered": r.answered, "yes": r.yes, "rate_pct": r.rate} for r in group.resolution},
        "nps": {
            n.question: {
                "answered": n.answered, "promoters": n.promoters, "passives": n.passives,
                "detractors": n.detractors, "nps": n.nps,
            }
            for n in group.nps
        },
    }


def _print_report_table(result: SurveyReport, title: str) -> None:
    """Counts and rates, then one or two columns per question: its figure with the number of
    answers it is computed from in brackets (a CSAT over 2 answers is not a CSAT over 200)."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column(result.by, no_wrap=True)
    for name in ("offered", "started", "completed", "partial", "response\n%", "completion\n%"):
        table.add_column(name, justify="right")
    for kind, q in result.questions:
        if kind == "scale":
            table.add_column(f"{q}\nCSAT % (n)", justify="right")
            table.add_column(f"{q}\nmean", justify="right")
        else:
            table.add_column(f"{q}\n{'yes %' if kind == 'yes_no' else 'NPS'} (n)", justify="right")
    table.add_column("comments", justify="right")

    def number(value: float | None, decimals: int = 1) -> str:
        return "-" if value is None else f"{value:.{decimals}f}"

    def figure(value: float | None, answered: int) -> str:
        return "-" if value is None else f"{number(value)} ({answered})"

    def cells(group: GroupFigures) -> list[str]:
        row = [str(group.offered), str(group.started), str(group.completed), str(group.partial),
               number(group.response_rate), number(group.completion_rate)]
        for s in group.scale:
            row += [figure(s.csat, s.answered), number(s.mean, 2)]
        for r in group.resolution:
            row.append(figure(r.rate, r.answered))
        for n in group.nps:
            row.append(figure(n.nps, n.answered))
        return [*row, str(group.comments)]

    for group in result.groups:
        table.add_row(group.key or "(none)", *cells(group))
    table.add_section()
    table.add_row(result.total.key, *cells(result.total), style="bold")
    _print_table(table)


@report.command("survey")
@config_option
@db_option
@click.option("--by", type=click.Choice(GROUP_BY), default="agent", show_default=True, help="One row per this.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), default=None, help="First day, inclusive (local date).")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Last day, inclusive (local date).")
@click.option("--queue", default=None, help="Only this queue's responses.")
@click.option("--hotline", default=None, help="Only this hotline's responses; days in its time zone.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
def survey_report(
    config_dir: Path, db: str | None, by: GroupBy, since: dt.datetime | None, until: dt.datetime | None,
    queue: str | None, hotline: str | None, fmt: str,
) -> None:
    """Survey response rates, CSAT, resolution rate and NPS per agent, queue, menu version,
    day or hotline, with a total row ("all").

    \b
    response rate   = responses with an answer / offers
    CSAT            = answers of 4 or 5 / answered (each 1-5 question)
    resolution rate = yes / answered (each yes/no question)
    NPS             = % answers 9-10 - % answers 0-6 (each 0-10 question)
    """
    command = "report survey"
    loaded = load(command, config_dir)
    path = _database(command, loaded, db)
    zone, why = _zone(loaded, hotline)
    first = since.date() if since is not None else None
    last = until.date() if until is not None else None
    if first is not None and last is not None and last < first:
        fail(command, f"--until {last} is before --since {first}")
    start = dt.datetime.combine(first, dt.time(), zone) if first is not None else None
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone) if last is not None else None
    responses = _with_store(command, path, lambda store: store.responses(since=start, until=end))
    try:
        check_queue(loaded, queue, {r.queue for r in responses})
    except UnknownQueue as exc:
        fail(command, str(exc))
    hotlines: set[str] = set()  # the hotline as given, and as hotlines.yaml spells it (no trunk prefix)
    if hotline is not None:
        found = loaded.hotline_for(hotline)
        hotlines = {hotline} if found is None else {hotline, found[0]}
    chosen = [r for r in responses if (queue is None or r.queue == queue) and (not hotlines or r.hotline in hotlines)]
    result = build_report(chosen, by, zone)
    click.echo(f"days in {zone.key} ({why})", err=True)

    if fmt == "json":
        document = {
            "by": by,
            "timezone": zone.key,
            "since": first.isoformat() if first else None,
            "until": last.isoformat() if last else None,
            "queue": queue,
            "hotline": hotline,
            "groups": [_group_json(g) for g in result.groups],
            "total": _group_json(result.total),
        }
        click.echo(json.dumps(document, ensure_ascii=False, indent=2))
    elif fmt == "csv":
        rows = [
            [g.key, *(round(v, 2) if isinstance(v, float) else v for v in _values(g))]
            for g in (*result.groups, result.total)
        ]
        click.echo(_csv_text([by, *_header(result)], rows), nl=False)
    else:
        period = f"{first or 'start'} to {last or 'now'}"
        filters = "".join(f", {name} {value}" for name, value in (("queue", queue), ("hotline", hotline)) if value)
        _print_report_table(result, f"Survey responses by {by}, {period}{filters} (days in {zone.key})")


# --- ivr followups ----------------------------------------------------------------------------


@click.group()
def followups() -> None:
    """Follow-up items opened by low survey scores: list, assign, close, export."""


StatusChoice = Literal["open", "closed", "all"]


def _when(moment: dt.datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(dt.timezone.utc).isoformat(timespec="seconds")


_ITEM_FIELDS = (
    "item_id", "status", "urgency", "category", "owner", "assignee", "queue", "agent", "call_id", "response_id",
    "created_at", "deadline", "overdue", "reasons", "assigned_at", "resolution", "closed_at",
)
# "Tell the caller the outcome": who to call, about which call, and what changed.
_CONTACT_FIELDS = ("item_id", "contact", "call_id", "category", "resolution", "closed_at")


def _item_record(item: FollowUp, now: dt.datetime) -> dict[str, object]:
    """An item as exported. The caller's number is left out: it is only in --contacts."""
    return {
        "item_id": item.item_id, "status": item.status, "urgency": item.urgency, "category": item.category,
        "owner": item.owner, "assignee": item.assignee, "queue": item.queue, "agent": item.agent,
        "call_id": item.call_id, "response_id": item.response_id, "created_at": _iso(item.created_at),
        "deadline": _iso(item.deadline), "overdue": item.overdue(now), "reasons": list(item.reasons),
        "assigned_at": _iso(item.assigned_at), "resolution": item.resolution, "closed_at": _iso(item.closed_at),
    }


def _contact_record(item: FollowUp) -> dict[str, object]:
    return {
        "item_id": item.item_id, "contact": item.contact, "call_id": item.call_id, "category": item.category,
        "resolution": item.resolution, "closed_at": _iso(item.closed_at),
    }


def _records_text(records: Sequence[dict[str, object]], fields: Sequence[str], fmt: str) -> str:
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)

    def cell(value: object) -> Cell:
        if isinstance(value, list):
            return "; ".join(map(str, value))
        if isinstance(value, bool):
            return "yes" if value else "no"
        return value if isinstance(value, (str, int, float)) or value is None else str(value)

    return _csv_text(fields, [[cell(r[f]) for f in fields] for r in records])


def _status_filter(status: StatusChoice) -> Literal["open", "closed"] | None:
    return None if status == "all" else status


def _print_items_table(items: Sequence[FollowUp], now: dt.datetime, zone: ZoneInfo, title: str) -> None:
    from rich.table import Table
    from rich.text import Text

    with_resolution = any(item.status == "closed" for item in items)
    table = Table(title=title, title_justify="left", caption=f"times in {zone.key}", caption_justify="left")
    for name in ("item", "urgency", "category", "owner", "assignee", "queue", "agent", "created", "deadline",
                 "status", "overdue", "reasons"):
        table.add_column(name, no_wrap=name != "reasons")
    if with_resolution:
        table.add_column("resolution")
    for item in items:
        row: list[str | Text] = [
            item.item_id, item.urgency, item.category, item.owner, item.assignee or "", item.queue, item.agent,
            _when(item.created_at, zone), _when(item.deadline, zone), item.status,
            Text("OVERDUE", style="bold red") if item.overdue(now) else "", "; ".join(item.reasons),
        ]
        if with_resolution:
            row.append(item.resolution or "")
        table.add_row(*row)
    overdue = sum(item.overdue(now) for item in items)
    _print_table(table, f"{len(items)} item(s), " + (f"[bold red]{overdue} overdue[/]" if overdue else "0 overdue"))


@followups.command("list")
@config_option
@db_option
@click.option("--status", type=click.Choice(["open", "closed", "all"]), default="open", show_default=True)
@click.option("--owner", default=None, help="Only items this person owns or is assigned.")
@click.option("--overdue", "only_overdue", is_flag=True, help="Only open items past their deadline.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "jsonl"]), default="table", show_default=True)
@_now_option
def followups_list(
    config_dir: Path, db: str | None, status: StatusChoice, owner: str | None, only_overdue: bool, fmt: str,
    now: dt.datetime | None,
) -> None:
    """Follow-up items, earliest deadline first; overdue ones are flagged."""
    command = "followups list"
    loaded = load(command, config_dir)
    path = _database(command, loaded, db)
    now = _clock(now)
    items = _with_store(command, path, lambda store: store.followups(status=_status_filter(status), owner=owner))
    if only_overdue:
        items = [item for item in items if item.overdue(now)]
    if fmt == "table":
        zone, _ = _zone(loaded, None)
        scope = f"{status} follow-up items" + (f" of {owner}" if owner else "") + (", overdue only" if only_overdue else "")
        _print_items_table(items, now, zone, scope[0].upper() + scope[1:])
    else:
        click.echo(_records_text([_item_record(item, now) for item in items], _ITEM_FIELDS, fmt), nl=False)


def _change(
    command: str, config_dir: Path, db: str | None, item_id: str, change: Callable[[FollowUp], FollowUp],
) -> FollowUp:
    """Read an item, apply `change` (which may refuse with FollowUpError), and save it."""
    from survey_engine.followup import FollowUpError

    path = _database(command, load(command, config_dir), db)

    async def apply(store: SurveyStore) -> FollowUp | str:
        item = await store.get_followup(item_id)
        if item is None:
            return f"no follow-up item {item_id!r}"
        try:
            changed = change(item)
        except FollowUpError as exc:
            return str(exc)
        await store.save_followup(changed)
        return changed

    outcome = _with_store(command, path, apply)
    if isinstance(outcome, str):
        fail(command, outcome)
    return outcome


@followups.command("assign")
@click.argument("item_id", metavar="ITEM")
@click.argument("assignee")
@config_option
@db_option
@_now_option
def followups_assign(item_id: str, assignee: str, config_dir: Path, db: str | None, now: dt.datetime | None) -> None:
    """Give an open item to the person who works it."""
    from survey_engine.followup import assign

    moment = _clock(now)
    item = _change("followups assign", config_dir, db, item_id, lambda item: assign(item, assignee, moment))
    click.echo(f"{item.item_id} assigned to {item.assignee} (owner {item.owner})")


@followups.command("close")
@click.argument("item_id", metavar="ITEM")
@click.option("--resolution", required=True, help="What was done or changed: this is what the caller is told.")
@config_option
@db_option
@_now_option
def followups_close(item_id: str, resolution: str, config_dir: Path, db: str | None, now: dt.datetime | None) -> None:
    """Close an item with its resolution."""
    from survey_engine.followup import close

    moment = _clock(now)
    item = _change("followups close", config_dir, db, item_id, lambda item: close(item, resolution, moment))
    late = " (after its deadline)" if item.closed_at is not None and item.closed_at > item.deadline else ""
    click.echo(f"{item.item_id} closed{late}: {item.resolution}")


@followups.command("contact")
@click.argument("item_id", metavar="ITEM")
@click.option("--reason", required=True, help="Why the number is needed (kept with who asked and when).")
@config_option
@db_option
@_now_option
def followups_contact(item_id: str, reason: str, config_dir: Path, db: str | None, now: dt.datetime | None) -> None:
    """The number to call the customer of ITEM back on. Under the `mask` and `hash` privacy
    policies it is kept sealed: this opens it, and records who asked, when and why."""
    import getpass

    from ivr.records.keys import SaltError, contact_key
    from survey_engine.contacts import ContactSeal, SealError

    command = "followups contact"
    if not reason.strip():
        fail(command, "say why the number is needed (--reason)")
    loaded = load(command, config_dir)
    path = _database(command, loaded, db)
    moment = _clock(now)
    by = getpass.getuser()
    shown, sealed = _with_store(command, path, lambda store: store.reveal_contact(item_id, by=by, reason=reason.strip(),
                                                                                 at=moment))  # fmt: skip
    if shown is None and sealed is None:
        fail(command, f"no follow-up item {item_id} with a number kept (unknown item, or keep_contact was off)")
    if sealed is not None:
        try:
            seal = ContactSeal(loaded.server.privacy.caller_number, contact_key(loaded.server, loaded.config_dir))
            number = seal.open(sealed)
        except (SaltError, SealError) as exc:
            fail(command, str(exc))
    else:
        number = shown or ""
    logging.getLogger("ivr.followups").warning("contact of follow-up %s revealed to %s: %s", item_id, by, reason.strip())
    click.echo(number)


@followups.command("export")
@config_option
@db_option
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Default: stdout.")
@click.option("--contacts", is_flag=True,
              help="Who to tell the outcome: closed items with the caller's number, call id, category, "
                   "resolution and when it was closed.")
@_now_option
def followups_export(
    config_dir: Path, db: str | None, fmt: str, output: Path | None, contacts: bool, now: dt.datetime | None,
) -> None:
    """Every follow-up item, earliest deadline first (or, with --contacts, the callers to tell the
    outcome, in the order the items were closed) as CSV or JSON lines."""
    command = "followups export"
    path = _database(command, load(command, config_dir), db)
    moment = _clock(now)
    if contacts:
        closed = _with_store(command, path, lambda store: store.followups(status="closed"))
        told = sorted((i for i in closed if i.contact), key=lambda i: (i.closed_at or i.created_at, i.item_id))
        text = _records_text([_contact_record(item) for item in told], _CONTACT_FIELDS, fmt)
        count = len(told)
    else:
        items = _with_store(command, path, lambda store: store.followups())
        text = _records_text([_item_record(item, moment) for item in items], _ITEM_FIELDS, fmt)
        count = len(items)
    if output is None:
        click.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    click.echo(f"{count} {'contact(s)' if contacts else 'item(s)'} written to {output}", err=True)
