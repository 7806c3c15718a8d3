"""The asyncio side: connect to a FastAGI server exactly as Asterisk does and play a call."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ivr.pbxsim.caller import AgentBehaviour, CallerScript
from ivr.pbxsim.channel import DialLeg, Heard, SimChannel
from ivr.pbxsim.sounds import SoundLibrary

_ids = itertools.count()


# What dialplans/extensions_ivr.conf runs where an AGI leaves a caller whose agent hung up
# first: [ivr-survey] runs the `survey` script (pass it as SimCall.dialplan).
SURVEY_REENTRY: Mapping[str, str] = {"ivr-survey": "survey?call_id=${IVR_CALL_ID}&queue=${EXTEN}"}


@dataclass(frozen=True)
class SimCall:
    caller: CallerScript = CallerScript()
    extension: str = "400"
    context: str = "ivr"
    script: str = "ivr?hotline=400"  # path and query of the AGI URL
    args: tuple[str, ...] = ()
    channel_type: str = "Local"
    endpoint: str = "caller1"  # the SIP endpoint's name, for channel_type PJSIP: PJSIP/<endpoint>-<n>
    language: str = "en"
    agents: dict[str, AgentBehaviour] = field(default_factory=dict)
    # Channel variables set before the AGI runs (the dialplan's Set before AGI).
    variables: Mapping[str, str] = field(default_factory=dict)
    # The dialplan after the AGI: context -> the AGI script (${...} expanded) that Asterisk
    # runs when an AGI ends with the caller still there and sent to that context. The same
    # channel goes on into it: its variables, clock and caller script (e.g. SURVEY_REENTRY).
    dialplan: Mapping[str, str] = field(default_factory=dict)
    # Seconds before the AGI started that the dialplan answered the caller (its Answer()): Dial's
    # ANSWEREDTIME counts from there.
    answered_before: float = 0.0
    # Directories missing on the PBX: RECORD FILE into one answers `200 result=-1 (writefile)`.
    missing_dirs: tuple[str, ...] = ()
    # Asterisk's `<epoch>.<n>` for the channel (n also names it); None: now and this process's next n.
    uniqueid: str | None = None


@dataclass
class CallResult:
    uniqueid: str
    transcript: list[tuple[str, str]]  # ("A", line) sent by Asterisk, ("S", line) by the server
    heard: list[Heard]
    pressed: list[tuple[float, str, bool]]
    variables: dict[str, str]
    mixmonitor: list[str]
    location: tuple[str, str, str] | None  # where the dialplan continues after the (last) AGI
    hung_up_by: str | None
    call_seconds: float
    server_closed: bool
    error: str | None = None
    # (verb, seconds) per command: from our reply (or the environment) being written to
    # the server's next command arriving, as Asterisk would see the server's latency.
    turnarounds: list[tuple[str, float]] = field(default_factory=list)
    scripts: list[str] = field(default_factory=list)  # the AGI script of each session, in order
    hangup_cause: int | None = None  # the cause a HangUp step gave (None: the caller's BYE, 16)
    # The channel's Dials, in order: each agent leg, with the SIP headers its INVITE carried.
    dials: list[DialLeg] = field(default_factory=list)

    @property
    def prompts(self) -> list[str]:
        """Base names of the files the caller heard, in order."""
        return [h.what.rsplit("/", 1)[-1] for h in self.heard if ":" not in h.what]


class CallObserver(Protocol):
    """Told of a simulated call's life, e.g. by ivr.pbxsim.ami to emit the matching AMI events."""

    def call_started(self, call: SimCall, uniqueid: str, channel: str, request: str) -> None: ...

    def command(self, uniqueid: str, line: str, reply: list[str], channel: SimChannel) -> Iterator[float]:
        """Tell of one command that `channel` has just run. A generator: it tells what happened
        during the command in order and, before what came after the command's start, yields that
        moment on the channel's clock, for a caller playing in real time to wait until then.
        Nothing is told unless it is iterated."""
        ...

    def call_ended(self, result: CallResult) -> None: ...


def environment(call: SimCall, host: str, port: int, uniqueid: str, channel: str,
                place: tuple[str, str, str] | None = None) -> list[tuple[str, str]]:
    """The AGI environment block; `place` (script, context, extension) of a later AGI on the
    same channel, else the call's own."""
    script, context, extension = place or (call.script, call.context, call.extension)
    return [
        ("network", "yes"),
        ("network_script", script),
        ("request", f"agi://{host}:{port}/{script}"),
        ("channel", channel),
        ("language", call.language),
        ("type", call.channel_type),
        ("uniqueid", uniqueid),
        ("version", "22.10.1"),
        ("callerid", call.caller.caller_id),
        ("calleridname", call.caller.caller_name),
        ("callingpres", "0"),
        ("callingani2", "0"),
        ("callington", "0"),
        ("callingtns", "0"),
        ("dnid", "unknown" if call.channel_type == "Local" else call.extension),
        ("rdnis", "unknown"),
        ("context", context),
        ("extension", extension),
        ("priority", "2"),
        ("enhanced", "0.0"),
        ("accountcode", ""),
        ("threadid", "140469405959872"),
        *[(f"arg_{i}", arg) for i, arg in enumerate(call.args, 1)],
    ]


async def place_call(
    host: str,
    port: int,
    call: SimCall,
    *,
    sounds: SoundLibrary,
    close_wait: float = 5.0,
    reply_wait: float = 30.0,
    observer: CallObserver | None = None,
    time_scale: float = 0.0,
    idle_time_passes: bool = False,
) -> CallResult:
    """Connect like Asterisk, send the environment, answer commands until the server closes.
    Asterisk never closes first: `server_closed` says whether the server did. Where
    `call.dialplan` has an AGI for the place the session left the caller at, the channel
    goes on into that AGI over a new connection, as Asterisk's dialplan would.

    `time_scale` > 0 makes media take real time: a reply is held back for that fraction of
    the virtual seconds its command took (1.0 = as long as the audio would play).
    `idle_time_passes` (with `time_scale` > 0): the channel's clock also runs while the server
    sends no command (a caller on hold), by the loop's seconds / `time_scale`, and a hang-up
    due meanwhile (CallerScript.patience, a HangUp's time) reaches the server at once as
    Asterisk's HANGUP line does."""
    n = next(_ids) if call.uniqueid is None else int(call.uniqueid.rpartition(".")[2])
    uniqueid = call.uniqueid or f"{int(time.time())}.{n}"
    channel_name = (f"Local/{call.extension}@{call.context}-{n:08x};2" if call.channel_type == "Local"
                    else f"{call.channel_type}/{call.endpoint}-{n:08x}")
    channel = SimChannel(call.caller, sounds, agents=dict(call.agents), answered_at=-call.answered_before,
                         unwritable=frozenset(d.rstrip("/") for d in call.missing_dirs))
    channel.variables.update({"__exten": call.extension, "__uniqueid": uniqueid, "__context": call.context,
                              "CHANNEL(language)": call.language, **call.variables})
    transcript: list[tuple[str, str]] = []
    result = CallResult(uniqueid, transcript, channel.heard, channel.pressed, channel.variables,
                        channel.mixmonitor, None, None, 0.0, False)
    if observer is not None:
        observer.call_started(call, uniqueid, channel_name, f"agi://{host}:{port}/{call.script}")
    place = (call.script, call.context, call.extension)
    while True:
        result.scripts.append(place[0])
        await _session(host, port, call, channel, channel_name, place, result, close_wait=close_wait,
                       reply_wait=reply_wait, observer=observer, time_scale=time_scale,
                       idle_time_passes=idle_time_passes and time_scale > 0)
        after = channel.location
        script = call.dialplan.get(after[0]) if after is not None else None
        if result.error is not None or not channel.alive or after is None or script is None:
            break
        # The dialplan moves the channel there and runs that AGI: ${EXTEN} is the new extension.
        context, extension, _ = after
        channel.variables.update({"__exten": extension, "__context": context})
        channel.location = None
        place = (channel.expand(script), context, extension)
    result.location = channel.location
    result.hung_up_by = channel.hung_up_by
    result.hangup_cause = channel.hangup_cause
    result.dials = channel.dials
    result.call_seconds = channel.now
    if observer is not None:
        observer.call_ended(result)
    return result


async def _session(
    host: str, port: int, call: SimCall, channel: SimChannel, channel_name: str, place: tuple[str, str, str],
    result: CallResult, *, close_wait: float, reply_wait: float, observer: CallObserver | None, time_scale: float,
    idle_time_passes: bool = False,
) -> None:
    """One AGI session on the channel, from connecting to the server closing."""
    transcript = result.transcript
    result.server_closed = False
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as exc:
        result.error = f"connect failed: {exc}"
        return
    try:
        block = [f"agi_{key}: {value}"
                 for key, value in environment(call, host, port, result.uniqueid, channel_name, place)] + [""]
        transcript.extend(("A", line) for line in block)
        writer.write("".join(f"{line}\n" for line in block).encode())
        await writer.drain()
        replied_at = time.perf_counter()
        loop = asyncio.get_running_loop()
        idle_since = loop.time()
        while True:
            wait = close_wait if not channel.alive else reply_wait
            patience = channel.idle_hangup_after()
            longest = patience if patience is not None else wait
            due = channel.hangup_due() if idle_time_passes else None
            timeout = longest if due is None else min(longest, max(0.0, (due - channel.now) * time_scale))
            try:
                raw = await asyncio.wait_for(reader.readline(), timeout)
            except TimeoutError:
                raw = None
            if idle_time_passes:
                was_alive = channel.alive
                waited = channel.now + (loop.time() - idle_since) / time_scale
                # Woken for the hang-up: it is due (the loop's float clock may fall a hair short).
                channel.pass_time(max(waited, due) if raw is None and due is not None and timeout < longest else waited)
                idle_since = loop.time()
                if was_alive and not channel.alive and channel.variables.get("AGISIGHUP", "yes") != "no":
                    channel.hangup_noticed = True  # res_agi's loop sends HANGUP as the caller leaves
                    transcript.append(("A", "HANGUP"))
                    writer.write(b"HANGUP\n")
                    await writer.drain()
            if raw is None:
                if timeout < longest:
                    continue  # woken for the caller's hang-up (HANGUP sent above once it came)
                if patience is not None:
                    reply = channel.hang_up_while_idle()
                    transcript.extend(("A", out) for out in reply)
                    writer.write("".join(f"{out}\n" for out in reply).encode())
                    await writer.drain()
                    continue
                result.error = f"no command and no close within {wait:g} s"
                break
            if not raw:
                result.server_closed = True
                break
            line = raw.decode(errors="replace").rstrip("\n")
            result.turnarounds.append((SimChannel.verb_of(line), time.perf_counter() - replied_at))
            transcript.append(("S", line))
            reached = channel.now  # the channel time real time has caught up with
            reply = channel.handle(line)
            for out in reply:
                transcript.append(("A", out))
            # What the observer tells of the command comes at its own moment (e.g. AMI's DialEnd
            # when the agent answers, not when Dial returns), the reply at the command's end.
            if observer is not None:
                for at in observer.command(result.uniqueid, line, reply, channel):
                    reached = await _wait_until(at, reached, time_scale)
            await _wait_until(channel.now, reached, time_scale)
            writer.write("".join(f"{out}\n" for out in reply).encode())
            await writer.drain()
            replied_at = time.perf_counter()
            idle_since = loop.time()
    except ConnectionError as exc:
        result.error = f"connection error: {exc}"
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionError:
            pass


async def _wait_until(at: float, reached: float, time_scale: float) -> float:
    """Sleep from channel time `reached` until `at`, scaled; return the time reached."""
    if at <= reached:
        return reached
    if time_scale > 0:
        await asyncio.sleep((at - reached) * time_scale)
    return at


async def place_calls(
    host: str, port: int, calls: Sequence[SimCall], *, sounds: SoundLibrary, concurrency: int = 100,
    observer: CallObserver | None = None, time_scale: float = 0.0,
) -> list[CallResult]:
    gate = asyncio.Semaphore(concurrency)

    async def one(call: SimCall) -> CallResult:
        async with gate:
            return await place_call(host, port, call, sounds=sounds, observer=observer, time_scale=time_scale)

    return list(await asyncio.gather(*(one(call) for call in calls)))
