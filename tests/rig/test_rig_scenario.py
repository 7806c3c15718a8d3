"""Scenario files: the example loads; every mistake is reported with file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.rig.scenario import ScenarioError, load_file, load_files
from rigkit import PROMPTS

HEADER = f"prompts: {PROMPTS}\n"


def _write(tmp_path: Path, text: str, name: str = "calls.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _problems(path: Path) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        load_files([path])
    return [str(p) for p in caught.value.problems]


def test_the_example_scenarios_load(example_scenarios: Path) -> None:
    planned = {s.name: s for s in load_file(example_scenarios)}

    assert set(planned) == {"billing-agent-survey", "hang-up-in-menu", "invalid-key-in-menu"}
    billing = planned["billing-agent-survey"]
    assert billing.dial == "4008001234" and billing.uses_agents
    kinds = [s.kind for s in billing.steps]
    assert kinds[:4] == ["prompt", "prompt", "prompt", "press"]
    assert "agent" in kinds and "agent_hangup" in kinds and kinds[-1] == "far_hangup"
    # the language step switches the prompts that follow to English
    menu = next(s for s in billing.steps if s.step.prompt is not None and s.step.prompt.id == "main-menu")
    assert menu.language == "en-US" and menu.template is not None
    assert planned["hang-up-in-menu"].steps[-1].kind == "hangup"
    assert not planned["hang-up-in-menu"].uses_agents


def test_shorthands_and_defaults(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        HEADER
        + """defaults: {within: 7, min_score: 0.9, dtmf: inband}
scenarios:
  - name: one
    dial: 400
    language: en-US
    steps:
      - prompt: goodbye
      - prompt: {id: welcome, within: 3, min_score: 0.7}
      - press: 0123
      - press: {keys: "#", dtmf: rfc4733}
      - hangup:
""",
    )
    steps = load_file(path)[0].steps

    assert load_file(path)[0].dial == "400"
    assert (steps[0].within, steps[0].min_score) == (7, 0.9)
    assert (steps[1].within, steps[1].min_score) == (3, 0.7)
    press = steps[2].step.press
    assert press is not None and press.keys == "0123"  # as written, not the YAML 1.1 octal 83
    assert (steps[2].dtmf, steps[3].dtmf) == ("inband", "rfc4733")
    assert steps[4].kind == "hangup" and steps[4].where == f"{path}:12:9"


@pytest.mark.parametrize(
    "steps, line_col, fragment",
    [
        ("      - pres: 1\n", "8:9", "unknown key 'pres' (did you mean 'press'?"),
        ("      - prompt: goodbye\n        press: 1\n", "8:9", "exactly one of: prompt, audio"),
        ("      - {}\n", "8:9", "got none"),
        ("      - press: 12x\n", "8:16", "invalid keys '12x'"),
        ("      - prompt: {id: goodbye, within: -1}\n", "8:39", "greater than 0"),
        ("      - press: {keys: 1, dtmf: sip-info}\n", "8:32", "expected 'auto', 'rfc4733' or 'inband'"),
        ("      - hangup: now\n", "8:17", "expected a mapping, got 'now'"),
        ("      - prompt: no-such-prompt\n", "8:17", "prompt 'no-such-prompt' in en-US"),
    ],
)
def test_a_broken_step_is_reported_where_it_is_written(tmp_path: Path, steps: str, line_col: str, fragment: str) -> None:
    path = _write(tmp_path, HEADER + "scenarios:\n  - name: one\n    dial: '400'\n    language: en-US\n    steps:\n" + "\n" + steps)
    problems = _problems(path)
    assert any(p.startswith(f"{path}:{line_col}: ") and fragment in p for p in problems), problems


def test_every_problem_of_every_file_is_reported_at_once(tmp_path: Path) -> None:
    first = _write(
        tmp_path,
        HEADER
        + """scenarios:
  - name: one
    dial: "400"
    steps:
      - prompt: goodbye
  - name: one
    dial: "400 1"
    steps: []
""",
        "a.yaml",
    )
    second = _write(tmp_path, "scenarios:\n  - name: x\n    dial: '1'\n    language: en-US\n    steps: [{prompt: goodbye}]\n", "b.yaml")
    broken = _write(tmp_path, "scenarios: [\n", "c.yaml")

    with pytest.raises(ScenarioError) as caught:
        load_files([first, second, broken])
    problems = [str(p) for p in caught.value.problems]

    assert f"{first}:8:11: scenarios[1].dial: invalid number '400 1' (expected digits, letters" in " ".join(problems)
    assert f"{first}:9:12: scenarios[1].steps: a scenario needs at least one step" in problems
    assert any(p.startswith(f"{second}:5:22: scenarios[0].steps[0].prompt: a prompt step needs `prompts:`") for p in problems)
    assert any(p.startswith(f"{broken}:2:1: invalid YAML") for p in problems), problems


def test_semantic_problems_are_reported_with_their_place(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        HEADER
        + """scenarios:
  - name: one
    dial: "400"
    steps:
      - prompt: goodbye
  - name: one
    dial: "401"
    language: fr-FR
    steps:
      - prompt: goodbye
""",
    )
    problems = _problems(path)
    assert f"{path}:6:9: scenarios[0].steps[0]: which language is this prompt in?" in " ".join(problems)
    assert any(p.startswith(f"{path}:7:11: scenarios[1].name: duplicate scenario name 'one' (first at line 3)") for p in problems)
    assert any(p.startswith(f"{path}:11:17: scenarios[1].steps[0].prompt: prompt 'goodbye' in fr-FR") for p in problems)


def test_an_unreadable_or_empty_file(tmp_path: Path) -> None:
    assert _problems(tmp_path / "missing.yaml") == [f"{tmp_path / 'missing.yaml'}: cannot read: No such file or directory"]
    empty = _write(tmp_path, "# nothing yet\n")
    assert _problems(empty) == [f"{empty}:1:1: expected a mapping, got nothing"]
    none = _write(tmp_path, "scenarios: []\n", "none.yaml")
    assert _problems(none) == [f"{none}:1:12: scenarios: no scenarios: expected a list of scenarios"]
