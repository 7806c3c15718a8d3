"""The real-PBX tier's choice of Asterisk: one that dies on this processor is told apart
from one that is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from asteriskkit import AsteriskCannotRunHere, runs_here


def _script(folder: Path, body: str) -> Path:
    script = folder / "run-asterisk"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return script


def test_an_asterisk_that_dies_with_sigill_cannot_run_here(tmp_path: Path) -> None:
    script = _script(tmp_path, 'echo "run-asterisk: line 27:  99 Illegal instruction  asterisk -C $3" >&2\nexit 132\n')

    with pytest.raises(AsteriskCannotRunHere, match="dies at start on this processor.*BUILD_NATIVE"):
        runs_here(script)


def test_an_asterisk_that_starts_and_stops_runs_here(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    script = _script(tmp_path, f'echo "$1" >> {calls}\n')

    runs_here(script)

    assert calls.read_text().split() == ["start", "stop"]
