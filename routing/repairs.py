"""Live-state clean-ups that failed while the live state was unreachable, retried until done.

A call that ends while Redis does not answer (killed, paused, cut off) could not dequeue
its caller, end its offer or put its agent in wrap-up. Left alone, the caller stays in the
shared queue as a ghost that blocks routing, and the agent stays reserved or on a call that
is over. Each such write is kept here, in the order it was meant to happen, and retried
(every `retry_every` seconds, doubling to `retry_max`) until the live state takes it. Every
write is idempotent in the live state (it checks the call id), so one that did land before
its reply was lost does no harm when sent again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from routing.state import StateUnavailable

log = logging.getLogger(__name__)

Write = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class _Repair:
    what: str  # for the log: "dequeue call 123"
    write: Write
    since: float


class Repairs:
    def __init__(self, *, retry_every: float = 0.1, retry_max: float = 2.0, give_up_after: float = 24 * 3600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.retry_every = retry_every
        self.retry_max = retry_max
        self.give_up_after = give_up_after
        self._clock = clock
        self._queue: deque[_Repair] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.done = 0  # repairs that landed
        self.dropped = 0  # repairs given up after `give_up_after`, or that failed otherwise

    @property
    def pending(self) -> int:
        return len(self._queue)

    def add(self, what: str, write: Write, error: Exception) -> None:
        """Keep a write the live state refused with `error`; logged once per outage (the first)."""
        if not self._queue:
            log.warning("live state: %s failed (%s); retrying this and what follows until the live state answers",
                        what, error)
        self._queue.append(_Repair(what, write, self._clock()))
        self._wake.set()

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="acd-repairs")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._queue:
            log.error("live state: %d clean-up(s) not done at stop (%s); the reservation TTL and the "
                      "controllers' leases end what they left", len(self._queue), self._queue[0].what)

    async def _run(self) -> None:
        delay = self.retry_every
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            if await self._retry_in_order():
                delay = self.retry_every
                continue
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.retry_max)

    async def _retry_in_order(self) -> bool:
        """True when the queue was emptied; False at the first write the live state refused."""
        while self._queue:
            repair = self._queue[0]
            try:
                await repair.write()
            except StateUnavailable:
                if self._clock() - repair.since > self.give_up_after:
                    self._queue.popleft()
                    self.dropped += 1
                    log.error("live state: gave up on %s after %.0f s", repair.what, self.give_up_after)
                    continue
                return False
            except Exception:  # a defect: log it and go on with the others
                self._queue.popleft()
                self.dropped += 1
                log.exception("live state: %s failed", repair.what)
                continue
            self._queue.popleft()
            self.done += 1
            if not self._queue:
                log.info("live state: every clean-up left by the outage is done (%d)", self.done)
        return True
