"""What the fault-injection tier shares: `ivr serve` on a copy of config/ with a hotline that
goes straight to the engine's ACD, started without blocking the test's event loop; a steady
call load from the pbxsim peer that notes when each agent's phone rang and for how long (the
PBX's own view); and the figures a user would check after a fault, read from the call
records and the shared live state.

Everything is on loopback and bounded: a load has a fixed number of calls at a fixed rate,
and every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography.fernet import Fernet

from ivr.pbxsim import Agent, CallerScript, CallResult, SimCall, SoundLibrary, place_call
from ivr.pbxsim.channel import SimChannel
from ivr.pbxsim.peer import CallObserver
from routing.config import StateSettings
from routing.model import Presence
from routing.redis_state import RedisState
from servekit import IVR, REPO, free_port

HOTLINE = "4008009999"  # the test hotline: straight into the billing queue, no menus, no hours check
AGENTS = ("1001", "1002", "1003", "1004")
SOUNDS = SoundLibrary([("/var/lib/asterisk/sounds/ivr", REPO / "prompts" / "sounds")])

ROUTING: dict[str, Any] = {
    "agents": {a: {"name": f"agent {a}", "endpoint": f"PJSIP/{a}", "skills": {"billing": 3}, "wrap_up": 0}
               for a in AGENTS},
    "queues": {
        "billing": {
            "skills": {"billing": 1},
            "strategy": "longest_idle",
            "max_wait": 6,  # a caller nobody serves leaves for voicemail: every call ends
            "max_callers": 200,
            "ring_timeout": 5,
            "announce": {"first_after": 600, "every": 600},
            "affinity": {"enabled": False},
            "overflow": {"timeout": {"voicemail": "400"}, "no_agents": {"voicemail": "400"},
                         "full": {"voicemail": "400"}},
        },
    },
}


def fault_config(tmp_path: Path, *, redis_url: str | None = None, key_prefix: str = "ivr:acd:",
                 store_url: str | None = None, ami_port: int | None = None, web_port: int | None = None) -> Path:
    """A copy of config/ with the test hotline and `ROUTING`; live state in Redis when
    `redis_url`, records in `store_url` (else var/calls.sqlite), AMI on `ami_port`, the web
    feedback form on `web_port`."""
    target = tmp_path / "config"
    shutil.copytree(REPO / "config", target, ignore=shutil.ignore_patterns("var"))

    def edit(name: str, change: Any) -> None:
        path = target / name
        data = yaml.safe_load(path.read_text()) if path.exists() else {}
        change(data)
        path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))

    def server(data: dict[str, Any]) -> None:
        data["prompts"]["local_dir"] = str(REPO / "prompts" / "sounds")
        if store_url is not None:  # a shared store: every controller's caller keys need the same salt
            data["store"] = {"url": store_url}
            data["privacy"]["hash_salt"] = "fault-tests-salt-0123456789abcdef"
        if ami_port is not None:
            data["ami"].update(enabled=True, port=ami_port, secret="secret", reconnect_min=0.1, reconnect_max=0.5)

    def hotlines(data: dict[str, Any]) -> None:
        data["hotlines"][HOTLINE] = {"name": "fault tests", "language": "en-US", "languages": ["en-US"],
                                     "timezone": "Asia/Shanghai", "flow": "acd", "fallback_queue": "billing",
                                     "recording_notice": None}  # callers reach the queue at once

    def routing(data: dict[str, Any]) -> None:
        data.clear()
        data.update(ROUTING)
        if redis_url is not None:
            data["state"] = {"backend": "redis", "redis_url": redis_url, "key_prefix": key_prefix,
                             "reservation_ttl": 60}

    def surveys(data: dict[str, Any]) -> None:
        if web_port is not None:
            data["web"] = {"enabled": True, "port": web_port}

    if store_url is not None:  # as an admin copies it from the first controller
        (target / "var").mkdir(exist_ok=True)
        (target / "var" / "contact.key").write_text(Fernet.generate_key().decode() + "\n")
    edit("server.yaml", server)
    edit("hotlines.yaml", hotlines)
    edit("routing.yaml", routing)
    edit("surveys.yaml", surveys)
    (target / "flows" / "acd.yaml").write_text(
        'version: "faults"\nstart: billing\nnodes:\n  billing:\n    type: queue\n    queue: billing\n')
    return target


class Serve:
    """`ivr serve` in a subprocess; `await started()` polls without blocking the event loop
    (an AMI peer or a TCP proxy in this process must go on answering meanwhile)."""

    def __init__(self, config: Path, *, env: Mapping[str, str] | None = None, nofile: int | None = None) -> None:
        self.config = config
        self.port = free_port()
        self.logfile = config.parent / "serve.log"
        self._log = self.logfile.open("w")

        def limit() -> None:  # a lower descriptor limit: exhausted by fewer hostile clients
            import resource

            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

        self.process = subprocess.Popen([*IVR, "serve", "--config", str(config), "--port", str(self.port)],
                                        cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT,
                                        env={**os.environ, "PYTHONFAULTHANDLER": "1", **(env or {})},
                                        preexec_fn=limit)  # fmt: skip

    async def started(self, timeout: float = 30.0) -> Serve:
        deadline = time.monotonic() + timeout
        while not (self.config / "var" / "ivr.pid").exists() or not await self._accepts():
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, "ivr serve did not start:\n" + self.output()
            await asyncio.sleep(0.05)
        return self

    async def _accepts(self) -> bool:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        writer.close()
        return True

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.logfile.read_text()

    async def agents(self) -> subprocess.CompletedProcess[str]:
        """`ivr agents --json` as an admin runs it, without blocking the loop."""
        process = await asyncio.create_subprocess_exec(
            *IVR, "agents", "--json", "--config", str(self.config), cwd=REPO,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode is not None
        return subprocess.CompletedProcess(["ivr", "agents"], process.returncode, out.decode(), err.decode())

    async def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and its exit code. Awaited, not waited: the controller writes its last
        records meanwhile, maybe through a proxy on this loop."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while (code := self.process.poll()) is None:
            if time.monotonic() > deadline:
                self.process.send_signal(signal.SIGABRT)  # with PYTHONFAULTHANDLER=1: where it hangs
                await asyncio.sleep(0.5)
                raise AssertionError("ivr serve did not exit on SIGTERM:\n" + self.output()[-6000:])
            await asyncio.sleep(0.05)
        self.kill()
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()


# --- the load ---------------------------------------------------------------------------------


@dataclass
class Ring:
    """One Dial of an agent, as the PBX saw it: from the EXEC Dial command arriving to the
    controller's next command on that call (it reads DIALSTATUS only once Dial returned)."""

    agent: str
    call: str
    start: float  # time.monotonic()
    end: float | None = None


@dataclass
class DialLog:
    """A pbxsim observer that notes every Dial (and passes each call on to `inner`, e.g. the
    AMI peer's events)."""

    inner: CallObserver | None = None
    rings: list[Ring] = field(default_factory=list)
    started: dict[str, float] = field(default_factory=dict)  # uniqueid -> time.monotonic() it was placed
    _open: dict[str, Ring] = field(default_factory=dict)

    def call_started(self, call: SimCall, uniqueid: str, channel: str, request: str) -> None:
        self.started[uniqueid] = time.monotonic()
        if self.inner is not None:
            self.inner.call_started(call, uniqueid, channel, request)

    def command(self, uniqueid: str, line: str, reply: list[str], channel: SimChannel) -> Iterator[float]:
        now = time.monotonic()
        ring = self._open.pop(uniqueid, None)
        if ring is not None:
            ring.end = now
        if line.startswith("EXEC Dial "):
            agent = line.split()[2].split(",")[0].removeprefix("PJSIP/")
            self._open[uniqueid] = Ring(agent, uniqueid, now)
            self.rings.append(self._open[uniqueid])
        if self.inner is not None:
            yield from self.inner.command(uniqueid, line, reply, channel)

    def call_ended(self, result: CallResult) -> None:
        ring = self._open.pop(result.uniqueid, None)
        if ring is not None:
            ring.end = time.monotonic()
        if self.inner is not None:
            self.inner.call_ended(result)

    def first_ring_after(self, moment: float) -> float | None:
        """Seconds from `moment` to the first agent rung after it."""
        later = [r.start - moment for r in self.rings if r.start >= moment]
        return min(later) if later else None

    def double_rings(self) -> list[tuple[Ring, Ring]]:
        """Pairs of Dials of one agent that overlapped: an agent offered two calls at once."""
        found: list[tuple[Ring, Ring]] = []
        by_agent: dict[str, list[Ring]] = {}
        for ring in self.rings:
            by_agent.setdefault(ring.agent, []).append(ring)
        for rings in by_agent.values():
            rings.sort(key=lambda r: r.start)
            for before, after in zip(rings, rings[1:]):
                if before.end is None or after.start < before.end:
                    found.append((before, after))
        return found


async def log_in_agents(redis_url: str, key_prefix: str = "ivr:acd:") -> None:
    """Every test agent ready in the shared live state, as `ivr agents login` leaves them."""
    state = await RedisState.connect(StateSettings(backend="redis", redis_url=redis_url, key_prefix=key_prefix))
    try:
        for agent in AGENTS:
            await state.set_presence(agent, Presence.READY, time.time())
    finally:
        await state.close()


def caller(n: int, rng: random.Random) -> SimCall:
    """A caller of the test hotline, who hangs up first. Agent 1001 talks 7 s (its
    conversations span a fault of a few seconds), the others 0.3 to 3 s."""
    talk = {a: 7.0 if a == "1001" else rng.uniform(0.3, 3.0) for a in AGENTS}
    return SimCall(CallerScript((), caller_id=f"1370000{n:04d}"), extension=HOTLINE, script=f"ivr?hotline={HOTLINE}",
                   channel_type="PJSIP", endpoint="trunk", language="en", variables={"IVR_STATUS": "ACTIVE"},
                   agents={f"PJSIP/{a}": Agent(answer_after=0.2, talk=talk[a], hangs_up_first=False) for a in AGENTS})


@dataclass
class Load:
    """`calls` callers, one every `every` seconds, each played in real time."""

    port: int
    calls: int
    every: float
    observer: DialLog = field(default_factory=DialLog)
    seed: int = 16
    results: list[CallResult] = field(default_factory=list)
    _task: asyncio.Task[list[CallResult]] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="fault-load")

    async def _run(self) -> list[CallResult]:
        rng = random.Random(self.seed)
        placed: list[asyncio.Task[CallResult]] = []
        for n in range(self.calls):
            placed.append(asyncio.create_task(place_call(
                "127.0.0.1", self.port, caller(n, rng), sounds=SOUNDS, observer=self.observer, time_scale=1.0)))
            await asyncio.sleep(self.every)
        return list(await asyncio.gather(*placed))

    async def finished(self, timeout: float = 60.0) -> list[CallResult]:
        assert self._task is not None
        self.results = await asyncio.wait_for(self._task, timeout)
        return self.results


def failed_calls(results: Sequence[CallResult]) -> list[str]:
    """Calls the PBX saw go wrong: an error, or an AGI that ended leaving the caller nowhere
    (neither talked to an agent nor moved to a dialplan place)."""
    bad = []
    for r in results:
        if r.error is not None:
            bad.append(f"{r.uniqueid}: {r.error}")
        elif r.hung_up_by is None and r.location is None:
            bad.append(f"{r.uniqueid}: left nowhere (IVR_STATUS={r.variables.get('IVR_STATUS')})")
    return bad


# --- the records --------------------------------------------------------------------------------


def sqlite_rows(config: Path) -> list[tuple[str, str | None]]:
    """(uniqueid, disposition) of every call row in the controller's SQLite store."""
    with sqlite3.connect(config / "var" / "calls.sqlite") as db:
        return list(db.execute("SELECT uniqueid, disposition FROM calls"))


def record_figures(results: Sequence[CallResult], rows: Sequence[tuple[str, str | None]]) -> tuple[int, int, int]:
    """(lost, duplicated, left open): placed calls without a row, with more than one, and
    rows never closed."""
    counts: dict[str, int] = {}
    for uniqueid, _ in rows:
        counts[uniqueid] = counts.get(uniqueid, 0) + 1
    placed = {r.uniqueid for r in results}
    lost = sum(1 for u in placed if u not in counts)
    duplicated = sum(1 for u in placed if counts.get(u, 0) > 1)
    open_rows = sum(1 for _, disposition in rows if disposition is None)
    return lost, duplicated, open_rows
