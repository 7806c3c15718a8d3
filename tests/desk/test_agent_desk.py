"""The agent desk over HTTP, as a browser uses it: a real controller, calls from pbxsim, the
page's event stream. What the agent sees (the pop), what is stored (wrap-up code, feedback
and its follow-up item), and every refusal (role, cookie, CSRF, brute force, another
agent's call)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from itsdangerous import URLSafeTimedSerializer

from callkit import eventually
from deskkit import PASSWORD, VIP, Desk, Page, page, start_desk
from desk.accounts import AccountStore, Role
from desk.sessions import COOKIE
from ivr.pbxsim.caller import Agent


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    d = await start_desk(tmp_path)
    await d.account("li.na", agent_id="1001")
    await d.account("wang.wei", agent_id="1002", language="zh-CN")
    await d.account("boss", Role.SUPERVISOR)
    pages: list[Page] = []
    d.pages = pages  # type: ignore[attr-defined]
    yield d
    for p in pages:
        await p.close()
    for task in d.calls:
        await asyncio.gather(task, return_exceptions=True)
    await d.controller.stop()


async def logged_in(desk: Desk, username: str) -> Page:
    p = await page(desk)
    desk.pages.append(p)  # type: ignore[attr-defined]
    response = await p.login(username)
    assert response.status == 303
    return p


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute(sql))


async def test_pop_wrap_up_and_frontline_feedback_of_one_call(desk: Desk) -> None:
    agent = await logged_in(desk, "li.na")
    agent.listen()
    first = await agent.next("state")
    assert first["presence"]["presence"] == "logged_out"
    assert [r["code"] for r in first["pause_reasons"]] == ["lunch", "training"]

    status, answer = await agent.post("/agent/presence", op="login")
    assert status == 200 and answer["presence"]["presence"] == "ready"

    call = desk.call(agents={"PJSIP/1001": Agent(answer_after=1.0, talk=1.0)})
    pop = await agent.next("pop")
    assert pop["agent_id"] == "1001" and pop["queue"] == "billing" and pop["hotline"] == "4008001234"
    assert pop["caller"] == "*******8000"  # agents see the number masked (privacy: mask)
    assert pop["customer"] == "vip" and pop["why"] == ["vip: on the VIP list"]
    assert pop["language"] == "en-US"
    keys = [(step["node"], step["keys"]) for step in pop["path"] if step["keys"]]
    assert keys == [("choose-language", ["2"]), ("main-menu", ["1"]), ("billing-menu", ["2"])]
    assert pop["crm_url"] == f"https://crm.example/customer?phone={VIP}&call={pop['call_id']}"
    assert pop["history"] == [] and pop["open_items"] == []
    # Only the agent it was offered to may ask for it again.
    async with agent.session.get(f"{desk.url}/agent/calls/{pop['call_id']}/pop") as again:
        assert again.status == 200 and (await again.json())["call_id"] == pop["call_id"]

    await agent.next("connected")
    wrap = await agent.next("wrapup", timeout=15)
    assert wrap["call_id"] == pop["call_id"] and wrap["required"] is True
    assert [node["code"] for node in wrap["codes"]] == ["billing", "other"]
    state = await desk.state.agent("1001")
    assert state.activity.value == "wrap_up" and not state.available(time.time())  # required: until coded

    status, answer = await agent.post("/agent/wrapup", call_id=pop["call_id"], code="billing/refund", note="")
    assert (status, answer["error"]) == (400, "unknown_code")  # not a leaf
    status, answer = await agent.post("/agent/wrapup", call_id=pop["call_id"], code="billing/refund/approved",
                                      note="refund of the March bill")
    assert (status, answer) == (200, {"ok": True})
    assert (await desk.state.agent("1001")).available(time.time())  # free again at once

    status, filed = await agent.post("/agent/feedback", call_id=pop["call_id"], kind="complaint",
                                     urgency="urgent", text="Billed twice for March; wants the fee waived")
    assert status == 200 and filed["owner"]

    await call
    assert desk.controller.store is not None
    await desk.controller.store.flush()
    assert rows(desk.db, "SELECT call_id, agent_id, queue, code, note, coded_by FROM wrap_ups") == [
        (pop["call_id"], "1001", "billing", "billing/refund/approved", "refund of the March bill", "li.na")]
    assert rows(desk.db, "SELECT call_id, agent_id, username, kind, urgency, text, item_id FROM frontline_feedback") == [
        (pop["call_id"], "1001", "li.na", "complaint", "urgent", "Billed twice for March; wants the fee waived",
         filed["item"])]
    ((item_id, category, urgency, owner, agent_id, status_, reasons),) = rows(
        desk.db, "SELECT item_id, category, urgency, owner, agent, status, reasons FROM followups")
    assert (item_id, category, urgency, owner, agent_id, status_) == (
        filed["item"], "complaint", "urgent", filed["owner"], "1001", "open")
    assert "Billed twice" in str(reasons)


async def test_the_next_call_of_the_same_caller_pops_with_the_last_one(desk: Desk) -> None:
    agent = await logged_in(desk, "li.na")
    agent.listen()
    await agent.next("state")
    await agent.post("/agent/presence", op="login")
    first = desk.call(agents={"PJSIP/1001": Agent(answer_after=0.5, talk=0.5)})
    pop = await agent.next("pop")
    await agent.next("wrapup", timeout=15)
    await agent.post("/agent/wrapup", call_id=pop["call_id"], code="other", note="")
    await agent.post("/agent/feedback", call_id=pop["call_id"], kind="defect", urgency="important", text="App crashes")
    await first
    assert desk.controller.store is not None
    await desk.controller.store.flush()

    desk.call(agents={"PJSIP/1001": Agent(answer_after=0.5, talk=0.5)})
    second = await agent.next("pop")
    assert second["customer"] == "vip"
    assert any(w.startswith("returning: called before") for w in second["why"])
    (last,) = second["history"]
    assert (last["call_id"], last["queue"], last["agent_id"], last["wrap_code"]) == (
        pop["call_id"], "billing", "1001", "other")
    (item,) = second["open_items"]
    assert (item["category"], item["urgency"], item["call_id"]) == ("defect", "important", pop["call_id"])


async def test_a_pause_from_the_phone_side_shows_on_the_page_at_once(desk: Desk) -> None:
    agent = await logged_in(desk, "li.na")
    agent.listen()
    await agent.next("state")
    await agent.post("/agent/presence", op="login")
    from routing.model import Presence

    await desk.state.set_presence("1001", Presence.PAUSED, time.time(), reason="phone")  # what *73 does
    shown = await agent.next("presence")
    while shown["presence"] != "paused":
        shown = await agent.next("presence")
    assert shown["pause_reason"] == "phone"
    status, answer = await agent.post("/agent/presence", op="pause", reason="lunch")
    assert status == 200 and answer["presence"]["pause_reason"] == "lunch"
    status, answer = await agent.post("/agent/presence", op="pause", reason="nap")
    assert status == 409 and "nap" in answer["detail"]


# --- refusals -------------------------------------------------------------------------------------


async def test_no_cookie_a_forged_one_and_an_expired_one_are_refused(desk: Desk) -> None:
    p = await page(desk)
    desk.pages.append(p)  # type: ignore[attr-defined]
    async with p.session.get(f"{desk.url}/agent/events") as response:
        assert response.status == 401
    async with p.session.get(f"{desk.url}/agent", headers={"Accept": "text/html"}, allow_redirects=False) as response:
        assert response.status == 303 and response.headers["Location"] == "/login"
    forged = URLSafeTimedSerializer("an attacker's guess at the secret, 40 chars", salt="ivr-desk-session")
    p.session.cookie_jar.update_cookies({COOKIE: forged.dumps({"u": "li.na", "e": 0, "n": "x"})})
    async with p.session.get(f"{desk.url}/agent/events") as response:
        assert response.status == 401
    secret = (desk.controller.config_dir / "var" / "desk.key").read_text().strip()
    now = time.time()
    with pytest.MonkeyPatch.context() as patch:  # signed 13 hours ago
        patch.setattr(time, "time", lambda: now - 13 * 3600)
        old = URLSafeTimedSerializer(secret, salt="ivr-desk-session").dumps({"u": "li.na", "e": 0, "n": "x"})
    p.session.cookie_jar.update_cookies({COOKIE: old})
    async with p.session.get(f"{desk.url}/agent/events") as response:
        assert response.status == 401  # older than the 12-hour session


async def test_a_supervisor_without_an_agent_id_has_no_agent_page(desk: Desk) -> None:
    boss = await page(desk)
    desk.pages.append(boss)  # type: ignore[attr-defined]
    response = await boss.login("boss")
    assert response.status == 303 and response.headers["Location"] == "/whoami"
    async with boss.session.get(f"{desk.url}/agent/events") as events:
        assert events.status == 403


async def test_a_post_without_the_csrf_token_is_refused(desk: Desk) -> None:
    agent = await logged_in(desk, "li.na")
    async with agent.session.post(f"{desk.url}/agent/presence", data={"op": "login"}) as response:
        assert response.status == 403 and (await response.json())["error"] == "csrf"
    async with agent.session.post(f"{desk.url}/agent/presence", data={"op": "login", "csrf": "0" * 64}) as response:
        assert response.status == 403
    assert (await desk.state.agent("1001")).presence.value == "logged_out"  # nothing happened


async def test_brute_force_locks_the_login_even_for_the_right_password(desk: Desk) -> None:
    p = await page(desk)
    desk.pages.append(p)  # type: ignore[attr-defined]
    for _ in range(5):
        assert (await p.login("li.na", "wrong password!")).status == 401
    locked = await p.login("li.na", PASSWORD)
    assert locked.status == 429 and int(locked.headers["Retry-After"]) > 0
    assert COOKIE not in {c.key for c in p.session.cookie_jar}


async def test_an_agent_asking_for_another_agents_call_is_refused(desk: Desk) -> None:
    li = await logged_in(desk, "li.na")
    li.listen()
    await li.next("state")
    wang = await logged_in(desk, "wang.wei")
    await li.post("/agent/presence", op="login")
    desk.call(agents={"PJSIP/1001": Agent(answer_after=0.5, talk=0.5)})
    pop = await li.next("pop")
    async with wang.session.get(f"{desk.url}/agent/calls/{pop['call_id']}/pop") as response:
        assert response.status == 403
    status, _ = await wang.post("/agent/feedback", call_id=pop["call_id"], kind="praise", urgency="routine",
                                text="not my call")
    assert status == 403
    await li.next("wrapup", timeout=15)
    status, _ = await wang.post("/agent/wrapup", call_id=pop["call_id"], code="other", note="")
    assert status == 403
    assert rows(desk.db, "SELECT count(*) FROM frontline_feedback") == [(0,)]


async def test_a_password_change_ends_the_sessions_before_it(desk: Desk) -> None:
    agent = await logged_in(desk, "li.na")
    async with agent.session.get(f"{desk.url}/whoami") as response:
        assert response.status == 200
    assert desk.controller.store is not None
    await AccountStore(desk.controller.store.engine).set_password("li.na", "another long password")
    async with agent.session.get(f"{desk.url}/whoami") as response:
        assert response.status == 401
    await eventually(lambda: True)
