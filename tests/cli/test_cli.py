"""The `ivr` command as an admin runs it: a real `ivr serve` process, reloaded by SIGHUP and
by `ivr reload`, refusing a broken configuration, stopping cleanly on SIGTERM.

Calls come from the PBX peer over TCP; what a caller hears and which row is written are
what the tests assert. Calls hang up at the language menu, before the business-hours
check, so the tests do not depend on the time of day.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr import __version__
from ivr.pbxsim import CallerScript, CallResult, HangUp, SimCall, SoundLibrary, place_call

REPO = Path(__file__).resolve().parents[2]
IVR = [sys.executable, "-m", "ivr.cli"]


def ivr(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*IVR, *map(str, args)], capture_output=True, text=True, timeout=60, cwd=REPO)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A copy of the example configuration that a test may edit."""
    target = tmp_path / "config"
    shutil.copytree(REPO / "config", target)
    server = target / "server.yaml"
    server.write_text(server.read_text().replace("local_dir: ../prompts/sounds",
                                                 f"local_dir: {REPO / 'prompts' / 'sounds'}"))
    return target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    def __init__(self, config: Path) -> None:
        self.config = config
        self.port = free_port()
        self.log = (config.parent / "serve.log").open("w+")
        self.process = subprocess.Popen([*IVR, "serve", "--config", str(config), "--port", str(self.port)],
                                        cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not (config / "var" / "ivr.pid").exists() or not self._accepts():
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, "ivr serve did not start:\n" + self.output()
            time.sleep(0.05)

    def _accepts(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def output(self) -> str:
        self.log.flush()
        return (self.config.parent / "serve.log").read_text()

    def wait_for_log(self, text: str, count: int = 1) -> None:
        deadline = time.monotonic() + 15
        while self.output().count(text) < count:
            assert time.monotonic() < deadline, f"{text!r} not logged:\n{self.output()}"
            time.sleep(0.05)

    def call(self) -> CallResult:
        sounds = SoundLibrary([("/var/lib/asterisk/sounds/ivr", REPO / "prompts" / "sounds")])
        call = SimCall(CallerScript((HangUp(on_prompt="choose-language", after=0.5),)),
                       extension="4008001234", script="ivr?hotline=4008001234")
        result = asyncio.run(place_call("127.0.0.1", self.port, call, sounds=sounds))
        assert result.error is None and result.server_closed
        return result


@pytest.fixture
def served(config: Path) -> Iterator[Served]:
    server = Served(config)
    yield server
    if server.process.poll() is None:
        server.process.kill()
        server.process.wait()
    server.log.close()


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


def test_serve_refuses_to_start_on_a_broken_configuration(config: Path) -> None:
    (config / "hotlines.yaml").write_text("hotlines: [unclosed\n")
    result = subprocess.run([*IVR, "serve", "--config", str(config), "--port", str(free_port())],
                            capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 2
    assert "hotlines.yaml:" in result.stderr


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
