"""The web feedback form in a real browser: Debian's headless Chromium driven by Playwright
opens a signed link served by `start_feedback_web`, picks a score, types text and submits.

Playwright's own browser download is never used (`playwright install` cannot work here);
without /usr/bin/chromium the tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, Page, async_playwright

from ivr.records.model import CallEnded, CallStarted, Disposition, EventKind, PathEvent, QueueLeg
from ivr.records.store import CallStore
from survey_engine.config import SurveysConfig
from survey_engine.links import FeedbackLinks
from survey_engine.store import SurveyStore
from survey_engine.web import start_feedback_web

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SECRET = "browser-test-secret-0123456789"
T0 = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(hours=2)
SURVEYS = SurveysConfig.model_validate({
    "followups": {"owners": {"queues": {"billing": "billing-lead"}}},
    "web": {"enabled": True, "max_text": 500},
})

if not CHROMIUM.exists():
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHROMIUM} is missing: CI must run the browser tests (apt-get install chromium)",
                    pytrace=False)
    pytestmark = pytest.mark.skip(reason=f"{CHROMIUM} is not installed")


@dataclass
class Form:
    db: Path
    port: int
    browser: BrowserContext

    def link(self, call_id: str, language: str) -> str:
        token = FeedbackLinks.from_settings(SURVEYS.web, SECRET).token(call_id, language, T0 + dt.timedelta(minutes=10))
        return f"http://127.0.0.1:{self.port}/f/{token}"

    def rows(self, sql: str) -> list[tuple[object, ...]]:
        with sqlite3.connect(self.db) as db:
            return list(db.execute(sql))


async def answered_call(db: Path, call_id: str, language: str) -> None:
    store = await CallStore.open(db, salt="s")
    store.call_started(CallStarted(call_id, f"u-{call_id}", "PJSIP/trunk-1", "4008001234", "+8613800138000", "main",
                                   language, "menu-v7", "cfg", T0))
    leg = QueueLeg("billing", T0, T0 + dt.timedelta(minutes=4), "answered", answered_at=T0 + dt.timedelta(minutes=1),
                   agent_id="1002", talk_seconds=180.0, ended_by="agent")
    store.call_ended(CallEnded(call_id, T0 + dt.timedelta(minutes=4), Disposition.ANSWERED, "", language, None, None,
                               None, "agent", (PathEvent(T0, EventKind.NODE, "main-menu"),), (leg,)))
    await store.close()


@pytest.fixture
async def form(tmp_path: Path) -> AsyncIterator[Form]:
    db = tmp_path / "calls.sqlite"
    await answered_call(db, "c-zh", "zh-CN")
    await answered_call(db, "c-en", "en-US")
    calls = await CallStore.open(db, salt="s")
    surveys = await SurveyStore.open(db)
    web = await start_feedback_web(calls, surveys, lambda: SURVEYS, SECRET, host="127.0.0.1", port=0)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            yield Form(db, web.port, browser)
        finally:
            await browser.close()
            await web.close()
            await surveys.close()
            await calls.close()


async def open_page(form: Form, url: str) -> tuple[Page, int]:
    page = await form.browser.new_page()
    response = await page.goto(url)
    assert response is not None
    return page, response.status


async def test_a_customer_rates_the_call_and_writes_chinese_text_in_the_browser(form: Form) -> None:
    page, status = await open_page(form, form.link("c-zh", "zh-CN"))
    assert status == 200
    assert await page.locator("h1").inner_text() == "请评价我们的服务"
    await page.get_by_label("4 - 满意").check()
    await page.get_by_label("您还有什么想告诉我们的吗？").fill("客服很耐心，问题解决了。\n谢谢！")
    await page.get_by_role("button", name="提交").click()
    await page.wait_for_load_state()
    assert "我们已收到您的反馈。" in await page.locator("main").inner_text()
    assert form.rows("SELECT call_id, channel, status, agent, comment_text FROM survey_responses") == [
        ("c-zh", "web", "completed", "1002", "客服很耐心，问题解决了。\n谢谢！")]
    assert form.rows("SELECT question, value FROM survey_answers") == [("overall", 4)]
    assert form.rows("SELECT * FROM followups") == []


async def test_a_low_score_in_the_browser_opens_a_follow_up_for_the_configured_owner(form: Form) -> None:
    page, _ = await open_page(form, form.link("c-en", "en-US"))
    await page.get_by_label("1 - Very poor").check()
    await page.get_by_label("Anything you would like to tell us?").fill("Waited 20 minutes, 中文 too.")
    await page.get_by_role("button", name="Send").click()
    await page.wait_for_load_state()
    assert "Your feedback has been received." in await page.locator("main").inner_text()
    assert form.rows("SELECT call_id, category, urgency, owner, contact FROM followups") == [
        ("c-en", "low-score", "urgent", "billing-lead", None)]


async def test_the_browser_will_not_send_the_form_without_a_score(form: Form) -> None:
    page, _ = await open_page(form, form.link("c-en", "en-US"))
    await page.get_by_role("button", name="Send").click()
    assert await page.locator("input[name=score]:invalid").count() == 5  # `required`: no request made
    assert form.rows("SELECT * FROM survey_responses") == []


async def test_a_tampered_link_shows_the_error_page_in_the_browser_and_stores_nothing(form: Form) -> None:
    link = form.link("c-zh", "zh-CN")
    position = len(link) - 12
    tampered = link[:position] + ("Q" if link[position] != "Q" else "R") + link[position + 1:]
    page, status = await open_page(form, tampered)
    assert status == 403
    text = await page.locator("main").inner_text()
    assert "This link is not valid" in text and "此链接无效" in text
    assert await page.locator("form").count() == 0
    assert form.rows("SELECT * FROM survey_responses") == []
