"""The `survey` FastAGI script: the post-call survey, once the agent has hung up.

The dialplan's `ivr-survey,<queue>,1` runs it with `?call_id=${IVR_CALL_ID}&queue=${EXTEN}`,
after the `ivr` script (engine ACD) or app_queue (`Queue` option c) let the caller go on.
The call record says who the caller talked to and how they got there; surveys.yaml says
whether this caller is asked.

A survey is never lost: the response is saved as `offered` before the first prompt, and
again with whatever the caller gave however the session ends (completed, a hang-up, a
failure), before the follow-up rules look at it.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

from ivr.agi.errors import AgiHangup
from ivr.agi.session import AgiSession
from ivr.config.loader import LoadedConfig
from ivr.flow.context import Clock, utc_now
from ivr.records.model import CallRow
from ivr.records.store import CallStore
from survey_engine.contacts import ContactSeal
from ivr.reload import ConfigHolder
from routing.config import RoutingConfig
from survey_engine.config import Survey, SurveysConfig
from survey_engine.dialog import Progress, SurveyDialog
from survey_engine.followup import follow_up
from survey_engine.model import ResponseStatus, SurveyResponse
from survey_engine.selection import Candidate, Skip, decide
from survey_engine.store import SurveyStore

log = logging.getLogger(__name__)

# Channel variables the `ivr` script, the flow and the dialplan leave for the survey.
AGENT_VARIABLE = "IVR_AGENT"  # the agent id (engine ACD), or app_queue's MEMBERINTERFACE
LANGUAGE_VARIABLE = "IVR_LANGUAGE"  # the Asterisk language code (zh, en)
OPT_IN_VARIABLE = "IVR_SURVEY_OPTIN"  # yes | no, set by a survey_opt_in node
HUNGUP_BY_VARIABLE = "IVR_HUNGUP_BY"  # agent: set where the agent is known to have hung up


def new_id() -> str:
    return uuid.uuid4().hex


def agent_name(value: str, routing: RoutingConfig | None) -> str:
    """The routing.yaml agent whose endpoint an app_queue member interface (PJSIP/1001) is;
    an agent id, or an interface no agent has, as it is."""
    if "/" in value and routing is not None:
        for agent_id, agent in routing.agents.items():
            if agent.endpoint.lower() == value.lower():
                return agent_id
    return value


def final_status(progress: Progress) -> ResponseStatus:
    if progress.finished:
        return "completed"
    if any(answer.value is not None for answer in progress.answers):
        return "partial"
    return "offered"


@dataclass(frozen=True)
class _Planned:
    survey: Survey
    response: SurveyResponse  # as offered
    asterisk_language: str
    contact: str | None  # the caller's number as received, for the follow-up


class SurveyScript:
    def __init__(
        self,
        configs: ConfigHolder,
        calls: CallStore,
        surveys: SurveyStore,
        contacts: ContactSeal,
        *,
        clock: Clock = utc_now,
        ids: Callable[[], str] = new_id,
        rng: random.Random | None = None,
    ) -> None:
        self.configs = configs
        self.calls = calls
        self.surveys = surveys
        self.contacts = contacts
        self.clock = clock
        self.ids = ids
        self.rng = rng or random.Random()

    async def __call__(self, session: AgiSession) -> None:
        config = self.configs.current
        settings = config.surveys
        call_id = session.env.query.get("call_id", "")
        queue = session.env.query.get("queue", "")
        if settings is None:
            return  # no surveys.yaml: the dialplan lets the caller go
        if not call_id or not queue:
            log.warning("survey on %s without call_id or queue (%r): not surveyed",
                        session.env.channel, session.env.network_script)
            return
        try:
            plan = await self._plan(session, config, settings, call_id, queue)
        except AgiHangup:
            log.info("call %s: the caller hung up before the survey", call_id)
            return
        except Exception:
            log.exception("call %s: the survey could not be prepared; the caller is let go", call_id)
            return
        if isinstance(plan, Skip):
            log.info("call %s: no survey: %s", call_id, plan.reason)
            return
        await self._conduct(session, config, settings, plan)

    async def _plan(
        self, session: AgiSession, config: LoadedConfig, settings: SurveysConfig, call_id: str, queue: str
    ) -> _Planned | Skip:
        variables: dict[str, str] = {}
        for name in (AGENT_VARIABLE, LANGUAGE_VARIABLE, OPT_IN_VARIABLE, HUNGUP_BY_VARIABLE):
            variables[name] = (await session.get_variable(name) or "").strip()
        await self.calls.flush()  # the `ivr` session's end is written before its row is read
        row = await self.calls.get_call(call_id)
        if row is None:
            return Skip(f"no call record {call_id}")
        leg = row.answered_leg(queue)
        hung_up_by = variables[HUNGUP_BY_VARIABLE] or (leg.ended_by if leg is not None and leg.ended_by else "")
        number = session.env.callerid
        key = self.calls.key_of_number(number)
        opt_in = variables[OPT_IN_VARIABLE].lower()
        now = self.clock()
        candidate = Candidate(
            queue=queue,
            hung_up_by=hung_up_by,
            opted_in={"yes": True, "no": False}.get(opt_in),
            disposition=row.disposition,
            legs=row.queue_legs,
            last_offered=await self.surveys.last_offered(key) if key is not None else None,
            cooldown_exempt=number in settings.selection.cooldown_exempt,
        )
        decision = decide(settings.selection.for_queue(queue), candidate, now=now, rng=self.rng)
        if isinstance(decision, Skip):
            return decision
        language = self._language(config, row, variables[LANGUAGE_VARIABLE])
        response = SurveyResponse(
            response_id=self.ids(),
            call_id=call_id,
            channel="voice",
            survey=decision.survey,
            status="offered",
            hotline=row.dialed,
            queue=queue,
            agent=agent_name(variables[AGENT_VARIABLE], config.routing)
            or (leg.agent_id if leg is not None and leg.agent_id else ""),
            language=language,
            menu_version=row.menu_version,
            menu_path=row.menu_path,
            hung_up_by=hung_up_by,
            caller_key=key,
            offered_at=now,
        )
        contact = number if key is not None else None  # digits to call back, not "unknown"
        return _Planned(settings.surveys[decision.survey], response,
                        config.directory.languages[language].asterisk, contact)

    @staticmethod
    def _language(config: LoadedConfig, row: CallRow, asterisk: str) -> str:
        """The prompt language the caller used in the IVR: the call record's, else the one
        IVR_LANGUAGE names, else the hotline's."""
        languages = config.directory.languages
        if row.language in languages:
            return row.language
        for key, language in languages.items():
            if language.asterisk == asterisk:
                return key
        found = config.hotline_for(row.dialed)
        return found[1].language if found is not None else next(iter(languages))

    async def _conduct(self, session: AgiSession, config: LoadedConfig, settings: SurveysConfig, plan: _Planned) -> None:
        offered = plan.response
        try:
            await self.surveys.save_response(offered)
        except Exception:
            log.exception("call %s: the survey offer could not be saved; not surveyed", offered.call_id)
            return
        progress = Progress()
        dialog = SurveyDialog(session, plan.survey, lambda prompt: config.prompt_path(offered.language, prompt),
                              self.clock)
        try:
            await session.set_variable("CHANNEL(language)", plan.asterisk_language)
            await dialog.run(progress, comment_name=offered.call_id)
        except AgiHangup:
            log.info("call %s: the caller hung up during the survey after %d answer(s)",
                     offered.call_id, len(progress.answers))
        except Exception:
            log.exception("call %s: the survey failed after %d answer(s)", offered.call_id, len(progress.answers))
        finally:
            await self._finish(offered, progress, settings, plan.contact)

    async def _finish(self, offered: SurveyResponse, progress: Progress, settings: SurveysConfig,
                      contact: str | None) -> None:
        now = self.clock()
        answered = [answer.answered_at for answer in progress.answers if answer.answered_at is not None]
        response = replace(
            offered,
            status=final_status(progress),
            started_at=answered[0] if answered else None,
            ended_at=now,
            answers=tuple(progress.answers),
            comment_file=progress.comment_file,
            comment_seconds=progress.comment_seconds,
        )
        try:
            await self.surveys.save_response(response)
            # The number as the privacy policy shows it; sealed only for an item that keeps it.
            item = follow_up(response, settings.followups, now=now, item_id=self.ids(),
                             contact=self.contacts.shown(contact))
            if item is not None:
                keep = settings.followups.keep_contact
                await self.surveys.save_followup(item, sealed=self.contacts.seal(contact).sealed if keep else None)
                log.info("call %s: follow-up %s (%s, %s) for %s", response.call_id, item.item_id, item.category,
                         item.urgency, item.owner)
        except Exception:
            log.exception("call %s: the survey response %s could not be saved", response.call_id,
                          response.response_id)
