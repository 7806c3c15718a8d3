"""Caller numbers are personal data: store them as the privacy setting says."""

from __future__ import annotations

import hashlib
from typing import Literal

Policy = Literal["full", "mask", "hash"]


def mask_caller(number: str, policy: Policy, salt: str = "") -> str:
    """full: as received; mask: all but the last 4 digits hidden; hash: salted SHA-256."""
    if not number or number in ("unknown", "anonymous") or policy == "full":
        return number
    if policy == "mask":
        return "*" * max(len(number) - 4, 0) + number[-4:]
    return "sha256:" + hashlib.sha256((salt + number).encode()).hexdigest()
