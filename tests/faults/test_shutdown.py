"""Fault injection: `ivr serve` (a real process) stopped and killed under a steady call load
from the pbxsim peer, its prompts played in real time. No caller may be dropped: every
session the controller lets go of leaves the channel with IVR_STATUS=ACTIVE, on which the
dialplan sends the caller to its fallback queue (dialplans/extensions_ivr.conf, label
`released`), and every call keeps its record."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from ivr.pbxsim import CallerScript, CallResult, Press, SimCall, SoundLibrary, place_call
from conftest import Figures
from servekit import REPO, Served, copy_config

pytestmark = pytest.mark.faults

CALLS = 20
SOUNDS = SoundLibrary([("/var/lib/asterisk/sounds/ivr", REPO / "prompts" / "sounds")])


def _caller(n: int) -> SimCall:
    # As the dialplan does before AGI(): Set(IVR_STATUS=ACTIVE).
    return SimCall(CallerScript((Press("2", on_prompt="choose-language", after=0.5),), caller_id=f"1390000{n:04d}"),
                   extension="4008001234", script="ivr?hotline=4008001234", variables={"IVR_STATUS": "ACTIVE"})


async def _load(served: Served, stop: signal.Signals) -> tuple[list[CallResult], float]:
    calls = [asyncio.create_task(place_call("127.0.0.1", served.port, _caller(n), sounds=SOUNDS, time_scale=1.0))
             for n in range(CALLS)]  # fmt: skip
    await asyncio.sleep(1.5)  # every caller is in the recording notice or the welcome
    sent = time.monotonic()
    served.process.send_signal(stop)
    results = await asyncio.wait_for(asyncio.gather(*calls), 60)
    return results, time.monotonic() - sent


def _rows(config: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(config / "var" / "calls.sqlite") as db:
        return list(db.execute("SELECT disposition, detail FROM calls"))


def _hung_up(results: list[CallResult]) -> int:
    """Callers a stop cut off: anything but a session let go with IVR_STATUS=ACTIVE."""
    return sum(1 for r in results if r.error is not None or r.hung_up_by is not None
               or r.variables.get("IVR_STATUS") != "ACTIVE")


def test_sigterm_hands_every_caller_to_the_fallback_queue_and_keeps_every_record(
    tmp_path: Path, figures: Figures
) -> None:
    served = Served(copy_config(tmp_path))
    try:
        results, took = asyncio.run(_load(served, signal.SIGTERM))
        code = served.process.wait(timeout=30)
    finally:
        served.kill()
    output = served.output()
    rows = _rows(served.config)
    figures(f"{CALLS} callers in the IVR: {_hung_up(results)} hung up, all let go within {took:.1f} s; "
            f"{len(rows)} records, {sum(1 for d, _ in rows if d == 'interrupted')} interrupted; exit code {code}")

    assert code == 0, output[-3000:]
    for result in results:
        assert result.error is None and result.hung_up_by is None, result.error
        assert result.server_closed and result.location is None  # the controller let go, moved nowhere
        assert result.variables["IVR_STATUS"] == "ACTIVE"  # so the dialplan queues the caller
    assert len(rows) == CALLS
    assert {d for d, _ in rows} == {"interrupted"}, rows
    assert all("fallback queue" in detail for _, detail in rows)
    assert "Traceback" not in output and "Exception in callback" not in output, output[-3000:]


def test_sigkill_leaves_every_caller_to_the_fallback_queue(tmp_path: Path, figures: Figures) -> None:
    """A controller that dies writes nothing more; the dialplan still queues its callers, and
    the next start closes the records it left open."""
    served = Served(copy_config(tmp_path))
    try:
        results, _ = asyncio.run(_load(served, signal.SIGKILL))
    finally:
        served.kill()
    restarted = Served(served.config)  # the same config and store: recovery at start-up
    try:
        restarted.wait_for_log("left open by a previous run were closed")
    finally:
        restarted.stop()
    rows = _rows(served.config)
    figures(f"{CALLS} callers in the IVR: {_hung_up(results)} hung up; after a restart {len(rows)} records, "
            f"{sum(1 for d, _ in rows if d == 'interrupted')} closed as interrupted")

    for result in results:
        assert result.error is None and result.hung_up_by is None, result.error
        assert result.location is None and result.variables["IVR_STATUS"] == "ACTIVE"
    assert len(rows) == CALLS and {d for d, _ in rows} == {"interrupted"}, rows
