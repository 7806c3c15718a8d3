"""The controller's AMI link, on panoramisk's Manager.

panoramisk's client is sound, but it reconnects at a fixed interval and also after
a deliberate close; this subclass adds exponential back-off and a clean shutdown.
For now the link feeds Hangup causes into the call records: Asterisk knows why a
channel ended better than the FastAGI session does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from panoramisk import Manager

from ivr.config.models import AmiSettings
from ivr.records.store import CallStore

log = logging.getLogger(__name__)


class _BackoffManager(Manager):  # type: ignore[misc]
    def __init__(self, *, reconnect_min: float, reconnect_max: float, **config: Any) -> None:
        super().__init__(**config)
        self._min = reconnect_min
        self._max = reconnect_max
        self.reconnect_timeout = reconnect_min
        self.closing = False

    def connection_made(self, future: "asyncio.Future[Any]") -> None:
        if self.closing:
            return
        if future.exception() is not None:
            self.reconnect_timeout = min(self.reconnect_timeout * 2, self._max)
            log.warning("AMI connect to %s:%s failed: %s; retrying in %.1f s",
                        self.config["host"], self.config["port"], future.exception(), self.reconnect_timeout)
        super().connection_made(future)

    def login(self, future: "asyncio.Future[Any]") -> bool:
        ok = bool(super().login(future))
        if ok:
            self.reconnect_timeout = self._min
            log.info("AMI logged in to %s:%s", self.config["host"], self.config["port"])
        else:
            log.error("AMI login to %s:%s refused for user %r",
                      self.config["host"], self.config["port"], self.config.get("username"))
        return ok

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closing:
            self._connected = False
            return
        self.reconnect_timeout = min(max(self.reconnect_timeout, self._min), self._max)
        super().connection_lost(exc)
        self.reconnect_timeout = min(self.reconnect_timeout * 2, self._max)


def hangup_cause_handler(store: CallStore) -> Callable[[Any, Any], None]:
    def on_hangup(_manager: Any, event: Any) -> None:
        uniqueid = event.get("Uniqueid")
        try:
            cause = int(event.get("Cause", "0"))
        except ValueError:
            cause = 0
        if uniqueid:
            store.set_hangup_cause(uniqueid, cause, event.get("Cause-txt", ""))

    return on_hangup


async def start_ami_link(settings: AmiSettings, store: CallStore) -> Callable[[], None]:
    """Connect (retrying in the background) and return a function that closes the link."""
    manager = _BackoffManager(
        host=settings.host,
        port=settings.port,
        username=settings.username,
        secret=settings.secret,
        reconnect_min=settings.reconnect_min,
        reconnect_max=settings.reconnect_max,
        loop=asyncio.get_running_loop(),
        log=log,
    )
    manager.register_event("Hangup", hangup_cause_handler(store))
    manager.connect()

    def close() -> None:
        manager.closing = True
        manager.close()

    return close
