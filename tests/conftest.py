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
    """The recordings of a real Asterisk's AGI and AMI traffic beside the repository
    (../shared/asterisk). A clone with nothing beside it skips these tests with the reason;
    CI (CI=true) has them and fails without them."""
    if not TRANSCRIPTS.is_dir():
        why = f"recorded Asterisk transcripts not found at {TRANSCRIPTS} (set IVR_SHARED_DIR to the folder holding asterisk/)"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    return TRANSCRIPTS
