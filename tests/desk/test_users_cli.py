"""`ivr users`: accounts made before the first `ivr serve` (the store is created), and the
mistakes a new admin makes, each with a clear message."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from ivr.cli.main import main

REPO = Path(__file__).resolve().parents[2]


def config(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "config", tmp_path / "config")
    (tmp_path / "prompts").symlink_to(REPO / "prompts")
    return tmp_path / "config"


def test_accounts_are_added_listed_and_refused_with_reasons(tmp_path: Path) -> None:
    cfg = str(config(tmp_path))
    runner = CliRunner()
    added = runner.invoke(main, ["users", "add", "li.na", "--agent", "1001", "--config", cfg],
                          input="long enough pw\nlong enough pw\n")
    assert added.exit_code == 0, added.output
    assert "account li.na added (agent, agent 1001, zh-CN)" in added.output
    assert (tmp_path / "config" / "var" / "calls.sqlite").is_file()  # made on the way

    again = runner.invoke(main, ["users", "add", "li.na", "--agent", "1001", "--password", "long enough pw",
                                 "--config", cfg])
    assert again.exit_code == 2 and "account 'li.na' exists" in again.output
    unknown = runner.invoke(main, ["users", "add", "x", "--agent", "9999", "--password", "long enough pw",
                                   "--config", cfg])
    assert unknown.exit_code == 2 and "--agent 9999: no such agent in routing.yaml (expected one of: 1001" in unknown.output
    no_agent = runner.invoke(main, ["users", "add", "y", "--password", "long enough pw", "--config", cfg])
    assert no_agent.exit_code == 2 and "needs the ACD agent id" in no_agent.output
    short = runner.invoke(main, ["users", "add", "boss", "--role", "supervisor", "--password", "short",
                                 "--config", cfg])
    assert short.exit_code == 2 and "at least 10 characters" in short.output

    disabled = runner.invoke(main, ["users", "disable", "li.na", "--config", cfg])
    assert disabled.exit_code == 0
    listed = runner.invoke(main, ["users", "list", "--config", cfg])
    assert listed.output.splitlines()[1:] == ["li.na\tagent\t1001\tzh-CN\tdisabled"]
    missing = runner.invoke(main, ["users", "passwd", "nobody", "--password", "long enough pw", "--config", cfg])
    assert missing.exit_code == 2 and "no account 'nobody'" in missing.output
