"""What `ivr demo` prints at the end: the day in a few tables, then what to run next on it."""

from __future__ import annotations

import shlex
import shutil
import sys
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from ivr.app import Controller
from survey_engine.report import build_report


async def report(controller: Controller, console: Console) -> None:
    assert controller.store is not None
    rows = [row async for row in controller.store.iter_calls()]
    dispositions = Counter(str(row.disposition) for row in rows)
    table = Table(title=f"{len(rows)} calls by disposition")
    table.add_column("disposition")
    table.add_column("calls", justify="right")
    table.add_column("share", justify="right")
    for name, count in dispositions.most_common():
        table.add_row(name, str(count), f"{count / len(rows):.0%}")
    console.print(table)

    legs = [leg for row in rows for leg in row.queue_legs]
    if legs:
        table = Table(title="ACD queues (seconds)")
        for name in ("queue", "entered", "answered", "abandoned", "overflowed", "mean wait answered",
                     "longest wait"):
            table.add_column(name, justify="left" if name == "queue" else "right")
        for queue in sorted({leg.queue for leg in legs}):
            mine = [leg for leg in legs if leg.queue == queue]
            outcomes = Counter(leg.outcome for leg in mine)
            answered = [leg.waited for leg in mine if leg.outcome == "answered"]
            table.add_row(queue, str(len(mine)), str(outcomes["answered"]), str(outcomes["abandoned"]),
                          str(outcomes["overflowed"]),
                          f"{sum(answered) / len(answered):.0f}" if answered else "—",
                          f"{max(leg.waited for leg in mine):.0f}")
        console.print(table)
        table = Table(title="Agents")
        for name in ("agent", "calls answered", "mean talk (s)"):
            table.add_column(name, justify="left" if name == "agent" else "right")
        for agent in sorted({leg.agent_id for leg in legs if leg.agent_id}):
            talks = [leg.talk_seconds or 0.0 for leg in legs if leg.agent_id == agent and leg.outcome == "answered"]
            table.add_row(agent, str(len(talks)), f"{sum(talks) / len(talks):.0f}" if talks else "—")
        console.print(table)

    paths = Counter(
        " > ".join(e.node for e in row.events if e.kind.value == "node") + f" => {row.disposition}"
        for row in rows
    )
    table = Table(title="IVR paths taken (top 8)")
    table.add_column("path")
    table.add_column("calls", justify="right")
    for route, count in paths.most_common(8):
        table.add_row(route, str(count))
    console.print(table)

    await _survey_report(controller, console)

    gave_up = Counter(row.detail for row in rows if str(row.disposition) == "abandoned")
    table = Table(title="Where callers gave up")
    table.add_column("node")
    table.add_column("callers", justify="right")
    for node, count in gave_up.most_common():
        table.add_row(node, str(count))
    console.print(table)


async def _survey_report(controller: Controller, console: Console) -> None:
    """What `ivr report survey --by queue` and `ivr followups list` would show."""
    if controller.surveys is None:
        return
    responses = await controller.surveys.responses()
    if not responses:
        return
    report = build_report(responses, "queue", ZoneInfo("UTC"))
    table = Table(title="Post-call surveys (ivr report survey --by queue)")
    for name in ("queue", "offered", "started", "partial", "CSAT speed %", "resolved %", "NPS"):
        table.add_column(name, justify="left" if name == "queue" else "right")

    def shown(value: float | None) -> str:
        return "—" if value is None else f"{value:.0f}"

    for group in (*report.groups, report.total):
        speed = next((q for q in group.scale if q.question == "speed"), None)
        resolved = next((q for q in group.resolution if q.question == "resolved"), None)
        nps = next((q for q in group.nps if q.question == "nps"), None)
        table.add_row(group.key, str(group.offered), str(group.started), str(group.partial),
                      shown(speed.csat if speed else None), shown(resolved.rate if resolved else None),
                      shown(nps.nps if nps else None))
    console.print(table)
    items = await controller.surveys.followups(status="open")
    owners = Counter(item.owner for item in items)
    console.print(f"follow-up items opened by low scores: {len(items)} "
                  f"({', '.join(f'{owner} {count}' for owner, count in owners.most_common())})")


def next_commands(config_dir: Path, db: Path) -> list[list[str]]:
    """The commands that read the demo's day, as a user would type them here (argv after `ivr`)."""
    where = ["--config", _shown(config_dir), "--db", _shown(db)]
    return [
        ["report", "html", *where, "--output", _shown(db.parent / "demo-report")],
        ["export", "calls", *where],
        ["export", "legs", *where],
        ["export", "agents", *where],
        ["staffing", *where, "--model", "erlang_a"],
        ["report", "survey", *where, "--by", "agent"],
    ]


def next_steps(console: Console, config_dir: Path, db: Path) -> None:
    console.print("\nThe day's records are real call records: read them as a planner would.")
    program = _program()
    for argv in next_commands(config_dir, db):
        console.print(f"  {program} {shlex.join(argv)}", highlight=False, soft_wrap=True)


def _program() -> str:
    """How to type `ivr` here: the bare name when it is on PATH, else the venv's script (the
    README's set-up runs `.venv/bin/ivr demo` without activating the venv)."""
    script = Path(sys.executable).parent / "ivr"
    found = shutil.which("ivr")
    if (found is not None and Path(found).resolve() == script.resolve()) or not script.exists():
        return "ivr"
    return _shown(script)


def _shown(path: Path) -> str:
    """`path` relative to the current folder when it is under it (shorter to type), else absolute."""
    absolute = path.absolute()
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)
