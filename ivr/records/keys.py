"""The controller's two secrets about callers, each given in server.yaml or made once.

- The caller-key salt. A caller key is HMAC-SHA256(salt, the caller's number): it finds a
  returning caller and a survey's cooldown without storing the number. With an empty salt
  anyone with the database reverses a key to its number in milliseconds (11 digits are
  few), so a controller never runs with one: `privacy.hash_salt`, or else a random salt the
  first start writes to `var/privacy.salt`.
- The contact key. Under the `mask` and `hash` policies a follow-up item keeps the number
  to call back only sealed with it (Fernet: AES-128-CBC with HMAC-SHA256), opened by
  `ivr followups contact`, which records who asked and why: `var/contact.key`.

Both files are made with mode 0600 on first use and read afterwards. Several controllers
sharing one store must use the same secrets: for them a missing one is an error, not a
secret of their own (copy the first controller's file, or set `hash_salt`).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet

from ivr.config.models import ServerConfig

SALT_FILE = Path("var/privacy.salt")
CONTACT_KEY_FILE = Path("var/contact.key")


class SaltError(Exception):
    """No secret can be had without making one other controllers cannot match."""


def caller_salt(server: ServerConfig, config_dir: Path) -> str:
    if server.privacy.hash_salt:
        return server.privacy.hash_salt
    return _kept(server, config_dir / SALT_FILE, lambda: secrets.token_hex(32),
                 "privacy.hash_salt is empty and {path} does not exist, while several controllers may share the "
                 "store: set privacy.hash_salt (the same on every controller), or copy one controller's {name} to "
                 "the others")  # fmt: skip


def contact_key(server: ServerConfig, config_dir: Path) -> bytes:
    return _kept(server, config_dir / CONTACT_KEY_FILE, lambda: Fernet.generate_key().decode(),
                 "{path} does not exist, while several controllers may share the store: copy one controller's "
                 "{name} to the others").encode()  # fmt: skip


def _kept(server: ServerConfig, path: Path, new: Callable[[], str], missing: str) -> str:
    try:
        kept = path.read_text().strip()
    except FileNotFoundError:
        kept = ""
    if kept:
        return kept
    if server.store.url is not None:
        raise SaltError(missing.format(path=path, name=path.relative_to(path.parent.parent)))
    path.parent.mkdir(parents=True, exist_ok=True)
    value = new()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: theirs it is
        return path.read_text().strip()
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")
    return value
