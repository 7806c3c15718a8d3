"""The pass/fail table and the JUnit XML a CI system reads."""

from __future__ import annotations

import datetime as dt
import io
import xml.etree.ElementTree as ET
from pathlib import Path

from rich.console import Console

from ivr.rig.report import print_results, write_junit
from ivr.rig.runner import ScenarioResult
from ivr.rig.scenario import PlannedScenario

NOW = dt.datetime(2026, 3, 2, 10, 30, tzinfo=dt.timezone.utc)


def _results() -> list[ScenarioResult]:
    def scenario(file: str, name: str) -> PlannedScenario:
        return PlannedScenario(file, name, "4008001234", 15.0, ())

    return [
        ScenarioResult(scenario("rig/a.yaml", "billing"), "passed", call_id="c1@127.0.0.1:5070", seconds=41.5, agent="1003",
                       log=["   0.1 s  dial 4008001234: answered"]),
        ScenarioResult(scenario("rig/a.yaml", "menu"), "failed", "step 6 (prompt main-menu (en-US), rig/a.yaml:20:9): not heard within 20 s",
                       call_id="c2@127.0.0.1:5070", seconds=23.0),
        ScenarioResult(scenario("rig/b.yaml", "offline"), "error", "caller1 could not register with 10.0.0.1:5060: timed out"),
    ]  # fmt: skip


def test_the_table_shows_each_result_its_reason_and_call_id() -> None:
    console = Console(file=io.StringIO(), record=True, width=250)
    print_results(_results(), console)
    text = console.export_text()

    rows = {line.split()[2]: line for line in text.splitlines() if line.startswith("│ rig/")}
    assert "PASS" in rows["billing"] and "c1@127.0.0.1:5070" in rows["billing"] and "1003" in rows["billing"]
    assert "FAIL" in rows["menu"] and "not heard within 20 s" in rows["menu"] and "c2@127.0.0.1:5070" in rows["menu"]
    assert "ERROR" in rows["offline"] and "could not register" in rows["offline"]
    assert "1 passed, 1 failed, 1 error" in text


def test_junit_xml_has_a_suite_per_file_and_a_case_per_scenario(tmp_path: Path) -> None:
    path = tmp_path / "out" / "rig.xml"
    write_junit(_results(), path, now=NOW)

    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "1", "1")
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == {"rig/a.yaml", "rig/b.yaml"}
    a = suites["rig/a.yaml"]
    assert (a.get("tests"), a.get("failures"), a.get("errors"), a.get("timestamp")) == ("2", "1", "0", "2026-03-02T10:30:00+00:00")

    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert cases["billing"].get("classname") == "rig.a" and cases["billing"].get("time") == "41.500"
    assert cases["billing"].find("failure") is None
    assert "call id: c1@127.0.0.1:5070\nagent: 1003\n" in (cases["billing"].findtext("system-out") or "")
    failure = cases["menu"].find("failure")
    assert failure is not None and "not heard within 20 s" in (failure.get("message") or "")
    error = cases["offline"].find("error")
    assert error is not None and "could not register" in (error.get("message") or "")
