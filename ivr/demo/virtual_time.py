"""An asyncio event loop on virtual time, for `ivr demo`.

`loop.time()` starts at 0 and moves only when nothing can happen before the next timer:
no callback is ready, no socket is readable, and no worker thread that answers the loop
(aiosqlite's connection threads, the default executor's) is busy or has work queued. Then
it jumps to that timer. A demo day of calls runs in seconds, every sleep and timeout takes
exactly its length on the loop's clock, and what the controller writes does not depend on
how fast the machine is or how loaded.

Why not `looptime` (PyPI): measured with aiosqlite, 142 of 200 insert+commit round trips let
its clock jump (by up to 126 s) while the query ran in aiosqlite's thread. It waits only for
executor futures it created itself, and then in real-time steps, so a record's time would
depend on the machine's speed. Here a busy thread holds the clock still instead.

Sockets: the demo's are loopback TCP between tasks of this loop. Linux hands loopback data to
the peer inside the sender's send(), so a polled select() sees it; the clock never moves
while a socket is readable.
"""

from __future__ import annotations

import asyncio
import dis
import selectors
import sys
import threading
from collections.abc import Callable, Coroutine
from functools import cache
from types import CodeType, FrameType
from typing import Any, TypeVar

T = TypeVar("T")

# The loops of the threads that work for the loop: each waits for work in `<queue>.get()`.
_WORKER_LOOPS = frozenset({"_connection_worker_thread", "_worker"})  # aiosqlite, concurrent.futures
_THREAD_START = frozenset({"_bootstrap", "_bootstrap_inner", "run"})
_POLL = 0.0005  # real seconds between looks at a busy thread


@cache
def _get_calls(code: CodeType) -> frozenset[int]:
    """Offsets of the CALL instructions of `<x>.get(...)` in `code`."""
    instructions = list(dis.get_instructions(code))
    offsets = set()
    for index, instruction in enumerate(instructions):
        if instruction.opname in ("LOAD_METHOD", "LOAD_ATTR") and instruction.argval == "get":
            call = next((later for later in instructions[index + 1:] if later.opname == "CALL"), None)
            if call is not None:
                offsets.add(call.offset)
    return frozenset(offsets)


def _queues_empty(frame: FrameType) -> bool:
    return all(value.empty() for value in frame.f_locals.values() if hasattr(value, "empty") and hasattr(value, "get"))


def _busy(frame: FrameType) -> bool:
    """Whether the thread whose innermost frame is `frame` may still call back into the loop:
    a worker not parked in its queue's get() with the queue empty, or a thread still starting
    (it may become one). Other threads (a progress display's refresher) are not waited for."""
    if frame.f_code.co_name in _WORKER_LOOPS:
        return frame.f_lasti not in _get_calls(frame.f_code) or not _queues_empty(frame)
    names = []
    current: FrameType | None = frame
    while current is not None:
        names.append(current.f_code.co_name)
        current = current.f_back
    return any(name in _WORKER_LOOPS for name in names) or all(name in _THREAD_START for name in names)


def threads_busy() -> bool:
    me = threading.get_ident()
    return any(_busy(frame) for ident, frame in sys._current_frames().items() if ident != me)


class _Selector(selectors.DefaultSelector):
    """The loop's selector: polls, and where the loop would block until its next timer,
    waits for busy threads and then moves the clock to that timer instead of sleeping."""

    def __init__(self, busy: Callable[[], bool], advance: Callable[[float], None]) -> None:
        super().__init__()
        self._busy = busy
        self._advance = advance

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        while self._busy():  # a thread's answer is coming: wait for it in real time
            ready = super().select(_POLL)
            if ready:
                return ready
        ready = super().select(0)
        if ready or timeout is None:  # nothing scheduled: only I/O can wake the loop
            return ready or super().select(None)
        self._advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self, busy: Callable[[], bool] = threads_busy) -> None:
        self._now = 0.0
        super().__init__(_Selector(busy, self._advance))

    def _advance(self, seconds: float) -> None:
        self._now += seconds

    def time(self) -> float:
        return self._now


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on a fresh VirtualTimeLoop."""
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(main)
