"""What a rig phone hears, and whether it is a given prompt (pure: time is passed in).

* Received RTP audio is laid on a timeline by RTP timestamp, so that jitter and bursts from
  a busy receiver thread do not smear it; a source change (new SSRC, timestamp jump) is
  noticed by comparing with the arrival time, and the timeline re-anchors there.
* A prompt is recognised by its short-time energy envelope (20 ms frames, 10 ms hop, dB with
  a floor): a stretch of received audio as long as the prompt's sounding part whose envelope
  correlates with the prompt's (normalised cross-correlation) at or above a threshold. The
  envelope survives what the phone path does to the audio (mu-law, the 8-bit linear samples
  pyVoIP hands out, gain, line noise); a different prompt's does not correlate.
* Audio presence and silence are judged by frame energy.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ivr.rig.dtmf import Pcm

RATE = 8000
FRAME = 160  # 20 ms
HOP = 80  # 10 ms
FLOOR_DB = -50.0  # energies below this count as this: mu-law and 8-bit samples lose the rest
AUDIO_DB = -40.0  # a frame above this is sound, below it silence

Floats = npt.NDArray[np.float64]


class AudioError(ValueError):
    """An audio file the rig cannot use."""


def load_wav(path: Path) -> Pcm:
    """A prompt as built (prompts/sounds/<lang>/<id>.wav): 8000 Hz, mono, 16-bit."""
    try:
        with wave.open(str(path), "rb") as w:
            shape = (w.getframerate(), w.getnchannels(), w.getsampwidth())
            data = w.readframes(w.getnframes())
    except (OSError, EOFError, wave.Error) as exc:
        raise AudioError(f"{path}: {exc}") from exc
    if shape != (RATE, 1, 2):
        raise AudioError(f"{path}: {shape[0]} Hz, {shape[1]} channel(s), {8 * shape[2]}-bit (expected 8000 Hz mono 16-bit)")
    return np.frombuffer(data, dtype="<i2").astype(np.int16)


def from_unsigned8(data: bytes) -> Pcm:
    """pyVoIP's audio (8-bit unsigned linear, 128 = silence) as 16-bit samples."""
    return ((np.frombuffer(data, dtype=np.uint8).astype(np.int16) - 128) * 256).astype(np.int16)


def to_unsigned8(pcm: Pcm) -> bytes:
    """16-bit samples as pyVoIP writes them (8-bit unsigned linear)."""
    return ((pcm.astype(np.int32) >> 8) + 128).astype(np.uint8).tobytes()


class Timeline:
    """Received audio placed by RTP timestamp; gaps are silence. Not thread-safe: the phone
    adapter serialises `add` (receiver thread) and `pcm` (the event loop)."""

    def __init__(self, start: float, *, resync_seconds: float = 1.0) -> None:
        self._start = start
        self._resync = round(resync_seconds * RATE)
        self._anchor: tuple[int, int] | None = None  # (RTP timestamp, sample position)
        self._samples = np.zeros(RATE * 10, dtype=np.int16)
        self._length = 0

    def add(self, arrival: float, timestamp: int, pcm: Pcm) -> None:
        by_arrival = max(0, round((arrival - self._start) * RATE) - len(pcm))
        position = by_arrival
        if self._anchor is not None:
            delta = (timestamp - self._anchor[0]) & 0xFFFFFFFF
            if delta >= 1 << 31:
                delta -= 1 << 32
            position = self._anchor[1] + delta
        if self._anchor is None or position < 0 or abs(position - by_arrival) > self._resync:
            # On the envelope's frame grid: an arrival time says no more than that, and a stream
            # placed between frames matches its prompt a little worse (0.945 instead of 0.95+).
            position = by_arrival - by_arrival % HOP
            self._anchor = (timestamp, position)
        end = position + len(pcm)
        if end > len(self._samples):
            grown = np.zeros(max(end, 2 * len(self._samples)), dtype=np.int16)
            grown[: self._length] = self._samples[: self._length]
            self._samples = grown
        self._samples[position:end] = pcm
        self._length = max(self._length, end)

    def pcm(self, now: float, *, latency: float = 0.1) -> Pcm:
        """Everything heard up to `now` - `latency` (later packets may still be on their way):
        silence where nothing came."""
        length = max(self._length, round((now - self._start - latency) * RATE))
        out = np.zeros(length, dtype=np.int16)
        out[: self._length] = self._samples[: self._length]
        return out


def envelope(pcm: Pcm) -> Floats:
    """Energy in dBFS of each 20 ms frame, every 10 ms, floored at FLOOR_DB."""
    if len(pcm) < FRAME:
        return np.zeros(0)
    x = pcm.astype(np.float64) / 32768.0
    frames = np.lib.stride_tricks.sliding_window_view(x, FRAME)[::HOP]
    power = np.mean(frames * frames, axis=1)
    db: Floats = np.maximum(10 * np.log10(power + 1e-12), FLOOR_DB)
    return db


@dataclass(frozen=True)
class Template:
    """A prompt's envelope, trimmed to its sounding part."""

    name: str
    envelope: Floats
    lead_in: int  # samples of silence cut from the file's start

    @classmethod
    def of(cls, name: str, pcm: Pcm) -> Template:
        env = envelope(pcm)
        loud = np.flatnonzero(env > AUDIO_DB)
        if len(loud) < 10:
            raise AudioError(f"{name}: less than 0.1 s of sound: nothing to recognise")
        return cls(name, env[loud[0] : loud[-1] + 1], int(loud[0]) * HOP)

    @property
    def seconds(self) -> float:
        return (len(self.envelope) * HOP + FRAME - HOP) / RATE


@dataclass(frozen=True)
class Match:
    start: int  # sample where the prompt's sound starts in the received audio
    end: int  # sample where it ends
    score: float  # normalised cross-correlation of the envelopes, -1..1


def _ncc(template: Floats, received: Floats) -> Floats:
    """Normalised cross-correlation of `template` with every window of `received`."""
    windows = np.lib.stride_tricks.sliding_window_view(received, len(template))
    t = template - template.mean()
    w = windows - windows.mean(axis=1, keepdims=True)
    denominator = np.sqrt((w * w).sum(axis=1) * (t * t).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        score: Floats = np.where(denominator > 0, (w @ t) / denominator, 0.0)
    return score


def _scores(template: Template, pcm: Pcm, start: int) -> tuple[int, Floats, dict[int, _Warp]] | None:
    """(first frame, score of each window from it); windows that are mostly silence score
    -1. None: not enough audio yet."""
    first = start // HOP
    received = envelope(pcm[first * HOP :])
    frames = len(template.envelope)
    if len(received) < frames:
        return None
    scores = _ncc(template.envelope, received)
    sounding = np.lib.stride_tricks.sliding_window_view(received > AUDIO_DB, frames).mean(axis=1)
    wanted = float((template.envelope > AUDIO_DB).mean())
    scores, warps = _with_warps(template, received, np.where(sounding >= 0.5 * wanted, scores, -1.0))
    return first, scores, warps


# A phone's jitter buffer drops or inserts 10-40 ms here and there (pjmedia's adaptive
# buffer shrinking after hold music, or refilling after a late packet): each shifts the rest
# of a prompt. The warped score lets every half second of the template move by up to 40 ms
# against the half second before it, so a prompt heard whole still scores as such.
SEGMENT = 50  # hops (0.5 s) that move together
MAX_SHIFT = 4  # hops (40 ms) a segment may move against the one before
WARP_FROM = 0.5  # rigid score from which a place is worth a warped look ...
WARP_BELOW = 0.9  # ... and up to which: a better rigid match stands as it is


def _correlation(a: Floats, b: Floats) -> float:
    x, y = a - a.mean(), b - b.mean()
    denominator = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return float((x @ y) / denominator) if denominator > 0 else 0.0


FIRST_SHIFT = 15  # hops (150 ms) the first segment may lie from the rigid match's place


@dataclass(frozen=True)
class _Warp:
    score: float
    start: int  # envelope frame where the warped match starts
    end: int  # envelope frame after its last


def _warped(template: Floats, received: Floats, index: int) -> _Warp | None:
    """The correlation of `template` with `received` near `index`, each segment of the
    template taking the shift (within MAX_SHIFT of the one before) that fits it best."""
    pieces: list[Floats] = []
    shift, start = 0, None
    for begin in range(0, len(template), SEGMENT):
        segment = template[begin : begin + SEGMENT]
        centred = segment - segment.mean()
        reach = FIRST_SHIFT if start is None else MAX_SHIFT
        best: tuple[float, int] | None = None
        for candidate in range(shift - reach, shift + reach + 1):
            at = index + begin + candidate
            if at < 0 or at + len(segment) > len(received):
                continue
            window = received[at : at + len(segment)]
            error = float(np.square(centred - (window - window.mean())).sum())
            if best is None or error < best[0]:
                best = (error, candidate)
        if best is None:
            return None
        shift = best[1]
        at = index + begin + shift
        start = at if start is None else start
        pieces.append(received[at : at + len(segment)])
    assert start is not None  # a template has at least one segment
    return _Warp(_correlation(template, np.concatenate(pieces)), start, at + len(pieces[-1]))


def _with_warps(template: Template, received: Floats, scores: Floats) -> tuple[Floats, dict[int, _Warp]]:
    """`scores`, raised to the warped score at the local peaks worth a look, and the warped
    matches by index."""
    out = scores.copy()
    warps: dict[int, _Warp] = {}
    for index in np.flatnonzero((scores >= WARP_FROM) & (scores < WARP_BELOW)):
        lo, hi = max(0, index - MAX_SHIFT), index + MAX_SHIFT + 1
        if scores[index] != scores[lo:hi].max():
            continue  # one look per peak
        warp = _warped(template.envelope, received, int(index))
        if warp is not None and warp.score > scores[index]:
            out[index] = warp.score
            warps[int(index)] = warp
    return out, warps


def _match(template: Template, first: int, scores: Floats, index: int, warps: dict[int, _Warp]) -> Match:
    warp = warps.get(index)
    if warp is not None:
        return Match((first + warp.start) * HOP, (first + warp.end) * HOP + FRAME - HOP, warp.score)
    begin = (first + index) * HOP
    return Match(begin, begin + len(template.envelope) * HOP + FRAME - HOP, float(scores[index]))


def best_match(template: Template, pcm: Pcm, *, start: int = 0) -> Match | None:
    """The best-correlating place of `template` in `pcm` from sample `start` on (None: not
    enough audio yet)."""
    found = _scores(template, pcm, start)
    if found is None:
        return None
    first, scores, warps = found
    return _match(template, first, scores, int(np.argmax(scores)), warps)


def find_prompt(template: Template, pcm: Pcm, *, start: int = 0, threshold: float = 0.8) -> Match | None:
    """Where the prompt was heard: the peak of the earliest stretch scoring at least
    `threshold`."""
    found = _scores(template, pcm, start)
    if found is None:
        return None
    first, scores, warps = found
    above = scores >= threshold
    if not above.any():
        return None
    begin = int(np.argmax(above))
    length = int(np.argmin(above[begin:])) if not above[begin:].all() else len(above) - begin
    return _match(template, first, scores, begin + int(np.argmax(scores[begin : begin + length])), warps)


def _runs(flags: npt.NDArray[np.bool_], frames: int) -> int | None:
    """Index of the first frame ending a run of at least `frames` True flags."""
    count = 0
    for i, flag in enumerate(flags):
        count = count + 1 if flag else 0
        if count >= frames:
            return i
    return None


def sound(pcm: Pcm, *, start: int = 0, seconds: float = 0.3) -> int | None:
    """The sample where `seconds` of uninterrupted sound have been heard after `start`."""
    env = envelope(pcm[start:])
    end = _runs(env > AUDIO_DB, max(1, round(seconds * RATE / HOP)))
    return None if end is None else start + end * HOP + FRAME


def silence(pcm: Pcm, *, start: int = 0, seconds: float = 1.0) -> int | None:
    """The sample where `seconds` of uninterrupted silence have been heard after `start`."""
    env = envelope(pcm[start:])
    end = _runs(env <= AUDIO_DB, max(1, round(seconds * RATE / HOP)))
    return None if end is None else start + end * HOP + FRAME


def speech_like(seconds: float) -> Pcm:
    """A voice-like sound: a 140 Hz buzz rich in harmonics, in 4-per-second syllables. Loud
    enough for a recorder's silence detection to count it as talk; no DTMF detector takes
    it for a key (no two pure tones)."""
    t = np.arange(round(seconds * RATE)) / RATE
    buzz = 2 * ((140 * t) % 1.0) - 1  # a sawtooth: every harmonic of 140 Hz
    syllables = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t)
    return (buzz * syllables * 9000).astype(np.int16)
