"""The desk's HTTP side: thin aiohttp handlers over `DeskService`, `AccountStore` and `Sessions`.

One app, one login for every role: agents get /agent (the screen pop, presence, wrap-up and
frontline feedback); the supervisor's pages mount on the same app. Every handler names the
role it needs; every POST carries the session's CSRF token; login failures are rate
limited; live updates are Server-Sent Events (`/agent/events`), which browsers reconnect by
themselves (the stream says `retry: 1000`), so a restarted controller is back on every page
within seconds, from a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import jinja2
from aiohttp import web

from desk.accounts import Account, AccountStore, Role
from desk.hub import CUT_OFF, Event
from desk.i18n import texts
from desk.ratelimit import LoginLimiter
from desk.service import FEEDBACK_KINDS, URGENCIES, DeskService, FeedbackFiled, Refused
from desk.sessions import COOKIE, Session, Sessions
from ivr.records.wrapups import WrapUpOutcome

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
LOGIN_COOKIE = "ivr_desk_login"  # double-submit token of the login form (no session yet)
HEARTBEAT = 15.0  # seconds between SSE comments: proxies and browsers keep the stream open
MAX_BODY = 64 * 1024
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ACCOUNT = web.RequestKey("account", Account)
SESSION = web.RequestKey("session", Session)


@dataclass
class DeskWeb:
    service: DeskService
    accounts: AccountStore
    sessions: Sessions
    limiter: LoginLimiter
    secure_cookies: bool = False
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, enable_async=False)

    # --- pages -----------------------------------------------------------------------------------

    def render(self, name: str, status: int = 200, **context: Any) -> web.Response:
        language = context.get("language", "en-US")
        body = self.templates.get_template(name).render(t=texts(language), **context)
        return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")

    async def root(self, request: web.Request) -> web.StreamResponse:
        account = await self.account_of(request)
        raise web.HTTPFound("/agent" if account is not None else "/login")

    async def login_page(self, request: web.Request, *, status: int = 200, error: str = "",
                         language: str | None = None) -> web.Response:
        token = secrets.token_urlsafe(16)
        language = language or _language_of(request)
        response = self.render("login.html", status, language=language, csrf=token, error=error)
        response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="Strict", secure=self.secure_cookies,
                            path="/login", max_age=3600)
        return response

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        username = str(form.get("username", "")).strip()[:200]
        password = str(form.get("password", ""))[:1000]
        language = _language_of(request)
        token = request.cookies.get(LOGIN_COOKIE)
        if not token or not secrets.compare_digest(token, str(form.get("csrf", ""))):
            return await self.login_page(request, status=403, error=texts(language)["csrf"])
        address = request.remote or "?"
        now = self.clock()
        wait = self.limiter.retry_after(username, address, now)
        if wait > 0:
            page = await self.login_page(request, status=429, error=texts(language)["too_many"].format(
                seconds=int(wait) + 1))
            page.headers["Retry-After"] = str(int(wait) + 1)
            return page
        account = await self.accounts.verify(username, password)
        if account is None:
            self.limiter.failed(username, address, now)
            log.warning("desk: failed login for %r from %s", username, address)
            return await self.login_page(request, status=401, error=texts(language)["bad_login"])
        self.limiter.succeeded(username)
        cookie, _ = self.sessions.issue(account.username, account.session_epoch)
        response = web.HTTPSeeOther("/agent" if account.agent_id else "/whoami")
        response.set_cookie(COOKIE, cookie, httponly=True, samesite="Strict", secure=self.secure_cookies,
                            path="/", max_age=self.sessions.max_age)
        response.del_cookie(LOGIN_COOKIE, path="/login")
        log.info("desk: %s logged in (%s)", account.username, account.role.value)
        raise response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        response = web.HTTPSeeOther("/login")
        response.del_cookie(COOKIE, path="/")
        raise response

    async def whoami(self, request: web.Request) -> web.StreamResponse:
        account = request[ACCOUNT]
        return web.json_response({"username": account.username, "role": account.role.value,
                                  "agent_id": account.agent_id, "language": account.language})

    async def agent_page(self, request: web.Request) -> web.StreamResponse:
        account = request[ACCOUNT]
        return self.render("agent.html", language=account.language, account=account,
                           csrf=self.sessions.csrf_token(request[SESSION]), feedback_kinds=FEEDBACK_KINDS,
                           urgencies=URGENCIES, texts_json=texts(account.language))

    # --- the live stream -----------------------------------------------------------------------------

    async def events(self, request: web.Request) -> web.StreamResponse:
        account = request[ACCOUNT]
        assert account.agent_id is not None
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                               "X-Accel-Buffering": "no"})
        await response.prepare(request)
        try:
            await response.write(b"retry: 1000\n\n")
            await self._stream(account.agent_id, response)
        except ConnectionResetError:  # the page went away mid-write
            pass
        return response

    async def _stream(self, agent_id: str, response: web.StreamResponse) -> None:
        sent = 0
        with self.service.hub.subscribe(agent_id) as subscription:
            snapshot = await self.service.snapshot(agent_id)
            sent += 1
            await response.write(Event("state", snapshot).encode(sent))
            while True:
                try:
                    event = await asyncio.wait_for(subscription.queue.get(), HEARTBEAT)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                if event is CUT_OFF:
                    break
                sent += 1
                await response.write(event.encode(sent))

    # --- actions (JSON answers to the page's fetch) ------------------------------------------------

    async def presence(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        op = str(form.get("op", ""))
        if op not in ("login", "logout", "pause", "unpause"):
            return _refused(Refused("unknown_op", 400, op))
        reason = str(form.get("reason", "")) or None
        answer = await self.service.set_presence(
            request[ACCOUNT], cast(Literal["login", "logout", "pause", "unpause"], op), reason)
        if isinstance(answer, Refused):
            return _refused(answer)
        return web.json_response({"ok": True, "presence": answer})

    async def wrap_up(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        answer = await self.service.wrap_up(request[ACCOUNT], str(form.get("call_id", "")),
                                            str(form.get("code", "")), str(form.get("note", "")))
        if isinstance(answer, Refused):
            return _refused(answer)
        if answer is WrapUpOutcome.STORED:
            return web.json_response({"ok": True})
        return web.json_response({"ok": False, "error": answer.value}, status=409)

    async def feedback(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        answer = await self.service.file_feedback(
            request[ACCOUNT], str(form.get("call_id", "")), str(form.get("kind", "")), str(form.get("urgency", "")),
            str(form.get("text", "")))
        if isinstance(answer, Refused):
            return _refused(answer)
        assert isinstance(answer, FeedbackFiled)
        return web.json_response({"ok": True, "feedback_id": answer.feedback_id, "item": answer.item.item_id,
                                  "owner": answer.item.owner})

    async def pop(self, request: web.Request) -> web.StreamResponse:
        answer = self.service.pop_for(request[ACCOUNT], request.match_info["call_id"])
        if isinstance(answer, Refused):
            return _refused(answer)
        return web.json_response(answer.to_json())

    # --- who is asking ---------------------------------------------------------------------------------

    async def account_of(self, request: web.Request) -> Account | None:
        session = self.sessions.read(request.cookies.get(COOKIE), now=self.clock())
        if session is None:
            return None
        account = await self.accounts.get(session.username)
        if account is None or account.disabled or account.session_epoch != session.epoch:
            return None
        request[SESSION] = session
        return account

    def guarded(self, handler: Handler, role: Role, *, agent_page: bool = False) -> Handler:
        """`handler` for a signed-in account of at least `role` (and linked to an ACD agent for an
        agent's own page); a POST also needs the session's CSRF token."""

        async def guard(request: web.Request) -> web.StreamResponse:
            account = await self.account_of(request)
            if account is None:
                if request.method == "GET" and "text/html" in request.headers.get("Accept", ""):
                    raise web.HTTPSeeOther("/login")
                return web.json_response({"ok": False, "error": "login"}, status=401)
            if not account.may(role) or (agent_page and account.agent_id is None):
                log.warning("desk: %s (%s) refused %s %s", account.username, account.role.value, request.method,
                            request.path)
                return web.json_response({"ok": False, "error": "forbidden"}, status=403)
            if request.method == "POST":
                form = await request.post()
                token = request.headers.get("X-CSRF-Token") or str(form.get("csrf", ""))
                if not self.sessions.csrf_ok(request[SESSION], token):
                    return web.json_response({"ok": False, "error": "csrf"}, status=403)
            request[ACCOUNT] = account
            return await handler(request)

        return guard


def _refused(refused: Refused) -> web.Response:
    return web.json_response({"ok": False, "error": refused.reason, "detail": refused.detail}, status=refused.status)


def _language_of(request: web.Request) -> str:
    wanted = request.headers.get("Accept-Language", "")
    return "zh-CN" if wanted.lower().startswith("zh") else "en-US"


async def _secure_headers(_: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(_HEADERS)


def desk_app(desk: DeskWeb) -> web.Application:
    @web.middleware
    async def boundary(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except (web.HTTPException, ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("desk: %s %s failed", request.method, request.path)
            return web.json_response({"ok": False, "error": "failed"}, status=500)

    app = web.Application(client_max_size=MAX_BODY, middlewares=[boundary])
    app.on_response_prepare.append(_secure_headers)
    app.router.add_get("/", desk.root)
    app.router.add_get("/login", desk.login_page)
    app.router.add_post("/login", desk.login)
    app.router.add_post("/logout", desk.guarded(desk.logout, Role.AGENT))
    app.router.add_get("/whoami", desk.guarded(desk.whoami, Role.AGENT))
    app.router.add_get("/agent", desk.guarded(desk.agent_page, Role.AGENT, agent_page=True))
    app.router.add_get("/agent/events", desk.guarded(desk.events, Role.AGENT, agent_page=True))
    app.router.add_get("/agent/calls/{call_id}/pop", desk.guarded(desk.pop, Role.AGENT, agent_page=True))
    app.router.add_post("/agent/presence", desk.guarded(desk.presence, Role.AGENT, agent_page=True))
    app.router.add_post("/agent/wrapup", desk.guarded(desk.wrap_up, Role.AGENT, agent_page=True))
    app.router.add_post("/agent/feedback", desk.guarded(desk.feedback, Role.AGENT, agent_page=True))
    app.router.add_static("/static", HERE / "static", append_version=True)
    return app
