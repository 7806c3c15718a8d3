"""The spool: records the writer could not put in the database yet, as JSON Lines on disk.

Each store appends to a file of its own, `<prefix>-<pid>-<random>.jsonl`, created at its
first append (the database just failed) and held with an exclusive `flock` until the
store has replayed it and removed it, or closed. Every append is flushed and fsync'ed
before the writer goes on, so a crash of the controller (or of the machine) loses none of
it. A file nobody holds belongs to a store that died or closed during an outage: the next
store opened on the same database claims it (the lock again) and replays it; a file that
another running store holds is left to that store. Replays are idempotent
(`ivr.records.writes`), so a file replayed twice does no harm.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from ivr.records.writes import BadLine, Write, decode, encode

log = logging.getLogger(__name__)


class SpoolFile:
    """One locked spool file: appended to by its owner, or claimed to be replayed."""

    def __init__(self, path: Path, handle: BinaryIO) -> None:
        self.path = path
        self._handle = handle
        self.replayed = 0  # bytes already written to the database (this process)

    @classmethod
    def create(cls, directory: Path, prefix: str) -> SpoolFile:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{prefix}-{os.getpid()}-{secrets.token_hex(4)}.jsonl"
        handle = open(path, "ab")  # noqa: SIM115 - held (locked) as long as the spool lives
        fcntl.flock(handle, fcntl.LOCK_EX)
        return cls(path, handle)

    @classmethod
    def claim(cls, path: Path) -> SpoolFile | None:
        """The file, locked for us; None if another living store holds it or it is gone."""
        try:
            handle = open(path, "rb")  # noqa: SIM115 - see create(); a claimed file is only read
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        if not path.exists():  # removed by its replayer between our open and our lock
            handle.close()
            return None
        return cls(path, handle)

    def append(self, writes: Sequence[Write]) -> None:
        self._handle.write(b"".join(encode(write) for write in writes))
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def batches(self, size: int) -> Iterator[tuple[list[Write], int]]:
        """The records not yet replayed, `size` at a time, each with the offset after it
        (give it to `mark_replayed` once the batch is in the database)."""
        with open(self.path, "rb") as reader:
            reader.seek(self.replayed)
            batch: list[Write] = []
            offset = self.replayed
            for line in reader:
                offset += len(line)
                if not line.strip():
                    continue
                try:
                    batch.append(decode(line))
                except BadLine as exc:
                    # Only a crash mid-append cuts a line, and then it is the last one.
                    log.error("spool %s: skipping a line: %s", self.path, exc)
                    continue
                if len(batch) >= size:
                    yield batch, offset
                    batch = []
            if batch or offset != self.replayed:
                yield batch, offset

    def mark_replayed(self, offset: int) -> None:
        self.replayed = offset

    @property
    def exhausted(self) -> bool:
        return self.replayed >= self.path.stat().st_size

    def remove(self) -> None:
        """Everything in it is in the database: delete it (still locked), then let go."""
        self.path.unlink(missing_ok=True)
        self.release()

    def release(self) -> None:
        if not self._handle.closed:
            self._handle.close()  # closing drops the flock


def spool_files(directory: Path, prefix: str) -> list[Path]:
    """Every spool file of `prefix` in `directory`, oldest first."""
    found = []
    for path in directory.glob(f"{prefix}-*.jsonl") if directory.is_dir() else ():
        try:
            found.append((path.stat().st_mtime, path.name, path))
        except FileNotFoundError:  # replayed and removed by its owner meanwhile
            continue
    return [path for _mtime, _name, path in sorted(found)]
