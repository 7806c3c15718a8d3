"""A process that used rig phones exits cleanly, however its calls ended.

pjsua2's objects outlive Python's view of them: the wheel's conference bridge (pjproject
2.15.1) calls a media port back from its clock thread and removes it only on its next tick.
A port destroyed when its call was over crashed the process now and then (SIGSEGV, often in
asyncio.run's clean-up or at exit): here a subprocess rings an agent phone that never
answers, hangs up, stops the pool and returns from asyncio.run, 20 times, with the media
callbacks slowed down and the heap churned so that the race shows up in every run. A
segfault fails the test instead of killing pytest.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ivr.rig.phone import SipServer

SCRIPT = r'''
import asyncio, faulthandler, sys, uuid
faulthandler.enable()
sys.path.insert(0, sys.argv[2])
import ivr.rig.phone as phone
from ivr.rig.agents import AgentBehaviour, AgentPool
from rigkit import local_address

# Widen the race: each media callback spends a little more time holding the GIL (as a
# loaded machine does), and the event loop keeps reusing freed heap blocks (as a GC pass does).
for name in ("onFrameReceived", "onFrameRequested"):
    def slowed(self, frame, _callback=getattr(phone._Port, name)):
        sum(range(2000))
        return _callback(self, frame)
    setattr(phone._Port, name, slowed)

async def churn():
    while True:
        junk = [bytearray(b"\xab" * n) for n in range(520, 2100, 16)]
        del junk
        await asyncio.sleep(0)

async def cycle(server, i):
    churning = asyncio.create_task(churn())
    caller = phone.RigPhone(server, f"teardown-caller-{uuid.uuid4().hex[:8]}", "secret", local_address())
    agent = phone.RigPhone(server, f"teardown-agent-{uuid.uuid4().hex[:8]}", "secret", local_address())
    pool = AgentPool([agent], AgentBehaviour(answer_after=60.0))
    await pool.start()
    await caller.start()
    try:
        await caller.dial(agent.user, timeout=0.5)  # rings, then CANCEL: the agent never answered
    except phone.PhoneError:
        pass
    if i % 2:
        await asyncio.sleep(0.1)
    await pool.stop()  # cancels the _take task sleeping in answer_after
    await caller.stop()
    churning.cancel()

server = phone.SipServer("127.0.0.1", int(sys.argv[1]))
for i in range(int(sys.argv[3])):
    asyncio.run(cycle(server, i))
print("done", flush=True)
'''


def test_a_process_that_rang_an_agent_which_never_answered_exits_cleanly(sip_proxy: SipServer, tmp_path: Path) -> None:
    script = tmp_path / "teardown.py"
    script.write_text(SCRIPT)
    rig_tests = Path(__file__).resolve().parent
    done = subprocess.run([sys.executable, str(script), str(sip_proxy.port), str(rig_tests), "20"],
                          capture_output=True, text=True, timeout=240)  # fmt: skip
    assert done.returncode == 0, f"exit code {done.returncode}\n{done.stderr[-3000:]}"
    assert done.stdout.strip().splitlines()[-1:] == ["done"]
