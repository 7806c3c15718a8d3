"""Helpers for config tests: a copy of the example configuration that a test breaks on purpose."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from ivr.config.loader import Problem, check_config

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIG = REPO / "config"
EXAMPLE_SOUNDS = REPO / "prompts" / "sounds"


@dataclass
class Example:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config"

    @property
    def sounds(self) -> Path:
        return self.root / "prompts" / "sounds"

    def text(self, rel: str) -> str:
        return (self.config / rel).read_text(encoding="utf-8")

    def edit(self, rel: str, old: str, new: str) -> None:
        """Replace `old` (which must occur exactly once) by `new` in a config file."""
        text = self.text(rel)
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {rel}"
        (self.config / rel).write_text(text.replace(old, new), encoding="utf-8")

    def where(self, rel: str, needle: str, nth: int = 1, offset: int = 0) -> str:
        """`file:line:column` of the nth occurrence of `needle` (+ offset characters) in a file."""
        text = self.text(rel)
        index = -1
        for _ in range(nth):
            index = text.index(needle, index + 1)
        index += offset
        line = text.count("\n", 0, index) + 1
        column = index - (text.rfind("\n", 0, index) + 1) + 1
        return f"{rel}:{line}:{column}"

    def own_sounds(self) -> None:
        """Replace the shared (symlinked) sounds by a private copy the test may break."""
        self.sounds.unlink()
        shutil.copytree(EXAMPLE_SOUNDS, self.sounds)

    def problems(self) -> list[str]:
        return [str(p) for p in check_config(self.config)]

    def raw_problems(self) -> list[Problem]:
        return check_config(self.config)


def make_example(tmp_path: Path) -> Example:
    shutil.copytree(EXAMPLE_CONFIG, tmp_path / "config")
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "sounds").symlink_to(EXAMPLE_SOUNDS, target_is_directory=True)
    return Example(tmp_path)
