"""Live events for connected pages: one bounded queue per open page, by agent id.

Publishing never waits: a page whose queue is full (a browser that stopped reading) is cut
off, and its EventSource reconnects and starts again from a fresh snapshot. So one stuck
tab can neither hold memory without bound nor delay anybody's screen pop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

QUEUE_LIMIT = 256  # events waiting for one page before it is cut off


@dataclass(frozen=True)
class Event:
    name: str  # the SSE event type: state, presence, pop, offer_over, connected, wrapup, ...
    data: dict[str, Any]

    def encode(self, event_id: int) -> bytes:
        body = json.dumps(self.data, ensure_ascii=False, separators=(",", ":"))
        return f"id: {event_id}\nevent: {self.name}\ndata: {body}\n\n".encode()


CUT_OFF = Event("cut_off", {})  # the page fell behind: its stream ends


@dataclass(eq=False)  # each page is itself: kept in a set by identity
class Subscription:
    key: str
    queue: asyncio.Queue[Event] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    cut: bool = False


class Hub:
    def __init__(self) -> None:
        self._pages: dict[str, set[Subscription]] = {}
        self.cut_offs = 0

    @contextmanager
    def subscribe(self, key: str) -> Iterator[Subscription]:
        subscription = Subscription(key)
        self._pages.setdefault(key, set()).add(subscription)
        try:
            yield subscription
        finally:
            pages = self._pages.get(key)
            if pages is not None:
                pages.discard(subscription)
                if not pages:
                    del self._pages[key]

    def keys(self) -> list[str]:
        return list(self._pages)

    def pages(self) -> int:
        return sum(len(pages) for pages in self._pages.values())

    def publish(self, key: str, event: Event) -> None:
        for subscription in tuple(self._pages.get(key, ())):
            if subscription.cut:
                continue
            try:
                subscription.queue.put_nowait(event)
            except asyncio.QueueFull:
                subscription.cut = True
                self.cut_offs += 1
                # Make room for the one event that tells the page's loop to end.
                subscription.queue.get_nowait()
                subscription.queue.put_nowait(CUT_OFF)
