"""`ivr demo`: the real controller on embedded defaults, a business day of scripted calls.

No Asterisk, no Redis: the PBX peer (ivr.pbxsim) plays Asterisk's side of FastAGI over
loopback TCP, a stand-in backend answers the self-service lookups, the example's four agents
log in to the in-process ACD at 09:00 and out when the day's last call is over, call records
go to SQLite.

One clock. The whole demo runs on an event loop whose time is virtual (`virtual_time`):
media take their length, callers hold on and agents talk and wrap up for as long as the day
says, and the loop jumps over the waits. The controller's clock (call records, survey rows)
and the ACD's (queue legs, agent presence) are both the demo day's 09:00 plus the loop's
time, so every table is in the same seconds, and the ACD's timers (steps, announcements,
max wait, wrap-up) run as configured, unscaled. The day is drawn from the seed before the
first call (`day`), ids come from the seed too: the same seed gives the same records
whatever the machine's speed or load (tests/demo checks the exports under a busy loop). The
database file is the same byte for byte but for the follow-up items' sealed contacts:
Fernet tokens carry the real time and a random IV, as they must.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from ivr.app import Controller, ControllerOptions
from ivr.demo import virtual_time
from ivr.demo.backend import answer_lookup
from ivr.demo.day import AFTER_HOURS, SHIFT_START, DemoCall, plan_day
from ivr.demo.report import next_steps, report
from ivr.pbxsim import SoundLibrary, place_call
from routing.model import Presence

DEMO_DB = Path("var/demo.sqlite")  # in the configuration directory, as `ivr serve`'s store.sqlite_path
HOLD_LIMIT = 3600.0  # seconds of the controller's silence before the simulated PBX gives up on it
SHIFT_HOURS = 6.0
IDLE_REMATCH = 60.0  # seconds  # the agents stay at least this long, and until the day's last call is over


@dataclass(frozen=True)
class DemoRun:
    db: Path  # the database written
    calls: int


def run_demo(config_dir: Path, calls: int, db: Path | None, seed: int, console: Console) -> DemoRun:
    """Run the demo on a virtual-time loop of its own; `db` None: DEMO_DB in `config_dir`."""
    return virtual_time.run(_demo(config_dir, calls, db, seed, console))


async def _demo(config_dir: Path, calls: int, db: Path | None, seed: int, console: Console) -> DemoRun:
    loop = asyncio.get_running_loop()
    start = loop.time()

    def seconds() -> float:
        return loop.time() - start

    ids = random.Random(seed ^ 0x1D5)
    backend = await asyncio.start_server(answer_lookup, "127.0.0.1", 0)
    options = ControllerOptions(
        port=0, sqlite_path=db or DEMO_DB,
        lookup_base_url=f"http://127.0.0.1:{backend.sockets[0].getsockname()[1]}",
        clock=lambda: SHIFT_START.astimezone(dt.timezone.utc) + dt.timedelta(seconds=seconds()),
        acd_clock=lambda: SHIFT_START.timestamp() + seconds(),
        acd_rng=random.Random(seed + 1), survey_rng=random.Random(seed + 2),
        # The in-memory state wakes the dispatcher on every change and it wakes itself for its
        # own timers (wrap-up ends, steps): its 1-s safety re-match only cost a day's worth of
        # loop turns (same records, measured; a 5-call day took 12 s instead of 2).
        acd_max_idle=IDLE_REMATCH,
        ids=lambda: uuid.UUID(int=ids.getrandbits(128), version=4).hex,
        pbx_directories=False,  # the peer plays Asterisk: a warning about its folders only confuses
    )
    controller = Controller(config_dir, options)
    path = controller.store_target()
    assert isinstance(path, Path)
    path.unlink(missing_ok=True)  # a new day each time
    routing = controller.config.routing
    hotlines = {number: not line.entry for number, line in controller.config.directory.hotlines.items()}
    endpoints = [agent.endpoint for agent in routing.agents.values()] if routing is not None else []
    day = plan_day(random.Random(seed), calls, hotlines, endpoints)
    sounds = SoundLibrary([(controller.config.server.prompts.asterisk_dir, controller.config.prompt_dir)])
    await controller.start()
    assert controller.server is not None and controller.store is not None
    try:
        console.print(f"The demo day, {SHIFT_START:%A %d %B %Y}: {calls} calls to the FastAGI controller on "
                      f"127.0.0.1:{controller.server.bound_port}, records in {path}")
        await _shift(controller, day, sounds, seconds, console)
        await controller.store.flush()
        await report(controller, console)
    finally:
        await controller.stop()
        backend.close()
        await backend.wait_closed()
    next_steps(console, config_dir, path)
    return DemoRun(path, calls)


async def _shift(controller: Controller, day: list[DemoCall], sounds: SoundLibrary,
                 seconds: Callable[[], float], console: Console) -> None:
    """The agents log in, the day's calls arrive when planned, the agents log out once the
    daytime calls are over; then the after-hours callers ring."""
    assert controller.server is not None
    acd, port = controller.acd, controller.server.bound_port
    agents = list(acd.config.agents) if acd is not None else []
    for agent_id in agents:
        assert acd is not None
        await acd.state.set_presence(agent_id, Presence.READY, acd.clock())
    if agents:
        console.print(f"09:00 agents log in to the ACD: {', '.join(agents)}")

    async def arrive(planned: DemoCall) -> None:
        await asyncio.sleep(max(0.0, planned.offset - seconds()))
        # The controller may leave a caller on hold, silent, for minutes (queue max_wait).
        await place_call("127.0.0.1", port, planned.call, sounds=sounds, time_scale=1.0, idle_time_passes=True,
                         reply_wait=HOLD_LIMIT)

    closing = AFTER_HOURS[0].total_seconds()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("the day's calls", total=len(day))
        running = [asyncio.create_task(arrive(planned)) for planned in day]
        for task_done in asyncio.as_completed(running):
            await task_done
            progress.advance(task)
            daytime_left = [t for t, planned in zip(running, day) if planned.offset < closing and not t.done()]
            if acd is not None and agents and not daytime_left:
                await asyncio.sleep(max(0.0, SHIFT_HOURS * 3600 - seconds()))
                for agent_id in agents:
                    await acd.state.set_presence(agent_id, Presence.LOGGED_OUT, acd.clock())
                logged_out = SHIFT_START + dt.timedelta(seconds=seconds())
                console.print(f"{logged_out:%H:%M} the last daytime call is over: agents log out")
                agents = []
