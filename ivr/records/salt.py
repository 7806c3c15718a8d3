"""The secret caller keys are made with.

A caller key is HMAC-SHA256(salt, the caller's number): it finds a returning caller and a
survey's cooldown without storing the number. With an empty salt anyone with the database
reverses a key to its number in milliseconds (11 digits are few), so a controller never
runs with one: `privacy.hash_salt` in server.yaml, or else a random salt the first start
writes to `var/privacy.salt` (mode 0600) and every later start reads. Several controllers
sharing one store must hash alike: for them an empty `hash_salt` with no salt file is an
error, not a salt of their own.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from ivr.config.models import ServerConfig

SALT_FILE = Path("var/privacy.salt")


class SaltError(Exception):
    """No salt can be had without making caller keys that other controllers cannot match."""


def caller_salt(server: ServerConfig, config_dir: Path) -> str:
    if server.privacy.hash_salt:
        return server.privacy.hash_salt
    path = config_dir / SALT_FILE
    try:
        kept = path.read_text().strip()
    except FileNotFoundError:
        kept = ""
    if kept:
        return kept
    if server.store.url is not None:
        raise SaltError(f"privacy.hash_salt is empty and {path} does not exist, while several controllers may share "
                        "the store: set privacy.hash_salt (the same on every controller), or copy one controller's "
                        f"{SALT_FILE} to the others")
    path.parent.mkdir(parents=True, exist_ok=True)
    salt = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: theirs is the salt
        return path.read_text().strip()
    with os.fdopen(fd, "w") as out:
        out.write(salt + "\n")
    return salt
