"""How long Asterisk would take to play a sound file."""

from __future__ import annotations

import wave
from collections.abc import Iterable
from pathlib import Path

# Asterisk core sounds used by the recorded transcripts; lengths make the recorded
# endpos values come out (e.g. tt-monkeys interrupted at 1.2 s -> endpos=9600).
CORE_SOUNDS = {
    "tt-monkeys": 9.0,
    "tt-weasels": 5.5,
    "demo-congrats": 35.0,
    "beep": 0.4255,
    "silence/1": 1.0,
}


class SoundLibrary:
    """Durations of playable files. `roots` map Asterisk paths to local files: a played
    name `<asterisk_dir>/<rest>` is looked up as `<local_dir>/<rest>.wav`."""

    def __init__(self, roots: Iterable[tuple[str, Path]] = (), *, default: float | None = 2.0) -> None:
        self._roots = [(prefix.rstrip("/") + "/", local) for prefix, local in roots]
        self._default = default
        self._cache: dict[str, float | None] = {}

    def duration(self, name: str) -> float | None:
        """Seconds, or None when Asterisk would not find the file."""
        if name not in self._cache:
            self._cache[name] = self._lookup(name)
        return self._cache[name]

    def _lookup(self, name: str) -> float | None:
        if name in CORE_SOUNDS:
            return CORE_SOUNDS[name]
        for prefix, local in self._roots:
            if name.startswith(prefix):
                path = local / (name[len(prefix):] + ".wav")
                if not path.is_file():
                    return None
                with wave.open(str(path)) as audio:
                    return float(audio.getnframes()) / float(audio.getframerate())
        return self._default
