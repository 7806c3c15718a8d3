"""Shared set-up for the prompt pipeline tests: real espeak-ng audio, small catalogs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session", autouse=True)
def espeak_ng() -> str:
    """These tests build real audio: espeak-ng must be installed (never silently skipped)."""
    found = shutil.which("espeak-ng")
    assert found, "espeak-ng is not installed: apt-get install -y espeak-ng (see .ci/run)"
    return found


SMALL_CATALOG = """\
output: sounds
languages:
  zh-CN: {voice: zh-CN-XiaoxiaoNeural, espeak: cmn, espeak_speed: 195}
  en-US: {voice: en-US-AriaNeural, espeak: en-us, espeak_speed: 195}
prompts:
  welcome:
    zh-CN: 您好，欢迎致电。
    en-US: Welcome to Example Company.
  choose-language:
    zh-CN: 普通话请按1。 For English, press 2.
  goodbye:
    en-US: {text: Goodbye., voice: en-US-GuyNeural}
"""


@pytest.fixture
def small_catalog(tmp_path: Path) -> Path:
    path = tmp_path / "prompts" / "catalog.yaml"
    path.parent.mkdir()
    path.write_text(SMALL_CATALOG, encoding="utf-8")
    return path
