"""One process of the real-PBX tier's phones (`python tierworker.py JOB`).

The pjsua2 wheel holds 4 calls and 8 phones per process (ivr/rig/phone.py), so a test with
more calls at once runs several of these. JOB is JSON: {"sip_port", "tmp", "rtp_base" (its phones' RTP ports),
"calls": {caller user: scenarios YAML text}, "passwords": {user: password},
"agents": [agent users] (optional, answering with "hold" and "answer_after" seconds; logged
in with *71 first and out with *72 after; with no calls, until "stop_file" exists)}. It prints one JSON line: per caller, its
scenarios' name, status, reason, agent and log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parents[1])]

from ivr.rig.agents import AgentBehaviour  # noqa: E402

import tierkit  # noqa: E402


async def run(job: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    pbx = tierkit.PbxAddress(job["sip_port"], job["passwords"])
    tierkit.use_rtp_ports_from(job["rtp_base"])
    async with AsyncExitStack() as stack:
        agents = None
        if job.get("agents"):
            behaviour = AgentBehaviour(answer_after=job.get("answer_after", 0.5), hold=job.get("hold", 3.0))
            agents = await stack.enter_async_context(
                tierkit.agents_logged_in(pbx, job["agents"], behaviour, login=job["login"]))
        results = await tierkit.run_each(Path(job["tmp"]), pbx, job["calls"], agents=agents)
        # Agents for other processes' callers stay logged in until the test says stop.
        while not job["calls"] and not Path(job["stop_file"]).exists():
            await asyncio.sleep(0.1)
    return {caller: [{"name": r.scenario.name, "status": r.status, "reason": r.reason, "agent": r.agent, "log": r.log}
                     for r in rs] for caller, rs in results.items()}  # fmt: skip


if __name__ == "__main__":
    # A phone keeps real time: 20 ms frames each way. Ahead of other work on a busy machine
    # (as root; elsewhere it runs at the normal priority).
    with contextlib.suppress(PermissionError):
        os.nice(-10)
    print(json.dumps(asyncio.run(run(json.loads(sys.argv[1])))), flush=True)
