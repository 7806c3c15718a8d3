"""A process of rig phones for the real-PBX tests (`python phonefarm.py JOB`).

pjsua2's wheel holds 8 phones and 4 calls per process, so tests that need more run several
of these. JOB is JSON: {"pbx": [host, port], "rtp": first RTP port, "linger": seconds,
"sip_log": file for pjsua's SIP messages or null,
"phones": [{"user", "password", "expiry", "answer": bool, "calls": [{"dial", "hold",
"expect": [language, prompt id] or null, "end": "far" if the far end is to hang up}]}]}. Each phone registers; an answering phone
answers what rings and keeps it until the far end hangs up. The phones place their calls
at once (each phone its own one after the other); a call must be answered and its expected
prompt heard, and the rig hangs it up after `hold` seconds unless the far end hung up
first. One JSON line of results goes to stdout; exit 0 when every call did all that.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from ivr.rig import audio
from ivr.rig.phone import LocalAddress, PhoneError, RigCall, RigPhone, SipServer, free_udp_port

PROMPTS = Path(__file__).resolve().parents[2] / "prompts" / "sounds"


async def place(phone: RigPhone, spec: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {"dial": spec["dial"], "ok": False}
    try:
        call = await phone.dial(spec["dial"], timeout=15)
    except PhoneError as exc:
        result["error"] = str(exc)
        return result
    result.update(call_id=call.sip_call_id, answered_at=time.time(), telephone_events=call.telephone_events)
    expect = spec.get("expect")
    if expect:
        template = audio.Template.of(expect[1], audio.load_wav(PROMPTS / expect[0] / f"{expect[1]}.wav"))
        deadline = time.monotonic() + 20
        match = None
        while match is None and time.monotonic() < deadline and not call.ended:
            await asyncio.sleep(0.1)
            match = audio.find_prompt(template, call.heard())
        result["heard"] = None if match is None else round(match.score, 3)
    left = result["answered_at"] + spec["hold"] - time.time()
    if await call.wait_ended(max(0.0, left)):
        result["ended_by"] = "far end"
    else:
        result["hangup_at"] = time.time()
        await call.hangup()
        result["ended_by"] = "rig"
        result["bye_answered"] = call.ended
    wanted = "far end" if spec.get("end") == "far" else "rig"  # "far": the far end hangs up within `hold`
    result["ok"] = result["ended_by"] == wanted and (not expect or result["heard"] is not None)
    return result


async def answer_all(phone: RigPhone, answered: list[dict[str, Any]]) -> None:
    async def keep(call: RigCall) -> None:
        await call.answer()
        answered.append({"call_id": call.sip_call_id})
        while not await call.wait_ended(3600):
            pass
        answered[-1]["ended"] = True

    tasks: set[asyncio.Task[None]] = set()
    while True:
        call = await phone.incoming()
        task = asyncio.create_task(keep(call))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


async def run(job: dict[str, Any]) -> tuple[bool, list[dict[str, Any]]]:
    server = SipServer(job["pbx"][0], job["pbx"][1])
    phones = []
    for n, spec in enumerate(job["phones"]):
        rtp = job["rtp"] + 40 * n
        local = LocalAddress("127.0.0.1", free_udp_port("127.0.0.1"), range(rtp, rtp + 40))
        phones.append(RigPhone(server, spec["user"], spec["password"], local, register_expiry=spec.get("expiry", 300)))
    results: list[dict[str, Any]] = [{"user": spec["user"]} for spec in job["phones"]]
    try:
        await asyncio.gather(*(p.start() for p in phones))
    except PhoneError as exc:
        await asyncio.gather(*(p.stop() for p in phones))
        return False, [{"error": str(exc)}]
    servers = []
    for phone, spec, result in zip(phones, job["phones"], results):
        if spec.get("answer"):
            result["answered"] = []
            servers.append(asyncio.create_task(answer_all(phone, result["answered"])))

    async def one_after_another(phone: RigPhone, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [await place(phone, spec) for spec in calls]

    placed = await asyncio.gather(*(one_after_another(p, s.get("calls", [])) for p, s in zip(phones, job["phones"])))
    for phone, result, calls in zip(phones, results, placed):
        result["calls"] = list(calls)
        result["registrations"] = phone.registrations
    await asyncio.sleep(job.get("linger", 0))
    for task in servers:
        task.cancel()
    await asyncio.gather(*servers, return_exceptions=True)
    await asyncio.gather(*(p.stop() for p in phones))
    return all(c["ok"] for r in results for c in r["calls"]), results


def main() -> None:
    job = json.loads(sys.argv[1])
    if job.get("sip_log"):  # every SIP message the phones sent and received (pjsua's log)
        handler = logging.FileHandler(job["sip_log"])
        logging.getLogger("ivr.rig.pjsua").addHandler(handler)
        logging.getLogger("ivr.rig.pjsua").setLevel(logging.DEBUG)
    started = time.monotonic()
    ok, results = asyncio.run(run(job))
    for result in results:  # what the process cost (the README's figures for 20 phones)
        result["process"] = {"cpu_s": round(time.process_time(), 2), "wall_s": round(time.monotonic() - started, 2)}
    print(json.dumps(results), flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
