"""What the real-PBX tier's tests share: SIP phones on the real Asterisk, rig scenarios
written inline, and the controller's rows as a user of the exports would read them."""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from asteriskkit import RealAsterisk
from ivr.rig.agents import AgentBehaviour, AgentPool
from ivr.rig.phone import LocalAddress, RigPhone, SipServer, free_udp_port
from ivr.rig.runner import Runner, ScenarioResult
from ivr.rig.scenario import load_file
from servekit import REPO, Served

PROMPTS = REPO / "prompts" / "sounds"
HOTLINE = "4008001234"
# Each phone gets 20 RTP ports of its own, all below the ephemeral ports (32768-), where a
# port picked as free (a phone's SIP port) could be taken from under another process's RTP:
# Asterisk 24000-26999 (asteriskkit), the rig's loopback tests 21000-23999, their real-PBX
# farms 27000-29199, phones of this process 29400-29799, worker process n 30000 + 200 n.
_ranges = itertools.count()
_rtp_base = [29400]


def use_rtp_ports_from(base: int) -> None:
    """A worker process's own RTP ports (10 phones' worth from `base`)."""
    _rtp_base[0] = base


def local_address() -> LocalAddress:
    start = _rtp_base[0] + (next(_ranges) % 10) * 20
    return LocalAddress("127.0.0.1", free_udp_port("127.0.0.1"), range(start, start + 20))


class SipPbx(Protocol):
    """Where phones register and call: the RealAsterisk, or its address in a worker process."""

    @property
    def sip_port(self) -> int: ...

    def password(self, user: str) -> str: ...


@dataclass(frozen=True)
class PbxAddress:
    sip_port: int
    passwords: dict[str, str]

    def password(self, user: str) -> str:
        return self.passwords[user]


def phone(pbx: SipPbx, user: str) -> RigPhone:
    return RigPhone(SipServer("127.0.0.1", pbx.sip_port), user, pbx.password(user), local_address())


@asynccontextmanager
async def agents_logged_in(pbx: SipPbx, users: list[str], behaviour: AgentBehaviour, *,
                           login: bool = True) -> AsyncIterator[AgentPool]:
    """Agent phones registered and answering; with `login`, logged in with *71 (the
    controller's agent script) first and out with *72 afterwards; unregistered at the end."""
    pool = AgentPool([phone(pbx, user) for user in users], behaviour)
    await pool.start()
    try:
        if login:
            await pool.dial_code("*71")
        yield pool
    finally:
        try:
            if login:
                await pool.dial_code("*72")
        finally:
            await pool.stop()


async def run_scenarios(tmp_path: Path, pbx: SipPbx, text: str, *, caller: str,
                        agents: AgentPool | None = None, concurrency: int = 4) -> list[ScenarioResult]:
    """Run the scenarios of `text` (YAML, `scenarios:` and what they need) from `caller`."""
    path = tmp_path / f"{caller}-{time.monotonic_ns()}.yaml"
    path.write_text(f"prompts: {PROMPTS}\ndefaults: {{within: 20, answer_within: 10}}\n{text}")
    planned = load_file(path)
    caller_phone = phone(pbx, caller)
    await caller_phone.start()
    try:
        return await Runner(caller_phone, agents, concurrency=concurrency).run(planned)
    finally:
        await caller_phone.stop()


async def run_each(tmp_path: Path, pbx: SipPbx, calls: dict[str, str], *,
                   agents: AgentPool | None = None) -> dict[str, list[ScenarioResult]]:
    """Every caller's scenarios at once (`calls`: caller -> scenarios text); results by caller."""
    outcomes = await asyncio.gather(*(run_scenarios(tmp_path, pbx, text, caller=caller, agents=agents)
                                      for caller, text in calls.items()))  # fmt: skip
    return dict(zip(calls, outcomes, strict=True))


def scenario(name: str, steps: str, *, dial: str = HOTLINE, language: str | None = "zh-CN") -> str:
    """One scenario's YAML; `steps` are YAML list items, one a line."""
    head = f"""scenarios:
  - name: {name}
    dial: "{dial}"
""" + (f"    language: {language}\n" if language else "") + "    steps:\n"
    return head + "".join(f"      {line.strip()}\n" for line in steps.strip().splitlines() if line.strip())


@dataclass(frozen=True)
class Outcome:
    """A scenario's result as a worker process reports it."""

    name: str
    status: str
    reason: str
    agent: str | None
    log: list[str] = field(default_factory=list)


@dataclass
class Job:
    """One worker process: callers and their scenarios, and agent phones logged in for them.
    At most 4 calls at once and 8 phones (the pjsua2 wheel's limits, ivr/rig/phone.py)."""

    calls: dict[str, str]
    agents: list[str] = field(default_factory=list)
    hold: float = 3.0
    answer_after: float = 0.5
    login: bool = True  # the agents dial *71 first (and *72 after)


WORKER = Path(__file__).with_name("tierworker.py")


def run_jobs(tmp_path: Path, pbx: RealAsterisk, jobs: list[Job], *, within: float = 300) -> dict[str, list[Outcome]]:
    """Every job in a worker process of its own, all at once; the outcomes by caller."""
    processes = []
    stop_file = tmp_path / f"stop-{time.monotonic_ns()}"
    assert len(jobs) <= 13, "worker RTP ranges end below 32768"
    for n, job in enumerate(jobs):
        users = [*job.calls, *job.agents]
        spec = {"sip_port": pbx.sip_port, "passwords": {u: pbx.password(u) for u in users}, "tmp": str(tmp_path), "stop_file": str(stop_file), "rtp_base": 30000 + 200 * n, "calls": job.calls, "agents": job.agents, "hold": job.hold,
                "answer_after": job.answer_after, "login": job.login}  # fmt: skip
        processes.append(subprocess.Popen([sys.executable, "-X", "faulthandler", str(WORKER), json.dumps(spec)], cwd=REPO,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))  # fmt: skip
    outcomes: dict[str, list[Outcome]] = {}
    # Callers' processes first; then the agents-only ones are told to stop.
    order = sorted(zip(jobs, processes), key=lambda pair: not pair[0].calls)
    for job, process in order:
        if not job.calls:
            stop_file.touch()
        out, err = process.communicate(timeout=within)
        assert process.returncode == 0 and out.strip(), f"worker failed ({process.returncode}):\n{err[-3000:]}"
        for caller, results in json.loads(out.strip().splitlines()[-1]).items():
            outcomes[caller] = [Outcome(**r) for r in results]
    return outcomes


def explain(results: list[ScenarioResult] | list[Outcome]) -> str:
    return "\n".join(f"{getattr(r, 'name', None) or r.scenario.name}: {r.status} {r.reason}\n  " + "\n  ".join(r.log)  # type: ignore[union-attr]
                     for r in results)  # fmt: skip


def passed(results: list[ScenarioResult] | list[Outcome]) -> bool:
    return all(r.status == "passed" for r in results)


def all_passed(outcomes: dict[str, list[Outcome]]) -> None:
    failed = [f"{caller}:\n{explain(results)}" for caller, results in outcomes.items() if not passed(results)]
    assert not failed, "\n".join(failed)


class Rows:
    """The controller's SQLite store, read as `ivr export` would see it."""

    def __init__(self, controller: Served) -> None:
        self.path = controller.config / "var" / "calls.sqlite"

    def query(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        with sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5) as db:
            db.row_factory = sqlite3.Row
            return [dict(row) for row in db.execute(sql, args)]

    def ended_calls(self, caller: str, count: int = 1, within: float = 10.0) -> list[dict[str, Any]]:
        """The calls of `caller` (a number as Asterisk sent it) once `count` of them have ended
        and been written (the record writer batches)."""
        deadline = time.monotonic() + within
        while True:
            rows = self.query("SELECT * FROM calls WHERE caller = ? AND ended_at IS NOT NULL ORDER BY started_at", caller)
            if len(rows) >= count:
                return rows
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(rows)} ended call(s) of {caller} written within {within} s, expected {count}")
            time.sleep(0.1)

    def legs(self, call_id: str) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM queue_legs WHERE call_id = ? ORDER BY seq", call_id)

    def events(self, call_id: str) -> list[tuple[str, str, str]]:
        return [(e["kind"], e["node"], e["value"])
                for e in self.query("SELECT * FROM call_events WHERE call_id = ? ORDER BY seq", call_id)]  # fmt: skip

    def survey(self, call_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        (response,) = self.query("SELECT * FROM survey_responses WHERE call_id = ?", call_id)
        answers = self.query("SELECT * FROM survey_answers WHERE response_id = ? ORDER BY seq", response["response_id"])
        return response, answers
