"""Rig phones: real SIP user agents (pyVoIP 1.6.8) behind an asyncio interface.

The only module that imports pyVoIP. pyVoIP is thread-based and blocking; this adapter
runs its blocking calls (REGISTER, INVITE) in daemon threads, polls call state from the
event loop, and changes two things on each call's RTP client (`RTPClient`):

* `pmin` (where the receiver thread writes decoded audio by RTP timestamp) is replaced
  by a capture that keeps every packet with its arrival time on a `Timeline`, so that the
  rig hears the stream as sent instead of reading pyVoIP's jitter buffer in real time.
* `sout` (the socket the transmitter thread sends one audio packet through every 20 ms)
  is wrapped: while RFC 4733 telephone events are queued, each audio packet is replaced by
  the next event packet, keeping pyVoIP's sequence number, SSRC and 20 ms pacing. pyVoIP
  receives telephone events (`get_dtmf`) but cannot send them.

It also answers SIP OPTIONS, which pyVoIP ignores: Asterisk qualifies registered contacts
(`qualify_frequency` in pjsip.conf) and does not ring one that stays silent.

pyVoIP's audio is 8-bit unsigned linear at 8 kHz; the rest of the rig works on 16-bit PCM.
"""

from __future__ import annotations

import asyncio
import collections
import io
import logging
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar, cast

import numpy as np

from ivr.rig.audio import RATE, Timeline, from_unsigned8, to_unsigned8
from ivr.rig.dtmf import EventPacket, Pcm, RtpHeader, as_event, key_presses, tones

with warnings.catch_warnings():
    # pyVoIP imports audioop, deprecated in 3.11-3.12 (audioop-lts provides it from 3.13).
    warnings.simplefilter("ignore", DeprecationWarning)
    # pyVoIP.VoIP first: importing pyVoIP.SIP first fails on pyVoIP's circular imports.
    from pyVoIP.VoIP import VoIP as voip

    import pyVoIP
    from pyVoIP import RTP, SIP
    from pyVoIP.VoIP.status import PhoneStatus

log = logging.getLogger(__name__)
T = TypeVar("T")

POLL = 0.02  # seconds between looks at a call's state
EARLY = 0.1  # seconds of audio that may have come before a call's capture started
REGISTER_TIMEOUT = 5  # seconds to wait for a REGISTER response (pyVoIP's default: 30)


def _pyvoip_debug(message: object, error: object = None) -> None:
    log.debug("pyVoIP: %s", error if error is not None else message)


# pyVoIP prints some SIP events (a 183 or 487 response, an unparsable packet) to stdout
# through its module-level `debug`; send them to logging so the rig's table stays clean.
for _module in (pyVoIP.SIP, pyVoIP.RTP, voip):
    _module.debug = _pyvoip_debug  # type: ignore[attr-defined]


_COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id"}
_COPIED = {"via": "Via", "from": "From", "to": "To", "call-id": "Call-ID", "cseq": "CSeq"}


def options_ok(request: bytes) -> bytes | None:
    """The 200 OK to a SIP OPTIONS request (None: not an OPTIONS request)."""
    if not request.startswith(b"OPTIONS "):
        return None
    head = request.split(b"\r\n\r\n", 1)[0].decode("utf-8", errors="replace")
    lines = ["SIP/2.0 200 OK"]
    for line in head.split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        key = _COMPACT.get(name.strip().lower(), name.strip().lower())
        if not sep or key not in _COPIED:
            continue
        value = value.strip()
        if key == "to" and ";tag=" not in value.lower():
            value += f";tag={uuid.uuid4().hex[:10]}"
        lines.append(f"{_COPIED[key]}: {value}")
    lines += ["Allow: INVITE, ACK, BYE, CANCEL, OPTIONS", "Accept: application/sdp", "Content-Length: 0"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


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


async def _blocking(fn: Callable[[], T]) -> T:
    """Run a blocking pyVoIP call in a daemon thread: one that never returns (a PBX that
    never answers an INVITE) must not keep the process alive."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def succeed(result: T) -> None:
        if not future.done():
            future.set_result(result)

    def fail(error: Exception) -> None:
        if not future.done():
            future.set_exception(error)

    def run() -> None:
        try:
            result = fn()
        except Exception as exc:  # handed to the awaiting task
            if not loop.is_closed():
                loop.call_soon_threadsafe(fail, exc)
        else:
            if not loop.is_closed():
                loop.call_soon_threadsafe(succeed, result)

    threading.Thread(target=run, name="rig-pyvoip", daemon=True).start()
    return await future


class _Capture(RTP.RTPPacketManager):
    """Stands in for `RTPClient.pmin`: the receiver thread calls `write(timestamp, data)`."""

    def __init__(self, timeline: Timeline, lock: threading.Lock) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # pyVoIP leaves it unannotated
        self._timeline = timeline
        self._lock = lock

    def write(self, offset: int, data: bytes) -> None:
        pcm = from_unsigned8(data)
        with self._lock:
            self._timeline.add(time.monotonic(), offset, pcm)


class _EventInjector:
    """Stands in for `RTPClient.sout`: see the module docstring."""

    def __init__(self, sock: socket.socket, payload_type: int) -> None:
        self._sock = sock
        self._payload_type = payload_type
        self._queue: collections.deque[EventPacket | None] = collections.deque()
        self._lock = threading.Lock()
        self._timestamp = 0

    def enqueue(self, packets: list[EventPacket | None]) -> None:
        with self._lock:
            self._queue.extend(packets)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def sendto(self, packet: bytes, address: tuple[str, int]) -> int:
        with self._lock:
            event = self._queue.popleft() if self._queue else None
            if event is not None:
                if event.starts_event:
                    self._timestamp = RtpHeader.parse(packet).timestamp
                packet = as_event(packet, event, self._payload_type, self._timestamp)
        return self._sock.sendto(packet, address)

    def close(self) -> None:
        self._sock.close()


class RigCall:
    """One call of a rig phone, as the scenario runner and the agent phones use it."""

    def __init__(self, call: voip.VoIPCall) -> None:
        self._call = call
        self.sip_call_id: str = call.call_id
        self._lock = threading.Lock()
        self._timeline: Timeline | None = None
        self._early: RTP.RTPPacketManager | None = None  # pyVoIP's own buffer, until _listen swapped it
        self._replayed: set[int] = set()  # RTP timestamps of `_early` already on the timeline
        self._injector: _EventInjector | None = None
        self._keys = ""
        self.finished = threading.Event()  # set once the call is over for the rig

    # --- state --------------------------------------------------------------------------

    @property
    def ended(self) -> bool:
        if self._call.state is not voip.CallState.ENDED:
            return False
        self.finished.set()  # lets pyVoIP's callback thread of an incoming call return
        return True

    async def wait_ended(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.ended:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(POLL)
        return True

    # --- set-up of the RTP stream ---------------------------------------------------------

    def _listen(self) -> None:
        """Capture the received audio; packets that came before the swap are replayed."""
        client = self._call.RTPClients[0]
        # The far end may have sent a packet or two before this looked: the timeline starts
        # earlier, so that replaying them never puts a packet before its start.
        timeline = Timeline(time.monotonic() - EARLY)
        self._capture = _Capture(timeline, self._lock)
        self._early = client.pmin
        client.pmin = self._capture
        self._timeline = timeline
        self._replay_early()

    def _replay_early(self) -> None:
        """Put on the timeline what the receiver thread wrote to pyVoIP's buffer: before the
        swap, and during it (the thread may still hold the old buffer for one packet, which
        then lost the first 20 ms of a prompt played at once)."""
        early = self._early
        if early is None:
            return
        with early.bufferLock:
            new = sorted((offset, data) for offset, data in early.log.items() if offset not in self._replayed)
        for offset, data in new:
            self._capture.write(offset, data)
            self._replayed.add(offset)

    def _enable_events(self) -> None:
        """Once the RTP client has its socket: send telephone events if they were agreed."""
        client = self._call.RTPClients[0]
        events = [pt for pt, kind in client.assoc.items() if kind is RTP.PayloadType.EVENT]
        if events:
            self._injector = _EventInjector(client.sout, events[0])
            # pyVoIP's transmitter only calls sendto() and close() on it.
            client.sout = cast(socket.socket, self._injector)

    async def answer(self) -> None:
        if not self._call.RTPClients:
            raise PhoneError("the offer has no audio stream this phone can use (PCMU)")
        self._listen()
        self._call.answer()
        self._enable_events()

    # --- what the phone hears ---------------------------------------------------------------

    def heard(self) -> Pcm:
        """Everything received so far (16-bit, 8 kHz), silence where nothing came."""
        if self._timeline is None:
            return np.zeros(0, dtype=np.int16)
        self._replay_early()
        with self._lock:
            return self._timeline.pcm(time.monotonic())

    def keys_received(self) -> str:
        """RFC 4733 keys the far end sent, since the call started (pyVoIP's decoder)."""
        while key := self._call.get_dtmf():
            self._keys += key
        return self._keys

    # --- what the phone sends ---------------------------------------------------------------

    @property
    def telephone_events(self) -> bool:
        """Whether the far end accepted RFC 4733 telephone events for this call."""
        return self._injector is not None

    async def play(self, pcm: Pcm) -> None:
        """Send `pcm` after what is already queued; return once all of it has been sent."""
        self._call.write_audio(to_unsigned8(pcm))
        # pyVoIP's transmitter paces itself with sleep() and falls behind the wall clock:
        # wait for its queue to drain, not for the duration.
        deadline = time.monotonic() + 2 * len(pcm) / RATE + 1.0
        while self._unsent() and not self.ended:
            if time.monotonic() > deadline:
                raise PhoneError("pyVoIP's RTP transmitter stopped sending")
            await asyncio.sleep(POLL)
        await asyncio.sleep(POLL)  # the last packet read is on its way

    def _unsent(self) -> int:
        """Bytes of audio written but not yet read by pyVoIP's transmitter."""
        queue = self._call.RTPClients[0].pmout
        with queue.bufferLock:
            position = queue.buffer.tell()
            end = queue.buffer.seek(0, io.SEEK_END)
            queue.buffer.seek(position)
        return end - position

    async def send_keys(self, keys: str, *, inband: bool) -> None:
        """Press `keys`: as RFC 4733 events, or as tones in the audio."""
        if inband:
            await self.play(tones(keys))
            return
        if self._injector is None:
            raise PhoneError("the far end did not accept telephone-event (RFC 4733): send the keys in-band")
        packets = key_presses(keys)
        self._injector.enqueue(packets)
        # The transmitter sends one packet per 20 ms; allow it twice that.
        deadline = time.monotonic() + 2 * len(packets) * 0.02 + 1.0
        while self._injector.pending:
            if self.ended:
                return
            if time.monotonic() > deadline:
                raise PhoneError("pyVoIP's RTP transmitter stopped sending")
            await asyncio.sleep(POLL)

    async def hangup(self) -> None:
        """Hang up (BYE), unless the call is already over."""
        if self._call.state is voip.CallState.ANSWERED:
            try:
                self._call.hangup()
            except voip.InvalidStateError:
                pass  # the far end's BYE came in between
        self.finished.set()


class RigPhone:
    """A registered SIP phone. `incoming()` gives the calls offered to it."""

    def __init__(self, server: SipServer, user: str, password: str, local: LocalAddress) -> None:
        self.user = user
        self._server = server
        self._local = local
        self._loop: asyncio.AbstractEventLoop | None = None
        self._incoming: asyncio.Queue[RigCall] = asyncio.Queue()
        self._running = threading.Event()
        self._phone = voip.VoIPPhone(
            server.host,
            server.port,
            user,
            password,
            myIP=local.ip,
            callCallback=self._offered,
            sipPort=local.sip_port,
            rtpPortLow=local.rtp_ports.start,
            rtpPortHigh=local.rtp_ports.stop - 1,
        )
        self._phone.sip.register_timeout = REGISTER_TIMEOUT
        # pyVoIP's receiver thread calls sip.recv() for every datagram it reads.
        setattr(self._phone.sip, "recv", self._answering_options(self._phone.sip))

    def __repr__(self) -> str:
        return f"RigPhone({self.user}@{self._server.host}:{self._server.port})"

    async def start(self) -> None:
        """REGISTER with the server."""
        self._loop = asyncio.get_running_loop()
        where = f"{self._server.host}:{self._server.port}"
        try:
            await _blocking(self._phone.start)
        except (SIP.InvalidAccountInfoError, TimeoutError, OSError) as exc:
            await _blocking(self._phone.stop)
            raise PhoneError(f"{self.user} could not register with {where}: {exc}") from exc
        if self._phone.get_status() is not PhoneStatus.REGISTERED:
            # pyVoIP keeps retrying in the background after a refusal or a time-out.
            await _blocking(self._phone.stop)
            raise PhoneError(f"{self.user} could not register with {where} (wrong user or password, or no SIP server there)")
        self._running.set()

    async def stop(self) -> None:
        """Hang up every call and unregister."""
        self._running.clear()
        await _blocking(self._phone.stop)

    async def dial(self, number: str, *, timeout: float) -> RigCall:
        """Call `number`; return once the far end answers."""
        if not self._running.is_set():
            raise PhoneError(f"{self.user} is not registered")
        try:
            call = await _blocking(lambda: self._phone.call(number))
        except (OSError, SIP.SIPParseError) as exc:
            raise PhoneError(f"INVITE {number} failed: {exc}") from exc
        deadline = time.monotonic() + timeout
        while call.state is not voip.CallState.ANSWERED:
            if call.state is voip.CallState.ENDED:
                raise PhoneError(f"{number} was refused (not found or unavailable)")
            if time.monotonic() >= deadline:
                raise PhoneError(f"{number} did not answer within {timeout:g} s (call id {call.call_id})")
            await asyncio.sleep(POLL)
        rig_call = RigCall(call)
        rig_call._listen()
        rig_call._enable_events()
        return rig_call

    def _answering_options(self, sip: SIP.SIPClient) -> Callable[[], None]:
        pyvoip_recv = sip.recv

        def recv() -> None:
            reply = options_ok(sip.s.recv(8192, socket.MSG_PEEK))
            if reply is None:
                pyvoip_recv()
                return
            sip.s.recv(8192)  # the OPTIONS we just peeked at
            sip.out.sendto(reply, (self._server.host, self._server.port))

        return recv

    async def incoming(self) -> RigCall:
        return await self._incoming.get()

    def _offered(self, call: voip.VoIPCall) -> None:
        """pyVoIP's call callback (its own thread, once per INVITE). pyVoIP forgets a call
        whose callback has returned, so this waits until the rig is done with it."""
        loop = self._loop
        if loop is None or not self._running.is_set():
            return
        rig_call = RigCall(call)
        loop.call_soon_threadsafe(self._incoming.put_nowait, rig_call)
        while not rig_call.finished.wait(0.2):
            if not self._running.is_set() or call.state is voip.CallState.ENDED:
                break

