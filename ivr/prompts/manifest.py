"""What `ivr prompts build` made: per output file, the hash of its inputs and of its bytes.

A file is rebuilt when its input hash changed (text, voice, engine, audio settings,
recorded file), or when it is missing or its bytes no longer match the manifest (edited
or damaged by hand). Every write is atomic: a reader sees the old file or the new one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST_FILE = "manifest.json"
VERSION = 1


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def input_hash(inputs: dict[str, Any]) -> str:
    """A stable hash of a JSON-able description of everything that shapes an output file."""
    return sha256(json.dumps(inputs, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode())


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    replaced = False
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        replaced = True
    finally:
        if not replaced:  # whatever stopped us, the good file stays and no temp file is left
            Path(tmp).unlink(missing_ok=True)
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@dataclass(frozen=True)
class Entry:
    input: str  # hash of the inputs
    output: str  # hash of the file's bytes
    engine: str
    voice: str
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"input": self.input, "output": self.output, "engine": self.engine, "voice": self.voice,
                "seconds": self.seconds}


@dataclass
class Manifest:
    files: dict[str, Entry] = field(default_factory=dict)  # "<language>/<id>.<ext>" -> entry

    @classmethod
    def load(cls, path: Path) -> Manifest:
        """The manifest at `path`; an absent or unreadable one is empty (everything is rebuilt)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("version") != VERSION:
                return cls()
            return cls({
                name: Entry(str(e["input"]), str(e["output"]), str(e["engine"]), str(e["voice"]), float(e["seconds"]))
                for name, e in data["files"].items()
            })
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return cls()

    def save(self, path: Path) -> None:
        data = {"version": VERSION, "files": {name: self.files[name].to_json() for name in sorted(self.files)}}
        atomic_write(path, (json.dumps(data, indent=1, ensure_ascii=False) + "\n").encode())

    def up_to_date(self, name: str, inputs: str, path: Path) -> bool:
        entry = self.files.get(name)
        if entry is None or entry.input != inputs:
            return False
        try:
            return sha256(path.read_bytes()) == entry.output
        except OSError:
            return False
