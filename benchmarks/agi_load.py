"""FastAGI load benchmark: N concurrent scripted calls through the three-level example menu.

    .venv/bin/python benchmarks/agi_load.py [--calls 1000] [--concurrency 1000] [--repeat 1]

Three processes, so the server's figures are not polluted by its peers:

- the controller (`ivr.app.Controller` on `config/`, clock fixed at business hours), run
  as a child process of this script and pinned to one CPU; it collects the server-side
  turnaround of every AGI command through `ControllerOptions.on_turnaround`;
- the stand-in self-service backend of `ivr demo`, another child;
- the PBX peer (`ivr.pbxsim`) placing the calls, in this process.

Media takes real time (`--time-scale 1`: a prompt holds its reply as long as its audio
plays), so 1,000 calls are up at once as they would be on a PBX; `--time-scale 0` sends
replies at once instead (a burst: the protocol and flow overhead alone). The headline
figure is the latency Asterisk would see: from a reply being written to the server's next
command arriving, which includes any time the reply waits in the server's queue; the
server-side turnaround (reply parsed -> command sent) is printed as the breakdown. Every call must end
where its script leads (a queue in the dialplan) with the server closing the connection,
and must leave one closed call record; anything else is counted as a failed call.

Target (the issue): 1,000 concurrent calls on one core, p99 latency under 5 ms.
The figures are printed, never asserted.

One file past 600 lines: a benchmark is run as one script; its server, backend and caller
child processes are modes of this same file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import dataclasses
import datetime as dt
import gc
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from benchstats import Stat  # benchmarks/ is first on sys.path when run as a script

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "config"
TARGET_P99_MS = 5.0
TARGET_CONCURRENCY = 1000
LOOKUP_MARK = " (after lookup)"  # verb label suffix: the turnaround includes a backend HTTP round trip
LAG_INTERVAL = 0.005


# --- the scripted callers ---------------------------------------------------------------


@dataclass(frozen=True)
class CallPath:
    """One way through the menu, three levels deep, and where the dialplan must continue."""

    name: str
    presses: tuple[tuple[str, str], ...]  # (digits, on_prompt), after the language choice
    location: tuple[str, str, str]


PATHS: tuple[CallPath, ...] = (
    CallPath("billing queue", (("1", "main-menu"), ("2", "billing-menu")), ("ivr-queue", "billing", "1")),
    CallPath("technical queue", (("2", "main-menu"), ("2", "technical-menu")), ("ivr-queue", "technical", "1")),
    CallPath(
        "balance self-service",
        (("1", "main-menu"), ("1", "billing-menu"), ("12345678#", "enter-account"), ("2", "anything-else")),
        ("ivr-queue", "general", "1"),
    ),
    CallPath(
        "order self-service",
        (("2", "main-menu"), ("1", "technical-menu"), ("1234567890#", "enter-order"), ("2", "anything-else")),
        ("ivr-queue", "general", "1"),
    ),
)
HOTLINE = "4008001234"  # the two-language line: welcome -> choose-language -> main-menu -> ...


def plan_calls(calls: int, mix: str) -> list[tuple[CallPath, str]]:
    """Deterministic mix: paths in turn, languages alternating (1 = zh-CN, 2 = en-US)."""
    paths = PATHS if mix == "all" else PATHS[:2]
    return [(paths[i % len(paths)], "12"[(i // len(paths)) % 2]) for i in range(calls)]


# --- figures -------------------------------------------------------------------------------


@dataclass
class RoundResult:
    calls: int
    concurrency: int
    wall_seconds: float
    completed: int
    failures: list[str]
    paths: Counter[str]
    turnaround: dict[str, list[float]]  # verb -> seconds
    loop_lag: list[float]
    records: dict[str, int]  # disposition -> rows written by the server this round
    peak_sessions: int
    server_stats: dict[str, int]
    server_cpu: float  # CPU seconds the server process used during the round
    latency: dict[str, list[float]] = field(default_factory=dict)  # verb -> seconds, peer side
    # CPU seconds the PBX peer used: near wall time means the peer itself was the bottleneck
    # and its own delays are in the latency it measured.
    peer_cpu: float = 0.0

    @property
    def calls_per_second(self) -> float:
        return self.completed / self.wall_seconds if self.wall_seconds > 0 else math.nan

    @property
    def all_samples(self) -> list[float]:
        return [v for values in self.turnaround.values() for v in values]


@dataclass
class BenchReport:
    rounds: list[RoundResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return sum(r.calls for r in self.rounds)

    @property
    def completed(self) -> int:
        return sum(r.completed for r in self.rounds)

    @property
    def failures(self) -> list[str]:
        return [f for r in self.rounds for f in r.failures]

    @property
    def ok(self) -> bool:
        return bool(self.rounds) and not self.failures and self.completed == self.calls

    def per_verb(self) -> dict[str, Stat]:
        merged: dict[str, list[float]] = defaultdict(list)
        for r in self.rounds:
            for verb, values in r.turnaround.items():
                merged[verb].extend(values)
        return {verb: Stat.of(values) for verb, values in sorted(merged.items())}

    def overall(self, *, include_lookups: bool = True) -> Stat:
        return Stat.of([
            v for r in self.rounds for verb, values in r.turnaround.items()
            if include_lookups or not verb.endswith(LOOKUP_MARK) for v in values
        ])

    def latency_per_verb(self) -> dict[str, Stat]:
        merged: dict[str, list[float]] = defaultdict(list)
        for r in self.rounds:
            for verb, values in r.latency.items():
                merged[verb].extend(values)
        return {verb: Stat.of(values) for verb, values in sorted(merged.items())}

    def latency(self) -> Stat:
        return Stat.of([v for r in self.rounds for values in r.latency.values() for v in values])

    def loop_lag(self) -> Stat:
        return Stat.of([v for r in self.rounds for v in r.loop_lag])


# --- resource limits and CPUs -------------------------------------------------------------


def raise_nofile(needed: int) -> str:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        new = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = new
    if soft != resource.RLIM_INFINITY and soft < needed:
        return f"RLIMIT_NOFILE is {soft} (hard limit), below the {needed} descriptors needed"
    return f"RLIMIT_NOFILE soft limit {soft}"


def plan_cpus(pin: bool) -> tuple[int | None, set[int] | None, str]:
    """(server CPU, peer CPUs, note). The server gets one CPU; peer and backend the rest."""
    if not pin or not hasattr(os, "sched_getaffinity"):
        return None, None, "not pinned: server and peer share whatever CPUs the OS gives them"
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None, f"only CPU {cpus} available: server and peer share it (figures are pessimistic)"
    return cpus[0], set(cpus[1:]), (f"server pinned to CPU {cpus[0]} (one core); "
                                     f"peer and backend on CPU {','.join(map(str, cpus[1:]))}")


# --- the server process ---------------------------------------------------------------------


async def _serve_child(out: TextIO, concurrency: int, sqlite_path: Path, backend_url: str) -> None:
    from ivr.app import Controller, ControllerOptions
    from ivr.demo.day import SHIFT_START

    samples: dict[str, list[float]] = defaultdict(list)
    lag: list[float] = []
    peak = [0]
    holder: list[Controller] = []
    # One mutable flag per call, set in the session task's context at its first command; the
    # lookup task the flow starts copies that context, so its HTTP request can raise the flag.
    lookup_flag: contextvars.ContextVar[list[bool]] = contextvars.ContextVar("lookup_flag")

    def on_turnaround(verb: str, seconds: float) -> None:
        flag = lookup_flag.get(None)
        if flag is None:
            lookup_flag.set([False])
        elif flag[0]:
            flag[0] = False
            verb += LOOKUP_MARK
        samples[verb].append(seconds)
        server = holder[0].server if holder else None
        if server is not None and server.active_sessions > peak[0]:
            peak[0] = server.active_sessions

    async def mark_lookup(request: Any) -> None:
        flag = lookup_flag.get(None)
        if flag is not None:
            flag[0] = True

    # The menus and the FastAGI protocol under load: queues hand off to the dialplan here
    # (the ACD's decisions and reservations have benchmarks/acd_routing.py).
    controller = Controller(CONFIG_DIR, ControllerOptions(
        port=0, sqlite_path=sqlite_path, clock=lambda: SHIFT_START, on_turnaround=on_turnaround,
        lookup_base_url=backend_url, acd=False,
    ))
    holder.append(controller)
    await controller.start()
    assert controller.server is not None and controller.store is not None and controller.http is not None
    controller.http.event_hooks = {"request": [mark_lookup], "response": []}
    configured = controller.server.limits.max_sessions
    if configured < concurrency:
        controller.server.limits = dataclasses.replace(controller.server.limits, max_sessions=concurrency)
    server = controller.server

    async def watch_lag() -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(LAG_INTERVAL)
            late = time.perf_counter() - start - LAG_INTERVAL
            if server.active_sessions:
                lag.append(max(0.0, late))

    lag_task = asyncio.create_task(watch_lag())
    loop = asyncio.get_running_loop()
    commands = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)

    def send(message: dict[str, Any]) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    send({"ready": True, "port": server.bound_port, "max_sessions": configured,
          "max_sessions_run": server.limits.max_sessions,
          "cpus": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []})
    before: Counter[str] = Counter()
    cpu_mark = time.process_time()
    try:
        while True:
            line = (await commands.readline()).decode().strip()
            if line in ("", "stop"):
                break
            if line == "start":
                cpu_mark = time.process_time()
                send({"started": True})
            elif line == "collect":
                for _ in range(500):  # the peer saw every close; let handlers finish their records
                    if not server.active_sessions:
                        break
                    await asyncio.sleep(0.01)
                await controller.store.flush()
                counts = Counter(await controller.store.disposition_counts())
                stats = dataclasses.asdict(server.stats)
                stats["active"] = server.active_sessions
                cpu_now = time.process_time()
                send({"turnaround": samples, "lag": lag, "peak": peak[0], "cpu": cpu_now - cpu_mark,
                      "records": dict(counts - before), "stats": stats})
                cpu_mark = cpu_now
                before = counts
                samples.clear()
                lag.clear()
                peak[0] = 0
    finally:
        lag_task.cancel()
        await controller.stop()


def serve_child_main(args: argparse.Namespace) -> None:
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})  # before any thread starts: the SQLite thread inherits it
    raise_nofile(args.concurrency + 256)
    out = sys.stdout
    sys.stdout = sys.stderr  # nothing else may write on the command channel
    coroutine = _serve_child(out, args.concurrency, Path(args.sqlite), args.backend_url)
    if not args.profile:
        asyncio.run(coroutine)
        return
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        asyncio.run(coroutine)
    finally:
        profiler.disable()
        profiler.dump_stats(args.profile)


def backend_child_main(args: argparse.Namespace) -> None:
    if args.cpus:
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    raise_nofile(args.concurrency + 256)

    async def run() -> None:
        from ivr.demo.backend import answer_lookup

        server = await asyncio.start_server(answer_lookup, "127.0.0.1", 0, backlog=1024)
        print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
        loop = asyncio.get_running_loop()
        stdin = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
        await stdin.read()  # until the parent closes our stdin
        server.close()

    asyncio.run(run())


# --- the peer (this process) ----------------------------------------------------------------


class Child:
    """A child process of this script speaking JSON lines on stdin/stdout."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
        )

    def ask(self, command: str | None = None) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if command is not None:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"benchmark child {self.proc.args[2:]} exited (code {self.proc.wait()})")
        message: dict[str, Any] = json.loads(line)
        return message

    def stop(self, command: str | None = None) -> None:
        assert self.proc.stdin is not None
        try:
            if command is not None:
                self.proc.stdin.write(command + "\n")
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def _place_round(
    port: int, calls: int, concurrency: int, mix: str, time_scale: float, ramp: float
) -> tuple[float, int, list[str], Counter[str], dict[str, list[float]]]:
    from ivr.config.loader import load_config
    from ivr.pbxsim import CallerScript, CallResult, Press, SimCall, SoundLibrary, place_call

    prompts = load_config(CONFIG_DIR).server.prompts
    local = prompts.local_dir if prompts.local_dir.is_absolute() else CONFIG_DIR / prompts.local_dir
    sounds = SoundLibrary([(prompts.asterisk_dir, local)])
    plan = plan_calls(calls, mix)
    sim = [
        SimCall(
            CallerScript(
                # Like many real callers, hear the main menu twice (#) before choosing.
                (Press(language, on_prompt="choose-language"), Press("#", on_prompt="main-menu", after=4.0),
                 *(Press(digits, on_prompt=prompt) for digits, prompt in path.presses)),
                caller_id=f"138{i:08d}",
            ),
            extension=HOTLINE, script=f"ivr?hotline={HOTLINE}",
        )
        for i, (path, language) in enumerate(plan)
    ]
    start = time.perf_counter()
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int, call: SimCall) -> CallResult:
        await asyncio.sleep(index * ramp / calls)  # arrivals spread evenly over the ramp
        async with gate:
            return await place_call("127.0.0.1", port, call, sounds=sounds, time_scale=time_scale)

    results = await asyncio.gather(*(one(i, call) for i, call in enumerate(sim)))
    wall = time.perf_counter() - start
    failures: list[str] = []
    taken: Counter[str] = Counter()
    latency: dict[str, list[float]] = defaultdict(list)
    for result in results:
        for verb, seconds in result.turnarounds:
            latency[verb].append(seconds)
    for (path, _), result in zip(plan, results):
        problem = None
        if result.error is not None:
            problem = result.error
        elif not result.server_closed:
            problem = "server did not close the connection"
        elif result.location != path.location:
            problem = f"ended at {result.location}, expected {path.location}"
        if problem is None:
            taken[path.name] += 1
        else:
            failures.append(f"{path.name} ({result.uniqueid}): {problem}")
    return wall, len(results) - len(failures), failures, taken, latency


def run_benchmark(
    calls: int, concurrency: int, repeat: int, *, pin: bool = True, mix: str = "all", profile: str = "",
    time_scale: float = 1.0, ramp: float = 15.0,
) -> BenchReport:
    report = BenchReport()
    concurrency = max(1, min(concurrency, calls))
    report.notes.append(raise_nofile(2 * concurrency + 256))  # both ends of every connection
    server_cpu, peer_cpus, cpu_note = plan_cpus(pin)
    report.notes.append(cpu_note)
    report.notes.append(f"media takes {time_scale:g} x its real time (--time-scale)" if time_scale > 0 else
                        "--time-scale 0: replies at once, a burst that measures protocol and flow overhead, "
                        "not a real call load")
    report.notes.append(f"calls arrive evenly over {ramp:g} s (--ramp); 'peak' is how many were up at once")
    if peer_cpus is not None:
        os.sched_setaffinity(0, peer_cpus)
    backend = Child("--backend-child", "--concurrency", str(concurrency),
                    *(("--cpus", ",".join(map(str, sorted(peer_cpus)))) if peer_cpus else ()))
    with tempfile.TemporaryDirectory(prefix="agi-load-") as tmp:
        server: Child | None = None
        try:
            backend_url = f"http://127.0.0.1:{backend.ask()['port']}"
            server = Child("--serve-child", "--concurrency", str(concurrency),
                           "--sqlite", str(Path(tmp) / "calls.sqlite"), "--backend-url", backend_url,
                           *(("--cpu", str(server_cpu)) if server_cpu is not None else ()),
                           *(("--profile", str(Path(profile).resolve())) if profile else ()))
            ready = server.ask()
            if ready["max_sessions_run"] != ready["max_sessions"]:
                report.notes.append(f"config/server.yaml max_sessions {ready['max_sessions']} is below the "
                                    f"concurrency: raised to {ready['max_sessions_run']} for this run")
            else:
                report.notes.append(f"max_sessions {ready['max_sessions']} (config/server.yaml) "
                                    f">= concurrency {concurrency}")
            for _ in range(repeat):
                server.ask("start")
                peer_cpu = time.process_time()
                wall, completed, failures, taken, latency = asyncio.run(
                    _place_round(ready["port"], calls, concurrency, mix, time_scale, ramp))
                peer_cpu = time.process_time() - peer_cpu
                figures = server.ask("collect")
                records = {str(k): int(v) for k, v in figures["records"].items()}
                if sum(records.values()) != calls:
                    failures.append(f"{sum(records.values())} call records written for {calls} calls")
                if records.get("queued", 0) != calls:  # every scripted path ends in a queue
                    failures.append(f"only {records.get('queued', 0)} of {calls} call records say queued")
                report.rounds.append(RoundResult(
                    calls=calls, concurrency=concurrency, wall_seconds=wall, completed=completed,
                    failures=failures, paths=taken, turnaround=figures["turnaround"], loop_lag=figures["lag"],
                    records=records, peak_sessions=int(figures["peak"]), server_stats=figures["stats"],
                    server_cpu=float(figures["cpu"]), latency=latency, peer_cpu=peer_cpu,
                ))
        finally:
            if server is not None:
                server.stop("stop")
            backend.stop()
    return report


# --- output ---------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return "—" if math.isnan(seconds) else f"{seconds * 1000:.2f}"


def print_report(report: BenchReport, console: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console(width=max(Console().width, 112))
    ok = "[green]✓[/green]"
    miss = "[red]✗[/red]"
    console.print("[bold]FastAGI load benchmark[/bold]: " + HOTLINE
                  + " language -> main menu -> billing/technical menu -> queue or self-service")
    for note in report.notes:
        console.print(f"  • {note}")

    rounds = Table(title="Calls (peer side; peak = most sessions up at once in the server)")
    for name in ("round", "calls", "done", "failed", "asked", "peak", "target", "wall s", "calls/s",
                 "server CPU s", "CPU/call", "peer CPU s"):
        rounds.add_column(name, justify="right")
    for i, r in enumerate(report.rounds, 1):
        rounds.add_row(
            str(i), str(r.calls), str(r.completed), str(r.calls - r.completed), str(r.concurrency),
            str(r.peak_sessions),
            f"{TARGET_CONCURRENCY} {ok if r.peak_sessions >= TARGET_CONCURRENCY else miss}",
            f"{r.wall_seconds:.2f}", f"{r.calls_per_second:.0f}",
            f"{r.server_cpu:.2f}", f"{r.server_cpu / r.calls * 1000:.2f} ms", f"{r.peer_cpu:.2f}",
        )
    console.print(rounds)

    seen = Table(title="Latency as Asterisk sees it (ms, reply written -> next command received; "
                       "the first command's clock starts at the environment block)")
    for name, justify in (("command", "left"), ("count", "right"), ("p50", "right"), ("p99", "right"),
                          ("max", "right"), ("target p99", "right")):
        seen.add_column(name, justify=justify)  # type: ignore[arg-type]
    for verb, stat in [*report.latency_per_verb().items(), ("all commands", report.latency())]:
        verdict = ok if stat.p99 < TARGET_P99_MS / 1000 else miss
        seen.add_row(verb, str(stat.count), _ms(stat.p50), _ms(stat.p99), _ms(stat.max),
                     f"< {TARGET_P99_MS:g} {verdict}", style="bold" if verb == "all commands" else "")
    console.print(seen)
    console.print("  commands that follow a self-service lookup include the backend's answer "
                  "(the demo's stand-in, in another process)")

    verbs = Table(title="Breakdown: server-side turnaround per AGI command (ms, reply parsed -> next command sent)")
    for name, justify in (("command", "left"), ("count", "right"), ("p50", "right"), ("p99", "right"),
                          ("max", "right"), ("target p99", "right")):
        verbs.add_column(name, justify=justify)  # type: ignore[arg-type]

    def row(label: str, stat: Stat, style: str = "") -> None:
        verdict = ok if stat.p99 < TARGET_P99_MS / 1000 else miss
        verbs.add_row(label, str(stat.count), _ms(stat.p50), _ms(stat.p99), _ms(stat.max),
                      f"< {TARGET_P99_MS:g} {verdict}", style=style)

    for verb, stat in report.per_verb().items():
        row(verb, stat)
    verbs.add_section()
    row("all commands", report.overall(), "bold")
    row("all but those after a lookup", report.overall(include_lookups=False))
    lag = report.loop_lag()
    verbs.add_row("event-loop lag (sampled)", str(lag.count), _ms(lag.p50), _ms(lag.p99), _ms(lag.max), "—")
    console.print(verbs)
    console.print(f"  '{LOOKUP_MARK.strip()}': the command follows a self-service HTTP lookup, so its "
                  "turnaround includes the backend's answer.")
    console.print("  event-loop lag: how late a 5 ms timer fires in the server while calls are up; a "
                  "reply also waits about this long before the server reads it.")
    failures = report.failures
    if failures:
        console.print(f"[red]{report.calls - report.completed} failed calls, {len(failures)} problems[/red]:")
        for line in failures[:20]:
            console.print(f"  {line}")
    else:
        console.print(f"[green]all {report.completed} calls completed[/green] at their scripted destination, "
                      "each with a call record")


# --- command line ---------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=1000, help="calls per round (default 1000)")
    parser.add_argument("--concurrency", type=int, default=1000, help="calls up at once (default 1000: all)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds against the same server (default 1)")
    parser.add_argument("--mix", choices=("all", "queues"), default="all",
                        help="all: queue and self-service paths in turn; queues: the two queue paths only")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the server to one CPU")
    parser.add_argument("--ramp", type=float, default=15.0, metavar="S",
                        help="calls arrive evenly over S seconds (default 15, shorter than a call: all 1,000 overlap)")
    parser.add_argument("--time-scale", type=float, default=1.0, metavar="X",
                        help="media takes X times its real time (default 1: as on a PBX; 0: replies at once)")
    parser.add_argument("--profile", default="", metavar="FILE",
                        help="cProfile the server process into FILE (slows it down: figures are not comparable)")
    # internal: the child processes
    parser.add_argument("--serve-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--backend-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--cpus", default="", help=argparse.SUPPRESS)
    parser.add_argument("--sqlite", default="", help=argparse.SUPPRESS)
    parser.add_argument("--backend-url", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.calls < 1 or args.concurrency < 1 or args.repeat < 1:
        parser.error("--calls, --concurrency and --repeat must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> BenchReport:
    args = parse_args(argv)
    report = run_benchmark(args.calls, args.concurrency, args.repeat, pin=not args.no_pin, mix=args.mix,
                           profile=args.profile, time_scale=args.time_scale, ramp=args.ramp)
    print_report(report)
    return report


if __name__ == "__main__":
    _args = parse_args(None)
    if _args.serve_child:
        serve_child_main(_args)
    elif _args.backend_child:
        backend_child_main(_args)
    else:
        sys.exit(0 if main().ok else 1)
