"""The web feedback form: GET /f/<token> shows a 1-5 score and a text box, POST stores them.

`FeedbackForm` decides (which call, may it answer, what is stored, which follow-up opens)
and knows nothing of HTTP; the aiohttp application below only turns its outcomes into
pages and status codes. The answer lands in the survey tables beside the call record, as
a `web` response of the `web` survey, so reports and follow-ups treat it like a voice one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import jinja2
from aiohttp import web
from aiohttp.typedefs import Handler

from ivr.flow.context import Clock, utc_now
from ivr.records.model import CallRow, QueueLeg
from survey_engine.connguard import ConnectionGuard, GuardedSite, default_limit, start_guarded
from survey_engine.config import SurveysConfig
from survey_engine.followup import follow_up
from survey_engine.links import FeedbackLinks, LinkExpired, LinkInvalid, SignedCall
from survey_engine.model import WEB_SCORE_QUESTION, Answer, FollowUp, SurveyResponse
from survey_engine.store import SurveyStore

log = logging.getLogger(__name__)

SCORES = (1, 2, 3, 4, 5)
WEB_SURVEY = "web"
BODY_TIMEOUT = 10.0  # seconds for a form's body to arrive once its headers have
CONNECTION_LIFETIME = 30.0  # seconds a connection may stay open (ConnectionGuard)
# The largest form a browser can send: the largest max_text surveys.yaml allows (20000),
# each character up to 4 UTF-8 bytes, each byte percent-encoded to 3, plus the other fields.
MAX_BODY = 20000 * 4 * 3 + 4096


class CallLookup(Protocol):
    """The call records the form reads (ivr.records.store.CallStore)."""

    async def get_call(self, call_id: str) -> CallRow | None: ...

    async def caller_key_of(self, call_id: str) -> str | None: ...


class Refusal(StrEnum):
    INVALID = "invalid"  # tampered or garbled link
    EXPIRED = "expired"
    UNKNOWN_CALL = "unknown_call"
    NOT_ANSWERED = "not_answered"  # no agent answered the call: nothing to rate
    ALREADY_ANSWERED = "already_answered"


class FormError(StrEnum):
    NO_SCORE = "no_score"
    TEXT_TOO_LONG = "text_too_long"


@dataclass(frozen=True)
class Refused:
    reason: Refusal
    language: str | None  # None: not known (an invalid link's payload is not trusted)


@dataclass(frozen=True)
class ShowForm:
    language: str
    max_text: int
    score: int | None = None  # what the customer sent, shown again with the errors
    text: str = ""
    errors: tuple[FormError, ...] = ()


@dataclass(frozen=True)
class Stored:
    language: str
    response: SurveyResponse
    followup: FollowUp | None


def parse_form(score: str | None, text: str, max_text: int) -> tuple[int | None, str, tuple[FormError, ...]]:
    """The score (None unless exactly one of 1-5), the text as typed (browsers send line breaks
    as CR LF but count them as one character), and what is wrong with them."""
    value = int(score) if score in {str(s) for s in SCORES} else None
    text = text.replace("\r\n", "\n").strip()
    errors: list[FormError] = []
    if value is None:
        errors.append(FormError.NO_SCORE)
    if len(text) > max_text:
        errors.append(FormError.TEXT_TOO_LONG)
    return value, text, tuple(errors)


def _new_id() -> str:
    return uuid.uuid4().hex


class FeedbackForm:
    """What the form does for a token, without HTTP. `settings` is read on every request, so a
    configuration reload changes the follow-up rules, link lifetime and text limit at once."""

    def __init__(
        self, calls: CallLookup, surveys: SurveyStore, settings: Callable[[], SurveysConfig], secret: str,
        *, clock: Clock = utc_now, new_id: Callable[[], str] = _new_id,
    ) -> None:
        self._calls = calls
        self._surveys = surveys
        self._settings = settings
        self._secret = secret
        self._clock = clock
        self._new_id = new_id
        # Check-then-save of one answer per call must not interleave with a second submission.
        self._submitting = asyncio.Lock()

    async def view(self, token: str) -> Refused | ShowForm:
        checked = await self._check(token, self._clock())
        if isinstance(checked, Refused):
            return checked
        signed, _, _ = checked
        return ShowForm(signed.language, self._settings().web.max_text)

    async def submit(self, token: str, score: str | None, text: str) -> Refused | ShowForm | Stored:
        async with self._submitting:
            now = self._clock()
            checked = await self._check(token, now)
            if isinstance(checked, Refused):
                return checked
            signed, call, leg = checked
            settings = self._settings()
            value, text, errors = parse_form(score, text, settings.web.max_text)
            if value is None or errors:
                return ShowForm(signed.language, settings.web.max_text, value, text, errors)
            response = SurveyResponse(
                response_id=self._new_id(),
                call_id=call.call_id,
                channel="web",
                survey=WEB_SURVEY,
                status="completed",
                hotline=call.dialed,
                queue=leg.queue,
                agent=leg.agent_id or "",
                language=signed.language,
                menu_version=call.menu_version,
                menu_path=call.menu_path,
                hung_up_by=leg.ended_by or "",
                caller_key=await self._calls.caller_key_of(call.call_id),
                offered_at=signed.issued_at,
                started_at=now,
                ended_at=now,
                answers=(Answer(WEB_SCORE_QUESTION, "scale", value, 1, now),),
                comment_text=text or None,
            )
            await self._surveys.save_response(response)
            # The form never learns the customer's number: whoever follows up uses the call record.
            item = follow_up(response, settings.followups, now=now, item_id=self._new_id(), contact=None)
            if item is not None:
                await self._surveys.save_followup(item)
            log.info("call %s: web feedback %d/5%s", call.call_id, value,
                     f", follow-up {item.item_id} for {item.owner}" if item else "")
            return Stored(signed.language, response, item)

    async def _check(self, token: str, now: dt.datetime) -> Refused | tuple[SignedCall, CallRow, QueueLeg]:
        settings = self._settings().web
        try:
            signed = FeedbackLinks.from_settings(settings, self._secret).verify(token, now)
        except LinkInvalid:
            return Refused(Refusal.INVALID, None)
        except LinkExpired as expired:
            return Refused(Refusal.EXPIRED, expired.call.language)
        call = await self._calls.get_call(signed.call_id)
        if call is None:
            return Refused(Refusal.UNKNOWN_CALL, signed.language)
        leg = call.answered_leg()
        if leg is None:
            return Refused(Refusal.NOT_ANSWERED, signed.language)
        if any(r.channel == "web" for r in await self._surveys.responses_for_call(call.call_id)):
            return Refused(Refusal.ALREADY_ANSWERED, signed.language)
        return signed, call, leg


# --- texts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    title: str
    body: str


@dataclass(frozen=True)
class Texts:
    lang: str  # the page's lang attribute
    title: str
    intro: str
    score_legend: str
    score_labels: tuple[str, str, str, str, str]  # for 1..5
    comment_label: str  # {max_text}
    submit: str
    thanks: Notice
    errors: Mapping[FormError, str]  # {max_text}
    refusals: Mapping[Refusal, Notice]
    failure: Notice


ENGLISH = Texts(
    lang="en-US",
    title="How did we do?",
    intro="Thank you for calling us. Please rate the help you received on this call.",
    score_legend="Your rating",
    score_labels=("1 - Very poor", "2 - Poor", "3 - Fair", "4 - Good", "5 - Excellent"),
    comment_label="Anything you would like to tell us? (optional, at most {max_text} characters)",
    submit="Send",
    thanks=Notice("Thank you!", "Your feedback has been received."),
    errors={
        FormError.NO_SCORE: "Please choose a rating from 1 to 5.",
        FormError.TEXT_TOO_LONG: "Your text is too long: at most {max_text} characters, please.",
    },
    refusals={
        Refusal.INVALID: Notice("This link is not valid", "Please use the link exactly as you received it."),
        Refusal.EXPIRED: Notice("This link has expired", "Feedback links can only be used for a few days."),
        Refusal.UNKNOWN_CALL: Notice("Call not found", "We could not find the call this link is for."),
        Refusal.NOT_ANSWERED: Notice("Call not found", "This call was not answered by one of our agents."),
        Refusal.ALREADY_ANSWERED: Notice("Answer already received",
                                          "We have already received your answer for this call. Thank you!"),
    },
    failure=Notice("Something went wrong", "Your answer could not be saved. Please try again later."),
)

CHINESE = Texts(
    lang="zh-CN",
    title="请评价我们的服务",
    intro="感谢您的来电。请为本次通话中得到的帮助打分。",
    score_legend="您的评分",
    score_labels=("1 - 非常不满意", "2 - 不满意", "3 - 一般", "4 - 满意", "5 - 非常满意"),
    comment_label="您还有什么想告诉我们的吗？（选填，最多 {max_text} 字）",
    submit="提交",
    thanks=Notice("谢谢！", "我们已收到您的反馈。"),
    errors={
        FormError.NO_SCORE: "请选择 1 到 5 分。",
        FormError.TEXT_TOO_LONG: "内容过长：最多 {max_text} 字。",
    },
    refusals={
        Refusal.INVALID: Notice("此链接无效", "请使用您收到的完整链接。"),
        Refusal.EXPIRED: Notice("此链接已过期", "反馈链接仅在几天内有效。"),
        Refusal.UNKNOWN_CALL: Notice("未找到通话", "未找到此链接对应的通话。"),
        Refusal.NOT_ANSWERED: Notice("未找到通话", "此通话未由客服人员接听。"),
        Refusal.ALREADY_ANSWERED: Notice("已收到您的反馈", "我们已收到您对此通话的评价，谢谢！"),
    },
    failure=Notice("出错了", "您的反馈未能保存，请稍后再试。"),
)


def texts_for(language: str) -> Texts:
    """Chinese for any zh prompt language, English otherwise."""
    return CHINESE if language.split("-")[0].lower() == "zh" else ENGLISH


# --- HTTP --------------------------------------------------------------------------------

_STATUS = {
    Refusal.INVALID: 403,
    Refusal.EXPIRED: 410,
    Refusal.UNKNOWN_CALL: 404,
    Refusal.NOT_ANSWERED: 404,
    Refusal.ALREADY_ANSWERED: 409,
}
# No scripts, no frames, posts only to itself; the token is a credential, so no Referer and no caching.
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


class _Pages:
    def __init__(self, form: FeedbackForm, body_timeout: float) -> None:
        self._form = form
        self._body_timeout = body_timeout
        self._templates = jinja2.Environment(
            loader=jinja2.PackageLoader("survey_engine", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )

    async def get(self, request: web.Request) -> web.Response:
        return self._page(await self._form.view(request.match_info["token"]))

    async def post(self, request: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(self._body_timeout):
                fields = await request.post()  # 413 beyond the application's client_max_size
        except TimeoutError:
            raise web.HTTPRequestTimeout(text="the form's data did not arrive in time") from None
        if any(len(fields.getall(name, [])) > 1 for name in ("score", "comment")):
            # No browser sends the form's fields twice: which one the customer meant is unknown.
            raise web.HTTPBadRequest(text="each field of the form at most once")
        score, text = fields.get("score"), fields.get("comment", "")
        outcome = await self._form.submit(
            request.match_info["token"], score if isinstance(score, str) else None, text if isinstance(text, str) else ""
        )
        return self._page(outcome)

    def _page(self, outcome: Refused | ShowForm | Stored) -> web.Response:
        if isinstance(outcome, ShowForm):
            texts = texts_for(outcome.language)
            return self._render(
                "form.html", 400 if outcome.errors else 200, lang=texts.lang, title=texts.title, texts=texts,
                form=outcome, scores=SCORES, comment_label=texts.comment_label.format(max_text=outcome.max_text),
                errors=[texts.errors[e].format(max_text=outcome.max_text) for e in outcome.errors],
            )
        if isinstance(outcome, Stored):
            texts = texts_for(outcome.language)
            return self._notices(200, [(texts.thanks, texts)])
        # An invalid link may be for either language: say it in both.
        speakers = [texts_for(outcome.language)] if outcome.language else [CHINESE, ENGLISH]
        return self._notices(_STATUS[outcome.reason], [(t.refusals[outcome.reason], t) for t in speakers])

    def failure(self) -> web.Response:
        return self._notices(500, [(CHINESE.failure, CHINESE), (ENGLISH.failure, ENGLISH)])

    def _notices(self, status: int, notices: list[tuple[Notice, Texts]]) -> web.Response:
        """A page of one notice per language, the first one's language being the page's."""
        first, texts = notices[0]
        return self._render("message.html", status, lang=texts.lang, title=first.title,
                            notices=[(notice, t.lang) for notice, t in notices])

    def _render(self, name: str, status: int, **context: object) -> web.Response:
        html = self._templates.get_template(name).render(**context)
        return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


async def _secure_headers(_: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(_HEADERS)


def feedback_app(form: FeedbackForm, *, body_timeout: float = BODY_TIMEOUT) -> web.Application:
    pages = _Pages(form, body_timeout)

    @web.middleware
    async def boundary(request: web.Request, handler: Handler) -> web.StreamResponse:
        """A failure answers with a page and a log line, and the server keeps serving."""
        try:
            return await handler(request)
        except web.HTTPException:  # 404, 405, 413: aiohttp's own answers
            raise
        except Exception:
            # Not the path: it holds the token.
            log.exception("web feedback: %s failed", request.method)
            return pages.failure()

    app = web.Application(client_max_size=MAX_BODY, middlewares=[boundary])
    app.on_response_prepare.append(_secure_headers)
    app.router.add_get("/f/{token}", pages.get)
    app.router.add_post("/f/{token}", pages.post)
    return app


# The form's HTTP server, started by `start_feedback_web`.
FeedbackWeb = GuardedSite


async def start_feedback_web(
    calls: CallLookup, surveys: SurveyStore, settings: Callable[[], SurveysConfig], secret: str,
    *, host: str, port: int, clock: Clock = utc_now, new_id: Callable[[], str] = _new_id,
    max_connections: int | None = None, connection_lifetime: float = CONNECTION_LIFETIME,
    body_timeout: float = BODY_TIMEOUT,
) -> FeedbackWeb:
    """Serve the form on host:port (0: any free port, see `.port`), behind a ConnectionGuard
    (`max_connections` None: a share of the descriptor limit)."""
    form = FeedbackForm(calls, surveys, settings, secret, clock=clock, new_id=new_id)
    app = feedback_app(form, body_timeout=body_timeout)
    guard = ConnectionGuard(default_limit() if max_connections is None else max_connections, connection_lifetime)
    site = await start_guarded(app, guard, host=host, port=port, backlog=128)
    log.info("web feedback form on http://%s:%d (at most %d connections at once)", host, site.port, guard.limit)
    return site
