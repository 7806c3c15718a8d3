"""Rig phones: real SIP user agents (PJSUA2, the pjproject SIP stack) behind an asyncio interface.

The only module that imports pjsua2. pjproject is the SIP stack Asterisk's chan_pjsip is
built on; it does what pyVoIP 1.6.8 (the rig's first stack) got wrong against a real
Asterisk 22: it answers the qualify OPTIONS that arrive while an INVITE is pending, ACKs a
2xx with the 200 OK's To-tag, gives every INVITE a branch of its own, and refreshes its
registration before it expires.

Threads. The pjsua2 `Endpoint` is a process-wide singleton, created on first use: pjsua's
worker thread runs SIP (registration, calls, OPTIONS, DTMF callbacks), its media thread
receives RTP, and the null sound device's clock thread drives the conference bridge every
20 ms (no sound card is opened). Callbacks from those threads change only thread-safe state
and hand events to the phone's event loop with `call_soon_threadsafe`. Every Python thread
that calls into pjsua (the event loop's, and whichever drops the last reference to a call)
is registered with `libRegisterThread` first. The endpoint is destroyed once, at interpreter
exit (`atexit`), after every phone's calls have been hung up and its accounts and transports
closed, so that exit neither hangs nor crashes.

Object lifetimes. Python never destroys a pjsua2 object that pjsua may still call back: such
objects are handed to C++ (`__disown__`) and live until the process exits. The wheel's
conference bridge (pjproject 2.15.1) removes a port asynchronously, in its clock thread's
next tick, but `~AudioMediaPort` frees the port at once; and a port being destroyed in one
thread while the clock thread waits for the GIL to call it back is called half-destroyed. Both
crashed processes (SIGSEGV when a call's port was let go, often in a garbage-collection pass
or at exit). So media ports are made once and reused (`_Stack.spare_ports`, after a rest: a few per
process, never leaving the bridge); a `Call` is kept after its call is over (its destructor would
clear, and hang up, whatever later call pjsua put in the same slot); an `Account` is kept after
`shutdown()` (its destructor would delete whichever account took its slot).

One phone = one pjsua `Account` (digest auth, registration refreshed by pjsua itself) on a
UDP transport of its own bound to its `LocalAddress` (not a shared transport: pjsua binds an
account to a transport with `sipConfig.transportId`). The pjsua2 wheel (pjsua2-python
2.15.1) is built with pjproject's default limits, measured: 8 SIP transports, 8 accounts
(a 9th aborts the process on an assertion) and 4 calls at once (a 5th INVITE or offered
call is refused) per process: `MAX_PHONES` and `MAX_CALLS` are checked before pjsua is
asked, and give a `PhoneError`. More phones or calls need more processes.

Media: each call gets an `AudioMediaPort` (8000 Hz mono 16-bit, 20 ms frames) connected both
ways to the call's audio on the conference bridge (clock rate 8000 Hz). `onFrameReceived`
lays each frame on a `Timeline` at its arrival time (consecutive frames are consecutive:
the bridge hands out jitter-buffered audio); `onFrameRequested` sends queued audio (prompts,
in-band tones) or silence. Codecs: PCMU, then PCMA; telephone-event is offered, and RFC 4733
keys are sent with `sendDtmf` (pjmedia's stream sends the events) and received by
`onDtmfDigit`.

One file past 600 lines: the only module that touches pjsua2's threads and callbacks; the
rest of the rig sees asyncio objects.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import ctypes
import logging
import os
import socket
import sys
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pjsua2 as pj

from ivr.rig.audio import RATE, Timeline
from ivr.rig.dtmf import Pcm, tones
from ivr.rig.lines import wait_for_end

log = logging.getLogger(__name__)
pjsua_log = logging.getLogger("ivr.rig.pjsua")

FRAME = RATE // 50  # samples in a 20 ms frame
MAX_PHONES = 8  # accounts (PJSUA_MAX_ACC) and UDP transports the wheel's pjsua holds per process
MAX_CALLS = 4  # calls at once per process (PJSUA_MAX_CALLS of the wheel: a 5th is refused)
# Seconds to wait for the registrar's final answer. pjsip retransmits the REGISTER meanwhile
# (SIP's own limit is 32 s); 5 s was seen to run out on a loaded 2-core CI machine.
REGISTER_TIMEOUT = 15.0
MEDIA_TIMEOUT = 5.0  # seconds from answering until the call's audio must be connected
HANGUP_WAIT = 5.0  # seconds hangup() waits for the far end to confirm the BYE
STALL = 5.0  # seconds without a frame sent before play() gives up on the media clock
DTMF_MS = 120  # duration of one RFC 4733 key press
DTMF_GAP_MS = 80  # what pjmedia adds per key (end packets, the next key's start) to wait for
PORT_QUARANTINE = 1.0  # seconds a call's media port rests before another call may use it


class PhoneError(Exception):
    """A phone could not register, or a call could not be placed."""


@dataclass(frozen=True)
class SipServer:
    host: str
    port: int


@dataclass(frozen=True)
class LocalAddress:
    """Where a phone listens: its SIP port and the RTP ports its calls may use."""

    ip: str
    sip_port: int
    rtp_ports: range


def free_udp_port(ip: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((ip, 0))
        port: int = probe.getsockname()[1]
        return port


def local_ip_towards(server: SipServer) -> str:
    """The address this host uses to reach `server` (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((server.host, server.port))
        ip: str = probe.getsockname()[0]
        return ip


# --- the process-wide endpoint -----------------------------------------------------------------


class _LogWriter(pj.LogWriter):  # type: ignore[misc]
    """pjsua's log lines to Python logging (logger `ivr.rig.pjsua`, DEBUG)."""

    def write(self, entry: Any) -> None:
        try:
            if pjsua_log.isEnabledFor(logging.DEBUG):
                pjsua_log.debug("%s", str(entry.msg).rstrip())
        except Exception:  # an exception must never unwind into pjsua's C threads
            pass


def _vector_reader() -> Any:
    """How to copy a pjsua2 ByteVector (a std::vector<unsigned char>) to bytes. Element by
    element through SWIG costs ~150 us per 20 ms frame; reading the vector's storage with
    ctypes ~1.5 us. The fast way is used only if it reads a known vector right."""

    def fast(vector: Any, size: int) -> bytes:
        begin = ctypes.c_void_p.from_address(int(vector.this)).value
        return ctypes.string_at(begin, size) if begin else bytes(size)

    def slow(vector: Any, size: int) -> bytes:
        return bytes(vector)[:size]

    probe = bytes(range(256))
    try:
        if fast(pj.ByteVector(probe), len(probe)) == probe:
            return fast
    except (TypeError, ValueError, OSError):
        pass
    return slow


def _without_stdout(fn: Any) -> None:
    sys.stdout.flush()
    saved = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        fn()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(null)


def _load_openssl_digests() -> None:
    """pjsip 2.15 answers a digest challenge only for algorithms OpenSSL's
    EVP_get_digestbyname() knows. The wheel bundles OpenSSL 1.0.2, whose digest table is
    empty until OpenSSL_add_all_digests() is called (pjsip calls it only when it sets up
    TLS): without this, every REGISTER to Asterisk ends in 401 ("The algorithm (MD5)
    referenced by algorithm_type is not supported"). OpenSSL 1.1+ fills the table itself."""
    libs = Path(pj.__file__).resolve().parent.parent / "pjsua2_python.libs"
    for path in sorted(libs.glob("libcrypto-*.so*")):
        add_all = getattr(ctypes.CDLL(str(path)), "OpenSSL_add_all_digests", None)
        if add_all is not None:
            add_all()


class _Stack:
    """The pjsua2 Endpoint of this process and what it was set up with."""

    def __init__(self) -> None:
        ep = pj.Endpoint()
        _without_stdout(ep.libCreate)  # pjlib prints its start-up to stdout before libInit's log config
        config = pj.EpConfig()
        config.uaConfig.threadCnt = 1
        config.uaConfig.mainThreadOnly = False
        config.uaConfig.maxCalls = MAX_CALLS
        config.uaConfig.userAgent = f"ivr-rig (pjsua2 {ep.libVersion().full})"
        # Level 4: every SIP message, for whoever turns logger ivr.rig.pjsua to DEBUG (the
        # writer drops the lines otherwise). With a writer, pjsua's "console" is the writer:
        # nothing goes to stdout or stderr.
        config.logConfig.level = config.logConfig.consoleLevel = 4
        config.logConfig.msgLogging = True
        self.writer = _LogWriter()
        config.logConfig.writer = self.writer
        self.writer.__disown__()  # the endpoint deletes its writer in libDestroy
        media = config.medConfig
        media.clockRate = RATE
        media.sndClockRate = RATE
        media.channelCount = 1
        media.audioFramePtime = 20
        media.ptime = 20
        media.noVad = True  # a steady stream of packets, never comfort noise
        media.ecTailLen = 0  # no echo canceller: the rig hears what was sent
        _load_openssl_digests()
        ep.libInit(config)
        ep.audDevManager().setNullDev()
        for codec in ep.codecEnum2():
            name = str(codec.codecId)
            ep.codecSetPriority(name, {"PCMU/8000/1": 255, "PCMA/8000/1": 254}.get(name, 0))
        for name in ("PCMU/8000/1", "PCMA/8000/1"):
            # No packet loss concealment: it blends the first packets of a stream into
            # generated audio and shifts what follows by a few ms (prompts then match worse).
            param = ep.codecGetParam(name)
            param.setting.plc = False
            param.setting.vad = False
            ep.codecSetParam(name, param)
        ep.libStart()
        self.ep = ep
        self.read_vector = _vector_reader()
        self.phones: weakref.WeakSet[RigPhone] = weakref.WeakSet()
        self.registered = threading.local()
        self.ports_lock = threading.Lock()
        self.spare_ports: list[tuple[float, _Port]] = []  # (when its call let go of it, port)
        self.ports = 0  # media ports made (never destroyed)

    def take_port(self, media: _Media) -> _Port:
        """A media port for a call: a spare one, or a new one (handed to C++ for good)."""
        port = None
        with self.ports_lock:
            now = time.monotonic()
            for index, (freed, spare) in enumerate(self.spare_ports):
                if now - freed >= PORT_QUARANTINE and not _listening(spare):
                    port = spare
                    del self.spare_ports[index]
                    break
            if port is None:
                self.ports += 1
                number = self.ports
        if port is None:
            port = _Port(None, self.read_vector)
            fmt = pj.MediaFormatAudio()
            fmt.init(pj.PJMEDIA_FORMAT_PCM, RATE, 1, 20000, 16)
            port.createPort(f"rig-port{number}", fmt)
            port.__disown__()  # never destroyed: see the module docstring
        port.attach(media)
        return port

    def give_back_port(self, port: _Port, *, reusable: bool) -> None:
        """A call is done with `port`. Reused only if the call is over (pjsua takes its audio
        off the bridge, and with it every connection to the port), PORT_QUARANTINE s later and
        once the bridge shows it connected to nothing; otherwise left idle for good."""
        port.attach(None)
        if reusable:
            with self.ports_lock:
                self.spare_ports.append((time.monotonic(), port))


def _listening(port: _Port) -> bool:
    """Whether the bridge still has `port` sending to some port (a call's audio)."""
    try:
        return len(port.getPortInfo().listeners) > 0
    except pj.Error:
        return True


_stack_lock = threading.Lock()
_stack: _Stack | None = None
_destroyed = False


def _endpoint() -> _Stack:
    """The endpoint, created on first use; the calling thread registered with pjlib."""
    global _stack
    with _stack_lock:
        if _destroyed:
            raise PhoneError("the SIP stack has been shut down (the process is exiting)")
        if _stack is None:
            try:
                _stack = _Stack()
            except pj.Error as exc:
                raise PhoneError(f"cannot start the SIP stack (pjsua2): {exc.info()}") from exc
            atexit.register(_shutdown)
        stack = _stack
    _register_thread(stack)
    return stack


def _register_thread(stack: _Stack) -> None:
    if getattr(stack.registered, "done", False):
        return
    if not stack.ep.libIsThreadRegistered():
        stack.ep.libRegisterThread(f"py-{threading.current_thread().name}"[:30])
    stack.registered.done = True


def _registered_if_alive() -> None:
    """Before a pjsua object may be destroyed in this thread."""
    stack = _stack
    if stack is not None and not _destroyed:
        _register_thread(stack)


def _shutdown() -> None:
    """At interpreter exit: release every phone's pjsua objects, then destroy the endpoint."""
    global _stack, _destroyed
    with _stack_lock:
        stack = _stack
        _destroyed = True
        if stack is None:
            return
        _register_thread(stack)
        for phone in list(stack.phones):
            phone._release()
        try:
            stack.ep.hangupAllCalls()
            stack.ep.libDestroy()
        except pj.Error as exc:
            log.debug("pjsua shutdown: %s", exc.info())
        _stack = None


# --- calls -------------------------------------------------------------------------------------


class _Media:
    """A call's audio as both sides of the bridge see it; shared by the port (bridge clock
    thread) and the call (event loop) under one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.timeline: Timeline | None = None
        self.received = 0  # samples received (the frame counter: the bridge's timestamps)
        self.outgoing = bytearray()  # 16-bit PCM waiting to be sent
        self.queued = 0  # bytes ever queued
        self.sent = 0  # bytes ever sent
        self.last_sent = time.monotonic()


class _Port(pj.AudioMediaPort):  # type: ignore[misc]
    """The rig's end of a call's audio on the conference bridge; serves one call at a time
    (`_media`, None while idle) and is never destroyed (see the module docstring)."""

    def __init__(self, media: _Media | None, read_vector: Any) -> None:
        super().__init__()
        self._media = media
        self._read = read_vector
        self._silence = pj.ByteVector(bytes(2 * FRAME))

    def attach(self, media: _Media | None) -> None:
        self._media = media  # one reference assignment: atomic for the clock thread

    def onFrameReceived(self, frame: Any) -> None:  # noqa: N802 (pjsua2's name)
        try:
            media = self._media
            if media is None:
                return  # idle: between calls
            now = time.monotonic()
            size = int(frame.size)
            if frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO and size:
                pcm = np.frombuffer(self._read(frame.buf, size), dtype="<i2").astype(np.int16)
            else:
                pcm = np.zeros(FRAME, dtype=np.int16)
            with media.lock:
                if media.timeline is not None:
                    media.timeline.add(now, media.received, pcm)
                    media.received += len(pcm)
        except Exception:
            log.exception("rig media port: a received frame was lost")

    def onFrameRequested(self, frame: Any) -> None:  # noqa: N802
        try:
            media = self._media
            if media is None:
                return  # idle: the bridge sends silence
            with media.lock:
                if media.outgoing:
                    chunk = bytes(media.outgoing[: 2 * FRAME])
                    del media.outgoing[: 2 * FRAME]
                    media.sent += len(chunk)
                    media.last_sent = time.monotonic()
                    chunk = chunk.ljust(2 * FRAME, b"\0")
                else:
                    chunk = b""
            frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
            frame.buf = pj.ByteVector(chunk) if chunk else self._silence
            frame.size = 2 * FRAME
        except Exception:
            log.exception("rig media port: a frame could not be sent")


class _PjCall(pj.Call):  # type: ignore[misc]
    """pjsua's call; events go to its RigCall (held weakly: no cycle for the GC to break in a
    thread pjlib does not know)."""

    def __init__(self, account: pj.Account, owner: RigCall, call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(account, call_id)
        self._owner = weakref.ref(owner)

    def onCallState(self, prm: Any) -> None:  # noqa: N802
        try:
            owner = self._owner()
            if owner is not None:
                info = self.getInfo()
                owner._state(int(info.state), int(info.lastStatusCode), str(info.lastReason))
        except Exception:
            log.exception("rig call: a state change was lost")

    def onCallMediaState(self, prm: Any) -> None:  # noqa: N802
        try:
            owner = self._owner()
            if owner is not None:
                owner._media_changed(self)
        except Exception:
            log.exception("rig call: a media change was lost")

    def onDtmfDigit(self, prm: Any) -> None:  # noqa: N802
        try:
            owner = self._owner()
            if owner is not None:
                owner._key(str(prm.digit))
        except Exception:
            log.exception("rig call: a received key was lost")


class RigCall:
    """One call of a rig phone, as the scenario runner and the agent phones use it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, stack: _Stack) -> None:
        self._loop = loop
        self._stack = stack
        self._pjcall: _PjCall | None = None
        self._media = _Media()
        self._port: _Port | None = None
        self._connected = False
        self._events = False
        self._keys: list[str] = []
        self._keys_lock = threading.Lock()
        self._ended = False
        self.status = ""  # the last SIP status seen, e.g. "486 Busy Here"
        self._confirmed_event = asyncio.Event()
        self._ended_event = asyncio.Event()
        self._media_event = asyncio.Event()
        self.sip_call_id = ""
        self.finished = threading.Event()  # set once the call is over for the rig

    def __repr__(self) -> str:
        return f"RigCall({self.sip_call_id})"

    # --- from pjsua's threads -------------------------------------------------------------

    def _notify(self, event: asyncio.Event) -> None:
        try:
            self._loop.call_soon_threadsafe(event.set)
        except RuntimeError:
            pass  # the loop is closed: nobody waits any more

    def _state(self, state: int, code: int, reason: str) -> None:
        if code:
            self.status = f"{code} {reason}"
        if state == pj.PJSIP_INV_STATE_CONFIRMED:
            self._notify(self._confirmed_event)
        elif state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self._ended = True
            self.finished.set()
            self._notify(self._ended_event)
            # pjsua reuses the call's slot for a later call: let go of the pjsua objects now
            # (in the event loop's thread), not when this RigCall is collected.
            try:
                self._loop.call_soon_threadsafe(self._release)
            except RuntimeError:
                pass  # the loop is closed: the phone's stop or the exit handler releases them

    def _media_changed(self, call: _PjCall) -> None:
        info = call.getInfo()
        port = self._port
        if port is None:
            return
        for media in info.media:
            if media.type != pj.PJMEDIA_TYPE_AUDIO or media.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            audio = call.getAudioMedia(media.index)
            with self._media.lock:
                if self._media.timeline is None:
                    self._media.timeline = Timeline(time.monotonic())
            audio.startTransmit(port)
            port.startTransmit(audio)
            try:
                # The payload type pjmedia sends telephone events with: -1 when the far end's
                # SDP did not accept telephone-event.
                self._events = int(call.getStreamInfo(media.index).audTxEventPt) > 0
            except pj.Error:
                self._events = False
            self._connected = True
            self._notify(self._media_event)

    def _key(self, key: str) -> None:
        with self._keys_lock:
            self._keys.append(key)

    # --- set-up (RigPhone) -------------------------------------------------------------------

    def _attach(self, call: _PjCall) -> None:
        self._pjcall = call
        self._port = self._stack.take_port(self._media)

    def _release(self) -> None:
        """Let go of the pjsua objects: the port goes back to the spare ones (or stays idle if
        the call is not over), the Call is handed to C++ (never destroyed: see the module
        docstring). Nothing pjsua holds is destroyed here."""
        port, self._port = self._port, None
        if port is not None:
            self._stack.give_back_port(port, reusable=self._ended)
        call, self._pjcall = self._pjcall, None
        if call is not None:
            call.__disown__()

    # --- state --------------------------------------------------------------------------------

    @property
    def ended(self) -> bool:
        return self._ended

    async def wait_ended(self, timeout: float) -> bool:
        return self._ended or await wait_for_end(self._ended_event, timeout) or self._ended

    async def answer(self) -> None:
        """Answer an incoming call (200 OK); return once its audio is connected."""
        call = self._pjcall
        if call is None or self._ended:
            raise PhoneError("the call is over")
        _endpoint()
        try:
            call.answer(_op(200))
        except pj.Error as exc:
            raise PhoneError(f"cannot answer {self.sip_call_id}: {exc.info()}") from exc
        await self._await_media()

    async def _await_media(self) -> None:
        if self._connected:
            return
        try:
            await asyncio.wait_for(self._media_event.wait(), MEDIA_TIMEOUT)
        except TimeoutError:
            if not self._ended:
                raise PhoneError(f"no audio stream within {MEDIA_TIMEOUT:g} s (no codec in common: PCMU/PCMA?)") from None

    # --- what the phone hears -------------------------------------------------------------------

    def heard(self) -> Pcm:
        """Everything received so far (16-bit, 8 kHz), silence where nothing came."""
        media = self._media
        with media.lock:
            if media.timeline is None:
                return np.zeros(0, dtype=np.int16)
            return media.timeline.pcm(time.monotonic())

    def keys_received(self) -> str:
        """RFC 4733 keys the far end sent, since the call started."""
        with self._keys_lock:
            return "".join(self._keys)

    # --- what the phone sends -------------------------------------------------------------------

    @property
    def telephone_events(self) -> bool:
        """Whether the far end accepted RFC 4733 telephone events for this call."""
        return self._events

    async def play(self, pcm: Pcm) -> None:
        """Send `pcm` after what is already queued; return once all of it has been sent."""
        media = self._media
        data = pcm.astype("<i2").tobytes()
        with media.lock:
            if not media.outgoing:
                media.last_sent = time.monotonic()
            media.outgoing += data
            media.queued += len(data)
            target = media.queued
        while not self._ended:
            with media.lock:
                if media.sent >= target:
                    break
                stalled = time.monotonic() - media.last_sent > STALL
            if stalled:
                raise PhoneError(f"the call's audio stopped being sent (nothing for {STALL:g} s)")
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.02)  # the last frame is on its way

    async def send_keys(self, keys: str, *, inband: bool) -> None:
        """Press `keys`: as RFC 4733 events, or as tones in the audio."""
        if inband:
            await self.play(tones(keys))
            return
        if not self._events:
            raise PhoneError("the far end did not accept telephone-event (RFC 4733): send the keys in-band")
        call = self._pjcall
        if call is None or self._ended:
            return
        _endpoint()
        param = pj.CallSendDtmfParam()
        param.method = pj.PJSUA_DTMF_METHOD_RFC2833
        param.digits = keys
        param.duration = DTMF_MS
        try:
            call.sendDtmf(param)
        except pj.Error as exc:
            if self._ended:
                return
            raise PhoneError(f"cannot send {keys!r} as RFC 4733 events: {exc.info()}") from exc
        # pjmedia's stream sends the events in the 20 ms slots of the audio: wait for them.
        await self.wait_ended(len(keys) * (DTMF_MS + DTMF_GAP_MS) / 1000)

    async def hangup(self) -> None:
        """Hang up (BYE, or CANCEL/decline before the answer), unless the call is already
        over; return once the far end confirmed (at most HANGUP_WAIT s)."""
        call = self._pjcall
        if call is not None and not self._ended:
            _endpoint()
            try:
                call.hangup(_op(0))
            except pj.Error:
                pass  # the far end's BYE came in between
            await self.wait_ended(HANGUP_WAIT)
        self.finished.set()


_PACE_WINDOW = 0.6  # seconds pjlib's select ioqueue keeps a closed socket's key (PJ_IOQUEUE_KEY_FREE_DELAY 500 ms)
_PACE_CALLS = 4  # new calls per window
_placed: collections.deque[float] = collections.deque()


async def _pace() -> None:
    """Each call opens two RTP/RTCP sockets per leg; a closed socket's ioqueue key is reused
    only 500 ms later, and the ioqueue has 64 (PJ_IOQUEUE_MAX_HANDLES). Measured: 16 calls
    set up and hung up between two phones of one process within 80 ms exhausted them, and
    pjlib aborts the process on an assertion. So calls are placed at most 4 per 0.6 s."""
    while True:
        now = time.monotonic()
        while _placed and now - _placed[0] > _PACE_WINDOW:
            _placed.popleft()
        if len(_placed) < _PACE_CALLS:
            _placed.append(now)
            return
        await asyncio.sleep(_PACE_WINDOW - (now - _placed[0]) + 0.01)


def _calls_up(stack: _Stack) -> int:
    return sum(1 for phone in list(stack.phones) for call in phone._live_calls() if not call.ended)


def _op(code: int) -> Any:
    param = pj.CallOpParam(True)
    param.statusCode = code
    return param


# --- phones ------------------------------------------------------------------------------------


class _PjAccount(pj.Account):  # type: ignore[misc]
    def __init__(self, owner: RigPhone) -> None:
        super().__init__()
        self._owner = weakref.ref(owner)

    def onRegState(self, prm: Any) -> None:  # noqa: N802
        try:
            owner = self._owner()
            if owner is not None:
                owner._registration(int(prm.code), str(prm.reason), int(prm.expiration))
        except Exception:
            log.exception("rig phone: a registration result was lost")

    def onIncomingCall(self, prm: Any) -> None:  # noqa: N802
        try:
            owner = self._owner()
            if owner is not None:
                owner._offered(self, int(prm.callId), str(prm.rdata.wholeMsg))
        except Exception:
            log.exception("rig phone: an incoming call was lost")


class RigPhone:
    """A registered SIP phone. `incoming()` gives the calls offered to it.

    `register_expiry` is the registration's lifetime asked for (seconds; the registrar may
    give another); pjsua registers again before it runs out. A phone made with
    `register=False` only places calls (authenticating each INVITE): a second line of a
    caller whose first line, in another process, holds the registration."""

    def __init__(
        self, server: SipServer, user: str, password: str, local: LocalAddress, *, register_expiry: int = 300, register: bool = True
    ) -> None:
        self.user = user
        self._server = server
        self._password = password
        self._local = local
        self._expiry = register_expiry
        self._register = register
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stack: _Stack | None = None
        self._incoming: asyncio.Queue[RigCall] = asyncio.Queue()
        self._running = False
        self._account: _PjAccount | None = None
        self._transport: int | None = None
        self._calls: list[RigCall] = []  # the calls not yet over (pjsua's worker thread adds too)
        self._calls_lock = threading.Lock()
        self._reg_changed = asyncio.Event()
        self._reg_result: tuple[int, str, int] | None = None
        self.registrations = 0  # successful REGISTERs (the first and every refresh)
        # Every INVITE that offered this phone a call, as received (start line, headers, SDP):
        # what the PBX told the phone, e.g. the X-IVR-* headers of an agent leg.
        self.invites: list[str] = []

    def __repr__(self) -> str:
        return f"RigPhone({self.user}@{self._server.host}:{self._server.port})"

    @property
    def registered(self) -> bool:
        result = self._reg_result
        return result is not None and 200 <= result[0] < 300 and result[2] > 0

    # --- from pjsua's worker thread ---------------------------------------------------------------

    def _registration(self, code: int, reason: str, expiration: int) -> None:
        self._reg_result = (code, reason, expiration)
        if 200 <= code < 300 and expiration > 0:
            self.registrations += 1
        log.debug("%s: registration %d %s (expires %d)", self.user, code, reason, expiration)
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._reg_changed.set)
            except RuntimeError:
                pass

    def _offered(self, account: _PjAccount, call_id: int, invite: str = "") -> None:
        self.invites.append(invite)
        loop, stack = self._loop, self._stack
        if loop is None or stack is None or not self._running or loop.is_closed():
            return  # no pjsua Call made for it: pjsua2 declines the call itself
        rig_call = RigCall(loop, stack)
        call = _PjCall(account, rig_call, call_id)
        rig_call._attach(call)
        rig_call.sip_call_id = str(call.getInfo().callIdString)
        with self._calls_lock:
            self._calls = [c for c in self._calls if not c.ended]
            self._calls.append(rig_call)
        call.answer(_op(180))
        try:
            loop.call_soon_threadsafe(self._incoming.put_nowait, rig_call)
        except RuntimeError:
            call.hangup(_op(480))

    # --- the phone's life ----------------------------------------------------------------------------

    async def start(self) -> None:
        """REGISTER with the server (unless made not to); return once registered."""
        self._loop = asyncio.get_running_loop()
        stack = self._stack = _endpoint()
        where = f"{self._server.host}:{self._server.port}"
        if len(stack.phones) >= MAX_PHONES:
            raise PhoneError(f"{self.user}: at most {MAX_PHONES} rig phones per process (pjsua's account limit)")
        transport = pj.TransportConfig()
        transport.port = self._local.sip_port
        transport.boundAddress = self._local.ip
        transport.publicAddress = self._local.ip
        try:
            self._transport = stack.ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
        except pj.Error as exc:
            raise PhoneError(f"{self.user}: cannot listen on {self._local.ip}:{self._local.sip_port}: {exc.info()}") from exc
        stack.phones.add(self)
        self._reg_changed.clear()
        self._reg_result = None
        self._account = _PjAccount(self)
        try:
            self._account.create(self._config())
        except pj.Error as exc:
            self._release()
            raise PhoneError(f"{self.user}: cannot set up the account: {exc.info()}") from exc
        if not self._register:
            self._running = True
            return
        deadline = time.monotonic() + REGISTER_TIMEOUT
        while self._reg_result is None:
            left = deadline - time.monotonic()
            try:
                await asyncio.wait_for(self._reg_changed.wait(), max(0.0, left))
            except TimeoutError:
                break
            self._reg_changed.clear()
        result = self._reg_result
        if result is None or not self.registered:
            self._release()
            why = f"{result[0]} {result[1]}" if result is not None else f"no answer within {REGISTER_TIMEOUT:g} s"
            raise PhoneError(f"{self.user} could not register with {where}: {why} (wrong user or password, or no SIP server there)")
        self._running = True

    def _config(self) -> Any:
        host, port, local = self._server.host, self._server.port, self._local
        config = pj.AccountConfig()
        config.idUri = f"sip:{self.user}@{host}:{port}"
        config.regConfig.registrarUri = f"sip:{host}:{port}"
        config.regConfig.registerOnAdd = self._register
        config.regConfig.timeoutSec = self._expiry
        config.regConfig.delayBeforeRefreshSec = max(1, min(5, self._expiry // 4))
        config.regConfig.retryIntervalSec = 5
        config.regConfig.firstRetryIntervalSec = 1
        config.regConfig.dropCallsOnFail = False
        config.regConfig.unregWaitMsec = 1000
        config.sipConfig.transportId = self._transport
        config.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", self.user, 0, self._password))
        config.natConfig.contactRewriteUse = 0  # the phone's address is the one it bound
        config.natConfig.viaRewriteUse = 0
        config.natConfig.sdpNatRewriteUse = 0
        config.natConfig.sipOutboundUse = 0
        config.mediaConfig.transportConfig.boundAddress = local.ip
        config.mediaConfig.transportConfig.publicAddress = local.ip
        config.mediaConfig.transportConfig.port = local.rtp_ports.start
        config.mediaConfig.transportConfig.portRange = max(0, len(local.rtp_ports) - 1)
        return config

    async def stop(self) -> None:
        """Hang up every call, unregister, and let go of the account and its transport."""
        self._running = False
        if self._account is None:
            return
        _endpoint()
        with self._calls_lock:
            calls = list(self._calls)
        await asyncio.gather(*(call.hangup() for call in calls if not call.ended))
        if self.registered:
            self._reg_changed.clear()
            try:
                self._account.setRegistration(False)
                await asyncio.wait_for(self._reg_changed.wait(), 2.0)
            except (pj.Error, TimeoutError):
                pass  # the registrar forgets the contact when it expires
        self._release()

    def _live_calls(self) -> list[RigCall]:
        with self._calls_lock:
            return list(self._calls)

    def _release(self) -> None:
        """Drop this phone's pjsua objects in order (calls' ports, calls, account, transport)."""
        _registered_if_alive()
        self._running = False
        with self._calls_lock:
            calls, self._calls = self._calls, []
        for call in calls:
            call._release()
        account, self._account = self._account, None
        if account is not None:
            try:
                account.shutdown()
            except pj.Error as exc:
                log.debug("%s: account shutdown: %s", self.user, exc.info())
            account.__disown__()  # never destroyed: see the module docstring
        stack, transport, self._transport = self._stack, self._transport, None
        if stack is not None:
            stack.phones.discard(self)
            if transport is not None and not _destroyed:
                try:
                    stack.ep.transportClose(transport)
                except pj.Error as exc:
                    log.debug("%s: transport close: %s", self.user, exc.info())

    # --- calls -------------------------------------------------------------------------------------

    async def dial(self, number: str, *, timeout: float) -> RigCall:
        """Call `number`; return once the far end answers."""
        loop, stack, account = self._loop, self._stack, self._account
        if not self._running or loop is None or stack is None or account is None:
            raise PhoneError(f"{self.user} is not registered")
        _endpoint()
        await _pace()
        if _calls_up(stack) >= MAX_CALLS:
            raise PhoneError(f"INVITE {number}: this process has {MAX_CALLS} calls up already (pjsua's limit)")
        rig_call = RigCall(loop, stack)
        call = _PjCall(account, rig_call)
        rig_call._attach(call)
        uri = f"sip:{quote(number, safe='*+')}@{self._server.host}:{self._server.port}"
        try:
            call.makeCall(uri, _op(0))
        except pj.Error as exc:
            # pjsua leaves such a Call with an id out of range: deleting it would abort on an
            # assertion, so it is handed to C++ and never deleted.
            call.__disown__()
            rig_call._pjcall = None
            port, rig_call._port = rig_call._port, None
            if port is not None:
                stack.give_back_port(port, reusable=True)  # connected to nothing yet
            raise PhoneError(f"INVITE {number} failed: {exc.info()}") from exc
        rig_call.sip_call_id = str(call.getInfo().callIdString)
        with self._calls_lock:
            self._calls = [c for c in self._calls if not c.ended]
            self._calls.append(rig_call)
        answered = asyncio.ensure_future(rig_call._confirmed_event.wait())
        ended = asyncio.ensure_future(rig_call._ended_event.wait())
        try:
            await asyncio.wait({answered, ended}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            answered.cancel()
            ended.cancel()
        if rig_call.ended:
            raise PhoneError(f"{number} was refused ({rig_call.status or 'no answer'}; call id {rig_call.sip_call_id})")
        if not rig_call._confirmed_event.is_set():
            await rig_call.hangup()
            raise PhoneError(f"{number} did not answer within {timeout:g} s (call id {rig_call.sip_call_id})")
        await rig_call._await_media()
        return rig_call

    async def incoming(self) -> RigCall:
        return await self._incoming.get()
