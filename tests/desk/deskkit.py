"""A controller with the agent desk on a free port, pbxsim calls into it, and an HTTP client
that logs in and reads the page's event stream as a browser would."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from callkit import OPEN, TO_BILLING
from desk.accounts import AccountStore, Role
from ivr.app import Controller, ControllerOptions
from ivr.pbxsim import CallerScript, CallResult, SimCall, SoundLibrary, place_call
from ivr.pbxsim.caller import AgentBehaviour, Step
from routing.config import RoutingConfig
from routing.memory_state import MemoryState

REPO = Path(__file__).resolve().parents[2]
HOTLINE = "4008001234"
VIP = "13800138000"
PASSWORD = "correct horse battery"

ROUTING: dict[str, Any] = {
    "agents": {
        agent_id: {"name": agent_id, "endpoint": f"PJSIP/{agent_id}", "skills": {"billing": 3}, "wrap_up": 5,
                   "languages": []}
        for agent_id in ("1001", "1002")
    },
    "queues": {
        "billing": {
            "skills": {"billing": 1}, "strategy": "linear", "max_wait": 60, "ring_timeout": 10,
            "announce": {"first_after": 60, "every": 60}, "affinity": {"enabled": False},
            "crm_url": "https://crm.example/customer?phone={caller}&call={call_id}",
            "wrap_up": {
                "required": True, "limit": 60,
                "codes": [
                    {"code": "billing", "label": {"zh-CN": "账单", "en-US": "Billing"}, "children": [
                        {"code": "refund", "label": {"zh-CN": "退款", "en-US": "Refund"}, "children": [
                            {"code": "approved", "label": {"zh-CN": "已批准", "en-US": "Approved"}},
                            {"code": "refused", "label": {"zh-CN": "已拒绝", "en-US": "Refused"}}]},
                        {"code": "invoice", "label": {"zh-CN": "发票", "en-US": "Invoice"}}]},
                    {"code": "other", "label": {"zh-CN": "其他", "en-US": "Other"}},
                ],
            },
        },
    },
    "classification": {"vip_numbers": [VIP]},
    "pause_reasons": [{"code": "lunch", "label": {"zh-CN": "午餐", "en-US": "Lunch"}},
                      {"code": "training", "label": {"zh-CN": "培训", "en-US": "Training"}}],
}


def desk_config(tmp_path: Path) -> Path:
    """config/ copied, its server.yaml turning the desk on (the port comes from the options)."""
    target = tmp_path / "config"
    shutil.copytree(REPO / "config", target)
    if not (tmp_path / "prompts").exists():
        (tmp_path / "prompts").symlink_to(REPO / "prompts")
    server = target / "server.yaml"
    text = server.read_text()
    start = text.index("\ndesk:\n")
    server.write_text(text[:start] + text[start:].replace("  enabled: false", "  enabled: true", 1))
    return target


@dataclass
class Desk:
    controller: Controller
    state: MemoryState
    db: Path
    sounds: SoundLibrary
    port: int = 0
    calls: list[asyncio.Task[CallResult]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def account(self, username: str, role: Role = Role.AGENT, *, agent_id: str | None = None,
                      language: str = "en-US") -> None:
        assert self.controller.store is not None
        await AccountStore(self.controller.store.engine).add(
            username, PASSWORD, role, agent_id=agent_id, language=language, now=dt.datetime.now(dt.timezone.utc))

    def call(self, *steps: Step, caller_id: str = VIP, agents: dict[str, AgentBehaviour]) -> asyncio.Task[CallResult]:
        """A call through the IVR to billing, in the background (the test watches the page meanwhile)."""
        assert self.controller.server is not None
        call = SimCall(CallerScript((*TO_BILLING, *steps), caller_id=caller_id), extension=HOTLINE,
                       script=f"ivr?hotline={HOTLINE}", agents=agents)
        task = asyncio.create_task(place_call("127.0.0.1", self.controller.server.bound_port, call, sounds=self.sounds))
        self.calls.append(task)
        return task


async def start_desk(tmp_path: Path, routing: dict[str, Any] | None = None) -> Desk:
    state = MemoryState(60.0)
    db = tmp_path / "calls.sqlite"
    controller = Controller(desk_config(tmp_path), ControllerOptions(
        port=0, sqlite_path=db, clock=lambda: OPEN, routing=RoutingConfig.model_validate(routing or ROUTING),
        live_state=state, acd_max_idle=0.05, desk=True, desk_port=0,
    ))
    await controller.start()
    assert controller.desk_server is not None
    sounds = SoundLibrary([(controller.config.server.prompts.asterisk_dir, REPO / "prompts" / "sounds")])
    return Desk(controller, state, db, sounds, controller.desk_server.port)


@dataclass
class Page:
    """One logged-in browser: its cookie jar, CSRF token and event stream."""

    session: aiohttp.ClientSession
    base: str
    csrf: str = ""
    events: asyncio.Queue[tuple[str, dict[str, Any]]] = field(default_factory=asyncio.Queue)
    reader: asyncio.Task[None] | None = None
    kept: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def login(self, username: str, password: str = PASSWORD) -> aiohttp.ClientResponse:
        async with self.session.get(f"{self.base}/login") as page:
            token = re.search(r'name="csrf" value="([^"]+)"', await page.text())
        assert token is not None
        response = await self.session.post(f"{self.base}/login", data={
            "username": username, "password": password, "csrf": token.group(1)}, allow_redirects=False)
        if response.status == 303 and response.headers["Location"] == "/agent":
            async with self.session.get(f"{self.base}/agent") as agent:
                found = re.search(r'name="csrf" content="([^"]+)"', await agent.text())
                assert found is not None
                self.csrf = found.group(1)
        return response

    async def post(self, path: str, **fields: str) -> tuple[int, dict[str, Any]]:
        async with self.session.post(f"{self.base}{path}", data={**fields, "csrf": self.csrf}) as response:
            return response.status, await response.json()

    def listen(self) -> None:
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async with self.session.get(f"{self.base}/agent/events") as response:
            assert response.status == 200, response.status
            name, data = "", ""
            async for raw in response.content:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    data = line[6:]
                elif not line and name:
                    await self.events.put((name, json.loads(data)))
                    name, data = "", ""

    async def next(self, wanted: str, timeout: float = 10.0) -> dict[str, Any]:
        """The first event named `wanted` not taken yet (others stay for their own `next`:
        pbxsim's calls take no real time, so a call's events may come in any order of names)."""
        async with asyncio.timeout(timeout):
            while True:
                for index, (name, data) in enumerate(self.kept):
                    if name == wanted:
                        del self.kept[index]
                        return data
                self.kept.append(await self.events.get())

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
            await asyncio.gather(self.reader, return_exceptions=True)
        await self.session.close()


async def page(desk: Desk) -> Page:
    return Page(aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)), desk.url)
