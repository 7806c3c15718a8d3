"""One log line per kind of event-loop error per window, not one per occurrence.

Out of descriptors, asyncio's accept loop reports `socket.accept() out of system resource`
for every listening socket every second, and callbacks can fail in bursts: a flood of
identical tracebacks (72 MB in 22 s was seen) buries the one line that matters and costs
the loop the time it needs for calls. The handler logs the first of a kind with its
traceback, then at most one line per `window` seconds saying how many were dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("asyncio")


class ThrottledLoopErrors:
    def __init__(self, window: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self._clock = clock
        self._last: dict[str, float] = {}  # kind -> when it was last logged
        self._dropped: dict[str, int] = {}

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        kind = str(context.get("message", "")) or type(context.get("exception")).__name__
        now = self._clock()
        last = self._last.get(kind)
        if last is not None and now - last < self.window:
            self._dropped[kind] = self._dropped.get(kind, 0) + 1
            return
        dropped = self._dropped.pop(kind, 0)
        self._last[kind] = now
        if dropped:
            exc = context.get("exception")
            log.error("%s (%d more like it in the last %g s): %s", kind, dropped, now - (last if last is not None else now), exc)
        else:
            loop.default_exception_handler(context)
