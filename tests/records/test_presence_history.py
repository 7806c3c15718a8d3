"""Presence history and wrap-up in the call records: the ACD's live state, wrapped by the
controller, records every login, pause and logout and the NOT_READY after missed offers; an
answered ACD call's leg carries the agent's wrap-up."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from callkit import OPEN, TO_BILLING

from ivr.app import Controller, ControllerOptions
from ivr.pbxsim import Agent, CallerScript, NoAnswer, SimCall, SoundLibrary, place_call
from ivr.records.model import AgentEvent
from ivr.records.store import CallStore
from routing.config import RoutingConfig
from routing.memory_state import MemoryState
from routing.model import OfferOutcome, Presence
from routing.recording_state import RecordingState
from routing.state import StateUnavailable

REPO = Path(__file__).resolve().parents[2]
UTC = dt.timezone.utc
EPOCH = 1_773_655_200.0  # 2026-03-16 10:00 UTC


def utc(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, UTC)


class Down(MemoryState):
    async def set_presence(self, agent_id: str, presence: Presence, now: float, *,  # type: ignore[override]
                           reason: str = "") -> object:
        raise StateUnavailable("redis://127.0.0.1:6379: connection refused")


async def test_presence_changes_are_recorded_with_the_acds_time(tmp_path: Path) -> None:
    store = await CallStore.open(tmp_path / "calls.sqlite")
    state = RecordingState(MemoryState(60.0, clock=lambda: EPOCH), store)
    try:
        await state.set_presence("1001", Presence.READY, EPOCH)
        await state.set_presence("1002", Presence.READY, EPOCH + 1)
        await state.set_presence("1001", Presence.PAUSED, EPOCH + 600)
        for n, now in enumerate((EPOCH + 700, EPOCH + 730)):  # two missed offers: NOT_READY at the second
            assert await state.reserve("1002", f"c{n}", now)
            await state.offer_ended("1002", f"c{n}", OfferOutcome.NO_ANSWER, now + 15, misses_before_not_ready=2)
        assert await state.reserve("1001", "c9", EPOCH + 800) is False  # paused: nothing happens
        await state.offer_ended("1001", "c9", OfferOutcome.NO_ANSWER, EPOCH + 801, misses_before_not_ready=1)
        await state.set_presence("1001", Presence.LOGGED_OUT, EPOCH + 3600)
        try:
            await RecordingState(Down(60.0), store).set_presence("1003", Presence.READY, EPOCH + 5)
        except StateUnavailable:
            pass  # not set, so not recorded
        await store.flush()
        assert await store.agent_events() == [
            AgentEvent("1001", utc(EPOCH), "ready"),
            AgentEvent("1002", utc(EPOCH + 1), "ready"),
            AgentEvent("1001", utc(EPOCH + 600), "paused"),
            AgentEvent("1002", utc(EPOCH + 745), "not_ready"),
            AgentEvent("1001", utc(EPOCH + 3600), "logged_out"),
        ]
        assert [e.presence for e in await store.agent_events(utc(EPOCH + 600), utc(EPOCH + 3600))] == [
            "paused", "not_ready"]  # [since, until)
    finally:
        await state.close()
        await store.close()


def routing() -> RoutingConfig:
    """1001 never answers (one miss makes it NOT_READY), 1002 answers and gets 7.5 s of wrap-up."""
    return RoutingConfig.model_validate({
        "agents": {
            "1001": {"name": "1001", "endpoint": "PJSIP/1001", "skills": {"billing": 3}, "wrap_up": 30},
            "1002": {"name": "1002", "endpoint": "PJSIP/1002", "skills": {"billing": 3}, "wrap_up": 7.5},
        },
        "queues": {
            "billing": {
                "skills": {"billing": 1}, "strategy": "linear", "max_wait": 10, "ring_timeout": 5,
                "misses_before_not_ready": 1, "announce": {"first_after": 60, "every": 60},
                "affinity": {"enabled": False}, "overflow": {"timeout": {"voicemail": "400"}},
            },
        },
    })


async def test_the_controller_records_presence_and_the_answered_legs_wrap_up(tmp_path: Path) -> None:
    controller = Controller(REPO / "config", ControllerOptions(
        port=0, sqlite_path=tmp_path / "calls.sqlite", clock=lambda: OPEN, routing=routing(),
        live_state=MemoryState(60.0), acd_max_idle=0.05,
    ))
    await controller.start()
    try:
        assert controller.acd is not None and controller.store is not None and controller.server is not None
        for agent_id in ("1001", "1002"):  # what `ivr agents login` does, through the admin socket
            await controller.acd.state.set_presence(agent_id, Presence.READY, time.time())
        call = SimCall(CallerScript(TO_BILLING), extension="4008001234", script="ivr?hotline=4008001234",
                       agents={"PJSIP/1001": NoAnswer(), "PJSIP/1002": Agent(answer_after=0.2, talk=1.0)})
        sounds = SoundLibrary([(controller.config.server.prompts.asterisk_dir, REPO / "prompts" / "sounds")])
        result = await place_call("127.0.0.1", controller.server.bound_port, call, sounds=sounds)
        await controller.store.flush()
        (row,) = [r async for r in controller.store.iter_calls() if r.uniqueid == result.uniqueid]
        assert [(leg.agent_id, leg.outcome, leg.wrap_seconds) for leg in row.queue_legs] == [("1002", "answered", 7.5)]
        presence = [(e.agent_id, e.presence) for e in await controller.store.agent_events()]
        assert presence == [("1001", "ready"), ("1002", "ready"), ("1001", "not_ready")]
    finally:
        await controller.stop()
