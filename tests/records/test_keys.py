"""Caller keys are never made with an empty salt."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ivr.config.models import ServerConfig
from ivr.records.keys import SaltError, caller_salt
from ivr.records.store import caller_key


def test_without_a_configured_salt_the_first_start_makes_one_only_the_owner_reads(tmp_path: Path) -> None:
    server = ServerConfig()

    first = caller_salt(server, tmp_path)
    again = caller_salt(server, tmp_path)

    assert first == again and len(first) == 64
    assert stat.S_IMODE((tmp_path / "var" / "privacy.salt").stat().st_mode) == 0o600
    assert caller_key("13800138000", first) != caller_key("13800138000", "")


def test_a_configured_salt_is_used_as_it_is(tmp_path: Path) -> None:
    server = ServerConfig.model_validate({"privacy": {"hash_salt": "pepper"}})
    assert caller_salt(server, tmp_path) == "pepper"
    assert not (tmp_path / "var" / "privacy.salt").exists()


def test_controllers_sharing_a_store_must_share_the_salt(tmp_path: Path) -> None:
    shared = ServerConfig.model_validate({"store": {"url": "postgresql://ivr@db/calls"}})
    with pytest.raises(SaltError, match="set privacy.hash_salt .the same on every controller."):
        caller_salt(shared, tmp_path)
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "privacy.salt").write_text("copied-from-the-first\n")
    assert caller_salt(shared, tmp_path) == "copied-from-the-first"
