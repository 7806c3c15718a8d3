"""Results as people and CI systems read them: a pass/fail table and JUnit XML.

JUnit XML follows the shape Jenkins, GitLab and GitHub test reporters read: one
<testsuite> per scenario file, one <testcase> per scenario, <failure> for a step that did
not happen, <error> for a scenario the rig could not run, the call id and the step log in
<system-out>.
"""

from __future__ import annotations

import datetime as dt
import socket
import xml.etree.ElementTree as ET
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ivr.rig.runner import ScenarioResult

_STYLE = {"passed": "green", "failed": "red", "error": "magenta"}
_WORD = {"passed": "PASS", "failed": "FAIL", "error": "ERROR"}


def table(results: list[ScenarioResult]) -> Table:
    out = Table(title="ivr rig", title_justify="left")
    out.add_column("scenario", overflow="fold")
    out.add_column("result")
    out.add_column("time", justify="right")
    out.add_column("agent")
    out.add_column("call id", overflow="fold")
    out.add_column("reason", overflow="fold")
    for r in results:
        out.add_row(
            f"{r.scenario.file}: {r.scenario.name}",
            f"[{_STYLE[r.status]}]{_WORD[r.status]}[/]",
            f"{r.seconds:.1f} s",
            r.agent or "",
            r.call_id or "",
            r.reason,
        )
    return out


def summary(results: list[ScenarioResult]) -> str:
    counts = {status: sum(r.status == status for r in results) for status in _WORD}
    errors = counts["error"]
    return f"{counts['passed']} passed, {counts['failed']} failed, {errors} error{'' if errors == 1 else 's'}"


def print_results(results: list[ScenarioResult], console: Console) -> None:
    console.print(table(results))
    console.print(summary(results))


def junit(results: list[ScenarioResult], *, now: dt.datetime) -> ET.ElementTree:
    root = ET.Element("testsuites", name="ivr rig")
    by_file: dict[str, list[ScenarioResult]] = {}
    for r in results:
        by_file.setdefault(r.scenario.file, []).append(r)
    for file, group in by_file.items():
        suite = ET.SubElement(
            root,
            "testsuite",
            name=file,
            tests=str(len(group)),
            failures=str(sum(r.status == "failed" for r in group)),
            errors=str(sum(r.status == "error" for r in group)),
            skipped="0",
            time=f"{sum(r.seconds for r in group):.3f}",
            timestamp=now.isoformat(timespec="seconds"),
            hostname=socket.gethostname(),
        )
        for r in group:
            case = ET.SubElement(suite, "testcase", classname=f"rig.{Path(file).stem}", name=r.scenario.name, time=f"{r.seconds:.3f}")
            if r.status != "passed":
                ET.SubElement(case, "failure" if r.status == "failed" else "error", message=r.reason, type=r.status).text = r.reason
            lines = [f"call id: {r.call_id or '-'}"] + ([f"agent: {r.agent}"] if r.agent else []) + r.log
            ET.SubElement(case, "system-out").text = "\n".join(lines)
    root.set("tests", str(len(results)))
    root.set("failures", str(sum(r.status == "failed" for r in results)))
    root.set("errors", str(sum(r.status == "error" for r in results)))
    tree = ET.ElementTree(root)
    ET.indent(tree)
    return tree


def write_junit(results: list[ScenarioResult], path: Path, *, now: dt.datetime) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    junit(results, now=now).write(path, encoding="utf-8", xml_declaration=True)
