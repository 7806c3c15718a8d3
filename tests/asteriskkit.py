"""A real Asterisk 22 for tests: the project's `dialplans/` loaded as an admin would, on
free loopback ports, in a folder of its own.

Where the PBX comes from, first match wins:
1. `IVR_ASTERISK`: a `run-asterisk` script (as in `../shared/pbx`) or an `asterisk` binary;
2. `../shared/pbx/run-asterisk` beside the repository (this project's machines and CI);
3. `asterisk` on PATH.
None found: the tests that need it skip with the reason, except under `CI=true`, where they fail.

Rendering changes only ports, addresses and paths (`render_dialplans`); the test endpoints
(more callers than `caller1`) are one extra pjsip file, included like `pjsip_rig.conf`.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED_PBX = Path(os.environ.get("IVR_SHARED_DIR", REPO.parent / "shared")) / "pbx" / "run-asterisk"
DIALPLANS = REPO / "dialplans"

# Test-only endpoints: callers (context ivr-hotline) beyond the shipped caller1/rigcaller
# (caller1..caller20: the rig proves 20 phones registered and calling at once).
TEST_CALLERS = [f"caller{n}" for n in range(2, 21)]
TEST_PASSWORD = "test-{user}"


class NoAsterisk(Exception):
    """No real Asterisk on this machine."""


class AsteriskCannotRunHere(NoAsterisk):
    """An Asterisk is there, but dies at start on this machine's processor (a build for
    another CPU: SIGILL)."""


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_udp_port_pair() -> int:
    """A port free for both UDP and TCP (pjsip's transport binds UDP; nothing else may own it)."""
    for _ in range(50):
        port = free_port(socket.SOCK_DGRAM)
        try:
            with socket.socket() as tcp:
                tcp.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise OSError("no free port")


def find_asterisk() -> Path:
    """The `run-asterisk` script or `asterisk` binary to use (see the module docstring)."""
    named = os.environ.get("IVR_ASTERISK")
    if named:
        path = Path(named)
        if not path.exists():
            raise NoAsterisk(f"IVR_ASTERISK={named} does not exist")
        return path
    if SHARED_PBX.exists():
        return SHARED_PBX
    on_path = shutil.which("asterisk")
    if on_path:
        return Path(on_path)
    raise NoAsterisk(f"no Asterisk: set IVR_ASTERISK, or put {SHARED_PBX} or `asterisk` on PATH")


@functools.cache
def runs_here(program: Path) -> None:
    """Start `run-asterisk`'s Asterisk once with no modules, and stop it. A build that dies on
    this processor with SIGILL raises AsteriskCannotRunHere; anything else is left for the
    tests to meet. (Asterisk's menuselect builds with BUILD_NATIVE, -march=native, unless told
    otherwise: a build made on a CPU with AVX-512 dies at start on one without.)"""
    if program.name != "run-asterisk":
        return
    folder = Path(tempfile.mkdtemp(prefix="asterisk-probe-"))
    try:
        (folder / "conf").mkdir()
        (folder / "conf" / "modules.conf").write_text("[modules]\nautoload = no\n")
        done = subprocess.run([str(program), "start", str(folder / "run"), str(folder / "conf")],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        if done.returncode == 0:
            subprocess.run([str(program), "stop", str(folder / "run")], capture_output=True, timeout=60)
        elif "Illegal instruction" in done.stdout + done.stderr:
            flags = _cpu_flags()
            lacking = [f for f in ("avx512f", "avx512bw", "avx512vl") if f not in flags]
            raise AsteriskCannotRunHere(
                f"{program}'s Asterisk dies at start on this processor (SIGILL, illegal instruction): "
                f"it was built for a CPU with instructions this one lacks ({', '.join(lacking) or 'see its build flags'} "
                "missing here). Rebuild it without BUILD_NATIVE (menuselect --disable BUILD_NATIVE)."
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    found = re.search(r"(?m)^flags\s*:(.*)$", text)
    return set(found.group(1).split()) if found else set()


def require_asterisk() -> Path:
    """`find_asterisk()`, if it runs here; otherwise skip the test with the reason. Under
    CI=true a missing Asterisk fails the test instead (CI proves the call paths on the real
    PBX); an Asterisk that is there but cannot execute on this machine's processor skips it
    with that reason, loudly: no change of the project can make it run, and the summary of
    the run says so (`-rs`)."""
    import pytest

    try:
        program = find_asterisk()
        runs_here(program)
        return program
    except AsteriskCannotRunHere as exc:
        pytest.skip(f"REAL PBX UNUSABLE ON THIS MACHINE: {exc}")
    except NoAsterisk as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true needs the real Asterisk: {exc}")
        pytest.skip(str(exc))


@dataclass(frozen=True)
class PbxPorts:
    sip: int
    ami: int
    agi: int  # where the dialplan's IVR_AGI points: the controller's FastAGI port
    rtp_start: int


def render_dialplans(target: Path, ports: PbxPorts, *, modules: Path | None = None) -> Path:
    """Copy `dialplans/*.conf` into `target`, changing only ports, addresses and paths, and add
    the test endpoints. `modules` replaces modules.conf (to prove a minimal set)."""
    target.mkdir(parents=True, exist_ok=True)
    for source in DIALPLANS.glob("*.conf"):
        shutil.copy(source, target / source.name)
    if modules is not None:
        shutil.copy(modules, target / "modules.conf")
    _sub(target / "pjsip.conf", r"bind = 127\.0\.0\.1:5060", f"bind = 127.0.0.1:{ports.sip}")
    _sub(target / "manager.conf", r"(?m)^port = 5038$", f"port = {ports.ami}")
    _sub(target / "extensions.conf", r"IVR_AGI = agi://127\.0\.0\.1:4573", f"IVR_AGI = agi://127.0.0.1:{ports.agi}")
    # RTP ports of their own, so that instances beside each other never share one.
    (target / "rtp.conf").write_text(f"[general]\nrtpstart={ports.rtp_start}\nrtpend={ports.rtp_start + 999}\n")
    endpoints = ["; test callers (tests/asteriskkit.py)"]
    for user in TEST_CALLERS:
        endpoints += [
            f"[{user}](endpoint-common)", "context = ivr-hotline", "dtmf_mode = inband",
            f"auth = {user}", f"aors = {user}", f'callerid = "{user}" <{caller_number(user)}>',
            f"[{user}](auth-userpass)", f"username = {user}", f"password = {TEST_PASSWORD.format(user=user)}",
            f"[{user}](aor-single)",
        ]  # fmt: skip
    (target / "pjsip_test.conf").write_text("\n".join(endpoints) + "\n")
    with (target / "pjsip.conf").open("a") as pjsip:
        pjsip.write("\n#include pjsip_rig.conf\n#include pjsip_test.conf\n")
    return target


def caller_number(user: str) -> str:
    """A number per test caller, so that each is a different customer to the controller."""
    return f"1380000{int(user.removeprefix('caller')):04d}"


def _sub(path: Path, pattern: str, replacement: str) -> None:
    text, count = re.subn(pattern, replacement, path.read_text())
    if count != 1:
        raise AssertionError(f"{path.name}: expected one {pattern!r} to render, found {count}")
    path.write_text(text)


class RealAsterisk:
    """One running Asterisk in `folder` (config in `folder/conf`, everything else in `folder/run`)."""

    def __init__(self, program: Path, folder: Path) -> None:
        self.program = program
        self.folder = folder
        self.run_dir = folder / "run"
        self.conf = folder / "conf"
        self.ports = PbxPorts(sip=free_udp_port_pair(), ami=free_port(), agi=free_port(),
                              rtp_start=24000 + (os.getpid() % 3) * 1000)  # fmt: skip

    @property
    def sip_port(self) -> int:
        return self.ports.sip

    @property
    def runs_script(self) -> bool:
        return self.program.name == "run-asterisk"

    def start(self, *, modules: Path | None = None) -> None:
        render_dialplans(self.conf, self.ports, modules=modules)
        if self.runs_script:
            # Asterisk paces RTP in real time: on a busy machine it goes ahead of other work
            # (nice -10 as root; nice refuses elsewhere, and it starts at the normal priority).
            nice = ["nice", "-n", "-10"] if os.geteuid() == 0 else []
            done = subprocess.run([*nice, str(self.program), "start", str(self.run_dir), str(self.conf)],
                                  capture_output=True, text=True, timeout=60)  # fmt: skip
            if done.returncode != 0:
                raise RuntimeError(f"Asterisk did not start:\n{done.stdout}{done.stderr}")
        else:
            self._start_binary()

    def _start_binary(self) -> None:
        """An `asterisk` binary: the same layout `run-asterisk` makes, written here."""
        run = self.run_dir
        for sub in ("etc", "lib", "spool/monitor", "run", "log", "share/sounds", "keys"):
            (run / sub).mkdir(parents=True, exist_ok=True)
        for conf in self.conf.glob("*.conf"):
            shutil.copy(conf, run / "etc" / conf.name)
        modules = os.environ.get("IVR_ASTERISK_MODULES", "/usr/lib/x86_64-linux-gnu/asterisk/modules")
        (run / "etc" / "asterisk.conf").write_text(
            "[directories]\n" + "".join(f"{key} => {run / value}\n" for key, value in (
                ("astetcdir", "etc"), ("astvarlibdir", "lib"), ("astdbdir", "lib"), ("astkeydir", "keys"),
                ("astdatadir", "share"), ("astspooldir", "spool"), ("astrundir", "run"), ("astlogdir", "log")))
            + f"astmoddir => {modules}\n[options]\nverbose = 3\n"
        )  # fmt: skip
        log = (run / "console.log").open("w")
        process = subprocess.Popen([str(self.program), "-C", str(run / "etc" / "asterisk.conf"), "-f", "-n"],
                                   stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        (run / "asterisk.pid").write_text(str(process.pid))
        deadline = time.monotonic() + 20
        while self._binary_cli("core waitfullybooted").returncode != 0:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Asterisk did not start: see {run / 'console.log'}")
            time.sleep(0.2)

    def _binary_cli(self, command: str) -> subprocess.CompletedProcess[str]:
        conf = self.run_dir / "etc" / "asterisk.conf"
        return subprocess.run([str(self.program), "-C", str(conf), "-rx", command],
                              capture_output=True, text=True, timeout=30)  # fmt: skip

    def cli(self, command: str) -> str:
        if self.runs_script:
            done = subprocess.run([str(self.program), "cli", str(self.run_dir), command],
                                  capture_output=True, text=True, timeout=30)  # fmt: skip
        else:
            done = self._binary_cli(command)
        return done.stdout

    def stop(self) -> None:
        if self.runs_script:
            subprocess.run([str(self.program), "stop", str(self.run_dir)], capture_output=True, timeout=30)
            return
        pid_file = self.run_dir / "asterisk.pid"
        if not pid_file.exists():
            return
        pid = int(pid_file.read_text())
        self._binary_cli("core stop now")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        os.kill(pid, 9)

    # --- what the PBX shows -----------------------------------------------------------------

    def channels(self) -> list[str]:
        """The channels up now (`core show channels concise`: one line each)."""
        return [line for line in self.cli("core show channels concise").splitlines() if "!" in line]

    def wait_no_channels(self, within: float) -> list[str]:
        """Wait until no channel is up; what is still up after `within` seconds."""
        deadline = time.monotonic() + within
        while (left := self.channels()) and time.monotonic() < deadline:
            time.sleep(0.05)
        return left

    @property
    def log(self) -> str:
        path = self.run_dir / "log" / "messages"
        return path.read_text(errors="replace") if path.exists() else ""

    @property
    def monitor_dir(self) -> Path:
        """Where MixMonitor writes a relative file name."""
        return self.run_dir / "spool" / "monitor"

    def password(self, user: str) -> str:
        """The SIP password of a shipped or test endpoint."""
        if user in TEST_CALLERS:
            return TEST_PASSWORD.format(user=user)
        return f"change-me-{user}"
