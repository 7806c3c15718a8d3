"""Fixtures for the `ivr` command's tests: a config copy to edit and a running `ivr serve`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from servekit import Served, copy_config


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return copy_config(tmp_path)


@pytest.fixture
def served(config: Path) -> Iterator[Served]:
    server = Served(config)
    yield server
    server.kill()
