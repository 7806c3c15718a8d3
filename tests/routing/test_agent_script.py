"""Tier 2: the `agent` FastAGI script (feature codes *71, *72, *73) through the real controller,
played by the PBX peer from an agent's PJSIP phone."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivr.app import Controller, ControllerOptions
from ivr.pbxsim import CallerScript, CallResult, SimCall, SoundLibrary, place_call
from routing.agent_script import PROMPTS, new_presence
from routing.config import RoutingConfig
from routing.memory_state import MemoryState
from routing.model import Presence

REPO = Path(__file__).resolve().parents[2]


def routing() -> RoutingConfig:
    return RoutingConfig.model_validate({
        "agents": {
            "1001": {"name": "Zhang Wei", "endpoint": "PJSIP/1001", "languages": ["zh-CN", "en-US"]},
            "1003": {"name": "Emily Chen", "endpoint": "pjsip/1003", "languages": ["en-US"]},
            "1004": {"name": "any language", "endpoint": "PJSIP/1004"},
        },
        "queues": {"billing": {"max_wait": 1}},
    })


class Rig:
    def __init__(self, controller: Controller, state: MemoryState) -> None:
        self.controller = controller
        self.state = state
        self.sounds = SoundLibrary([(controller.config.server.prompts.asterisk_dir, REPO / "prompts" / "sounds")])

    async def dial(self, code: str, action: str, endpoint: str = "1001") -> CallResult:
        assert self.controller.server is not None
        call = SimCall(CallerScript(caller_id=endpoint), extension=code, context="agents",
                       script=f"agent?action={action}", channel_type="PJSIP", endpoint=endpoint)
        result = await place_call("127.0.0.1", self.controller.server.bound_port, call, sounds=self.sounds)
        assert result.error is None and result.server_closed
        return result

    async def presence(self, agent_id: str) -> Presence:
        return (await self.state.agent(agent_id)).presence


def heard(result: CallResult) -> list[str]:
    """Prompts heard, as <language>/<id>."""
    return ["/".join(h.what.rsplit("/", 2)[-2:]) for h in result.heard if ":" not in h.what]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    state = MemoryState(60.0)
    controller = Controller(REPO / "config", ControllerOptions(
        port=0, sqlite_path=tmp_path / "calls.sqlite", routing=routing(), live_state=state))
    await controller.start()
    try:
        yield Rig(controller, state)
    finally:
        await controller.stop()


async def test_login_makes_the_agent_ready_and_confirms_in_the_agents_first_language(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="routing.agent_script")
    assert await rig.presence("1001") is Presence.LOGGED_OUT
    result = await rig.dial("*71", "login")
    assert heard(result) == ["zh-CN/agent-logged-in"]
    assert await rig.presence("1001") is Presence.READY
    assert any("agent 1001 (PJSIP/1001-" in r.getMessage() and "logged_out -> ready" in r.getMessage()
               for r in caplog.records)
    # the tech is compared case-insensitively (routing.yaml says pjsip/1003)
    assert heard(await rig.dial("*71", "login", endpoint="1003")) == ["en-US/agent-logged-in"]
    assert await rig.presence("1003") is Presence.READY


async def test_toggle_pauses_then_unpauses(rig: Rig) -> None:
    await rig.dial("*71", "login")
    paused = await rig.dial("*73", "toggle")
    assert heard(paused) == ["zh-CN/agent-paused"] and await rig.presence("1001") is Presence.PAUSED
    assert (await rig.state.agent("1001")).pause_reason == "phone"
    ready = await rig.dial("*73", "toggle")
    assert heard(ready) == ["zh-CN/agent-ready"] and await rig.presence("1001") is Presence.READY
    assert (await rig.state.agent("1001")).pause_reason == ""


async def test_a_pause_from_the_phone_replaces_the_reason_of_a_pause_made_elsewhere(rig: Rig) -> None:
    await rig.dial("*71", "login", endpoint="1003")
    await rig.state.set_presence("1003", Presence.PAUSED, time.time(), reason="lunch")
    assert heard(await rig.dial("*73", "pause", endpoint="1003")) == ["en-US/agent-paused"]
    agent = await rig.state.agent("1003")
    assert (agent.presence, agent.pause_reason) == (Presence.PAUSED, "phone")


async def test_toggle_makes_a_not_ready_agent_ready_and_leaves_a_logged_out_one_out(rig: Rig) -> None:
    await rig.state.set_presence("1001", Presence.NOT_READY, time.time())
    assert heard(await rig.dial("*73", "toggle")) == ["zh-CN/agent-ready"]
    assert await rig.presence("1001") is Presence.READY
    assert heard(await rig.dial("*73", "toggle", endpoint="1004")) == ["zh-CN/agent-logged-out"]
    assert await rig.presence("1004") is Presence.LOGGED_OUT


async def test_logout_pause_unpause(rig: Rig) -> None:
    await rig.dial("*71", "login", endpoint="1003")
    assert heard(await rig.dial("*73", "pause", endpoint="1003")) == ["en-US/agent-paused"]
    assert await rig.presence("1003") is Presence.PAUSED
    assert heard(await rig.dial("*73", "unpause", endpoint="1003")) == ["en-US/agent-ready"]
    assert heard(await rig.dial("*72", "logout", endpoint="1003")) == ["en-US/agent-logged-out"]
    assert await rig.presence("1003") is Presence.LOGGED_OUT


async def test_unknown_endpoint_hears_agent_unknown_and_nothing_changes(rig: Rig) -> None:
    result = await rig.dial("*71", "login", endpoint="caller1")
    assert heard(result) == ["zh-CN/agent-unknown"]  # hotlines.yaml's first language
    assert await rig.state.agents() == {}


async def test_unknown_action_is_refused(rig: Rig) -> None:
    result = await rig.dial("*79", "dance")
    assert heard(result) == ["zh-CN/agent-error"]
    assert await rig.presence("1001") is Presence.LOGGED_OUT


def test_every_agent_prompt_is_in_the_catalog_in_both_languages() -> None:
    for language in ("zh-CN", "en-US"):
        for prompt in PROMPTS:
            assert (REPO / "prompts" / "sounds" / language / f"{prompt}.wav").is_file(), (language, prompt)


def test_toggle_rules() -> None:
    assert new_presence("toggle", Presence.READY) is Presence.PAUSED
    assert new_presence("toggle", Presence.PAUSED) is Presence.READY
    assert new_presence("toggle", Presence.NOT_READY) is Presence.READY
    assert new_presence("toggle", Presence.LOGGED_OUT) is Presence.LOGGED_OUT
    assert new_presence("login", Presence.PAUSED) is Presence.READY
