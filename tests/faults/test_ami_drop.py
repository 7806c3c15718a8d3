"""The AMI link dropped under a steady call load through `ivr serve`: the pbxsim AMI peer
(Asterisk's side, emitting the calls' events) closes the connection mid-calls while still
listening, as when the network between them breaks. Asserted: the controller logs in again
and resynchronises the agents' device states (a change made while the link was down,
1004's phone going UNAVAILABLE, is in the live state after it, and a live change after it
too), offers go on, no agent is rung for two calls at once, and every call has one record."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from conftest import Figures
from faultkit import AGENTS, DialLog, Load, Serve, failed_calls, fault_config, record_figures, sqlite_rows
from ivr.pbxsim.ami import AmiCallEvents, AmiPeer
from redisserver import RedisServer
from routing.config import StateSettings
from routing.model import Device, Presence
from routing.redis_state import RedisState

pytestmark = pytest.mark.faults

CALLS, EVERY = 24, 0.2
DROP_AT = 2.0


async def _device(state: RedisState, agent: str, device: Device, within: float) -> float:
    """Seconds until the live state shows `agent`'s device as `device`; fails after `within`."""
    started = time.monotonic()
    while (await state.agent(agent)).device is not device:
        assert time.monotonic() - started < within, f"{agent} not {device.value} within {within} s"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_ami_link_dropped_mid_calls_reconnects_and_resumes_device_states(
    tmp_path: Path, redis: RedisServer, figures: Figures
) -> None:
    peer = AmiPeer()
    for agent in AGENTS:
        peer.set_device(f"PJSIP/{agent}", "NOT_INUSE", emit=False)
    await peer.start()
    config = fault_config(tmp_path, redis_url=redis.url, ami_port=peer.port)
    served = await Serve(config).started()
    state = await RedisState.connect(StateSettings(backend="redis", redis_url=redis.url, key_prefix="ivr:acd:"))
    try:
        await peer.wait_for("device_lists", 1, timeout=15)
        for agent in AGENTS:
            await state.set_presence(agent, Presence.READY, time.time())
        await _device(state, "1004", Device.NOT_INUSE, 5)

        load = Load(served.port, CALLS, EVERY, observer=DialLog(inner=AmiCallEvents(peer)))
        load.start()
        await asyncio.sleep(DROP_AT)
        dropped = time.monotonic()
        await peer.drop_link()
        peer.set_device("PJSIP/1004", "UNAVAILABLE", emit=False)  # while nobody listens
        await peer.wait_for("device_lists", 2, timeout=10)
        resynced = time.monotonic() - dropped
        seen_down = await _device(state, "1004", Device.UNAVAILABLE, 5)
        peer.set_device("PJSIP/1004", "NOT_INUSE")  # a live event on the new link
        seen_live = await _device(state, "1004", Device.NOT_INUSE, 5)
        back = time.monotonic()
        results = await load.finished()
        resumed = load.observer.first_ring_after(dropped + resynced)
        code = await served.stop()
    finally:
        await state.close()
        served.kill()
        await peer.close()
    output = served.output()
    lost, duplicated, open_rows = record_figures(results, sqlite_rows(config))
    doubles = load.observer.double_rings()

    figures(f"{len(results)} calls; link dropped {DROP_AT:.0f} s in: logged in and device list read again "
            f"{resynced * 1000:.0f} ms later; a change made while down seen {seen_down * 1000:.0f} ms after that, "
            f"a live one in {seen_live * 1000:.0f} ms")
    figures(f"first offer {resumed * 1000:.0f} ms after the resync" if resumed is not None else "no offer after the resync")
    figures(f"double assignments {len(doubles)}; records lost {lost}, duplicated {duplicated}, left open {open_rows}")

    assert failed_calls(results) == []
    assert resynced < 3.0  # reconnect_min 0.1 s here (server.yaml ami.reconnect_min)
    assert resumed is not None and resumed < 2.0 and back > dropped
    assert doubles == [] and (lost, duplicated, open_rows) == (0, 0, 0)
    assert code == 0 and "Traceback" not in output, output[-3000:]
