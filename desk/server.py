"""Starting the desk's HTTP server inside `ivr serve`.

Pages hold an event stream open for hours, so the connection guard here allows many
connections and long lifetimes (a stream cut at its lifetime reconnects by itself), unlike
the public feedback form's. The session secret is the environment's `IVR_DESK_SECRET`, else
a key kept in the configuration directory (`var/desk.key`, made on first start); with a
shared store (several controllers) it must be given, the same on each, or a login on one
would not hold on another.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from desk.web import DeskWeb, desk_app
from survey_engine.connguard import ConnectionGuard, GuardedSite, start_guarded

log = logging.getLogger(__name__)

SECRET_ENV = "IVR_DESK_SECRET"
KEY_FILE = Path("var/desk.key")
STREAM_LIFETIME = 3600.0  # seconds a connection may stay open; an event stream then reconnects


class DeskSecretError(Exception):
    pass


def desk_secret(config_dir: Path, environ: Mapping[str, str], *, shared_store: bool) -> str:
    given = environ.get(SECRET_ENV, "").strip()
    if given:
        if len(given) < 32:
            raise DeskSecretError(f"{SECRET_ENV} is shorter than 32 characters")
        return given
    path = config_dir / KEY_FILE
    try:
        kept = path.read_text().strip()
    except FileNotFoundError:
        kept = ""
    if kept:
        return kept
    if shared_store:
        raise DeskSecretError(f"set {SECRET_ENV} (the same on every controller sharing the store): a session "
                              f"signed by one controller must hold on the others")
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(fresh + "\n")
    log.info("desk: a new session key in %s", path)
    return fresh


# The desk's HTTP server, started by `start_desk`.
DeskServer = GuardedSite


async def start_desk(desk: DeskWeb, *, host: str, port: int, max_connections: int) -> DeskServer:
    # A second to end the open event streams at a stop: a browser reconnects by itself.
    site = await start_guarded(desk_app(desk), ConnectionGuard(max_connections, STREAM_LIFETIME), host=host,
                               port=port, backlog=512, shutdown_timeout=1.0)
    log.info("agent desk on http://%s:%d (at most %d connections)", host, site.port, max_connections)
    return site
