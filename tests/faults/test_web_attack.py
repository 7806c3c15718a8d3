"""Hostile web clients on the feedback form, which shares its process and descriptors with
FastAGI: `ivr serve` with a descriptor limit of 512, and more clients than that (slow bodies
that claim 100 MB and send 7 bytes, and clients that connect and send nothing), kept up for
the whole test and reconnecting when cut off. Meanwhile FastAGI sessions arrive every 25 ms
and each is timed from the AGI environment sent to the first command (what Asterisk waits
for before the caller hears anything). Asserted: p99 of that under 100 ms, every session
answered, and `ivr agents` answers over the admin socket.

Robust to a busy machine: the bound is p99 over 150 sessions, so one preempted session does
not decide it, and the attackers run niced in a process of their own (in production they are
on other hosts and do not take the controller's CPU)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import Figures
from faultkit import Serve, fault_config
from servekit import REPO, free_port

pytestmark = pytest.mark.faults

NOFILE = 512  # the controller's descriptor limit here: the form may hold 64 of them
SLOW, IDLE = 150, 450  # 600 clients: more than the controller's descriptors
PROBES, EVERY = 150, 0.025
SECRET = "fault-tests-feedback-secret-0123456789abcdef"

ATTACKER = textwrap.dedent("""
    import asyncio, os, resource, sys, time
    port, slow, idle, seconds = map(int, sys.argv[1:5])
    os.nice(10)
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    stop = time.monotonic() + seconds
    opened = 0

    async def client(body: bytes) -> None:
        global opened
        while time.monotonic() < stop:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                opened += 1
                writer.write(body)
                await asyncio.wait_for(reader.read(), max(0.1, stop - time.monotonic()))
                writer.close()
            except (OSError, TimeoutError):
                pass
            await asyncio.sleep(0.5)  # then again, as a bot would

    async def main() -> None:
        slow_body = (b"POST /f/x HTTP/1.1\\r\\nHost: x\\r\\nContent-Type: application/x-www-form-urlencoded\\r\\n"
                     b"Content-Length: 100000000\\r\\n\\r\\nscore=1")
        tasks = [asyncio.create_task(client(slow_body)) for _ in range(slow)]
        tasks += [asyncio.create_task(client(b"")) for _ in range(idle)]
        await asyncio.sleep(1.5)
        print("ready", opened, flush=True)
        await asyncio.gather(*tasks, return_exceptions=True)
        print("connections", opened, flush=True)

    asyncio.run(main())
""")

ENVIRONMENT = ("agi_network_script: ivr?hotline=4008001234\nagi_channel: PJSIP/probe-{n:08x}\nagi_uniqueid: {uid}\n"
               "agi_callerid: 13700000001\nagi_extension: 4008001234\nagi_context: ivr\n\n")


async def _first_commands(port: int, n: int, every: float) -> list[float]:
    """Seconds from the environment sent to the first command, per session (inf: none in 5 s)."""
    took: list[float] = []
    for i in range(n):
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            sent = time.perf_counter()
            writer.write(ENVIRONMENT.format(n=i, uid=f"{time.time():.0f}.{i}").encode())
            line = await asyncio.wait_for(reader.readline(), 5)
            took.append(time.perf_counter() - sent if line else float("inf"))
            writer.write(b"HANGUP\n")  # the caller is gone: the session ends
            writer.close()
        except (OSError, TimeoutError):
            took.append(float("inf"))
        await asyncio.sleep(every)
    return took


def _p99(took: list[float]) -> float:
    ordered = sorted(took)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


async def test_first_agi_command_stays_prompt_while_the_feedback_form_is_attacked(
    tmp_path: Path, figures: Figures
) -> None:
    web_port = free_port()
    config = fault_config(tmp_path, web_port=web_port)
    served = await Serve(config, env={"IVR_FEEDBACK_SECRET": SECRET}, nofile=NOFILE).started()
    attacker: asyncio.subprocess.Process | None = None
    try:
        before = await _first_commands(served.port, 40, EVERY)
        attacker = await asyncio.create_subprocess_exec(
            sys.executable, "-c", ATTACKER, str(web_port), str(SLOW), str(IDLE), "60",
            stdout=subprocess.PIPE, cwd=REPO)
        assert attacker.stdout is not None
        ready = (await asyncio.wait_for(attacker.stdout.readline(), 30)).decode()
        during = await _first_commands(served.port, PROBES, EVERY)
        descriptors = len(os.listdir(f"/proc/{served.process.pid}/fd"))
        agents = await served.agents()
        code = await served.stop()
    finally:
        if attacker is not None and attacker.returncode is None:
            attacker.kill()
            await attacker.wait()
        served.kill()
    output = served.output()

    figures(f"{SLOW} slow-body and {IDLE} idle clients on the form ({ready.split()[1]} connections in the first 1.5 s), "
            f"controller's descriptor limit {NOFILE}, {descriptors} open during the attack")
    figures(f"first AGI command: p99 {_p99(before) * 1000:.1f} ms before the attack, p99 {_p99(during) * 1000:.1f} ms "
            f"and max {max(during) * 1000:.1f} ms during it ({PROBES} sessions); "
            f"`ivr agents` {'answered' if agents.returncode == 0 else 'FAILED'}")

    assert float("inf") not in during  # every session got its first command
    assert _p99(during) < 0.100, sorted(during)[-5:]
    assert agents.returncode == 0 and "1001" in agents.stdout, agents.stderr
    assert descriptors < NOFILE
    assert "connection(s) refused" in output  # the form's cap was reached: the attack was real
    assert code == 0 and "Too many open files" not in output and "Traceback" not in output, output[-3000:]
