"""Self-service lookups under load: a bounded number in flight, each within its own deadline.

Regression: with ~500 callers in lookups at once, httpx's pool queue (quadratic in its
length) ate the controller's core and lookups timed out, sending callers to the wrong
queue (benchmarks/agi_load.py found it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from ivr.config.models import HttpRequest
from ivr.selfservice import GatedTransport, lookup


class CountingBackend:
    """Answers after `delay` seconds and remembers the most requests it had at once."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.now = 0
        self.most = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        self.now += 1
        self.most = max(self.most, self.now)
        await asyncio.sleep(self.delay)
        self.now -= 1
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n"
                     b"Connection: close\r\n\r\n{\"ok\": true}")
        await writer.drain()
        writer.close()


@pytest.fixture
async def backend() -> AsyncIterator[tuple[CountingBackend, str]]:
    counting = CountingBackend(delay=0.1)
    server = await asyncio.start_server(counting.handle, "127.0.0.1", 0)
    yield counting, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    server.close()
    await server.wait_closed()


def client(limit: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=GatedTransport(httpx.AsyncHTTPTransport(), limit))


async def test_no_more_lookups_in_flight_than_allowed(backend: tuple[CountingBackend, str]) -> None:
    counting, url = backend
    async with client(3) as http:
        results = await asyncio.gather(
            *(lookup(http, HttpRequest(url="/x", timeout=5), {}, base_url=url) for _ in range(12))
        )
    assert all(r.ok and r.answer == {"ok": True} for r in results)
    assert counting.most == 3


async def test_waiting_for_a_slot_counts_against_the_lookup_timeout(backend: tuple[CountingBackend, str]) -> None:
    counting, url = backend
    counting.delay = 1.0
    async with client(1) as http:
        first = asyncio.create_task(lookup(http, HttpRequest(url="/slow", timeout=3), {}, base_url=url))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        second = await lookup(http, HttpRequest(url="/x", timeout=0.3), {}, base_url=url)
        waited = time.monotonic() - started
        assert (await first).ok
    assert not second.ok and second.error == "timeout after 0.3 s"
    assert waited < 0.9  # it gave up at its own deadline, not when the slot freed at 1 s
