"""What the rig's controlling process and its phone-host processes say to each other.

pjsua holds at most 8 phones and 4 calls per process (see `ivr.rig.phone`), so a rig with
more phones runs them in host processes (`ivr.rig.host`) and drives them from one place
(`ivr.rig.farm`). This module is the conversation, sans-IO: typed messages, and their
framing on a byte stream (a 4-byte big-endian length, then the pickled message). Both ends
are this package in the same Python; pickle is safe between them and carries PCM as bytes.

Requests carry a `ref` the host answers with one `Done`. Events come unasked: a call offered
to a phone, audio a call heard, a call's end (after its last audio).
"""

from __future__ import annotations

import pickle
import struct
from dataclasses import dataclass

from ivr.rig.phone import LocalAddress, SipServer

_LENGTH = struct.Struct(">I")
MAX_FRAME = 64 * 1024 * 1024  # a longer length means the stream is not this protocol


class WireError(Exception):
    """The byte stream is not this protocol (or was cut in a frame)."""


# --- requests (controller -> host) --------------------------------------------------------------


@dataclass(frozen=True)
class AddPhone:
    ref: int
    phone: int
    server: SipServer
    user: str
    password: str
    local: LocalAddress
    expiry: int
    register: bool


@dataclass(frozen=True)
class StopPhone:
    ref: int
    phone: int


@dataclass(frozen=True)
class Dial:
    ref: int
    phone: int
    call: int
    number: str
    timeout: float


@dataclass(frozen=True)
class Answer:
    ref: int
    call: int


@dataclass(frozen=True)
class Play:
    ref: int
    call: int
    pcm: bytes  # 16-bit little-endian, 8 kHz mono


@dataclass(frozen=True)
class SendKeys:
    ref: int
    call: int
    keys: str
    inband: bool


@dataclass(frozen=True)
class Hangup:
    ref: int
    call: int


Request = AddPhone | StopPhone | Dial | Answer | Play | SendKeys | Hangup
REQUESTS = (AddPhone, StopPhone, Dial, Answer, Play, SendKeys, Hangup)

# --- answers and events (host -> controller) ----------------------------------------------------


@dataclass(frozen=True)
class Done:
    ref: int
    error: str | None = None  # a PhoneError's message
    sip_call_id: str = ""  # Dial: the call's SIP Call-ID
    telephone_events: bool = False  # Dial, Answer: whether the far end took RFC 4733


@dataclass(frozen=True)
class Offered:
    phone: int
    call: int  # numbered by the host (negative: the controller's own numbers are positive)
    sip_call_id: str


@dataclass(frozen=True)
class Heard:
    call: int
    pcm: bytes  # the audio received since the last Heard of this call


@dataclass(frozen=True)
class Ended:
    call: int
    status: str  # the last SIP status, e.g. "486 Busy Here"


Event = Done | Offered | Heard | Ended
Message = Request | Event
_TYPES = (*REQUESTS, Done, Offered, Heard, Ended)


def encode(message: Message) -> bytes:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(body)) + body


class Decoder:
    """Bytes in, whole messages out."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Message]:
        self._buffer += data
        messages: list[Message] = []
        while len(self._buffer) >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(self._buffer)
            if length > MAX_FRAME:
                raise WireError(f"a frame of {length} bytes: not the rig's host protocol")
            end = _LENGTH.size + length
            if len(self._buffer) < end:
                break
            body = bytes(self._buffer[_LENGTH.size : end])
            del self._buffer[:end]
            try:
                message = pickle.loads(body)
            except Exception as exc:
                raise WireError(f"an undecodable frame: {exc}") from exc
            if not isinstance(message, _TYPES):
                raise WireError(f"an unknown message: {type(message).__name__}")
            messages.append(message)
        return messages

    def at_end(self) -> None:
        """The stream ended: it must not have stopped inside a frame."""
        if self._buffer:
            raise WireError(f"the stream ended inside a frame ({len(self._buffer)} bytes left)")
