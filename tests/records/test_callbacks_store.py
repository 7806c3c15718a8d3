"""Callback requests in the call-record store (SQLite and PostgreSQL): add, claim, finish, retry, recover."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ivr.records.model import CallbackRequest
from ivr.records.store import CallStore

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 3, 16, 10, 0, 0, tzinfo=UTC)


def at(seconds: float) -> dt.datetime:
    return NOW + dt.timedelta(seconds=seconds)


def request(call_id: str, queue: str = "billing", when: dt.datetime = NOW) -> CallbackRequest:
    return CallbackRequest(f"cb-{call_id}", call_id, "13700000001", queue, "en-US", "en", "4008001234", when)


async def test_oldest_pending_of_a_queue_is_claimed_once_and_retried_until_failed(target: Path | str) -> None:
    store = await CallStore.open(target, privacy_policy="mask")
    try:
        assert await store.add_callback(request("b", when=at(2)))
        assert await store.add_callback(request("a", when=at(1)))
        assert await store.add_callback(request("g", queue="general", when=at(0)))
        assert not await store.add_callback(request("a", when=at(5)))  # one request per call
        assert [r.call_id for r in await store.due_callbacks(at(10))] == ["g", "a", "b"]

        claimed = await store.claim_oldest_callback("billing", at(10))
        assert claimed is not None and (claimed.call_id, claimed.status, claimed.attempts) == ("a", "dialing", 1)
        assert claimed.caller == "13700000001"  # as received, whatever the privacy policy
        assert await store.claim_callback("cb-a", at(10)) is None  # not pending any more

        retry = at(70)
        assert await store.finish_callback("cb-a", at(20), ok=False, error="Failure", retry_at=retry) == "pending"
        assert [r.call_id for r in await store.due_callbacks(at(30))] == ["g", "b"]  # not before retry_at
        for attempt in (2, 3):
            again = await store.claim_callback("cb-a", at(80))
            assert again is not None and again.attempts == attempt
            status = await store.finish_callback("cb-a", at(90), ok=False, error="no answer", retry_at=at(60))
        assert status == "failed"
        failed = await store.get_callback("cb-a")
        assert failed is not None and (failed.status, failed.attempts, failed.last_error) == ("failed", 3, "no answer")

        assert await store.claim_callback("cb-b", at(100)) is not None
        assert await store.finish_callback("cb-b", at(101), ok=True) == "done"
        assert await store.finish_callback("cb-b", at(102), ok=False) is None  # not dialing: unchanged

        assert await store.claim_callback("cb-g", at(100)) is not None
        assert await store.recover_callbacks(at(200)) == 1  # a crash left it dialing
        assert [(r.call_id, r.status) for r in await store.callbacks()] == [
            ("g", "pending"), ("a", "failed"), ("b", "done")]
    finally:
        await store.close()
