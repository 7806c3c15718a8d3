"""Interval figures and the funnel of calls played through the real controller by the Asterisk
peer, read back from the call store: what the engine records is what the metrics need.

Both clocks start at OPEN (Wednesday 10:30:00 in Shanghai, the hotline's zone) and move with
real time, so every leg falls in the 10:30-10:45 interval. One caller, three calls:
answered by 1001 (1 s ringing, 42 s talk), then with 1001 paused: hangs up after 0.2 s of music
(a short abandon), then waits out the queue's max wait of 0.5 s (overflow to voicemail).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from callkit import OPEN, TO_BILLING, DialClock
from ivr.app import Controller, ControllerOptions
from ivr.metrics.intervals import queue_intervals
from ivr.metrics.ivr_funnel import ivr_funnel
from ivr.metrics.legs import call_legs
from ivr.pbxsim import Agent, CallerScript, CallResult, HangUp, SimCall, SoundLibrary, place_call
from ivr.pbxsim.caller import AgentBehaviour, Step
from ivr.records.model import CallRow
from routing.config import RoutingConfig
from routing.memory_state import MemoryState
from routing.model import Presence

REPO = Path(__file__).resolve().parents[2]
HOTLINE = "4008001234"
CALLER = "13700000001"

ROUTING = RoutingConfig.model_validate({
    "agents": {"1001": {"name": "Li", "endpoint": "PJSIP/1001", "skills": {"billing": 3}, "wrap_up": 0}},
    "queues": {"billing": {
        "skills": {"billing": 1}, "max_wait": 0.5, "ring_timeout": 5, "affinity": {"enabled": False},
        "announce": {"first_after": 60, "every": 60},
        "overflow": {"timeout": {"voicemail": "400"}, "no_agents": {"voicemail": "400"}},
    }},
})


class Rig:
    def __init__(self, controller: Controller, state: MemoryState, clock: Clock) -> None:
        self.controller, self.state, self.clock = controller, state, clock
        assert controller.server is not None
        self.port = controller.server.bound_port
        self.sounds = SoundLibrary([(controller.config.server.prompts.asterisk_dir, REPO / "prompts" / "sounds")])

    async def call(self, *steps: Step, agents: dict[str, AgentBehaviour] | None = None) -> CallResult:
        call = SimCall(CallerScript((*TO_BILLING, *steps), caller_id=CALLER), extension=HOTLINE,
                       script=f"ivr?hotline={HOTLINE}", agents=agents or {})
        return await place_call("127.0.0.1", self.port, call, sounds=self.sounds, observer=self.clock)

    async def presence(self, presence: Presence) -> None:
        await self.state.set_presence("1001", presence, self.clock())


class Clock(DialClock):
    """OPEN plus the real time elapsed since the test began, and an answered Dial's time."""

    def __init__(self) -> None:
        began = time.time()
        super().__init__(lambda: OPEN.timestamp() + time.time() - began)

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self(), dt.timezone.utc)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    clock = Clock()
    state = MemoryState(60.0, clock=clock)
    controller = Controller(REPO / "config", ControllerOptions(
        port=0, sqlite_path=tmp_path / "calls.sqlite", routing=ROUTING, live_state=state, acd_max_idle=0.05,
        clock=clock.now, acd_clock=clock,
    ))
    await controller.start()
    try:
        yield Rig(controller, state, clock)
    finally:
        await controller.stop()


async def test_interval_figures_and_funnel_of_scripted_calls(rig: Rig) -> None:
    await rig.presence(Presence.READY)
    await rig.call(agents={"PJSIP/1001": Agent(answer_after=1.0, talk=42.0, hangs_up_first=False)})
    await rig.presence(Presence.PAUSED)  # logged in, so callers wait for the agent
    await rig.call(HangUp(idle=0.2))
    await rig.call()

    store = rig.controller.store
    assert store is not None
    await store.flush()
    calls: list[CallRow] = [row async for row in store.iter_calls()]
    assert [leg.outcome for row in calls for leg in row.queue_legs] == ["answered", "abandoned", "overflowed"]
    config = rig.controller.config
    settings = config.server.metrics  # T 20 s, short abandons under 5 s, repeats within 24 h

    def zone_of(number: str) -> ZoneInfo:
        found = config.hotline_for(number)
        assert found is not None
        return ZoneInfo(found[1].timezone)

    legs = list(call_legs(calls, zone_of, settings, await store.repeated_calls(None, None, settings.repeat_hours)))
    (row,) = queue_intervals(legs, settings).rows
    answered_wait = legs[0].wait_seconds
    assert answered_wait == calls[0].queue_legs[0].waited < 1.0
    assert (row.queue, row.timezone, row.interval_start.isoformat(), row.interval_minutes) == (
        "billing", "Asia/Shanghai", "2026-11-25T10:30:00+08:00", 15)
    assert (row.offered, row.answered, row.abandoned, row.short_abandons) == (3, 1, 1, 1)
    assert (row.overflowed, row.overflowed_timeout, row.answered_within_t, row.abandoned_within_t) == (1, 1, 1, 1)
    assert row.service_level == 0.5  # 1 answered within 20 s / (3 offered - 1 short abandon)
    assert row.asa_seconds == answered_wait
    # No AMI link here: talk is the Dial's length (1 s ringing + 42 s), not ANSWEREDTIME (the
    # caller's time since the IVR answered it); no hold, no wrap-up configured.
    assert (row.talk_seconds, row.hold_seconds, row.wrap_seconds) == (pytest.approx(43.0, abs=0.5), 0.0, 0.0)
    assert row.aht_seconds == row.talk_seconds
    assert row.repeat_calls == 1  # the same caller called back within 24 h
    assert row.transfers == 0
    waits = sorted(leg.wait_seconds for leg in legs)
    assert 0.15 <= waits[1] < 3.0 and 0.5 <= waits[2] < 3.0  # the abandon after ~0.2 s, the 0.5 s max wait

    funnel = ivr_funnel([path async for batch in store.iter_call_paths() for path in batch])
    nodes = {n.node: (n.reached, n.gave_up, n.contained) for n in funnel.nodes}
    assert nodes["billing-queue"] == (3, 1, 0)  # the caller who hung up waiting gave up there
    assert nodes["billing-menu"] == nodes["main-menu"] == nodes["choose-language"] == (3, 0, 0)
    options = {(o.node, o.option): o.callers for o in funnel.options}
    assert options == {("choose-language", "2"): 3, ("main-menu", "1"): 3, ("billing-menu", "2"): 3}
    assert {(n.hotline, n.menu_version, n.calls) for n in funnel.nodes} == {(HOTLINE, "2026.1", 3)}
