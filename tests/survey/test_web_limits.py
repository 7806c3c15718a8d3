"""The feedback form under hostile clients (it shares a process with FastAGI): a body that
trickles in gets 408 after the body timeout, connections beyond the cap are closed on
arrival, idle ones are cut off after their lifetime, and a customer then still gets the form."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from ivr.records.store import CallStore
from survey_engine.links import FeedbackLinks
from survey_engine.store import SurveyStore
from survey_engine.web import FeedbackWeb, start_feedback_web
from test_web_form import SALT, SECRET, SENT, SURVEYS, Clock, seed_calls

LIMIT = 8


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[FeedbackWeb]:
    db = tmp_path / "calls.sqlite"
    await seed_calls(db)
    calls = await CallStore.open(db, privacy_policy="mask", salt=SALT)
    surveys = await SurveyStore.open(db)
    served = await start_feedback_web(calls, surveys, lambda: SURVEYS, SECRET, host="127.0.0.1", port=0,
                                      clock=Clock(SENT), max_connections=LIMIT, connection_lifetime=1.0,
                                      body_timeout=0.3)  # fmt: skip
    yield served
    await served.close()
    await surveys.close()
    await calls.close()


def _url(web: FeedbackWeb) -> str:
    return f"http://127.0.0.1:{web.port}/f/{FeedbackLinks.from_settings(SURVEYS.web, SECRET).token('c-billing', 'zh-CN', SENT)}"


async def _closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), within) is not None
    except TimeoutError:
        return False


async def test_a_body_that_never_arrives_gets_408(web: FeedbackWeb) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", web.port)
    path = _url(web).split(str(web.port), 1)[1]
    writer.write(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                 "Content-Length: 100000000\r\n\r\nscore=1".encode())
    answer = await asyncio.wait_for(reader.readline(), 10)
    writer.close()

    assert answer.startswith(b"HTTP/1.1 408"), answer


async def test_connections_over_the_cap_are_closed_at_once_and_idle_ones_after_their_lifetime(web: FeedbackWeb) -> None:
    idle = [await asyncio.open_connection("127.0.0.1", web.port) for _ in range(LIMIT)]
    await asyncio.sleep(0.1)
    extra_reader, extra_writer = await asyncio.open_connection("127.0.0.1", web.port)

    assert await _closed_by_server(extra_reader, 5), "a connection over the cap was kept"
    assert web.guard.refused >= 1 and web.guard.open == LIMIT
    assert all([await _closed_by_server(r, 10) for r, _ in idle]), "an idle connection outlived its lifetime"
    async with aiohttp.ClientSession() as http, http.get(_url(web)) as response:
        assert response.status == 200  # the customer gets the form again
    for _, writer in [*idle, (extra_reader, extra_writer)]:
        writer.close()
