"""`ivr rig`: run SIP test scenarios against a PBX with real SIP phones (PJSUA2)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ivr.rig.dtmf import Pcm
    from ivr.rig.runner import ScenarioResult
    from ivr.rig.scenario import PlannedScenario

RTP_DEFAULT = "20000-29999"
CONCURRENCY_DEFAULT = 4


@dataclass(frozen=True)
class _Options:
    pbx: str
    user: str
    password: str
    agents: int
    agent_user_prefix: str
    agent_password: str
    agent_answer_after: float
    agent_hold: float
    agent_audio: Pcm | None
    agent_login: str | None
    agent_logout: str | None
    concurrency: int
    local_ip: str | None
    rtp_ports: str
    verbose: bool


def _pbx(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"{value!r}: expected HOST:PORT, e.g. 127.0.0.1:5060", param_hint="--pbx")
    return host, int(port)


def _port_range(value: str) -> range:
    low, sep, high = value.partition("-")
    if not sep or not low.isdigit() or not high.isdigit() or not 1024 <= int(low) < int(high) < 65536:
        raise click.BadParameter(f"{value!r}: expected LOW-HIGH, e.g. {RTP_DEFAULT}", param_hint="--rtp-ports")
    return range(int(low), int(high) + 1)


@click.group()
def rig() -> None:
    """SIP test rig: real SIP phones that call the IVR, listen, press keys and check."""


@rig.command("run")
@click.argument("scenarios", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--pbx", required=True, metavar="HOST:PORT", help="SIP server the rig's phones register with and call through.")
@click.option("--user", required=True, help="SIP user of the caller phone (e.g. caller1 of dialplans/pjsip.conf).")
@click.option("--password", default="", envvar="IVR_RIG_PASSWORD", show_envvar=True, help="The caller's SIP password.")
@click.option("--agents", type=click.IntRange(0), default=0, show_default=True, help="Agent phones to register.")
@click.option("--agent-user-prefix", default="100", show_default=True, help="Agent users are <prefix>1 .. <prefix>N.")
@click.option(
    "--agent-password",
    default="",
    envvar="IVR_RIG_AGENT_PASSWORD",
    show_envvar=True,
    help="Agents' SIP password; {user} is replaced by the agent's user (change-me-{user}).",
)
@click.option("--agent-answer-after", type=click.FloatRange(0), default=1.0, show_default=True, help="Seconds an agent phone rings.")
@click.option("--agent-hold", type=click.FloatRange(0), default=5.0, show_default=True, help="Seconds from answering to hanging up (at the earliest once its audio is played).")
@click.option(
    "--agent-audio",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="WAV (8 kHz mono 16-bit) agents play after their identification tones.",
)
@click.option("--agent-login", metavar="CODE", help="Each agent phone dials this first (e.g. *71) and waits for the hang-up.")
@click.option("--agent-logout", metavar="CODE", help="Each agent phone dials this at the end (e.g. *72).")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path), help="Write JUnit XML here.")
@click.option(
    "--concurrency",
    type=click.IntRange(1),
    help=f"Scenarios run at once (default {CONCURRENCY_DEFAULT}); phones run in as many processes as that needs.",
)
@click.option("--local-ip", help="Address the phones listen on and announce (default: the one that reaches the PBX).")
@click.option("--rtp-ports", default=RTP_DEFAULT, show_default=True, help="UDP ports the phones' audio may use.")
@click.option("-v", "--verbose", is_flag=True, help="Log SIP and call events to stderr.")
def run(
    scenarios: tuple[Path, ...],
    pbx: str,
    user: str,
    password: str,
    agents: int,
    agent_user_prefix: str,
    agent_password: str,
    agent_answer_after: float,
    agent_hold: float,
    agent_audio: Path | None,
    agent_login: str | None,
    agent_logout: str | None,
    junit_path: Path | None,
    concurrency: int | None,
    local_ip: str | None,
    rtp_ports: str,
    verbose: bool,
) -> None:
    """Run the scenarios of SCENARIOS (YAML files); print a pass/fail table.

    Exit status: 0 when every scenario passed, 1 when one failed, 2 on bad input.
    """
    from rich.console import Console

    from ivr.rig.audio import AudioError, load_wav
    from ivr.rig.report import print_results, write_junit
    from ivr.rig.scenario import ScenarioError, load_files

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    _pbx(pbx)
    if concurrency is None:
        concurrency = CONCURRENCY_DEFAULT
    if len(_port_range(rtp_ports)) < 4 * (agents + concurrency):
        raise click.BadParameter(
            f"{rtp_ports!r}: too few ports for {agents} agent phones and {concurrency} calls (4 each at least)", param_hint="--rtp-ports"
        )
    try:
        planned = load_files(list(scenarios))
    except ScenarioError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        click.echo(f"{len(exc.problems)} problem(s)", err=True)
        sys.exit(2)
    if agents == 0:
        needing = [f"{s.file}: {s.name}" for s in planned if s.uses_agents]
        if needing:
            click.echo(f"agent steps need agent phones (--agents N): {', '.join(needing)}", err=True)
            sys.exit(2)
    try:
        audio = load_wav(agent_audio) if agent_audio is not None else None
    except AudioError as exc:
        click.echo(f"--agent-audio: {exc}", err=True)
        sys.exit(2)
    options = _Options(
        pbx, user, password, agents, agent_user_prefix, agent_password, agent_answer_after, agent_hold,
        audio, agent_login, agent_logout, concurrency, local_ip, rtp_ports, verbose,
    )  # fmt: skip
    results = asyncio.run(_run(planned, options))
    print_results(results, Console(soft_wrap=False))
    if junit_path is not None:
        write_junit(results, junit_path, now=dt.datetime.now(dt.timezone.utc))
        click.echo(f"JUnit XML: {junit_path}")
    sys.exit(0 if all(r.status == "passed" for r in results) else 1)


async def _run(planned: list[PlannedScenario], options: _Options) -> list[ScenarioResult]:
    from ivr.rig.agents import AgentBehaviour, AgentPool
    from ivr.rig.farm import CallerLines, PhoneFarm
    from ivr.rig.phone import LocalAddress, PhoneError, SipServer, free_udp_port, local_ip_towards
    from ivr.rig.runner import Runner, ScenarioResult  # noqa: F811 - the run-time name

    host, port = _pbx(options.pbx)
    server = SipServer(host, port)
    ports = _port_range(options.rtp_ports)
    # A caller line holds at least one call: never more phones than agents + concurrency.
    share = len(ports) // (options.agents + options.concurrency)
    blocks = iter(range(ports.start, ports.stop - share + 1, share))

    def all_error(reason: str) -> list[ScenarioResult]:
        return [ScenarioResult(s, "error", reason) for s in planned]

    farm = PhoneFarm(server, verbose=options.verbose)
    pool: AgentPool | None = None
    caller: CallerLines | None = None
    try:
        try:
            ip = options.local_ip or local_ip_towards(server)

            def local() -> LocalAddress:
                start = next(blocks)
                return LocalAddress(ip, free_udp_port(ip), range(start, start + share))

            if options.agents:
                users = [f"{options.agent_user_prefix}{i}" for i in range(1, options.agents + 1)]
                phones = [await farm.phone(u, options.agent_password.replace("{user}", u), local()) for u in users]
                behaviour = AgentBehaviour(options.agent_answer_after, options.agent_hold, options.agent_audio)
                pool = AgentPool(list(phones), behaviour)
            caller = await farm.caller(options.user, options.password, local, calls=options.concurrency)
            click.echo(
                f"rig: {options.agents} agent phones and caller {options.user} on {caller.lines} line(s)"
                f" in {farm.hosts} process(es)", err=True,
            )  # fmt: skip
        except OSError as exc:  # an unknown host, an address that is not this machine's
            return all_error(f"cannot set up the rig's phones for {host}:{port}: {exc}")
        try:
            await caller.start()
            if pool is not None:
                await pool.start()
                if options.agent_login:
                    await pool.dial_code(options.agent_login)
        except PhoneError as exc:
            return all_error(str(exc))
        results = await Runner(caller, pool, concurrency=options.concurrency).run(planned)
        if pool is not None and options.agent_logout:
            try:
                await pool.dial_code(options.agent_logout)
            except PhoneError as exc:
                logging.getLogger(__name__).warning("agent logout: %s", exc)
        return results
    finally:
        if pool is not None:
            await pool.stop()
        if caller is not None:
            await caller.stop()
        await farm.close()
