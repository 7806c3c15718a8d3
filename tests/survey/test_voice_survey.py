"""Tier 2 for the voice survey: whole calls through the real controller over TCP, played by
the Asterisk peer. After the `ivr` AGI leaves the caller at ivr-survey,<queue>,1 (the agent
hung up first), the peer's channel goes on into the `survey` AGI as Asterisk's dialplan does,
with the same caller pressing the survey keys (or hanging up).

Each test states what the caller hears, which response row (and follow-up item) is written,
and which are not. The example configuration is used as shipped (config/surveys.yaml:
billing surveys everyone with a 30-day cooldown, general only callers who opted in), with
one ACD agent for billing and general.
"""

from __future__ import annotations

import datetime as dt
import time
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from callkit import OPEN, TO_BILLING, Backend

from ivr.app import Controller, ControllerOptions
from ivr.records.keys import contact_key
from survey_engine.contacts import ContactSeal
from ivr.pbxsim import SURVEY_REENTRY, Agent, CallerScript, CallResult, HangUp, Press, SimCall, SoundLibrary, place_call
from ivr.pbxsim.caller import Step
from ivr.pbxsim.sounds import CORE_SOUNDS
from ivr.records.model import EventKind
from routing.config import RoutingConfig
from routing.memory_state import MemoryState
from routing.model import Presence
from survey_engine.model import FollowUp, SurveyResponse
from survey_engine.store import SurveyStore

REPO = Path(__file__).resolve().parents[2]
SOUNDS = REPO / "prompts" / "sounds"
CALLER = "13700000001"
AGENT = {"PJSIP/1001": Agent(answer_after=1.0, talk=20.0, hangs_up_first=True)}
BILLING_PATH = "welcome>choose-language>hours-check>main-menu>billing-menu>billing-queue"
SURVEY_PROMPTS = ("survey-intro", "survey-speed", "survey-attitude", "survey-resolved", "survey-nps",
                  "survey-invalid", "survey-no-input", "survey-comment", "survey-thanks")
BEEP = CORE_SOUNDS["beep"]  # RECORD FILE ... BEEP: nothing is recorded while it plays
COMMENTS = "/var/spool/asterisk/ivr-survey"  # config/surveys.yaml comment.directory
# A caller happy with everything: speed 5, attitude 5, resolved yes, nps 9 (then #).
HAPPY: tuple[Step, ...] = (
    Press("5", on_prompt="survey-speed"), Press("5", on_prompt="survey-attitude"),
    Press("1", on_prompt="survey-resolved"), Press("9#", on_prompt="survey-nps"),
)


def routing() -> RoutingConfig:
    """One agent for billing and general, short waits."""
    queue = {"max_wait": 5, "ring_timeout": 5, "affinity": {"enabled": False}}
    return RoutingConfig.model_validate({
        "agents": {"1001": {"name": "Zhang Wei", "endpoint": "PJSIP/1001",
                            "skills": {"billing": 3, "general": 3}, "wrap_up": 0}},
        "queues": {"billing": {"skills": {"billing": 1}, **queue}, "general": {"skills": {"general": 1}, **queue}},
    })


def seconds(prompt: str, language: str = "en-US") -> float:
    with wave.open(str(SOUNDS / language / f"{prompt}.wav")) as audio:
        return audio.getnframes() / audio.getframerate()


class Rig:
    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        assert controller.server is not None
        self.port = controller.server.bound_port
        self.sounds = SoundLibrary([(controller.config.server.prompts.asterisk_dir, SOUNDS)])
        self.now = OPEN

    async def call(self, *steps: Step, caller_id: str = CALLER, agent: Agent = AGENT["PJSIP/1001"],
                   path: tuple[Step, ...] = TO_BILLING, missing_dirs: tuple[str, ...] = ()) -> CallResult:
        """A call to the billing queue (or along `path`) whose agent hangs up first, and on into the survey."""
        call = SimCall(CallerScript((*path, *steps), caller_id=caller_id), extension="4008001234",
                       script="ivr?hotline=4008001234", agents={"PJSIP/1001": agent}, dialplan=SURVEY_REENTRY,
                       missing_dirs=missing_dirs)
        result = await place_call("127.0.0.1", self.port, call, sounds=self.sounds)
        assert result.error is None and result.server_closed, result.error
        return result

    async def survey_only(self, variables: dict[str, str], queue: str = "billing",
                          *steps: Step, caller_id: str = CALLER) -> CallResult:
        """The survey AGI alone, as the dialplan runs it after app_queue (ivr-survey,<queue>,1)."""
        call = SimCall(CallerScript(steps, caller_id=caller_id), context="ivr-survey", extension=queue,
                       script=f"survey?call_id={variables['IVR_CALL_ID']}&queue={queue}", variables=variables)
        result = await place_call("127.0.0.1", self.port, call, sounds=self.sounds)
        assert result.error is None and result.server_closed, result.error
        return result

    @property
    def surveys(self) -> SurveyStore:
        assert self.controller.surveys is not None
        return self.controller.surveys

    async def responses(self, result: CallResult) -> list[SurveyResponse]:
        return await self.surveys.responses_for_call(result.variables["IVR_CALL_ID"])

    async def response(self, result: CallResult) -> SurveyResponse:
        (response,) = await self.responses(result)
        return response

    async def followup(self, response: SurveyResponse) -> FollowUp | None:
        return await self.surveys.followup_for_response(response.response_id)


RigFactory = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def rigs(tmp_path: Path) -> AsyncIterator[RigFactory]:
    started: list[tuple[Controller, Backend]] = []

    async def make(*, acd: bool = True) -> Rig:
        backend = await Backend().start()
        holder: list[Rig] = []
        state = MemoryState(60.0)
        controller = Controller(REPO / "config", ControllerOptions(
            port=0, sqlite_path=tmp_path / f"calls-{len(started)}.sqlite",
            clock=lambda: holder[0].now if holder else OPEN, lookup_base_url=backend.url,
            acd=acd, routing=routing(), live_state=state, acd_max_idle=0.05,
        ))
        await controller.start()
        started.append((controller, backend))
        await state.set_presence("1001", Presence.READY, time.time())
        holder.append(Rig(controller))
        return holder[0]

    yield make
    for controller, backend in started:
        await controller.stop()
        backend.close()


@pytest.fixture
async def rig(rigs: RigFactory) -> Rig:
    return await rigs()


def sent(result: CallResult) -> list[str]:
    return [line for direction, line in result.transcript if direction == "S"]


def survey_heard(result: CallResult) -> list[str]:
    return [prompt for prompt in result.prompts if prompt in SURVEY_PROMPTS]


def answers(response: SurveyResponse) -> list[tuple[str, int | None, int]]:
    return [(a.question, a.value, a.attempts) for a in response.answers]


# --- the whole survey ----------------------------------------------------------------------------


async def test_agent_hanging_up_first_gives_a_complete_response_with_the_call_it_belongs_to(rig: Rig) -> None:
    comment_at = 8.0  # seconds into the comment prompt: the caller presses # to end the comment
    result = await rig.call(Press("4", on_prompt="survey-speed"), Press("5", on_prompt="survey-attitude"),
                            Press("1", on_prompt="survey-resolved"), Press("10", on_prompt="survey-nps"),
                            Press("#", on_prompt="survey-comment", after=comment_at))
    call_id = result.variables["IVR_CALL_ID"]
    assert result.scripts == ["ivr?hotline=4008001234", f"survey?call_id={call_id}&queue=billing"]
    assert (result.variables["IVR_HUNGUP_BY"], result.variables["IVR_AGENT"]) == ("agent", "1001")
    assert survey_heard(result) == ["survey-intro", "survey-speed", "survey-attitude", "survey-resolved",
                                    "survey-nps", "survey-comment", "survey-thanks"]
    # The survey speaks the language the caller chose in the IVR.
    assert 'SET VARIABLE CHANNEL(language) "en"' in sent(result)
    directory = "/var/spool/asterisk/ivr-survey"
    assert f'RECORD FILE {directory}/{call_id} wav "#" 60000 0 BEEP s=3' in sent(result)

    response = await rig.response(result)
    assert (response.status, response.channel, response.survey) == ("completed", "voice", "standard")
    assert (response.hotline, response.queue, response.agent, response.hung_up_by) == ("4008001234", "billing", "1001", "agent")
    assert (response.language, response.menu_version, response.menu_path) == ("en-US", "2026.1", BILLING_PATH)
    assert answers(response) == [("speed", 4, 1), ("attitude", 5, 1), ("resolved", 1, 1), ("nps", 10, 1)]
    assert response.comment_file == f"{directory}/{call_id}"
    assert response.comment_seconds == pytest.approx(comment_at - seconds("survey-comment") - BEEP, abs=0.01)
    assert response.caller_key is not None and response.offered_at == OPEN and response.ended_at == OPEN
    assert await rig.followup(response) is None  # nothing low


async def test_survey_is_in_the_language_the_caller_chose(rig: Rig) -> None:
    chinese = (Press("1", on_prompt="choose-language"), Press("1", on_prompt="main-menu"),
               Press("2", on_prompt="billing-menu"))
    result = await rig.call(*HAPPY, path=chinese)
    assert 'SET VARIABLE CHANNEL(language) "zh"' in sent(result)
    intro = next(h.what for h in result.heard if h.what.endswith("/survey-intro"))
    assert intro == "/var/lib/asterisk/sounds/ivr/zh-CN/survey-intro"
    response = await rig.response(result)
    assert (response.language, response.status) == ("zh-CN", "completed")


async def test_caller_hanging_up_mid_survey_leaves_a_partial_row(rig: Rig) -> None:
    result = await rig.call(Press("2", on_prompt="survey-speed"), Press("4", on_prompt="survey-attitude"),
                            HangUp(on_prompt="survey-resolved", after=1.0))
    assert result.hung_up_by == "caller"
    assert survey_heard(result) == ["survey-intro", "survey-speed", "survey-attitude", "survey-resolved"]
    response = await rig.response(result)
    assert response.status == "partial" and response.ended_at is not None
    assert answers(response) == [("speed", 2, 1), ("attitude", 4, 1)]
    assert response.comment_file is None
    # What was said still counts: speed 2 is a low score.
    item = await rig.followup(response)
    assert item is not None and (item.category, item.urgency, item.owner) == ("low-score", "important", "billing-lead")


async def test_hanging_up_to_end_the_comment_keeps_it_and_completes_the_survey(rig: Rig) -> None:
    result = await rig.call(*HAPPY, HangUp(on_prompt="survey-comment", after=10.0))
    assert survey_heard(result)[-1] == "survey-comment"  # no thanks: the caller is gone
    response = await rig.response(result)
    assert response.status == "completed"
    assert response.comment_file == f"/var/spool/asterisk/ivr-survey/{response.call_id}"
    assert response.comment_seconds == pytest.approx(10.0 - seconds("survey-comment") - BEEP, abs=0.01)


async def test_hash_pressed_during_the_beep_ends_the_comment_unrecorded_and_the_thanks_play(
        rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    """Asterisk answers `200 result=35 (randomerror) endpos=0` and keeps the session: the caller
    has ended the comment before it began."""
    result = await rig.call(*HAPPY, Press("#", on_prompt="beep", after=0.2))
    assert ("A", "200 result=35 (randomerror) endpos=0") in result.transcript
    assert survey_heard(result)[-2:] == ["survey-comment", "survey-thanks"]
    response = await rig.response(result)
    assert (response.status, response.comment_file, response.comment_seconds) == ("completed", None, None)
    assert answers(response) == [("speed", 5, 1), ("attitude", 5, 1), ("resolved", 1, 1), ("nps", 9, 1)]
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_comment_directory_missing_on_the_pbx_keeps_the_answers_without_a_traceback(
        rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    """Asterisk answers `200 result=-1 (writefile)` and goes on: the survey ends with the thanks,
    the row keeps every answer, and the log says which directory the PBX lacks."""
    result = await rig.call(*HAPPY, missing_dirs=(COMMENTS,))
    assert ("A", "200 result=-1 (writefile)") in result.transcript
    assert survey_heard(result)[-2:] == ["survey-comment", "survey-thanks"]
    response = await rig.response(result)
    assert (response.status, response.comment_file) == ("completed", None)
    assert answers(response) == [("speed", 5, 1), ("attitude", 5, 1), ("resolved", 1, 1), ("nps", 9, 1)]
    assert not [r for r in caplog.records if r.levelname == "ERROR" or r.exc_info]
    assert any(COMMENTS in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)


async def test_caller_hanging_up_during_the_intro_leaves_the_offer(rig: Rig) -> None:
    result = await rig.call(HangUp(on_prompt="survey-intro", after=1.0))
    response = await rig.response(result)
    assert response.status == "offered" and response.answers == ()
    assert await rig.followup(response) is None


# --- re-asks ----------------------------------------------------------------------------------------


async def test_invalid_key_is_reasked_exactly_once_then_recorded_unanswered(rig: Rig) -> None:
    result = await rig.call(
        Press("9", on_prompt="survey-speed"), Press("7", on_prompt="survey-speed"),  # twice invalid
        Press("6", on_prompt="survey-attitude"), Press("3", on_prompt="survey-attitude"),  # invalid, then 3
        Press("1", on_prompt="survey-nps", after=1.0),  # resolved: no key at all, twice
    )
    assert survey_heard(result) == [
        "survey-intro",
        "survey-speed", "survey-invalid", "survey-speed",
        "survey-attitude", "survey-invalid", "survey-attitude",
        "survey-resolved", "survey-no-input", "survey-resolved",
        "survey-nps", "survey-comment", "survey-thanks",
    ]
    response = await rig.response(result)
    assert response.status == "completed"
    assert answers(response) == [("speed", None, 2), ("attitude", 3, 2), ("resolved", None, 2), ("nps", 1, 1)]


@pytest.mark.parametrize(
    ("keys", "gap", "score"),
    [
        ("10", 0.25, 10),  # the second key ends the input at once
        ("7#", 0.25, 7),
        ("7", 0.25, 7),  # then the 4 s timeout
        ("55", 0.25, None),  # invalid twice (asked again, 55 again): unanswered
    ],
)
async def test_nps_entries(rig: Rig, keys: str, gap: float, score: int | None) -> None:
    nps = [Press(keys, on_prompt="survey-nps", gap=gap)]
    if score is None:
        nps.append(Press(keys, on_prompt="survey-nps", gap=gap))
    result = await rig.call(*HAPPY[:3], *nps)
    response = await rig.response(result)
    assert response.answer("nps") is not None
    assert answers(response)[-1] == ("nps", score, 1 if score is not None else 2)
    assert survey_heard(result).count("survey-nps") == (1 if score is not None else 2)
    if keys == "7":
        (get_data,) = [line for line in sent(result) if line.startswith("GET DATA") and "survey-nps" in line]
        assert get_data.endswith(" 4000 2")  # 4 s per key, up to two keys


# --- who is asked ---------------------------------------------------------------------------------


# The example flow's way to the general queue: after the balance self-service, "2" for an
# agent, then the survey opt-in question.
TO_GENERAL: tuple[Step, ...] = (
    Press("2", on_prompt="choose-language"), Press("1", on_prompt="main-menu"), Press("1", on_prompt="billing-menu"),
    Press("12345678#", on_prompt="enter-account"), Press("2", on_prompt="anything-else"),
)


async def test_opt_in_queue_surveys_only_callers_who_pressed_the_key(rig: Rig) -> None:
    accepted = await rig.call(Press("1", on_prompt="survey-opt-in"), *HAPPY, path=TO_GENERAL, caller_id="13700000011")
    declined = await rig.call(Press("2", on_prompt="survey-opt-in"), *HAPPY, path=TO_GENERAL, caller_id="13700000012")
    silent = await rig.call(*HAPPY, path=TO_GENERAL, caller_id="13700000013")

    assert accepted.variables["IVR_SURVEY_OPTIN"] == "yes"
    response = await rig.response(accepted)
    assert response.queue == "general" and response.status == "completed"
    assert response.menu_path.endswith(">anything-else>general-survey-opt-in>general-queue")
    for result in (declined, silent):
        assert result.variables["IVR_SURVEY_OPTIN"] == "no"
        assert len(result.scripts) == 2  # the dialplan ran the survey script, which let the caller go
        assert survey_heard(result) == [] and await rig.responses(result) == []

    store = rig.controller.store
    assert store is not None
    await store.flush()
    for result, answer in ((accepted, "opted_in"), (declined, "declined"), (silent, "declined")):
        row = await store.get_call(result.variables["IVR_CALL_ID"])
        assert row is not None
        assert [e.value for e in row.events if e.kind is EventKind.SURVEY] == [answer]


async def test_the_same_caller_is_not_asked_again_within_the_cooldown(rig: Rig) -> None:
    first = await rig.call(*HAPPY)
    rig.now = OPEN + dt.timedelta(days=10)
    again = await rig.call(*HAPPY)
    other = await rig.call(*HAPPY, caller_id="13700000099")
    rig.now = OPEN + dt.timedelta(days=31)
    later = await rig.call(*HAPPY)

    assert (await rig.response(first)).status == "completed"
    assert survey_heard(again) == [] and await rig.responses(again) == []
    assert (await rig.response(other)).status == "completed"
    assert (await rig.response(later)).offered_at == OPEN + dt.timedelta(days=31)


async def test_caller_who_hung_up_on_the_agent_is_not_surveyed(rig: Rig) -> None:
    result = await rig.call(*HAPPY, agent=Agent(answer_after=1.0, talk=20.0, hangs_up_first=False))
    assert result.scripts == ["ivr?hotline=4008001234"]  # no survey re-entry for a caller who is gone
    assert await rig.responses(result) == []
    # Even sent to ivr-survey some other way, the call record says the caller ended it.
    again = await rig.survey_only({"IVR_CALL_ID": result.variables["IVR_CALL_ID"], "IVR_LANGUAGE": "en"}, "billing",
                                  *HAPPY)
    assert again.prompts == [] and await rig.responses(result) == []


# --- follow-ups -----------------------------------------------------------------------------------


async def test_low_scores_open_one_follow_up_with_the_configured_owner_and_deadline(rig: Rig) -> None:
    result = await rig.call(Press("1", on_prompt="survey-speed"), Press("2", on_prompt="survey-attitude"),
                            Press("2", on_prompt="survey-resolved"), Press("3#", on_prompt="survey-nps"))
    response = await rig.response(result)
    assert answers(response) == [("speed", 1, 1), ("attitude", 2, 1), ("resolved", 0, 1), ("nps", 3, 1)]
    item = await rig.followup(response)
    assert item is not None
    # Unresolved is the first urgent rule; its category has its own owner (surveys.yaml).
    assert (item.category, item.urgency, item.owner, item.status) == ("unresolved", "urgent", "service-quality", "open")
    assert item.deadline == OPEN + dt.timedelta(hours=24)
    # The example's privacy policy is `mask`: the item shows the masked number and keeps the
    # number to call back sealed; opening it is recorded.
    assert (item.call_id, item.queue, item.agent, item.contact) == (response.call_id, "billing", "1001", "*******0001")
    assert item.reasons == ("speed = 1 (<= 1)", "attitude = 2 (<= 2)", "resolved = no", "nps = 3 (<= 6)")
    surveys, config = rig.controller.surveys, rig.controller.config
    assert surveys is not None
    shown, sealed = await surveys.reveal_contact(item.item_id, by="quality", reason="call back", at=OPEN)
    assert shown == "*******0001" and sealed is not None and CALLER not in sealed
    assert ContactSeal("mask", contact_key(config.server, config.config_dir)).open(sealed) == CALLER
    assert [(who, why) for _, who, why in await surveys.contact_reveals(item.item_id)] == [("quality", "call back")]


# --- after app_queue --------------------------------------------------------------------------------


async def test_survey_after_app_queue_takes_the_agent_from_the_member_interface(rigs: RigFactory) -> None:
    rig = await rigs(acd=False)  # queue nodes hand the caller to the dialplan's app_queue
    queued = await rig.call(path=TO_BILLING)
    assert queued.location == ("ivr-queue", "billing", "1")
    # The dialplan after Queue() returned CONTINUE (the agent hung up): the variables it set.
    variables = {name: queued.variables[name] for name in ("IVR_CALL_ID", "IVR_LANGUAGE", "IVR_QUEUE")}
    result = await rig.survey_only(variables | {"IVR_HUNGUP_BY": "agent", "IVR_AGENT": "PJSIP/1002"}, "billing",
                                   *HAPPY)
    assert survey_heard(result)[:2] == ["survey-intro", "survey-speed"]
    response = await rig.response(queued)
    assert (response.status, response.agent, response.hung_up_by, response.queue) == ("completed", "1002", "agent", "billing")
    assert answers(response) == [("speed", 5, 1), ("attitude", 5, 1), ("resolved", 1, 1), ("nps", 9, 1)]


async def test_app_queue_caller_not_answered_is_not_surveyed(rigs: RigFactory) -> None:
    rig = await rigs(acd=False)
    queued = await rig.call(path=TO_BILLING)
    # No IVR_HUNGUP_BY: Queue did not return CONTINUE, so no agent talked to the caller.
    variables = {name: queued.variables[name] for name in ("IVR_CALL_ID", "IVR_LANGUAGE", "IVR_QUEUE")}
    result = await rig.survey_only(variables, "billing", *HAPPY)
    assert result.prompts == [] and await rig.responses(queued) == []


# --- the boundary --------------------------------------------------------------------------------


async def test_unknown_call_is_not_surveyed_and_the_server_keeps_serving(rig: Rig) -> None:
    stray = await rig.survey_only({"IVR_CALL_ID": "no-such-call", "IVR_HUNGUP_BY": "agent"}, "billing", *HAPPY)
    assert stray.prompts == []
    assert await rig.surveys.responses_for_call("no-such-call") == []
    result = await rig.call(*HAPPY)
    assert (await rig.response(result)).status == "completed"


def test_the_peer_runs_the_survey_as_the_example_dialplan_does() -> None:
    text = (REPO / "dialplans" / "extensions_ivr.conf").read_text(encoding="utf-8")
    survey = text[text.index("[ivr-survey]"):]
    survey = survey[:survey.index("\n[")]
    assert f"AGI(${{IVR_AGI}}/{SURVEY_REENTRY['ivr-survey']})" in survey
    queue = text[text.index("[ivr-queue]"):text.index("[ivr-survey]")]
    assert 'ExecIf($["${QUEUESTATUS}" = "CONTINUE"]?Set(IVR_HUNGUP_BY=agent))' in queue
    assert 'ExecIf($["${QUEUESTATUS}" = "CONTINUE"]?Set(IVR_AGENT=${MEMBERINTERFACE}))' in queue
