"""What the PBX must provide for this configuration that the controller cannot create itself.

Survey comments are written by Asterisk (RECORD FILE), into `comment.directory` of
surveys.yaml on Asterisk's own file system. When the directory is missing there, Asterisk
answers `200 result=-1 (writefile)`, the comment is lost and the AGI ends with
AGISTATUS=FAILURE. When FastAGI only accepts loopback connections (`fastagi.allow`),
Asterisk runs on this host and the directory is checked here; otherwise it is a note.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ivr.config.loader import LoadedConfig

Status = Literal["ok", "missing", "not_writable", "elsewhere"]


@dataclass(frozen=True)
class PbxDirectory:
    path: str
    purpose: str  # e.g. "survey comments"
    setting: str  # where it is configured, e.g. "surveys.yaml comment.directory"
    status: Status

    @property
    def message(self) -> str:
        needs = f"Asterisk must be able to write {self.purpose} to {self.path}"
        return needs + {
            "ok": f": it exists here and is writable ({self.setting})",
            "missing": f": missing on this host, create it, owned by the user Asterisk runs as ({self.setting})",
            "not_writable": f": not writable here, give the user Asterisk runs as write access ({self.setting})",
            "elsewhere": f" on the PBX (Asterisk is not on this host: not checked here; {self.setting})",
        }[self.status]

    @property
    def problem(self) -> bool:
        return self.status in ("missing", "not_writable")


def asterisk_on_this_host(config: LoadedConfig) -> bool:
    """FastAGI accepts only loopback addresses: the Asterisk that calls it runs here."""
    try:
        networks = [ipaddress.ip_network(entry, strict=False) for entry in config.server.fastagi.allow]
    except ValueError:
        return False
    return bool(networks) and all(network.network_address.is_loopback for network in networks)


def pbx_directories(config: LoadedConfig) -> list[PbxDirectory]:
    """The directories Asterisk needs for this configuration, checked when it runs here."""
    if config.surveys is None:
        return []
    paths = sorted({survey.comment.directory.rstrip("/") or "/" for survey in config.surveys.surveys.values()
                    if survey.comment is not None})
    local = asterisk_on_this_host(config)
    return [PbxDirectory(path, "survey comments", "surveys.yaml comment.directory",
                         _status(Path(path)) if local else "elsewhere") for path in paths]


def _status(path: Path) -> Status:
    if not path.is_dir():
        return "missing"
    return "ok" if os.access(path, os.W_OK | os.X_OK) else "not_writable"
