"""Wiring for `ivr serve`: one place that builds the controller from its configuration."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import random
import signal
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from ivr import selfservice
from ivr.admin import AdminServer, AdminService
from ivr.agi.server import FastAgiServer, Router, ServerLimits
from ivr.agi.session import TurnaroundHook
from ivr.config.loader import LoadedConfig, load_config
from ivr.config.pbx_needs import pbx_directories
from ivr.flow.context import Clock, utc_now
from ivr.flow.script import IvrScript, new_call_id
from ivr.flow.survey_script import SurveyScript, new_id
from ivr.loop_errors import ThrottledLoopErrors
from ivr.records.keys import caller_salt, contact_key
from ivr.records.store import CallStore, StoreUnavailable
from ivr.reload import ConfigHolder, ReloadResult
from routing.agent_script import AgentScript
from routing.ami_agents import AmiAgents
from routing.callbacks import CallbackWorker
from routing.classify import PastCall
from routing.config import RoutingConfig
from routing.recording_state import RecordingState
from routing.state import LiveState, StateUnavailable
from routing.service import Acd
from survey_engine.config import WebForm
from survey_engine.contacts import ContactSeal
from survey_engine.store import SurveyStore
from survey_engine.web import FeedbackWeb

if TYPE_CHECKING:
    from desk.server import DeskServer
    from desk.service import DeskService

log = logging.getLogger(__name__)

RECOVERY_RETRY = 5.0  # seconds before closing a previous run's open records is tried again
RECOVERY_RETRY_MAX = 60.0


@dataclass
class ControllerOptions:
    port: int | None = None  # overrides fastagi.port (0 = any free port)
    sqlite_path: Path | None = None  # overrides store.sqlite_path and store.url; relative: in the config dir, like those
    clock: Clock = utc_now
    on_turnaround: TurnaroundHook | None = None
    lookup_base_url: str | None = None  # overrides lookups.base_url (the demo's backend)
    acd: bool = True  # False: no ACD even with routing.yaml (every queue is a dialplan place)
    routing: RoutingConfig | None = None  # overrides config/routing.yaml (tests)
    live_state: LiveState | None = None  # a live-state backend to use instead of building one
    acd_clock: Callable[[], float] = time.time  # the ACD's epoch seconds (waits, steps, wrap-up)
    acd_rng: random.Random | None = None  # for the `random` strategy
    acd_max_idle: float = 1.0  # the dispatcher re-matches at least this often (seconds)
    # Serve the admin socket (server.yaml `admin_socket`) that `ivr agents`/`ivr queues` use.
    # `ivr serve` turns it on; off for in-process controllers (tests, demo, benchmarks), so
    # that several of them on one config directory do not contend for one socket file.
    admin: bool = False
    feedback_port: int | None = None  # overrides surveys.yaml web.port (0 = any free port)
    ids: Callable[[], str] | None = None  # call, survey response and follow-up ids (default: random UUIDs)
    survey_rng: random.Random | None = None  # for surveys.yaml `mode: sample`
    pbx_directories: bool = True  # False: no Asterisk writes here (the demo plays its part): nothing to check
    # Serve the agent desktop (server.yaml `desk`, when enabled there): `ivr serve` turns it on.
    desk: bool = False
    desk_port: int | None = None  # overrides desk.port (0 = any free port)


class Controller:
    """FastAGI server + call-record store + (optionally) the AMI link, for one config dir."""

    def __init__(self, config_dir: Path, options: ControllerOptions | None = None) -> None:
        self.config_dir = config_dir
        self.options = options or ControllerOptions()
        initial = load_config(config_dir)
        self.configs = ConfigHolder(config_dir, initial)
        self.store: CallStore | None = None
        self.surveys: SurveyStore | None = None  # on the same database (engine) as `store`
        self.feedback: FeedbackWeb | None = None  # the web feedback form (surveys.yaml web.enabled)
        self.server: FastAgiServer | None = None
        self.http: httpx.AsyncClient | None = None
        self._ami_close: Callable[[], None] | None = None
        self.acd: Acd | None = None
        self._own_state: LiveState | None = None  # built here, closed here
        self._recovery: asyncio.Task[None] | None = None  # closing a previous run's open records
        self.admin: AdminServer | None = None
        self.ami_agents: AmiAgents | None = None  # AMI -> the ACD's live state (AMI and ACD on)
        self.callbacks: CallbackWorker | None = None  # callback requests -> Originate (AMI and ACD on)
        self.desk: DeskService | None = None  # the agent desktop's service (desk.enabled, ACD on)
        self.desk_server: DeskServer | None = None

    @property
    def config(self) -> LoadedConfig:
        return self.configs.current

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else (self.config_dir / path)

    def store_target(self) -> Path | str:
        """The call-record store this controller opens: ControllerOptions.sqlite_path, else
        server.yaml's store.url, else its store.sqlite_path; a relative path is in the
        configuration directory."""
        path = self.options.sqlite_path
        return self.resolve(path) if path is not None else (
            self.config.server.store.url or self.resolve(self.config.server.store.sqlite_path))

    async def start(self) -> None:
        settings = self.config.server
        for needed in pbx_directories(self.config) if self.options.pbx_directories else ():
            log.log(logging.WARNING if needed.problem else logging.INFO, "%s", needed.message)
        db = self.store_target()
        self.store = await CallStore.open(
            db, privacy_policy=settings.privacy.caller_number, salt=caller_salt(settings, self.config.config_dir),
            spool_dir=None if isinstance(db, Path) else self.resolve(Path("var")),
            controller=settings.store.controller or socket.gethostname(),
        )
        self._recovery = asyncio.create_task(self._recover(self.store, self.options.clock()), name="store-recovery")
        self.surveys = SurveyStore(self.store.engine)
        self.http = httpx.AsyncClient(
            transport=selfservice.GatedTransport(httpx.AsyncHTTPTransport(), settings.lookups.max_in_flight)
        )
        routing = self.options.routing or self.config.routing
        if routing is not None and self.options.acd:
            # Presence changes also go to the call records (occupancy, logged-in staffing).
            state = RecordingState(self.options.live_state or await self._build_state(routing), self.store)
            self.acd = Acd(
                routing, state, clock=self.options.acd_clock, rng=self.options.acd_rng or random.Random(),
                history=self._history, max_idle=self.options.acd_max_idle,
                # Callback requests only where someone works them off: the worker needs AMI.
                callbacks=self.store if settings.ami.enabled else None,
            )
            if not settings.ami.enabled and any(
                destination is not None and destination.callback
                for queue in routing.queues.values()
                for destination in (queue.overflow.timeout, queue.overflow.no_agents, queue.overflow.full)
            ):
                log.warning("routing.yaml offers callbacks but AMI is off: nobody could call back, so callers "
                            "go to the queue's voicemail instead of being offered one")
            if settings.ami.enabled:
                # Before the dispatcher runs: no offers until AMI has told the devices' states.
                self.ami_agents = AmiAgents(self.acd, clock=self.options.acd_clock)
                self.ami_agents.start()
            await self.acd.start()
        router = Router()
        router.add(
            "ivr",
            IvrScript(
                self.configs, self.store, self.http,
                clock=self.options.clock, lookup_base_url=self.options.lookup_base_url, acd=self.acd,
                call_ids=self.options.ids or new_call_id,
            ),
            interrupt_on_stop=True,  # a stopping controller lets its callers go to the dialplan's fallback
        )
        # After the agent hangs up (dialplan ivr-survey); without surveys.yaml it lets the caller go.
        contacts = ContactSeal(settings.privacy.caller_number, contact_key(settings, self.config.config_dir))
        router.add("survey", SurveyScript(self.configs, self.store, self.surveys, contacts, clock=self.options.clock,
                                          ids=self.options.ids or new_id, rng=self.options.survey_rng))
        if self.acd is not None:
            router.add("agent", AgentScript(self.acd, self.configs))  # the agents' feature codes
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
        surveys = self.config.surveys
        if surveys is not None and surveys.web.enabled:
            await self._start_feedback_web(surveys.web)
        if self.options.desk and settings.desk.enabled:
            await self._start_desk(contacts)
        if self.options.admin:
            admin = AdminServer(self.resolve(settings.admin_socket), AdminService(lambda: self.acd))
            await admin.start()  # AdminSocketError: another controller serves this config dir
            self.admin = admin
        if settings.ami.enabled:
            from ivr.ami.client import start_ami_link

            acd_clock = self.options.acd_clock  # AMI's times meet the ACD's on the queue legs
            link = await start_ami_link(settings.ami, self.store, self.ami_agents,
                                        clock=lambda: dt.datetime.fromtimestamp(acd_clock(), dt.timezone.utc))
            self._ami_close = link
            if self.acd is not None:
                try:
                    recovered = await self.store.recover_callbacks(self.options.clock())
                except StoreUnavailable as exc:
                    log.error("callback requests left dialing by a previous run stay dialing: %s", exc)
                    recovered = 0
                if recovered:
                    log.warning("%d callback requests left dialing by a previous run are pending again", recovered)
                self.callbacks = CallbackWorker(self.acd, self.store, link, clock=self.options.acd_clock,
                                                rng=self.options.acd_rng, poll=self.options.acd_max_idle)
                self.callbacks.start()

    @staticmethod
    async def _recover(store: CallStore, started: dt.datetime, retry: float = RECOVERY_RETRY) -> None:
        """Close the call records a previous run left open; with the store down, retry until
        it answers (this run's own calls are never touched: they started after `started`)."""
        delay = retry
        while True:
            try:
                recovered = await store.recover_interrupted(started)
            except StoreUnavailable as exc:
                if delay == retry:
                    log.error("call records left open by a previous run stay open until the store answers: %s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECOVERY_RETRY_MAX)
                continue
            if recovered:
                log.warning("%d call records left open by a previous run were closed as interrupted", recovered)
            return

    async def _start_feedback_web(self, settings: WebForm) -> None:
        """The form callers reach by a signed link. SecretError (no signing key in the
        environment) stops the start-up: links could neither be made nor checked."""
        from survey_engine.links import secret_from_env
        from survey_engine.web import start_feedback_web

        assert self.store is not None and self.surveys is not None
        secret = secret_from_env(settings, os.environ)
        initial = self.config.surveys
        assert initial is not None
        self.feedback = await start_feedback_web(
            self.store, self.surveys, lambda: self.config.surveys or initial, secret,
            host=settings.bind, port=settings.port if self.options.feedback_port is None else self.options.feedback_port,
            clock=self.options.clock,
        )

    async def _start_desk(self, contacts: ContactSeal) -> None:
        """The agent desktop. DeskSecretError (no session key for a shared store) stops the start-up."""
        from desk.accounts import AccountStore, Role
        from desk.history import CallerHistory
        from desk.ratelimit import LoginLimiter
        from desk.server import desk_secret, start_desk
        from desk.service import DeskService
        from desk.sessions import Sessions
        from desk.web import DeskWeb
        from ivr.records.wrapups import WrapUpStore

        assert self.store is not None and self.surveys is not None
        settings = self.config.server
        if self.acd is None:
            log.warning("server.yaml desk.enabled, but the ACD is off (no routing.yaml): no agent desk")
            return
        acd = self.acd
        engine = self.store.engine
        self.desk = DeskService(
            admin=AdminService(lambda: self.acd), routing=lambda: acd.config,
            surveys_config=lambda: self.config.surveys, state=lambda: acd.state,
            history=CallerHistory(engine, self.store.key_of_number), wrapups=WrapUpStore(engine),
            surveys=self.surveys, contacts=contacts, policy=settings.privacy.caller_number,
            full_number_roles=tuple(Role(r) for r in settings.desk.full_number_roles),
            clock=self.options.acd_clock, new_id=self.options.ids or new_id,
        )
        secret = desk_secret(self.config_dir, os.environ, shared_store=settings.store.url is not None)
        web = DeskWeb(self.desk, AccountStore(engine), Sessions(secret), LoginLimiter(),
                      secure_cookies=settings.desk.secure_cookies, clock=self.options.acd_clock)
        port = settings.desk.port if self.options.desk_port is None else self.options.desk_port
        self.desk_server = await start_desk(web, host=settings.desk.bind, port=port,
                                            max_connections=settings.desk.max_connections)
        self.desk.start()
        acd.watcher = self.desk

    async def _build_state(self, routing: RoutingConfig) -> LiveState:
        """The live-state backend routing.yaml asks for. Redis unreachable at start-up: the
        controller still starts, every ACD call goes to its dialplan place, and routing resumes
        by itself once Redis answers."""
        settings = routing.state
        if settings.backend == "memory":
            from routing.memory_state import MemoryState

            self._own_state = MemoryState(settings.reservation_ttl, clock=self.options.acd_clock)
            return self._own_state
        from routing.redis_state import RedisState

        try:
            self._own_state = await RedisState.connect(settings, clock=self.options.acd_clock)
        except StateUnavailable as exc:
            log.error("ACD live state unreachable at start-up: ACD queues go to their dialplan places "
                      "until it answers: %s", exc)
            self._own_state = RedisState.offline(settings, clock=self.options.acd_clock)
        return self._own_state

    async def _history(self, caller_number: str, since: float) -> Sequence[PastCall]:
        """The caller's past ACD calls, from the call-record store (classification)."""
        if self.store is None:
            return ()
        return await self.store.history(caller_number, since)

    def reload(self) -> ReloadResult:
        result = self.configs.reload()
        routing = self.config.routing
        if result.ok and self.acd is not None and self.options.routing is None:
            if routing is None:
                log.warning("routing.yaml is gone: the ACD keeps its last routing until a restart")
            elif routing != self.acd.config:
                self.acd.reconfigure(routing)
        elif result.ok and self.acd is None and routing is not None:
            log.warning("routing.yaml appeared: the ACD starts with the next restart")
        return result

    async def stop(self, grace: float = 5.0) -> None:
        if self._recovery is not None and not self._recovery.done():
            self._recovery.cancel()
            await asyncio.gather(self._recovery, return_exceptions=True)
        if self.admin is not None:
            await self.admin.close()
            self.admin = None
        if self.desk_server is not None:
            await self.desk_server.close()
            self.desk_server = None
        if self.desk is not None:
            if self.acd is not None:
                self.acd.watcher = None
            await self.desk.stop()
        if self.server is not None:
            await self.server.close(grace)
        if self.feedback is not None:
            await self.feedback.close()
            self.feedback = None
        if self.callbacks is not None:
            await self.callbacks.stop()
        if self.acd is not None:
            await self.acd.stop()
        if self._own_state is not None:
            await self._own_state.close()
        if self._ami_close is not None:
            self._ami_close()
        if self.ami_agents is not None:
            await self.ami_agents.stop()
        if self.http is not None:
            await self.http.aclose()
        if self.surveys is not None:
            await self.surveys.close()
        if self.store is not None:
            await self.store.close()

    async def serve_forever(self) -> None:
        """Run until SIGTERM/SIGINT; SIGHUP reloads the configuration."""
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(ThrottledLoopErrors())
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
