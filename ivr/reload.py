"""Atomic configuration reload.

Each call takes a snapshot of the configuration when it arrives and keeps it to the
end, so a reload never changes a menu under a caller's feet. A broken configuration
keeps the old one live and says why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ivr.config.loader import ConfigError, LoadedConfig, load_config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReloadResult:
    ok: bool
    version: str
    problems: tuple[str, ...] = ()


class ConfigHolder:
    def __init__(self, config_dir: Path, initial: LoadedConfig) -> None:
        self.config_dir = config_dir
        self._current = initial

    @property
    def current(self) -> LoadedConfig:
        return self._current

    def reload(self) -> ReloadResult:
        try:
            fresh = load_config(self.config_dir)
        except ConfigError as exc:
            problems = tuple(str(p) for p in exc.problems)
            log.error(
                "reload refused, configuration %s stays live:\n  %s",
                self._current.version, "\n  ".join(problems),
            )
            return ReloadResult(False, self._current.version, problems)
        previous, self._current = self._current, fresh  # one reference swap: atomic for calls
        if fresh.version != previous.version:
            log.info("configuration reloaded: %s -> %s", previous.version, fresh.version)
        else:
            log.info("configuration reloaded: unchanged (%s)", fresh.version)
        return ReloadResult(True, fresh.version)
