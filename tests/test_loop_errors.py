"""A flood of identical event-loop errors becomes one traceback, then one line per window."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ivr.loop_errors import ThrottledLoopErrors


def test_a_flood_of_one_kind_is_one_traceback_then_one_counted_line_per_window(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    handler = ThrottledLoopErrors(window=10.0, clock=lambda: now[0])
    loop = asyncio.new_event_loop()
    try:
        flood = {"message": "socket.accept() out of system resource", "exception": OSError(24, "Too many open files")}
        for _ in range(1000):
            handler(loop, flood)
        now[0] = 10.5
        handler(loop, flood)
        handler(loop, {"message": "Exception in callback X", "exception": RuntimeError("other")})
    finally:
        loop.close()

    records = [(r.levelno, r.getMessage(), r.exc_info is not None) for r in caplog.records if r.name == "asyncio"]
    assert records == [
        (logging.ERROR, "socket.accept() out of system resource", True),
        (logging.ERROR, "socket.accept() out of system resource (999 more like it in the last 10.5 s): "
                        "[Errno 24] Too many open files", False),
        (logging.ERROR, "Exception in callback X", True),
    ]
