"""Audio as Asterisk plays it: 8000 Hz, mono, 16-bit signed linear (.wav), or raw mu-law (.ulaw).

Conversion uses pydub: WAV needs nothing else; MP3 (edge-tts) and other recorded formats
are decoded by ffmpeg, taken from imageio-ffmpeg's wheel unless one is on PATH.
"""

from __future__ import annotations

import io
import shutil
import wave
import warnings
from pathlib import Path
from typing import Any

from ivr.prompts.catalog import AudioSettings
from ivr.prompts.playable import CHANNELS, RATE, WIDTH

# Telephone band: what is above this is cut before resampling to 8 kHz (no aliasing).
TELEPHONE_CUTOFF = 3400

with warnings.catch_warnings():
    # pydub warns at import when no ffmpeg is on PATH; we point it at one below.
    warnings.simplefilter("ignore", RuntimeWarning)
    # audioop (which pydub uses too) is deprecated in 3.11-3.12; audioop-lts provides it from 3.13
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop
    from pydub import AudioSegment  # type: ignore[import-untyped]
    from pydub.effects import low_pass_filter  # type: ignore[import-untyped]
    from pydub.silence import detect_leading_silence  # type: ignore[import-untyped]

Segment = Any  # pydub.AudioSegment (untyped)


def ffmpeg() -> str:
    """The ffmpeg pydub uses for MP3 and other non-WAV input."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg  # type: ignore[import-untyped]

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def decode(data: bytes, fmt: str) -> Segment:
    """Audio bytes of any format ffmpeg reads (WAV needs no ffmpeg)."""
    if fmt == "wav":
        return AudioSegment.from_wav(io.BytesIO(data))
    AudioSegment.converter = ffmpeg()
    # Giving the codec skips pydub's ffprobe call (imageio-ffmpeg ships no ffprobe).
    return AudioSegment.from_file(io.BytesIO(data), format=fmt, codec={"mp3": "mp3"}.get(fmt, fmt))


def load_file(path: Path) -> Segment:
    fmt = path.suffix.lower().lstrip(".") or "wav"
    return decode(path.read_bytes(), fmt)


def _trim(segment: Segment, threshold: float, padding_ms: int) -> Segment:
    """Cut leading and trailing audio quieter than `threshold` dBFS, keeping `padding_ms`."""
    start = detect_leading_silence(segment, silence_threshold=threshold, chunk_size=5)
    end = len(segment) - detect_leading_silence(segment.reverse(), silence_threshold=threshold, chunk_size=5)
    if end <= start:
        raise ValueError(f"no sound louder than {threshold} dBFS")
    return segment[max(0, start - padding_ms): min(len(segment), end + padding_ms)]


def _normalise(segment: Segment, loudness: float, peak_ceiling: float) -> Segment:
    """Bring the RMS level to `loudness` dBFS, unless that would push peaks over the ceiling."""
    gain = loudness - segment.dBFS
    gain = min(gain, peak_ceiling - segment.max_dBFS)
    return segment.apply_gain(gain)


def for_asterisk(segment: Segment, settings: AudioSettings) -> Segment:
    """Mono, telephone band, 8 kHz, 16-bit, silence trimmed, loudness normalised."""
    segment = segment.set_channels(CHANNELS).set_sample_width(WIDTH)
    if segment.frame_rate != RATE:
        if segment.frame_rate > 2 * TELEPHONE_CUTOFF:
            # a one-pole filter is gentle: twice is about -12 dB/octave above the band
            segment = low_pass_filter(low_pass_filter(segment, TELEPHONE_CUTOFF), TELEPHONE_CUTOFF)
        segment = segment.set_frame_rate(RATE)
    segment = _trim(segment, settings.trim_threshold, settings.padding_ms)
    return _normalise(segment, settings.loudness, settings.peak_ceiling)


def wav_bytes(segment: Segment) -> bytes:
    """A canonical PCM WAV (44-byte header) of an 8 kHz mono 16-bit segment."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(segment.channels)
        w.setsampwidth(segment.sample_width)
        w.setframerate(segment.frame_rate)
        w.writeframes(segment.raw_data)
    return out.getvalue()


def ulaw_bytes(segment: Segment) -> bytes:
    """Raw G.711 mu-law, what Asterisk's `ulaw` format is (no header)."""
    return audioop.lin2ulaw(bytes(segment.raw_data), segment.sample_width)
