"""The web feedback form over real HTTP on a loopback port: what the customer sees for each
link, and which rows land in the call-record SQLite file. Also `ivr feedback link/serve`."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import os
import re
import signal
import sqlite3
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import aiohttp
import pytest
from click.testing import CliRunner

from ivr.cli.main import main
from ivr.records.model import CallEnded, CallRow, CallStarted, Disposition, EventKind, PathEvent, QueueLeg
from ivr.records.store import CallStore, caller_key
from servekit import IVR, REPO, copy_config
from survey_engine.config import SurveysConfig
from survey_engine.links import FeedbackLinks
from survey_engine.store import SurveyStore
from survey_engine.web import MAX_BODY, FeedbackWeb, start_feedback_web

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # the calls
SENT = T0 + dt.timedelta(minutes=10)  # the link
SECRET = "test-secret-of-some-length-0123456789"
SALT = "pepper"
CALLER = "+86 138 0013 8000"
MAX_TEXT = 40

SURVEYS = SurveysConfig.model_validate({
    "followups": {"owners": {"queues": {"billing": "billing-lead"}, "default": "cs-supervisor"}},
    "web": {"enabled": True, "base_url": "https://feedback.example.com", "max_text": MAX_TEXT, "link_days": 7},
})


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def leg(queue: str, outcome: Literal["answered", "abandoned", "overflowed"], agent: str | None = None,
        ended_by: Literal["caller", "agent"] | None = None) -> QueueLeg:
    return QueueLeg(queue, at(1), at(5), outcome, answered_at=at(2) if agent else None, agent_id=agent,
                    talk_seconds=180.0 if agent else None, ended_by=ended_by)


CALLS: dict[str, tuple[str, Disposition, tuple[QueueLeg, ...]]] = {
    # call id: (language, disposition, queue legs)
    "c-billing": ("zh-CN", Disposition.ANSWERED, (leg("billing", "answered", "1002", "agent"),)),
    "c-english": ("en-US", Disposition.ANSWERED, (leg("billing", "answered", "1007", "caller"),)),
    "c-overflowed": ("zh-CN", Disposition.ANSWERED,
                     (leg("billing", "overflowed"), leg("general", "answered", "1003", "caller"))),
    "c-abandoned": ("zh-CN", Disposition.QUEUE_ABANDONED, (leg("billing", "abandoned"),)),
    "c-self-served": ("zh-CN", Disposition.SELF_SERVED, ()),
}


async def seed_calls(db: Path) -> None:
    store = await CallStore.open(db, privacy_policy="mask", salt=SALT)
    for call_id, (language, disposition, legs) in CALLS.items():
        store.call_started(CallStarted(call_id, f"u-{call_id}", f"PJSIP/trunk-{call_id}", "4008001234", CALLER,
                                       "main", language, "menu-v7", "cfg-test", T0))
        events = (
            PathEvent(at(0), EventKind.NODE, "choose-language"),
            PathEvent(at(0.2), EventKind.DIGIT, "choose-language", "1"),
            PathEvent(at(0.3), EventKind.NODE, "main-menu"),
            PathEvent(at(0.5), EventKind.NODE, "billing-queue"),
        )
        store.call_ended(CallEnded(call_id, at(6), disposition, "", language, None, None, None, "agent", events, legs))
    await store.close()


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


class FailingCalls:
    """Call records whose disk fails for one call."""

    def __init__(self, calls: CallStore, broken: str) -> None:
        self._calls = calls
        self._broken = broken

    async def get_call(self, call_id: str) -> CallRow | None:
        if call_id == self._broken:
            raise OSError("disk I/O error")
        return await self._calls.get_call(call_id)

    async def caller_key_of(self, call_id: str) -> str | None:
        return await self._calls.caller_key_of(call_id)


@dataclass
class Site:
    db: Path
    web: FeedbackWeb
    clock: Clock
    http: aiohttp.ClientSession

    def url(self, call_id: str, language: str = "zh-CN", sent: dt.datetime = SENT) -> str:
        return f"http://127.0.0.1:{self.web.port}/f/{FeedbackLinks.from_settings(SURVEYS.web, SECRET).token(call_id, language, sent)}"

    async def get(self, url: str) -> tuple[int, str]:
        async with self.http.get(url) as response:
            return response.status, await response.text()

    async def post(self, url: str, **fields: str) -> tuple[int, str]:
        async with self.http.post(url, data=fields) as response:
            return response.status, await response.text()

    def rows(self, sql: str) -> list[tuple[object, ...]]:
        with sqlite3.connect(self.db) as db:
            return list(db.execute(sql))


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    db = tmp_path / "var" / "calls.sqlite"
    await seed_calls(db)
    calls = await CallStore.open(db, privacy_policy="mask", salt=SALT)
    surveys = await SurveyStore.open(db)
    clock = Clock(SENT + dt.timedelta(hours=1))
    ids = (f"id-{n}" for n in itertools.count(1))
    web = await start_feedback_web(FailingCalls(calls, "c-broken"), surveys, lambda: SURVEYS, SECRET,
                                   host="127.0.0.1", port=0, clock=clock, new_id=lambda: next(ids))
    async with aiohttp.ClientSession() as http:
        yield Site(db, web, clock, http)
    await web.close()
    await surveys.close()
    await calls.close()


def text_of(html: str) -> str:
    """The page as the customer reads it (tags dropped, whitespace collapsed)."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def nothing_stored(site: Site) -> bool:
    return not site.rows("SELECT * FROM survey_responses") and not site.rows("SELECT * FROM followups")


# --- the form --------------------------------------------------------------------------------


async def test_a_chinese_call_gets_the_form_in_chinese_with_five_labelled_scores(site: Site) -> None:
    status, html = await site.get(site.url("c-billing"))
    assert status == 200
    assert '<html lang="zh-CN">' in html
    assert "请评价我们的服务" in text_of(html)
    scores = re.findall(r'<label class="score"><input type="radio" name="score" value="(\d)" required> ([^<]+)</label>', html)
    assert scores == [("1", "1 - 非常不满意"), ("2", "2 - 不满意"), ("3", "3 - 一般"), ("4", "4 - 满意"), ("5", "5 - 非常满意")]
    assert f'<textarea id="comment" name="comment" rows="6" maxlength="{MAX_TEXT}">' in html
    assert '<button type="submit">提交</button>' in html
    assert "<script" not in html  # works without JavaScript


async def test_an_english_link_gets_the_form_in_english(site: Site) -> None:
    status, html = await site.get(site.url("c-english", "en-US"))
    assert status == 200
    assert "How did we do?" in text_of(html) and "5 - Excellent" in html and ">Send</button>" in html


async def test_pages_keep_the_token_out_of_referers_and_caches(site: Site) -> None:
    async with site.http.get(site.url("c-billing")) as response:
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Cache-Control"] == "no-store"
        assert "script-src" not in response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]


async def test_a_submitted_score_and_text_are_stored_as_a_completed_web_response(site: Site) -> None:
    status, html = await site.post(site.url("c-billing"), score="4", comment="  客服很耐心 <thanks>\r\nok  ")
    assert status == 200
    assert "谢谢！ 我们已收到您的反馈。" in text_of(html)
    answered = SENT + dt.timedelta(hours=1)
    assert site.rows(
        "SELECT response_id, call_id, channel, survey, status, hotline, queue, agent, language, menu_version,"
        " menu_path, hung_up_by, caller_key, offered_at, started_at, ended_at, comment_text FROM survey_responses"
    ) == [(
        "id-1", "c-billing", "web", "web", "completed", "4008001234", "billing", "1002", "zh-CN", "menu-v7",
        "choose-language>main-menu>billing-queue", "agent", caller_key(CALLER, SALT),
        SENT.isoformat(timespec="milliseconds"), answered.isoformat(timespec="milliseconds"),
        answered.isoformat(timespec="milliseconds"), "客服很耐心 <thanks>\nok",
    )]
    assert site.rows("SELECT response_id, seq, question, kind, value, attempts FROM survey_answers") == [
        ("id-1", 0, "overall", "scale", 4, 1)]
    assert site.rows("SELECT * FROM followups") == []  # a 4 needs no follow-up


async def test_the_agent_rated_is_the_one_of_the_last_answered_leg(site: Site) -> None:
    status, _ = await site.post(site.url("c-overflowed"), score="5", comment="")
    assert status == 200
    assert site.rows("SELECT queue, agent, hung_up_by, comment_text FROM survey_responses") == [
        ("general", "1003", "caller", None)]


@pytest.mark.parametrize(("score", "urgency", "hours"), [("1", "urgent", 24), ("2", "important", 72)])
async def test_a_low_score_opens_a_follow_up_for_the_queues_owner_without_a_contact(
    site: Site, score: str, urgency: str, hours: int
) -> None:
    status, _ = await site.post(site.url("c-billing"), score=score, comment="等了太久")
    assert status == 200
    now = SENT + dt.timedelta(hours=1)
    assert site.rows(
        "SELECT item_id, response_id, call_id, category, urgency, owner, deadline, queue, agent, contact, status"
        " FROM followups"
    ) == [(
        "id-2", "id-1", "c-billing", "low-score", urgency, "billing-lead",
        (now + dt.timedelta(hours=hours)).isoformat(timespec="milliseconds"), "billing", "1002", None, "open",
    )]
    reasons = json.loads(str(site.rows("SELECT reasons FROM followups")[0][0]))
    assert reasons and all(reason.startswith(f"overall = {score} ") for reason in reasons)


# --- refusals --------------------------------------------------------------------------------


async def test_a_tampered_link_is_refused_in_both_languages_and_nothing_is_stored(site: Site) -> None:
    url = site.url("c-billing")
    tampered = url[:-10] + ("x" if url[-10] != "x" else "y") + url[-9:]
    status, html = await site.get(tampered)
    assert status == 403
    assert "此链接无效" in text_of(html) and "This link is not valid" in text_of(html)
    assert "<form" not in html
    status, _ = await site.post(tampered, score="1", comment="hacked")
    assert status == 403
    assert nothing_stored(site)


async def test_a_link_for_another_call_id_with_the_old_signature_is_refused(site: Site) -> None:
    genuine = site.url("c-billing").rsplit("/", 1)[1]
    forged = FeedbackLinks.from_settings(SURVEYS.web, "another-secret-0123456789").token("c-english", "zh-CN", SENT)
    status, _ = await site.post(site.url("c-billing").replace(genuine, forged.split(".")[0] + "." + genuine.split(".", 1)[1]),
                                score="1")
    assert status == 403
    assert nothing_stored(site)


async def test_an_expired_link_gets_410_in_its_language_and_nothing_is_stored(site: Site) -> None:
    site.clock.now = SENT + dt.timedelta(days=7, seconds=1)
    status, html = await site.get(site.url("c-billing"))
    assert status == 410 and "此链接已过期" in text_of(html) and "This link" not in html
    status, _ = await site.post(site.url("c-billing"), score="5")
    assert status == 410
    assert nothing_stored(site)


@pytest.mark.parametrize("call_id", ["no-such-call", "c-abandoned", "c-self-served"])
async def test_a_call_without_record_or_never_answered_gets_404(site: Site, call_id: str) -> None:
    status, html = await site.get(site.url(call_id, "en-US"))
    assert status == 404 and "Call not found" in text_of(html)
    status, _ = await site.post(site.url(call_id, "en-US"), score="3")
    assert status == 404
    assert nothing_stored(site)


async def test_a_second_submission_is_told_the_answer_was_received_and_the_first_is_kept(site: Site) -> None:
    first = site.url("c-billing")
    assert (await site.post(first, score="4", comment="好"))[0] == 200
    site.clock.now += dt.timedelta(minutes=5)
    status, html = await site.post(site.url("c-billing", sent=SENT + dt.timedelta(minutes=1)), score="1", comment="改主意")
    assert status == 409 and "我们已收到您对此通话的评价" in text_of(html)
    status, html = await site.get(first)
    assert status == 409 and "<form" not in html
    assert site.rows("SELECT r.comment_text, a.value FROM survey_responses r JOIN survey_answers a USING (response_id)") == [
        ("好", 4)]
    assert site.rows("SELECT * FROM followups") == []


async def test_two_submissions_at_once_store_one_answer(site: Site) -> None:
    url = site.url("c-billing")
    results = await asyncio.gather(*(site.post(url, score=str(score)) for score in (1, 5)))
    assert sorted(status for status, _ in results) == [200, 409]
    assert len(site.rows("SELECT * FROM survey_responses")) == 1


@pytest.mark.parametrize("score", [None, "", "0", "6", "4.0", " 4", "four", "10"])
async def test_a_missing_or_invalid_score_shows_the_form_again_with_an_error(site: Site, score: str | None) -> None:
    fields = {"comment": "不错"} if score is None else {"score": score, "comment": "不错"}
    status, html = await site.post(site.url("c-billing"), **fields)
    assert status == 400
    assert "请选择 1 到 5 分。" in text_of(html)
    assert '<textarea id="comment" name="comment" rows="6" maxlength="40">不错</textarea>' in html  # kept
    assert nothing_stored(site)


async def test_a_too_long_text_shows_the_form_again_with_the_limit_and_the_chosen_score(site: Site) -> None:
    status, html = await site.post(site.url("c-english", "en-US"), score="2", comment="x" * (MAX_TEXT + 1))
    assert status == 400
    assert "Your text is too long: at most 40 characters, please." in text_of(html)
    assert 'value="2" required checked>' in html
    assert nothing_stored(site)


async def test_line_breaks_count_as_one_character_like_the_browser_counts_them(site: Site) -> None:
    text = "\r\n".join(["abcdefghijkl"] * 3) + "ab"  # 3*12 + 2 breaks + 2: 42 as sent, 40 as typed
    status, _ = await site.post(site.url("c-english", "en-US"), score="3", comment=text)
    assert status == 200
    assert site.rows("SELECT comment_text FROM survey_responses") == [(text.replace("\r\n", "\n"),)]


async def test_what_the_customer_typed_is_shown_back_escaped(site: Site) -> None:
    status, html = await site.post(site.url("c-billing"), comment='</textarea><script>alert("x")</script>')
    assert status == 400
    assert "<script>" not in html and "&lt;/textarea&gt;&lt;script&gt;" in html


async def test_a_body_larger_than_the_limit_is_refused_unread(site: Site) -> None:
    async with site.http.post(site.url("c-billing"), data={"score": "1", "comment": "x" * (MAX_BODY + 1)}) as response:
        assert response.status == 413
    assert nothing_stored(site)


async def test_a_failure_answers_with_an_error_page_and_the_server_keeps_serving(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    status, html = await site.post(site.url("c-broken"), score="4")
    assert status == 500 and "Your answer could not be saved" in text_of(html)
    assert "web feedback: POST failed" in caplog.text
    assert (await site.get(site.url("c-billing")))[0] == 200


# --- ivr feedback link / serve ------------------------------------------------------------------


@pytest.fixture
def config(tmp_path: Path) -> Path:
    config = copy_config(tmp_path)
    (config / "surveys.yaml").write_text(
        "web:\n  enabled: true\n  base_url: https://feedback.example.com\n  secret_env: SHOP_FEEDBACK_KEY\n")
    asyncio.run(seed_calls(config / "var" / "calls.sqlite"))
    return config


def feedback(config: Path, *args: str, secret: str | None = SECRET) -> tuple[int, str, str]:
    env = {"SHOP_FEEDBACK_KEY": secret} if secret is not None else {}
    result = CliRunner().invoke(main, ["feedback", *args, "--config", str(config)], env=env)
    return result.exit_code, result.stdout, result.stderr


def test_feedback_link_prints_a_link_that_verifies_for_the_call_in_its_language(config: Path) -> None:
    code, out, err = feedback(config, "link", "c-english", secret=SECRET)
    assert code == 0, err
    url = out.strip()
    assert url.startswith("https://feedback.example.com/f/")
    signed = FeedbackLinks.from_settings(SURVEYS.web, SECRET).verify(url.rsplit("/", 1)[1], dt.datetime.now(UTC))
    assert (signed.call_id, signed.language) == ("c-english", "en-US")


def test_feedback_link_refuses_without_the_secret(config: Path) -> None:
    code, out, err = feedback(config, "link", "c-billing", secret=None)
    assert code == 2 and out == ""
    assert "SHOP_FEEDBACK_KEY" in err and "not set" in err


@pytest.mark.parametrize(("call_id", "why"), [("no-such-call", "no call no-such-call"),
                                               ("c-abandoned", "was not answered by an agent")])
def test_feedback_link_refuses_unknown_and_unanswered_calls(config: Path, call_id: str, why: str) -> None:
    code, out, err = feedback(config, "link", call_id)
    assert code == 2 and out == "" and why in err


def test_feedback_serve_serves_the_form_until_sigterm(config: Path, tmp_path: Path) -> None:
    link = feedback(config, "link", "c-billing")[1].strip()
    log = tmp_path / "serve.log"

    async def answer(url: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as http:
            async with http.post(url, data={"score": "5", "comment": "fast"}) as response:
                return response.status, await response.text()

    with log.open("w") as stderr, subprocess.Popen(
        [*IVR, "feedback", "serve", "--config", str(config), "--port", "0"], cwd=REPO, text=True,
        stdout=subprocess.PIPE, stderr=stderr, env={**os.environ, "SHOP_FEEDBACK_KEY": SECRET},
    ) as process:
        try:
            assert process.stdout is not None
            banner = process.stdout.readline()
            found = re.search(r"http://127\.0\.0\.1:(\d+)/f/", banner)
            assert found, banner + log.read_text()
            status, html = asyncio.run(answer(f"http://127.0.0.1:{found.group(1)}/f/" + link.rsplit("/", 1)[1]))
            assert status == 200 and "谢谢" in html
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0, log.read_text()
        finally:
            if process.poll() is None:
                process.kill()
    with sqlite3.connect(config / "var" / "calls.sqlite") as db:
        assert list(db.execute("SELECT call_id, channel, comment_text FROM survey_responses")) == [
            ("c-billing", "web", "fast")]


async def test_the_controller_serves_the_form_when_surveys_yaml_enables_it(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ivr.app import Controller, ControllerOptions

    monkeypatch.setenv("SHOP_FEEDBACK_KEY", SECRET)
    token = FeedbackLinks.from_settings(SURVEYS.web, SECRET).token("c-english", "en-US", dt.datetime.now(UTC))
    controller = Controller(config, ControllerOptions(port=0, feedback_port=0))
    await controller.start()
    try:
        assert controller.feedback is not None
        url = f"http://127.0.0.1:{controller.feedback.port}/f/{token}"
        async with aiohttp.ClientSession() as http:
            async with http.post(url, data={"score": "2", "comment": "slow"}) as response:
                assert response.status == 200
        assert controller.surveys is not None
        [stored] = await controller.surveys.responses_for_call("c-english")
        assert (stored.channel, stored.answers[0].value, stored.comment_text) == ("web", 2, "slow")
    finally:
        await controller.stop()
    assert controller.feedback is None


def test_serve_refuses_to_start_the_form_without_its_signing_key(config: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SHOP_FEEDBACK_KEY"}
    result = subprocess.run([*IVR, "serve", "--config", str(config), "--port", "0"], cwd=REPO, text=True,
                            capture_output=True, env=env, timeout=60)
    assert result.returncode == 2
    assert "web feedback form" in result.stderr and "SHOP_FEEDBACK_KEY" in result.stderr


async def test_a_field_sent_twice_is_refused_and_nothing_is_stored(site: Site) -> None:
    async with site.http.post(site.url("c-billing"), data=[("score", "1"), ("score", "5")]) as response:
        status, text = response.status, await response.text()

    assert (status, text) == (400, "each field of the form at most once")
    assert nothing_stored(site)
