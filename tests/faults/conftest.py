"""Fixtures of the fault-injection tier: a redis-server of the test's own (killed, paused,
restarted at will), and the measured figures, printed at the end of the run (the README's
"Faults and restarts" table quotes them)."""

from __future__ import annotations

import signal
import tempfile
from collections.abc import Iterator

import pytest

from redisserver import RedisServer, free_port, redis_server_binary

_FIGURES: list[tuple[str, str]] = []


class Figures:
    """What a test measured, as `name: value` lines under the test's name."""

    def __init__(self, test: str) -> None:
        self.test = test

    def __call__(self, text: str) -> None:
        _FIGURES.append((self.test, text))


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    return Figures(request.node.name)


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, without persistence (as the README's deployment)."""
    with tempfile.TemporaryDirectory(prefix="ivr-redis-") as workdir:
        server = RedisServer(redis_server_binary(), free_port(), workdir)
        server.start()
        try:
            yield server
        finally:
            if server.process is not None and server.process.poll() is None:
                server.process.send_signal(signal.SIGCONT)  # a paused server must be able to die
            server.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _FIGURES:
        return
    terminalreporter.section("fault-injection figures")
    test = ""
    for name, text in _FIGURES:
        if name != test:
            terminalreporter.write_line(name)
            test = name
        terminalreporter.write_line(f"    {text}")
