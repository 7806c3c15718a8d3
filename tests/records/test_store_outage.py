"""The database going away never costs a record: the writer spools what it cannot write,
writes it once the database answers, and a store that dies mid-outage leaves a spool the
next store writes. Nothing is written twice."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import aiosqlite
import pytest
from sqlalchemy import func, select

from ivr.records.model import CallEnded, CallStarted, Disposition, EventKind, PathEvent
from ivr.records.schema import call_events, calls
from ivr.records.store import CallStore, StoreError, StoreUnavailable
from ivr.records.writes import Started, encode

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 16, 10, 0, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


def start(call_id: str, channel: str | None = None) -> CallStarted:
    return CallStarted(call_id, f"u-{call_id}", channel or f"PJSIP/trunk-{call_id}", "4008001234", "13800138000",
                       "4008001234", "zh-CN", "2026.1", "cfg", T0)


def end(call_id: str) -> CallEnded:
    events = (PathEvent(T0, EventKind.NODE, "welcome"), PathEvent(T0 + dt.timedelta(seconds=3), EventKind.HANGUP,
                                                                   "welcome", "caller"))
    return CallEnded(call_id, T0 + dt.timedelta(seconds=4), Disposition.ABANDONED, "welcome", "zh-CN", None, None,
                     None, "caller", events)


def call(store: CallStore, call_id: str) -> None:
    store.call_started(start(call_id))
    store.call_ended(end(call_id))


async def counts(store: CallStore) -> dict[str, int]:
    """call id -> its path events stored (a call written twice would show up here)."""
    async with store.engine.connect() as conn:
        found = (await conn.execute(
            select(calls.c.call_id, func.count(call_events.c.seq))
            .join(call_events, call_events.c.call_id == calls.c.call_id, isouter=True)
            .group_by(calls.c.call_id).order_by(calls.c.call_id))).all()
    return {call_id: n for call_id, n in found}


def spooled(directory: Path) -> list[Path]:
    return sorted(directory.glob("*-spool-*.jsonl"))


class Proxy:
    """A TCP proxy in front of PostgreSQL that the test cuts (every connection dropped, new
    ones refused) and restores on the same port."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pumps: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers |= {writer, up_writer}
        pumps = {asyncio.create_task(self._pump(reader, up_writer)), asyncio.create_task(self._pump(up_reader, writer))}
        self._pumps |= pumps
        await asyncio.gather(*pumps, return_exceptions=True)
        self._pumps -= pumps
        for w in (writer, up_writer):
            self._writers.discard(w)
            w.close()

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()
        await asyncio.gather(*self._pumps, return_exceptions=True)

    async def restore(self) -> None:
        await self.start()

    async def close(self) -> None:
        await self.cut()


def through(url: str, port: int) -> str:
    """`url` with its host and port replaced by the proxy's."""
    scheme, rest = url.split("://", 1)
    credentials, _, location = rest.rpartition("@")
    database = location.split("/", 1)[1]
    return f"{scheme}://{credentials + '@' if credentials else ''}127.0.0.1:{port}/{database}"


def pg_port(url: str) -> int:
    return int(url.split("://", 1)[1].rpartition("@")[2].split("/")[0].split(":")[1])


async def test_calls_made_while_postgresql_is_down_are_written_after_it_once(
    pg_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = Proxy(pg_port(pg_url))
    await proxy.start()
    store = await CallStore.open(through(pg_url, proxy.port), spool_dir=tmp_path, retry_min=0.05, retry_max=0.2)
    try:
        call(store, "before")
        await store.flush()
        await proxy.cut()
        for call_id in ("during-1", "during-2"):
            call(store, call_id)
        store.set_hangup_cause("u-before", 16, "Normal Clearing")
        with caplog.at_level(logging.INFO, logger="ivr.records.store"):
            with pytest.raises(StoreUnavailable):
                await store.flush()
            (spool,) = spooled(tmp_path)
            assert [json.loads(line)["op"] for line in spool.read_bytes().splitlines()] == [
                "started", "ended", "started", "ended", "hangup"]
            call(store, "during-3")  # still down: to the end of the spool
            await asyncio.sleep(0.6)  # several retries, all refused
            await proxy.restore()
            await store.flush()  # a flush retries at once
        assert await counts(store) == {"before": 2, "during-1": 2, "during-2": 2, "during-3": 2}
        row = await store.get_call("before")
        assert row is not None and row.hangup_cause == 16
        assert spooled(tmp_path) == []
        failing = [r for r in caplog.records if "unavailable" in r.getMessage()]
        recovered = [r for r in caplog.records if "answers again" in r.getMessage()]
        assert len(failing) == 1 and failing[0].levelno == logging.ERROR
        assert len(recovered) == 1 and "7 spooled records written" in recovered[0].getMessage()
    finally:
        await store.close()
        await proxy.close()


async def test_closing_during_an_outage_spools_and_the_next_store_writes_it(pg_url: str, tmp_path: Path) -> None:
    proxy = Proxy(pg_port(pg_url))
    await proxy.start()
    store = await CallStore.open(through(pg_url, proxy.port), spool_dir=tmp_path, retry_min=0.05)
    await proxy.cut()
    call(store, "late")
    await store.close(timeout=1.0)  # cannot flush: the records stay in the spool
    await proxy.close()
    assert len(spooled(tmp_path)) == 1
    store = await CallStore.open(pg_url, spool_dir=tmp_path)
    try:
        assert await counts(store) == {"late": 2}
        assert spooled(tmp_path) == []
    finally:
        await store.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


CHILD = textwrap.dedent("""
    import asyncio, datetime as dt, sys, time
    from pathlib import Path
    from ivr.records.model import CallEnded, CallStarted, Disposition
    from ivr.records.store import CallStore, StoreUnavailable

    async def main() -> None:
        store = await CallStore.open(sys.argv[1], spool_dir=Path(sys.argv[2]), retry_max=60.0)
        t0 = dt.datetime(2026, 3, 16, 10, 0, tzinfo=dt.timezone.utc)
        for n in range(3):
            store.call_started(CallStarted(f"crash-{n}", f"u{n}", "PJSIP/t", "400", "13800138000", "400", "en",
                                           "v", "cfg", t0))
            store.call_ended(CallEnded(f"crash-{n}", t0 + dt.timedelta(seconds=9), Disposition.SELF_SERVED, "",
                                       "en", None, None, None, "caller", ()))
        try:
            await store.flush()
        except StoreUnavailable:
            print("spooled", flush=True)
        time.sleep(60)  # blocks the loop: the parent kills the process here, no close()

    asyncio.run(main())
""")


async def test_a_crash_during_an_outage_loses_nothing_spooled(pg_url: str, tmp_path: Path) -> None:
    dead = f"postgresql://postgres@127.0.0.1:{closed_port()}/nowhere"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, dead, str(tmp_path), stdout=subprocess.PIPE, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert child.stdout is not None
        assert await asyncio.wait_for(child.stdout.readline(), 30) == b"spooled\n"
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
    assert len(spooled(tmp_path)) == 1
    store = await CallStore.open(pg_url, spool_dir=tmp_path)
    try:
        rows = {row.call_id: row.disposition async for row in store.iter_calls()}
        assert rows == {f"crash-{n}": Disposition.SELF_SERVED for n in range(3)}
        assert spooled(tmp_path) == []
    finally:
        await store.close()


async def test_a_sqlite_file_locked_past_the_busy_timeout_is_written_once_free(tmp_path: Path) -> None:
    path = tmp_path / "calls.sqlite"
    store = await CallStore.open(path, busy_timeout=0.1, retry_min=0.05)
    try:
        call(store, "before")
        await store.flush()
        async with aiosqlite.connect(path) as other:  # e.g. a backup holding the write lock
            await other.execute("BEGIN EXCLUSIVE")
            call(store, "locked")
            with pytest.raises(StoreUnavailable):
                await store.flush()
            assert len(spooled(tmp_path)) == 1
            await other.rollback()
        await store.flush()
        assert await counts(store) == {"before": 2, "locked": 2}
        assert spooled(tmp_path) == []
    finally:
        await store.close()


async def test_a_spool_of_records_already_written_adds_no_rows(target: Path | str, tmp_path: Path) -> None:
    """The database committed, but the store never heard it (the connection dropped just then):
    the same records spooled and replayed leave the rows as they were; a line a crash cut short
    is skipped."""
    store = await CallStore.open(target, spool_dir=tmp_path)
    call(store, "twice")
    await store.close()
    spool = tmp_path / f"{'calls.sqlite' if isinstance(target, Path) else 'records'}-spool-1-dead.jsonl"
    spool.write_bytes(encode(Started(start("twice"), None)) + encode(end("twice")) + encode(end("twice"))
                      + b'{"op":"ended","rec')
    store = await CallStore.open(target, spool_dir=tmp_path)
    try:
        assert await counts(store) == {"twice": 2}
        assert not spool.exists()
    finally:
        await store.close()


async def test_a_record_postgresql_refuses_is_set_aside_and_the_rest_written(pg_url: str, tmp_path: Path) -> None:
    store = await CallStore.open(pg_url, spool_dir=tmp_path)
    try:
        store.call_started(start("good-1"))
        store.call_started(start("bad", channel="PJSIP/\x00"))  # PostgreSQL text cannot hold NUL
        store.call_started(start("good-2"))
        with pytest.raises(StoreError, match="1 call records were refused"):
            await store.flush()
        assert await counts(store) == {"good-1": 0, "good-2": 0}
        (line,) = (tmp_path / "records-rejected.jsonl").read_bytes().splitlines()
        assert json.loads(line)["record"]["call"]["call_id"] == "bad"
        call(store, "after")  # the writer goes on
        await store.flush()
        assert "after" in await counts(store)
    finally:
        await store.close()


async def test_records_a_crash_left_open_are_closed_once_a_store_down_at_start_up_answers(
    pg_url: str, tmp_path: Path
) -> None:
    """The previous run's open call is closed as interrupted when PostgreSQL comes back; a
    call of this run, started meanwhile, stays open (it is live)."""
    from ivr.app import Controller

    old = await CallStore.open(pg_url, controller="ctl")
    old.call_started(start("crashed"))
    await old.flush()
    await old.close()
    proxy = Proxy(pg_port(pg_url))
    await proxy.start()
    await proxy.cut()
    store = await CallStore.open(through(pg_url, proxy.port), spool_dir=tmp_path, retry_min=0.05, retry_max=0.2,
                                 controller="ctl")
    this_run = T0 + dt.timedelta(hours=1)
    try:
        recovery = asyncio.create_task(Controller._recover(store, this_run, retry=0.05))
        store.call_started(CallStarted("live", "u-live", "PJSIP/trunk-live", "4008001234", "13800138000", "4008001234",
                                       "zh-CN", "2026.1", "cfg", this_run + dt.timedelta(minutes=1)))
        await asyncio.sleep(0.3)
        assert not recovery.done()  # still down: retrying
        await proxy.restore()
        await asyncio.wait_for(recovery, 10)
        await store.flush()
        crashed, live = await store.get_call("crashed"), await store.get_call("live")
    finally:
        await store.close()
        await proxy.close()
    assert crashed is not None and crashed.disposition is Disposition.INTERRUPTED
    assert live is not None and live.disposition is None


async def test_calls_started_in_the_two_runs_of_a_repeated_hour_are_stored_an_hour_apart(tmp_path: Path) -> None:
    from zoneinfo import ZoneInfo

    london = ZoneInfo("Europe/London")
    store = await CallStore.open(tmp_path / "calls.sqlite")
    try:
        for fold in (0, 1):
            at = dt.datetime(2026, 10, 25, 1, 30, fold=fold, tzinfo=london)
            store.call_started(CallStarted(f"f{fold}", f"u-f{fold}", "PJSIP/t", "4008001234", "13800138000",
                                           "4008001234", "en-GB", "v1", "cfg", at))
        await store.flush()
        first, second = await store.get_call("f0"), await store.get_call("f1")
    finally:
        await store.close()
    assert first is not None and second is not None
    assert second.started_at - first.started_at == dt.timedelta(hours=1)
