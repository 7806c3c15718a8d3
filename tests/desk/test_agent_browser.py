"""The agent's whole journey in a real browser (Debian's headless Chromium, Playwright): log in,
go ready, a call through the controller rings the agent (pbxsim), the pop shows the caller's
context, the call ends, the agent picks a wrap-up code and files the customer's complaint;
the database holds exactly that. In Chinese, the agent's language.

Without /usr/bin/chromium the test skips, except under CI=true, where it fails.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, async_playwright, expect

from deskkit import PASSWORD, Desk, start_desk
from ivr.pbxsim.caller import Agent

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

if not CHROMIUM.exists():
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHROMIUM} is missing: CI must run the browser tests (apt-get install chromium)",
                    pytrace=False)
    pytestmark = pytest.mark.skip(reason=f"{CHROMIUM} is not installed")


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[tuple[Desk, BrowserContext]]:
    desk = await start_desk(tmp_path)
    await desk.account("wang.wei", agent_id="1002", language="zh-CN")
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True, args=ARGS,
            locale="zh-CN")
        try:
            yield desk, context
        finally:
            await context.close()
            for task in desk.calls:
                await asyncio.gather(task, return_exceptions=True)
            await desk.controller.stop()


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute(sql))


async def test_an_agent_takes_a_call_codes_it_and_files_the_customers_complaint(
        browser: tuple[Desk, BrowserContext]) -> None:
    desk, context = browser
    page = await context.new_page()
    await page.goto(f"{desk.url}/login")
    await page.get_by_label("用户名").fill("wang.wei")
    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await page.wait_for_url(f"{desk.url}/agent")
    await expect(page.locator("body[data-ready='1']")).to_be_attached()
    await expect(page.locator("#presence")).to_have_text("已签出")

    await page.get_by_role("button", name="就绪").click()
    await expect(page.locator("#presence")).to_have_text("就绪")

    call = desk.call(agents={"PJSIP/1002": Agent(answer_after=1.0, talk=1.0)})
    pop = page.locator("#pop")
    await expect(pop).to_be_visible()
    await expect(page.locator("#pop-caller")).to_have_text("*******8000")
    await expect(page.locator("#pop-customer")).to_have_text("VIP")
    await expect(page.locator("#pop-queue")).to_have_text("billing")
    await expect(page.locator("#pop-path")).to_contain_text("billing-menu (menu): 2")
    call_id = await pop.get_attribute("data-call-id")
    assert call_id
    crm = page.get_by_role("link", name="在 CRM 中打开")
    assert await crm.get_attribute("href") == f"https://crm.example/customer?phone=13800138000&call={call_id}"

    wrap = page.locator(f"form[data-wrap='{call_id}']")
    await expect(wrap).to_be_visible(timeout=15_000)
    await wrap.get_by_label("小结代码").select_option(label="账单 › 退款 › 已批准")
    await wrap.get_by_label("备注").fill("三月账单退款")
    await wrap.get_by_role("button", name="保存").click()
    await expect(page.locator("#message")).to_have_text("已保存。")
    await expect(wrap).to_have_count(0)

    feedback = page.locator("#feedback")
    await feedback.get_by_label("类型").select_option(label="投诉")
    await feedback.get_by_label("紧急程度").select_option(label="紧急")
    await feedback.get_by_label("客户反映的内容").fill("三月被重复扣费，要求退还手续费")
    await feedback.get_by_role("button", name="提交").click()
    await expect(page.locator("#message")).to_contain_text("已提交")

    await call
    assert rows(desk.db, "SELECT call_id, agent_id, code, note, coded_by FROM wrap_ups") == [
        (call_id, "1002", "billing/refund/approved", "三月账单退款", "wang.wei")]
    assert rows(desk.db, "SELECT call_id, agent_id, kind, urgency, text FROM frontline_feedback") == [
        (call_id, "1002", "complaint", "urgent", "三月被重复扣费，要求退还手续费")]
    assert rows(desk.db, "SELECT call_id, category, urgency, agent, status FROM followups") == [
        (call_id, "complaint", "urgent", "1002", "open")]
