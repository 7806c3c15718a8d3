"""The `ivr` FastAGI script: one hotline call from arrival to hand-off or hang-up.

This is the boundary around a call: whatever happens (the caller hangs up, a backend
fails, a bug), the call record is closed with a disposition, and on failure the caller
is sent somewhere sensible instead of being dropped.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from zoneinfo import ZoneInfo

import httpx

from ivr.agi.errors import AgiAppNotFound, AgiError, AgiHangup
from ivr.agi.session import AgiSession
from ivr.config.models import Hotline
from ivr.flow.context import CallContext, Clock, utc_now
from ivr.flow.engine import Exit, FlowRunner
from ivr.records.model import CallEnded, CallStarted, Disposition, EventKind
from ivr.records.store import CallStore
from ivr.reload import ConfigHolder
from routing.service import Acd, AcdLink

log = logging.getLogger(__name__)

# Where a caller goes after an ACD call the agent ended first: the post-call survey's
# re-entry in the dialplan, `ivr-survey,<queue>,1` as after app_queue (it reads
# IVR_CALL_ID, IVR_QUEUE, IVR_AGENT, IVR_LANGUAGE, IVR_HUNGUP_BY).
SURVEY_CONTEXT = "ivr-survey"


def new_call_id() -> str:
    return uuid.uuid4().hex


class IvrScript:
    def __init__(
        self,
        configs: ConfigHolder,
        store: CallStore,
        http: httpx.AsyncClient,
        *,
        clock: Clock = utc_now,
        call_ids: Callable[[], str] = new_call_id,
        lookup_base_url: str | None = None,
        acd: Acd | None = None,
    ) -> None:
        self.acd = acd
        self.lookup_base_url = lookup_base_url
        self.configs = configs
        self.store = store
        self.http = http
        self.clock = clock
        self.call_ids = call_ids

    async def __call__(self, session: AgiSession) -> None:
        config = self.configs.current  # this call keeps this version to its end
        env = session.env
        dialed = env.query.get("hotline") or env.dnid or env.extension
        call_id = self.call_ids()
        found = config.hotline_for(dialed)
        if found is None:
            await self._unknown_hotline(session, call_id, dialed, config.version)
            return
        number, hotline = found
        flow = config.flow_for(hotline)
        call = CallContext(
            call_id=call_id,
            dialed=number,
            hotline=hotline,
            flow=flow,
            flow_version=config.flow_versions[hotline.flow],
            language=hotline.language,
            clock=self.clock,
            variables={"caller": env.callerid, "hotline": number, "call_id": call_id},
        )
        self.store.call_started(
            CallStarted(
                call_id=call_id,
                uniqueid=env.uniqueid,
                channel=env.channel,
                dialed=number,
                caller=env.callerid,
                hotline=hotline.name,
                language=hotline.language,
                menu_version=call.flow_version,
                config_version=config.version,
                started_at=call.clock(),
            )
        )
        acd = AcdLink(self.acd, session) if self.acd is not None else None
        runner = FlowRunner(config, session, call, self.http, lookup_base_url=self.lookup_base_url, acd=acd)
        exit = Exit(Disposition.INTERRUPTED, "controller stopped during the call")
        try:
            exit = await self._run(session, runner, call, hotline)
        except AgiHangup:
            call.record(EventKind.HANGUP, "caller")
            served = runner.ended_in_ivr()
            disposition = Disposition.ABANDONED if served is Disposition.IVR_HANGUP else served
            exit = Exit(disposition, call.node, hung_up_by="caller")
        except asyncio.CancelledError:
            # The controller is stopping (or the call's task was cancelled): the session
            # closes, AGI() returns with IVR_STATUS still ACTIVE, and the dialplan sends the
            # caller to its fallback queue (extensions_ivr.conf, label `released`).
            call.record(EventKind.ERROR, "controller stopped during the call")
            exit = Exit(Disposition.INTERRUPTED, "controller stopped: the dialplan's fallback queue takes the caller")
            raise
        except Exception as exc:
            if isinstance(exc, AgiError):  # Asterisk's side (a reply we cannot use): one line
                log.warning("call %s (%s) failed at node %r: %s: %s", call_id, env.channel, call.node,
                            type(exc).__name__, exc)
            else:  # a defect of ours: the traceback
                log.exception("call %s (%s) failed at node %r", call_id, env.channel, call.node)
            call.record(EventKind.ERROR, f"{type(exc).__name__}: {exc}"[:300])
            exit = Exit(Disposition.ERROR, f"{type(exc).__name__}: {exc}"[:300])
            try:
                fallback = await runner.fall_back()
            except AgiError as second:
                log.warning("call %s: fallback after failure failed too: %s", call_id, second)
                fallback = None
            if fallback is not None:
                exit = Exit(Disposition.ERROR, f"{exit.detail}; sent to queue {fallback.detail}")
        finally:
            self.store.call_ended(
                CallEnded(
                    call_id=call_id,
                    ended_at=call.clock(),
                    disposition=exit.disposition,
                    detail=exit.detail,
                    language=call.language,
                    notice_played_at=call.notice_played_at,
                    recording_started_at=call.recording_started_at,
                    recording_file=call.recording_file,
                    hung_up_by=exit.hung_up_by,
                    events=tuple(call.events),
                    queue_legs=tuple(call.queue_legs),
                )
            )

    async def _run(self, session: AgiSession, runner: FlowRunner, call: CallContext, hotline: Hotline) -> Exit:
        await session.answer()
        await session.set_variable("IVR_CALL_ID", call.call_id)
        await runner.set_language(hotline.language)
        await self._notice_then_recording(session, runner, call, hotline)
        exit = await runner.run(hotline.entry or call.flow.start)
        if exit.disposition is Disposition.ANSWERED and exit.hung_up_by == "agent":
            await self._to_survey(session, runner, call)
        if not (session.moved or session.hung_up):
            # The flow ended the call here: the dialplan hangs up (IVR_STATUS still ACTIVE
            # would send the caller to the fallback queue, as after a controller that died).
            try:
                await session.set_variable("IVR_STATUS", "DONE")
            except AgiHangup:
                pass
        return exit

    async def _to_survey(self, session: AgiSession, runner: FlowRunner, call: CallContext) -> None:
        """The agent hung up first and the caller is still on the line: the dialplan's
        survey re-entry takes the caller once this AGI ends."""
        if not call.queue_legs:
            return
        leg = call.queue_legs[-1]
        try:
            for name, value in (
                ("IVR_QUEUE", leg.queue),
                ("IVR_AGENT", leg.agent_id or ""),
                ("IVR_LANGUAGE", runner.asterisk_language),
                ("IVR_HUNGUP_BY", "agent"),
            ):
                await session.set_variable(name, value)
            await session.continue_at(SURVEY_CONTEXT, leg.queue, "1")
        except AgiHangup:
            call.record(EventKind.HANGUP, "caller (after the agent)")  # answered all the same
            return
        call.record(EventKind.TRANSFER, f"{SURVEY_CONTEXT},{leg.queue},1")

    async def _notice_then_recording(
        self, session: AgiSession, runner: FlowRunner, call: CallContext, hotline: Hotline
    ) -> None:
        """The caller must hear the notice before anything is recorded."""
        if hotline.recording_notice:
            played = await session.stream_file(runner.prompt_path(hotline.recording_notice))
            if played.failed:
                call.record(EventKind.ERROR, f"recording notice {hotline.recording_notice} did not play")
            else:
                call.notice_played_at = call.clock()
                call.record(EventKind.NOTICE, hotline.recording_notice)
        if not hotline.recording.enabled:
            return
        if hotline.recording_notice and call.notice_played_at is None:
            call.record(EventKind.RECORDING, "not started: the caller did not hear the notice")
            return
        filename = recording_filename(hotline, call, session.env.uniqueid)
        arguments = (filename, hotline.recording.options) if hotline.recording.options else (filename,)
        try:
            await session.exec("MixMonitor", *arguments)
        except AgiAppNotFound:
            call.record(EventKind.ERROR, "MixMonitor is not loaded: call not recorded")
            return
        call.recording_started_at = call.clock()
        call.recording_file = filename
        call.record(EventKind.RECORDING, filename)

    async def _unknown_hotline(self, session: AgiSession, call_id: str, dialed: str, version: str) -> None:
        """No hotline for this number: keep a record and let the dialplan's fallback take it
        (it plays "not in service"). An expected path, e.g. a number being retired: INFO."""
        log.info("call %s to %r: no hotline configured for that number: not in service", call_id, dialed)
        env = session.env
        now = self.clock()
        self.store.call_started(
            CallStarted(call_id, env.uniqueid, env.channel, dialed, env.callerid, "", env.language, "", version, now)
        )
        try:
            await session.set_variable("IVR_STATUS", "NO_HOTLINE")
        except AgiError:
            pass
        self.store.call_ended(
            CallEnded(
                call_id=call_id,
                ended_at=self.clock(),
                disposition=Disposition.NOT_IN_SERVICE,
                detail=f"no hotline configured for {dialed!r}",
                language=env.language,
                notice_played_at=None,
                recording_started_at=None,
                recording_file=None,
                hung_up_by=None,
                events=(),
            )
        )


def recording_filename(hotline: Hotline, call: CallContext, uniqueid: str) -> str:
    local = call.clock().astimezone(ZoneInfo(hotline.timezone))
    return hotline.recording.filename.format(
        hotline=call.dialed,
        uniqueid=uniqueid,
        call_id=call.call_id,
        date=local.strftime("%Y%m%d"),
        time=local.strftime("%H%M%S"),
        caller="".join(ch for ch in call.variables.get("caller", "") if ch.isdigit()) or "anonymous",
    )
