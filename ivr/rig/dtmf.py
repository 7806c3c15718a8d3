"""DTMF both ways a phone sends it (pure: no sockets, no clocks).

* RFC 4733 telephone events: the 4-byte event payload, the packet train of one key press
  (first packet with the RTP marker bit, growing duration, three end packets with the E
  bit, all with the timestamp of the event's start) and the RTP header rewrite that puts
  an event into a slot of the audio stream.
* In-band tones: dual-tone PCM (8 kHz, 16-bit) and a Goertzel detector that finds the keys
  in received audio, noise and speech included.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

RATE = 8000
KEYS = "0123456789*#ABCD"  # RFC 4733 event codes 0-15, in order
PACKET_SAMPLES = 160  # 20 ms at 8 kHz: one RTP packet of the audio stream

_ROWS = (697.0, 770.0, 852.0, 941.0)
_COLS = (1209.0, 1336.0, 1477.0, 1633.0)
_LAYOUT = ("123A", "456B", "789C", "*0#D")

Pcm = npt.NDArray[np.int16]


class DtmfError(ValueError):
    """Not a DTMF key, or not a telephone-event payload."""


def _event_code(key: str) -> int:
    code = KEYS.find(key.upper()) if len(key) == 1 else -1
    if code < 0:
        raise DtmfError(f"{key!r} is not a DTMF key (expected one of {KEYS})")
    return code


# --- RFC 4733 ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TelephoneEvent:
    """One telephone-event payload (RFC 4733 section 2.3)."""

    key: str
    end: bool
    volume: int  # -dBm0, 0..63
    duration: int  # samples since the event started

    def encode(self) -> bytes:
        if not 0 <= self.volume <= 63:
            raise DtmfError(f"volume {self.volume} out of range 0..63")
        if not 0 <= self.duration <= 0xFFFF:
            raise DtmfError(f"duration {self.duration} out of range 0..65535")
        flags = (0x80 if self.end else 0) | self.volume
        return struct.pack("!BBH", _event_code(self.key), flags, self.duration)

    @classmethod
    def decode(cls, payload: bytes) -> TelephoneEvent:
        if len(payload) < 4:
            raise DtmfError(f"a telephone-event payload has 4 bytes, got {len(payload)}")
        code, flags, duration = struct.unpack("!BBH", payload[:4])
        if code >= len(KEYS):
            raise DtmfError(f"event {code} is not a DTMF key")
        return cls(KEYS[code], bool(flags & 0x80), flags & 0x3F, duration)


@dataclass(frozen=True)
class EventPacket:
    """What replaces one 20 ms audio packet: the marker bit, the payload, and whether this
    packet starts a new event (its RTP timestamp becomes the event's timestamp)."""

    marker: bool
    payload: bytes
    starts_event: bool


def key_press(key: str, *, duration_ms: int = 100, volume: int = 10) -> list[EventPacket]:
    """The packets of one key press, one per 20 ms slot."""
    slots = max(1, duration_ms * RATE // 1000 // PACKET_SAMPLES)
    packets = [
        EventPacket(i == 0, TelephoneEvent(key, False, volume, (i + 1) * PACKET_SAMPLES).encode(), i == 0)
        for i in range(slots)
    ]
    # The end packet is sent three times so that losing one does not lose the duration.
    end = TelephoneEvent(key, True, volume, slots * PACKET_SAMPLES).encode()
    return packets + [EventPacket(False, end, False)] * 3


def key_presses(keys: str, *, duration_ms: int = 100, gap_ms: int = 100) -> list[EventPacket | None]:
    """Packets for several keys; None leaves a slot to the audio stream (the gap between keys)."""
    out: list[EventPacket | None] = []
    gap: list[EventPacket | None] = [None] * max(1, gap_ms * RATE // 1000 // PACKET_SAMPLES)
    for i, key in enumerate(keys):
        if i:
            out += gap
        out += key_press(key, duration_ms=duration_ms)
    return out


@dataclass(frozen=True)
class RtpHeader:
    """The fixed 12-byte RTP header (RFC 3550 section 5.1)."""

    marker: bool
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int

    @classmethod
    def parse(cls, packet: bytes) -> RtpHeader:
        if len(packet) < 12 or packet[0] >> 6 != 2:
            raise DtmfError("not an RTP version 2 packet")
        _, second, sequence, timestamp, ssrc = struct.unpack("!BBHII", packet[:12])
        return cls(bool(second & 0x80), second & 0x7F, sequence, timestamp, ssrc)

    def encode(self) -> bytes:
        return struct.pack(
            "!BBHII", 0x80, (0x80 if self.marker else 0) | self.payload_type, self.sequence, self.timestamp, self.ssrc
        )


def as_event(audio_packet: bytes, event: EventPacket, payload_type: int, timestamp: int) -> bytes:
    """`audio_packet` (a packet the audio stream was about to send) turned into `event`,
    keeping its sequence number and SSRC so that the stream stays one stream."""
    header = RtpHeader.parse(audio_packet)
    return RtpHeader(event.marker, payload_type, header.sequence, timestamp, header.ssrc).encode() + event.payload


# --- in-band tones -----------------------------------------------------------------------


def _frequencies(key: str) -> tuple[float, float]:
    _event_code(key)
    for row, keys in enumerate(_LAYOUT):
        col = keys.find(key.upper())
        if col >= 0:
            return _ROWS[row], _COLS[col]
    raise AssertionError(key)  # pragma: no cover - every key of KEYS is in the layout


def tone(key: str, *, seconds: float = 0.12, level_dbfs: float = -9.0) -> Pcm:
    """One key's two sine waves, of equal amplitude, their sum peaking at `level_dbfs`."""
    low, high = _frequencies(key)
    t = np.arange(round(seconds * RATE)) / RATE
    amplitude = 32767 * 10 ** (level_dbfs / 20) / 2
    wave = amplitude * (np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t))
    pcm: Pcm = np.clip(np.round(wave), -32768, 32767).astype(np.int16)
    return pcm


def tones(keys: str, *, on: float = 0.12, off: float = 0.12) -> Pcm:
    """Keys as tones separated by silence (Asterisk's detector wants >= 40 ms of each)."""
    gap = np.zeros(round(off * RATE), dtype=np.int16)
    parts: list[Pcm] = []
    for i, key in enumerate(keys):
        if i:
            parts.append(gap)
        parts.append(tone(key, seconds=on))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)


# Goertzel detection: 205-sample blocks (the classic choice at 8 kHz: every DTMF frequency
# falls close to a bin centre), hopping by half a block.
BLOCK = 205
HOP = 102
_MIN_LEVEL = 10 ** (-45 / 10) * 32768**2  # mean power of a -45 dBFS signal
_TONE_SHARE = 0.55  # the two tones carry at least this share of the block's energy
_TWIST = 10 ** (8 / 10)  # at most 8 dB between the row and the column tone
_MARGIN = 10 ** (6 / 10)  # each tone at least 6 dB above the others of its group


def _powers(blocks: npt.NDArray[np.float64], freqs: tuple[float, ...]) -> npt.NDArray[np.float64]:
    """Goertzel power of every block (rows) at each frequency (columns), scaled so that a
    sine of mean power P gives about P. The recurrence runs over all blocks at once."""
    n = blocks.shape[1]
    coeff = 2 * np.cos(2 * np.pi * np.asarray(freqs) / RATE)
    s1 = np.zeros((blocks.shape[0], len(freqs)))
    s2 = np.zeros_like(s1)
    for i in range(n):
        s1, s2 = blocks[:, i : i + 1] + coeff * s1 - s2, s1
    power: npt.NDArray[np.float64] = (s1 * s1 + s2 * s2 - coeff * s1 * s2) * 2 / (n * n)
    return power


def block_keys(pcm: Pcm) -> list[str | None]:
    """For each block (BLOCK samples, every HOP samples), the key whose two tones dominate it."""
    if len(pcm) < BLOCK:
        return []
    samples = pcm.astype(np.float64)
    count = (len(samples) - BLOCK) // HOP + 1
    blocks = np.lib.stride_tricks.sliding_window_view(samples, BLOCK)[::HOP][:count]
    total = np.mean(blocks * blocks, axis=1)
    rows = _powers(blocks, _ROWS)
    cols = _powers(blocks, _COLS)
    out: list[str | None] = []
    for b in range(count):
        r, c = int(np.argmax(rows[b])), int(np.argmax(cols[b]))
        low, high = rows[b, r], cols[b, c]
        others_low = np.delete(rows[b], r)
        others_high = np.delete(cols[b], c)
        ok = (
            total[b] >= _MIN_LEVEL
            and low + high >= _TONE_SHARE * total[b]
            and low <= high * _TWIST
            and high <= low * _TWIST
            and bool(np.all(others_low * _MARGIN <= low))
            and bool(np.all(others_high * _MARGIN <= high))
        )
        out.append(_LAYOUT[r][c] if ok else None)
    return out


@dataclass(frozen=True)
class DetectedKey:
    key: str
    start: int  # sample index where the key was first seen


def detect(pcm: Pcm) -> list[DetectedKey]:
    """Keys in `pcm` (8 kHz): a key counts once it is seen in two blocks in a row, and again
    only after a block without it."""
    found: list[DetectedKey] = []
    previous: str | None = None
    reported = False
    for i, key in enumerate(block_keys(pcm)):
        if key is not None and key == previous and not reported:
            found.append(DetectedKey(key, (i - 1) * HOP))
            reported = True
        elif key != previous:
            reported = False
        previous = key
    return found


def detect_keys(pcm: Pcm) -> str:
    return "".join(k.key for k in detect(pcm))
