"""The `ivr` command as an admin runs it: a real `ivr serve` process, reloaded by SIGHUP and
by `ivr reload`, refusing a broken configuration, stopping cleanly on SIGTERM.

Calls come from the PBX peer over TCP; what a caller hears and which row is written are
what the tests assert. Calls hang up at the language menu, before the business-hours
check, so the tests do not depend on the time of day.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from ivr import __version__
from servekit import IVR, REPO, Served, free_port, ivr

def rows(config: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(config / "var" / "calls.sqlite") as db:
        return list(db.execute("SELECT uniqueid, menu_version, disposition FROM calls ORDER BY started_at"))


def test_version() -> None:
    result = ivr("--version")
    assert result.returncode == 0 and __version__ in result.stdout


def test_check_passes_the_example_and_lists_every_problem_of_a_broken_one(config: Path) -> None:
    ok = ivr("check", config)
    assert ok.returncode == 0, ok.stderr
    flow = config / "flows" / "main.yaml"
    flow.write_text(flow.read_text().replace("next: choose-language", "next: no-such-node")
                    .replace("timeout: 4", "timeout: soon"))
    broken = ivr("check", config)
    assert broken.returncode == 1
    assert "main.yaml:" in broken.stderr and "no-such-node" in broken.stderr and "timeout" in broken.stderr
    assert "2 problem(s)" in broken.stderr


def comments_in(config: Path, directory: Path | str) -> None:
    surveys = config / "surveys.yaml"
    surveys.write_text(surveys.read_text().replace("directory: /var/spool/asterisk/ivr-survey",
                                                   f"directory: {directory}"))


def test_check_says_which_directory_asterisk_must_write_survey_comments_to(config: Path, tmp_path: Path) -> None:
    """Asterisk answers RECORD FILE into a missing directory with `200 result=-1 (writefile)`:
    the comment is lost. FastAGI on loopback only (the example): Asterisk runs here, so it is checked."""
    missing = tmp_path / "no-such-dir"
    comments_in(config, missing)
    result = ivr("check", config)
    assert result.returncode == 0, result.stderr
    assert f"warning: Asterisk must be able to write survey comments to {missing}: missing on this host" \
        in result.stdout
    missing.mkdir()
    result = ivr("check", config)
    assert f"note: Asterisk must be able to write survey comments to {missing}: it exists here" in result.stdout
    # Asterisk elsewhere (fastagi.allow names another host): the directory is only named.
    server = config / "server.yaml"
    text = server.read_text()
    assert text.count('allow: ["127.0.0.1", "::1"]') == 1, "the example's fastagi.allow changed"
    server.write_text(text.replace('allow: ["127.0.0.1", "::1"]', 'allow: ["127.0.0.1", "10.0.0.5"]'))
    result = ivr("check", config)
    assert f"note: Asterisk must be able to write survey comments to {missing} on the PBX (Asterisk is not on " \
        "this host: not checked here" in result.stdout


def test_serve_says_at_start_that_the_comment_directory_is_missing(config: Path, tmp_path: Path) -> None:
    comments_in(config, tmp_path / "no-such-dir")
    served = Served(config)
    try:
        served.wait_for_log(f"survey comments to {tmp_path / 'no-such-dir'}: missing on this host")
        assert "WARNING" in next(line for line in served.output().splitlines() if "no-such-dir" in line)
    finally:
        served.stop()


def test_serve_refuses_to_start_on_a_broken_configuration(config: Path) -> None:
    (config / "hotlines.yaml").write_text("hotlines: [unclosed\n")
    result = subprocess.run([*IVR, "serve", "--config", str(config), "--port", str(free_port())],
                            capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 2
    assert "hotlines.yaml:" in result.stderr


@pytest.mark.parametrize("edit, expected", [
    (('allow: ["127.0.0.1", "::1"]', "allow: [localhost]"), "fastagi.allow: 'localhost' is not an IP address"),
    (("sqlite_path: var/calls.sqlite", "sqlite_path: ."), "store.sqlite_path: "),
])  # fmt: skip
def test_serve_names_a_server_yaml_problem_without_a_traceback(config: Path, edit: tuple[str, str], expected: str) -> None:
    server = config / "server.yaml"
    text = server.read_text()
    assert edit[0] in text
    server.write_text(text.replace(edit[0], edit[1], 1))
    result = subprocess.run([*IVR, "serve", "--config", str(config), "--port", str(free_port())],
                            capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 2 and expected in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_a_port_out_of_range() -> None:
    result = subprocess.run([*IVR, "serve", "--port", "99999"], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 2 and "99999 is not in the range 0<=x<=65535" in result.stderr
    assert "Traceback" not in result.stderr


def test_reload_switches_new_calls_and_a_broken_file_keeps_the_old_menu(served: Served) -> None:
    first = served.call()
    assert first.prompts == ["recording-notice", "welcome", "choose-language"]

    flow = served.config / "flows" / "main.yaml"
    flow.write_text(flow.read_text().replace('version: "2026.1"', 'version: "2026.2"')
                    .replace("prompts: [welcome]", "prompts: [please-wait]"))
    reload = ivr("reload", "--config", served.config)
    assert reload.returncode == 0, reload.stderr
    served.wait_for_log("configuration reloaded")
    second = served.call()
    assert second.prompts == ["recording-notice", "please-wait", "choose-language"]

    good = flow.read_text()
    flow.write_text(good.replace("type: play", "type: plya", 1))
    refused = ivr("reload", "--config", served.config)
    assert refused.returncode == 1 and "not reloaded" in refused.stderr
    # A SIGHUP sent by hand is refused by the server itself, which keeps the live menu.
    served.process.send_signal(signal.SIGHUP)
    served.wait_for_log("reload refused")
    third = served.call()
    assert third.prompts == second.prompts

    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=15) == 0
    assert not (served.config / "var" / "ivr.pid").exists()
    written = rows(served.config)
    assert [uniqueid for uniqueid, _, _ in written] == [first.uniqueid, second.uniqueid, third.uniqueid]
    assert [version for _, version, _ in written][1:] == ["2026.2", "2026.2"]
    assert {disposition for _, _, disposition in written} == {"abandoned"}


def test_reload_without_a_running_server_says_so(config: Path) -> None:
    result = ivr("reload", "--config", config)
    assert result.returncode == 1 and "no running controller" in result.stderr


def test_serve_ends_on_sigint_like_sigterm(served: Served) -> None:
    served.process.send_signal(signal.SIGINT)
    assert served.process.wait(timeout=15) == 0
    assert os.path.exists(served.config / "var" / "calls.sqlite")


def test_serve_keeps_callers_data_readable_by_its_owner_only(served: Served) -> None:
    """The call records and the caller-key salt (made on this first start: server.yaml sets none)."""
    import stat

    served.call()  # a record written
    served.stop()
    var = served.config / "var"
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in var.iterdir() if p.is_file()}
    assert modes["calls.sqlite"] == 0o600 and modes["privacy.salt"] == 0o600, modes
    assert all(mode & 0o077 == 0 for mode in modes.values()), modes
