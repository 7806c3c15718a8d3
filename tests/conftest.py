"""Shared test helpers: where the recorded Asterisk transcripts live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The real Asterisk and a controller attached to it, for every directory's real-PBX tests.
pytest_plugins = ["pbxfixtures"]

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("IVR_SHARED_DIR", REPO.parent / "shared"))
TRANSCRIPTS = SHARED / "asterisk"


@pytest.fixture
def transcripts() -> Path:
    if not TRANSCRIPTS.is_dir():
        pytest.fail(f"recorded Asterisk transcripts not found at {TRANSCRIPTS} (set IVR_SHARED_DIR)")
    return TRANSCRIPTS
