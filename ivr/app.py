"""Wiring for `ivr serve`: one place that builds the controller from its configuration."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from ivr import selfservice
from ivr.agi.server import FastAgiServer, Router, ServerLimits
from ivr.agi.session import TurnaroundHook
from ivr.config.loader import LoadedConfig, load_config
from ivr.flow.context import Clock, utc_now
from ivr.flow.script import IvrScript
from ivr.records.store import CallStore
from ivr.reload import ConfigHolder, ReloadResult

log = logging.getLogger(__name__)


@dataclass
class ControllerOptions:
    port: int | None = None  # overrides fastagi.port (0 = any free port)
    sqlite_path: Path | None = None  # overrides store.sqlite_path
    clock: Clock = utc_now
    on_turnaround: TurnaroundHook | None = None
    lookup_base_url: str | None = None  # overrides lookups.base_url (the demo's backend)


class Controller:
    """FastAGI server + call-record store + (optionally) the AMI link, for one config dir."""

    def __init__(self, config_dir: Path, options: ControllerOptions | None = None) -> None:
        self.config_dir = config_dir
        self.options = options or ControllerOptions()
        initial = load_config(config_dir)
        self.configs = ConfigHolder(config_dir, initial)
        self.store: CallStore | None = None
        self.server: FastAgiServer | None = None
        self.http: httpx.AsyncClient | None = None
        self._ami_close: Callable[[], None] | None = None

    @property
    def config(self) -> LoadedConfig:
        return self.configs.current

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else (self.config_dir / path)

    async def start(self) -> None:
        settings = self.config.server
        db = self.options.sqlite_path or self.resolve(settings.store.sqlite_path)
        self.store = await CallStore.open(
            db, privacy_policy=settings.privacy.caller_number, salt=settings.privacy.hash_salt
        )
        recovered = await self.store.recover_interrupted(self.options.clock())
        if recovered:
            log.warning("%d call records left open by a previous run were closed as interrupted", recovered)
        self.http = httpx.AsyncClient(
            transport=selfservice.GatedTransport(httpx.AsyncHTTPTransport(), settings.lookups.max_in_flight)
        )
        router = Router()
        router.add(
            "ivr",
            IvrScript(
                self.configs, self.store, self.http,
                clock=self.options.clock, lookup_base_url=self.options.lookup_base_url,
            ),
        )
        fastagi = settings.fastagi
        self.server = FastAgiServer(
            router,
            host=fastagi.bind,
            port=fastagi.port if self.options.port is None else self.options.port,
            allow=fastagi.allow,
            limits=ServerLimits(
                max_sessions=fastagi.max_sessions,
                max_line=fastagi.max_line,
                idle_timeout=fastagi.idle_timeout,
                media_timeout=fastagi.media_timeout,
            ),
            on_turnaround=self.options.on_turnaround,
        )
        await self.server.start()
        if settings.ami.enabled:
            from ivr.ami.client import start_ami_link

            self._ami_close = await start_ami_link(settings.ami, self.store)

    def reload(self) -> ReloadResult:
        return self.configs.reload()

    async def stop(self, grace: float = 5.0) -> None:
        if self.server is not None:
            await self.server.close(grace)
        if self._ami_close is not None:
            self._ami_close()
        if self.http is not None:
            await self.http.aclose()
        if self.store is not None:
            await self.store.close()

    async def serve_forever(self) -> None:
        """Run until SIGTERM/SIGINT; SIGHUP reloads the configuration."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        pidfile = self.resolve(self.config.server.pidfile)
        pidfile.parent.mkdir(parents=True, exist_ok=True)
        pidfile.write_text(f"{os.getpid()}\n")
        try:
            await stop.wait()
        finally:
            pidfile.unlink(missing_ok=True)
            await self.stop()
