"""Shared test helpers: where the recorded Asterisk transcripts live, and a busy machine
on demand (IVR_TEST_BUSY_LOOPS)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The real Asterisk and a controller attached to it, for every directory's real-PBX tests.
pytest_plugins = ["pbxfixtures"]

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("IVR_SHARED_DIR", REPO.parent / "shared"))
TRANSCRIPTS = SHARED / "asterisk"


@pytest.fixture
def transcripts() -> Path:
    """The recordings of a real Asterisk's AGI and AMI traffic beside the repository
    (../shared/asterisk). A clone with nothing beside it skips these tests with the reason;
    CI (CI=true) has them and fails without them."""
    if not TRANSCRIPTS.is_dir():
        why = f"recorded Asterisk transcripts not found at {TRANSCRIPTS} (set IVR_SHARED_DIR to the folder holding asterisk/)"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    return TRANSCRIPTS


@pytest.fixture(scope="session", autouse=True)
def busy_machine() -> Iterator[None]:
    """IVR_TEST_BUSY_LOOPS=N: N processes spin on the CPU for the whole run (`.ci/run` sets
    2), so that a test which passes only on an idle machine fails where it is checked."""
    count = int(os.environ.get("IVR_TEST_BUSY_LOOPS", "0") or 0)
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
