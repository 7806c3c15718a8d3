"""What Asterisk plays as a prompt, checked with the standard `wave` module only."""

from __future__ import annotations

import wave
from pathlib import Path

RATE, CHANNELS, WIDTH = 8000, 1, 2
EXPECTED = "8000 Hz, mono, 16-bit"
# Formats `ivr prompts build` writes: signed linear WAV, and raw G.711 mu-law on request.
FORMATS = ("wav", "ulaw")


def wav_problem(path: Path) -> str | None:
    """Why Asterisk cannot play this .wav as a prompt, or None."""
    try:
        with wave.open(str(path), "rb") as w:
            rate, channels, width, frames = w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()
    except (wave.Error, EOFError, OSError) as exc:
        return f"not a PCM WAV file Asterisk can play ({exc}); expected {EXPECTED}"
    if (rate, channels, width) != (RATE, CHANNELS, WIDTH):
        shown = f"{rate} Hz, {'mono' if channels == 1 else f'{channels} channels'}, {width * 8}-bit"
        return f"{shown} (expected {EXPECTED}: rebuild with `ivr prompts build`)"
    if frames == 0:
        return "no audio (0 frames)"
    return None


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()
