"""What the real-PBX tier's tests share: SIP phones on the real Asterisk, rig scenarios
written inline, and the controller's rows as a user of the exports would read them."""

from __future__ import annotations

import asyncio
import itertools
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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
# Each test phone gets 20 RTP ports of its own, away from Asterisk's (rtp.conf) and the
# loopback rig tests' (21000-23999).
_ranges = itertools.count(os.getpid() % 50 * 40)


class ControllerMaker(Protocol):
    """The `make_controller` fixture: `ivr serve` on a test config with the schedule given."""

    def __call__(self, *, open_hours: bool = True, holiday_today: bool = False) -> Served: ...


def local_address() -> LocalAddress:
    start = 40000 + (next(_ranges) % 1000) * 20
    return LocalAddress("127.0.0.1", free_udp_port("127.0.0.1"), range(start, start + 20))


def phone(pbx: RealAsterisk, user: str) -> RigPhone:
    return RigPhone(SipServer("127.0.0.1", pbx.ports.sip), user, pbx.password(user), local_address())


@asynccontextmanager
async def agents_logged_in(pbx: RealAsterisk, users: list[str], behaviour: AgentBehaviour) -> AsyncIterator[AgentPool]:
    """Agent phones registered, logged in with *71 (the controller's agent script), and
    answering; logged out with *72 and unregistered afterwards."""
    pool = AgentPool([phone(pbx, user) for user in users], behaviour)
    await pool.start()
    try:
        await pool.dial_code("*71")
        yield pool
    finally:
        try:
            await pool.dial_code("*72")
        finally:
            await pool.stop()


async def run_scenarios(tmp_path: Path, pbx: RealAsterisk, text: str, *, caller: str,
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


def explain(results: list[ScenarioResult]) -> str:
    return "\n".join(f"{r.scenario.name}: {r.status} {r.reason}\n  " + "\n  ".join(r.log) for r in results)


def passed(results: list[ScenarioResult]) -> bool:
    return all(r.status == "passed" for r in results)


class Rows:
    """The controller's SQLite store, read as `ivr export` would see it."""

    def __init__(self, controller: Served) -> None:
        self.path = controller.config / "var" / "calls.sqlite"

    def query(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        with sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5) as db:
            db.row_factory = sqlite3.Row
            return [dict(row) for row in db.execute(sql, args)]

    async def ended_calls(self, caller: str, count: int = 1, within: float = 10.0) -> list[dict[str, Any]]:
        """The calls of `caller` (a number as Asterisk sent it) once `count` of them have ended
        and been written (the record writer batches)."""
        deadline = time.monotonic() + within
        while True:
            rows = self.query("SELECT * FROM calls WHERE caller = ? AND ended_at IS NOT NULL ORDER BY started_at", caller)
            if len(rows) >= count:
                return rows
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(rows)} ended call(s) of {caller} written within {within} s, expected {count}")
            await asyncio.sleep(0.1)

    def legs(self, call_id: str) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM queue_legs WHERE call_id = ? ORDER BY seq", call_id)

    def events(self, call_id: str) -> list[tuple[str, str, str]]:
        return [(e["kind"], e["node"], e["value"])
                for e in self.query("SELECT * FROM call_events WHERE call_id = ? ORDER BY seq", call_id)]  # fmt: skip

    def survey(self, call_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        (response,) = self.query("SELECT * FROM survey_responses WHERE call_id = ?", call_id)
        answers = self.query("SELECT * FROM survey_answers WHERE response_id = ? ORDER BY seq", response["response_id"])
        return response, answers
