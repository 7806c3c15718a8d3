"""`ivr` as an admin runs it: the command in a subprocess, and `ivr serve` on a copy of the
example configuration (FastAGI on a free port, the admin socket under the copy's var/)."""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from ivr.pbxsim import CallerScript, CallResult, HangUp, SimCall, SoundLibrary, place_call

REPO = Path(__file__).resolve().parent.parent
IVR = [sys.executable, "-m", "ivr.cli"]


def ivr(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*IVR, *map(str, args)], capture_output=True, text=True, timeout=60, cwd=REPO)


def copy_config(tmp_path: Path) -> Path:
    """A copy of the example configuration that a test may edit (no var/ of a local run)."""
    target = tmp_path / "config"
    shutil.copytree(REPO / "config", target, ignore=shutil.ignore_patterns("var"))
    server = target / "server.yaml"
    server.write_text(server.read_text().replace("local_dir: ../prompts/sounds",
                                                 f"local_dir: {REPO / 'prompts' / 'sounds'}"))
    return target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """`ivr serve` in a subprocess, up once its pid file, FastAGI port and admin socket are there."""

    def __init__(self, config: Path, port: int | None = None) -> None:
        self.config = config
        self.port = port or free_port()
        self.socket = config / "var" / "ivr.sock"
        self.log = (config.parent / "serve.log").open("w+")
        self.process = subprocess.Popen([*IVR, "serve", "--config", str(config), "--port", str(self.port)],
                                        cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not (config / "var" / "ivr.pid").exists() or not self._accepts() or not self._admin_answers():
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, "ivr serve did not start:\n" + self.output()
            time.sleep(0.05)

    def _accepts(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def _admin_answers(self) -> bool:
        with socket.socket(socket.AF_UNIX) as sock:
            try:
                sock.connect(str(self.socket))
                return True
            except OSError:
                return False

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return (self.config.parent / "serve.log").read_text()

    def wait_for_log(self, text: str, count: int = 1) -> None:
        deadline = time.monotonic() + 15
        while self.output().count(text) < count:
            assert time.monotonic() < deadline, f"{text!r} not logged:\n{self.output()}"
            time.sleep(0.05)

    def call(self) -> CallResult:
        """A caller who hangs up at the language menu (before the hours check: any time of day)."""
        sounds = SoundLibrary([("/var/lib/asterisk/sounds/ivr", REPO / "prompts" / "sounds")])
        call = SimCall(CallerScript((HangUp(on_prompt="choose-language", after=0.5),)),
                       extension="4008001234", script="ivr?hotline=4008001234")
        result = asyncio.run(place_call("127.0.0.1", self.port, call, sounds=sounds))
        assert result.error is None and result.server_closed
        return result

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            assert self.process.wait(timeout=15) == 0, self.output()
        self.log.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.log.close()
