"""`ivr demo`: the real controller on embedded defaults, a few hundred scripted calls.

No Asterisk, no Redis: the PBX peer plays Asterisk's side of FastAGI over TCP, a
stand-in backend answers the self-service lookups, the example's four agents log in to
the in-process ACD and answer (or not) through the peer, call records go to SQLite.
Calls are fast-forwarded: media plays at SPEED times its length, and the ACD's timers
(waits, steps, announcements, wrap-up) are scaled by the same factor.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from ivr.app import Controller, ControllerOptions
from ivr.pbxsim import SURVEY_REENTRY, Agent, CallerScript, HangUp, NoAnswer, Press, SimCall, SoundLibrary, place_call
from ivr.pbxsim.caller import AgentBehaviour, Step
from routing.config import RoutingConfig
from routing.model import Presence
from survey_engine.report import build_report

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAYTIME = dt.datetime(2026, 11, 25, 10, 30, tzinfo=SHANGHAI)
NIGHT = dt.datetime(2026, 11, 25, 23, 15, tzinfo=SHANGHAI)
SPEED = 0.02  # a second of call time takes 20 ms
ARRIVALS_PER_SECOND = 7.5  # real time: about as many calls as four agents can take at SPEED


def fast_forward(routing: RoutingConfig, speed: float) -> RoutingConfig:
    """The routing configuration with every timer the ACD runs scaled by `speed`."""
    queues = {
        name: queue.model_copy(update={
            "max_wait": queue.max_wait * speed,
            "busy_window": queue.busy_window * speed,
            "steps": tuple(step.model_copy(update={"for_seconds": step.for_seconds * speed})
                           if step.for_seconds is not None else step for step in queue.steps),
            "announce": queue.announce.model_copy(update={"first_after": queue.announce.first_after * speed,
                                                          "every": queue.announce.every * speed}),
            "affinity": queue.affinity.model_copy(update={"hold": queue.affinity.hold * speed}),
        })
        for name, queue in routing.queues.items()
    }
    agents = {name: agent.model_copy(update={"wrap_up": agent.wrap_up * speed})
              for name, agent in routing.agents.items()}
    return routing.model_copy(update={"queues": queues, "agents": agents})


def _agents(routing: RoutingConfig, rng: random.Random) -> dict[str, AgentBehaviour]:
    """How each agent's phone behaves if this call rings it: most answer within seconds."""
    return {
        agent.endpoint: NoAnswer() if rng.random() < 0.08 else
        Agent(answer_after=rng.uniform(1, 6), talk=rng.uniform(15, 60), hangs_up_first=rng.random() < 0.7)
        for agent in routing.agents.values()
    }


async def _backend(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    request = (await reader.readline()).decode(errors="replace")
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    target = request.split()[1] if len(request.split()) > 1 else "/"
    if target.startswith("/billing/balance"):
        body: dict[str, object] = {"found": "account=1" in target, "balance": 128}
    elif target.startswith("/orders/"):
        body = {"found": True, "status": random.choice(["shipped", "pending", "delivered"]), "tracking": "7731"}
    else:
        body = {"found": False}
    data = json.dumps(body).encode()
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: "
                 + str(len(data)).encode() + b"\r\n\r\n" + data)
    await writer.drain()
    writer.close()


def _script(rng: random.Random) -> tuple[Step, ...]:
    """A caller who behaves like real ones: most choose, some wander, some give up."""
    steps: list[Step] = [Press(rng.choice("12"), on_prompt="choose-language")]
    kind = rng.choices(
        ["billing-agent", "balance", "technical", "order", "voicemail", "operator", "silent", "hangup", "invalid"],
        weights=[18, 14, 16, 10, 6, 8, 8, 12, 8],
    )[0]
    if kind == "billing-agent":
        steps += [Press("1", on_prompt="main-menu"), Press("2", on_prompt="billing-menu")]
    elif kind == "balance":
        account = rng.choice(["12345678", "99999999"])
        steps += [Press("1", on_prompt="main-menu"), Press("1", on_prompt="billing-menu"),
                  Press(account + "#", on_prompt="enter-account"), HangUp(on_prompt="anything-else", after=2)]
    elif kind == "technical":
        steps += [Press("2", on_prompt="main-menu"), Press("2", on_prompt="technical-menu")]
    elif kind == "order":
        steps += [Press("2", on_prompt="main-menu"), Press("1", on_prompt="technical-menu"),
                  Press("1234567890#", on_prompt="enter-order"), Press("2", on_prompt="anything-else")]
    elif kind == "voicemail":
        steps += [Press("3", on_prompt="main-menu")]
    elif kind == "operator":
        steps += [Press("0", on_prompt="main-menu")]
    elif kind == "hangup":
        steps += [HangUp(on_prompt=rng.choice(["main-menu", "billing-menu"]), after=rng.uniform(0.5, 4))]
        if steps[-1].on_prompt == "billing-menu":
            steps.insert(-1, Press("1", on_prompt="main-menu"))
    elif kind == "invalid":
        steps += [Press("7", on_prompt="main-menu"), Press("8", on_prompt="main-menu"),
                  Press("2", on_prompt="main-menu"), Press("*", on_prompt="technical-menu"),
                  Press("1", on_prompt="main-menu"), Press("2", on_prompt="billing-menu")]
    # The order path ends in the general queue, which asks before the agent who wants a survey.
    return tuple(steps) + _survey_answers(rng, asked_to_opt_in=kind == "order")


def _survey_answers(rng: random.Random, *, asked_to_opt_in: bool) -> tuple[Step, ...]:
    """What the caller does if the survey comes (config/surveys.yaml decides whether it does):
    mostly content, some unhappy, a few hang up half-way."""
    steps: list[Step] = []
    if asked_to_opt_in and rng.random() < 0.6:
        steps.append(Press("1", on_prompt="survey-opt-in"))
    mood = rng.choices([5, 4, 3, 2, 1], weights=[40, 25, 15, 12, 8])[0]
    for question in ("survey-speed", "survey-attitude"):
        steps.append(Press(str(max(1, min(5, mood + rng.choice((-1, 0, 0, 1))))), on_prompt=question))
    if rng.random() < 0.1:
        steps.append(HangUp(on_prompt="survey-resolved", after=1))
        return tuple(steps)
    steps.append(Press("1" if mood >= 3 or rng.random() < 0.3 else "2", on_prompt="survey-resolved"))
    nps = max(0, min(10, 2 * mood + rng.choice((-2, -1, 0, 0, 1))))
    steps.append(Press(f"{nps}#" if nps < 10 else "10", on_prompt="survey-nps"))
    steps.append(Press("#", on_prompt="survey-comment"))  # no spoken comment
    return tuple(steps)


async def run_demo(config_dir: Path, calls: int, db: Path, seed: int, console: Console) -> None:
    rng = random.Random(seed)
    now = {"t": DAYTIME}
    backend = await asyncio.start_server(_backend, "127.0.0.1", 0)
    base_url = f"http://127.0.0.1:{backend.sockets[0].getsockname()[1]}"
    options = ControllerOptions(port=0, sqlite_path=db, clock=lambda: now["t"], lookup_base_url=base_url)
    controller = Controller(config_dir, options)
    routing = controller.config.routing
    if routing is not None:
        options.routing = fast_forward(routing, SPEED)
    await controller.start()
    assert controller.server is not None and controller.store is not None
    if controller.acd is not None and routing is not None:
        for agent_id in routing.agents:
            await controller.acd.state.set_presence(agent_id, Presence.READY, controller.acd.clock())
        console.print(f"agents logged in to the ACD: {', '.join(routing.agents)}")
    port = controller.server.bound_port
    prompts = controller.config.server.prompts
    local = prompts.local_dir if prompts.local_dir.is_absolute() else config_dir / prompts.local_dir
    sounds = SoundLibrary([(prompts.asterisk_dir, local)])
    hotlines = list(controller.config.directory.hotlines)
    console.print(f"FastAGI controller on 127.0.0.1:{port}, records in {db}; media at {SPEED:g}x its length")

    def scripted_call() -> SimCall:
        number = rng.choices(hotlines, weights=[4] + [1] * (len(hotlines) - 1))[0]
        steps = _script(rng)
        if controller.config.directory.hotlines[number].entry:
            steps = steps[1:]  # single-language line: no language choice
        return SimCall(CallerScript(steps, caller_id=f"138{rng.randrange(10**8):08d}"), extension=number,
                       script=f"ivr?hotline={number}", agents=_agents(routing, rng) if routing else {},
                       dialplan=SURVEY_REENTRY)

    async def arrive(call: SimCall, delay: float) -> None:
        await asyncio.sleep(delay)
        await place_call("127.0.0.1", port, call, sounds=sounds, time_scale=SPEED)

    try:
        with Progress(console=console, transient=False) as progress:
            task = progress.add_task("scripted calls", total=calls)
            night = max(1, calls // 10)
            for when, count in ((DAYTIME, calls - night), (NIGHT, night)):
                now["t"] = when
                spread = count / ARRIVALS_PER_SECOND
                batch = [arrive(scripted_call(), rng.uniform(0, spread)) for _ in range(count)]
                for done in asyncio.as_completed(batch):
                    await done
                    progress.advance(task)
        await controller.store.flush()
        await report(controller, console)
    finally:
        await controller.stop()
        backend.close()


async def report(controller: Controller, console: Console) -> None:
    assert controller.store is not None
    rows = [row async for row in controller.store.iter_calls()]
    dispositions = Counter(str(row.disposition) for row in rows)
    table = Table(title=f"{len(rows)} calls by disposition")
    table.add_column("disposition")
    table.add_column("calls", justify="right")
    table.add_column("share", justify="right")
    for name, count in dispositions.most_common():
        table.add_row(name, str(count), f"{count / len(rows):.0%}")
    console.print(table)

    legs = [leg for row in rows for leg in row.queue_legs]
    if legs:
        table = Table(title="ACD queues (waits in call-time seconds)")
        for name in ("queue", "entered", "answered", "abandoned", "overflowed", "mean wait answered",
                     "longest wait"):
            table.add_column(name, justify="left" if name == "queue" else "right")
        for queue in sorted({leg.queue for leg in legs}):
            mine = [leg for leg in legs if leg.queue == queue]
            outcomes = Counter(leg.outcome for leg in mine)
            answered = [leg.waited / SPEED for leg in mine if leg.outcome == "answered"]
            table.add_row(queue, str(len(mine)), str(outcomes["answered"]), str(outcomes["abandoned"]),
                          str(outcomes["overflowed"]),
                          f"{sum(answered) / len(answered):.0f}" if answered else "—",
                          f"{max(leg.waited for leg in mine) / SPEED:.0f}")
        console.print(table)
        table = Table(title="Agents")
        for name in ("agent", "calls answered", "mean talk (s)"):
            table.add_column(name, justify="left" if name == "agent" else "right")
        for agent in sorted({leg.agent_id for leg in legs if leg.agent_id}):
            talks = [leg.talk_seconds or 0.0 for leg in legs if leg.agent_id == agent and leg.outcome == "answered"]
            table.add_row(agent, str(len(talks)), f"{sum(talks) / len(talks):.0f}" if talks else "—")
        console.print(table)

    paths = Counter(
        " > ".join(e.node for e in row.events if e.kind.value == "node") + f" => {row.disposition}"
        for row in rows
    )
    table = Table(title="IVR paths taken (top 8)")
    table.add_column("path")
    table.add_column("calls", justify="right")
    for route, count in paths.most_common(8):
        table.add_row(route, str(count))
    console.print(table)

    await _survey_report(controller, console)

    gave_up = Counter(row.detail for row in rows if str(row.disposition) == "abandoned")
    table = Table(title="Where callers gave up")
    table.add_column("node")
    table.add_column("callers", justify="right")
    for node, count in gave_up.most_common():
        table.add_row(node, str(count))
    console.print(table)


async def _survey_report(controller: Controller, console: Console) -> None:
    """What `ivr report survey --by queue` and `ivr followups list` would show."""
    if controller.surveys is None:
        return
    responses = await controller.surveys.responses()
    if not responses:
        return
    report = build_report(responses, "queue", ZoneInfo("UTC"))
    table = Table(title="Post-call surveys (ivr report survey --by queue)")
    for name in ("queue", "offered", "started", "partial", "CSAT speed %", "resolved %", "NPS"):
        table.add_column(name, justify="left" if name == "queue" else "right")

    def shown(value: float | None) -> str:
        return "—" if value is None else f"{value:.0f}"

    for group in (*report.groups, report.total):
        speed = next((q for q in group.scale if q.question == "speed"), None)
        resolved = next((q for q in group.resolution if q.question == "resolved"), None)
        nps = next((q for q in group.nps if q.question == "nps"), None)
        table.add_row(group.key, str(group.offered), str(group.started), str(group.partial),
                      shown(speed.csat if speed else None), shown(resolved.rate if resolved else None),
                      shown(nps.nps if nps else None))
    console.print(table)
    items = await controller.surveys.followups(status="open")
    owners = Counter(item.owner for item in items)
    console.print(f"follow-up items opened by low scores: {len(items)} "
                  f"({', '.join(f'{owner} {count}' for owner, count in owners.most_common())})")
