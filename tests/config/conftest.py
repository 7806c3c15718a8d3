"""Fixtures for config tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from configkit import Example, make_example


@pytest.fixture
def example(tmp_path: Path) -> Example:
    """A private copy of the example configuration (prompt sounds shared, read-only)."""
    return make_example(tmp_path)
