"""Fixtures for the rig's loopback tests (kamailio on loopback and registered rig phones)
and, for the tests marked `asterisk`, the real-PBX tier's `pbx` and `controller`."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ivr.rig.phone import RigPhone, SipServer
from rigkit import PhoneMaker, local_address
from sipproxy import Kamailio, kamailio_binary

# The real-PBX fixtures (`pbx`, `controller`) come from tests/pbxfixtures.py.


@pytest.fixture(scope="module")
def sip_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SipServer]:
    proxy = Kamailio(kamailio_binary(), tmp_path_factory.mktemp("kamailio"))
    yield SipServer("127.0.0.1", proxy.port)
    proxy.stop()


@pytest.fixture
def no_leaked_threads() -> Iterator[None]:
    """Python threads a test started must have ended after it (pjsua's own threads are
    pjlib's, started once per process, and not Python threads)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while True:
        left = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not left, f"threads still running after the test: {[t.name for t in left]}"


@pytest.fixture
async def phone(sip_proxy: SipServer, no_leaked_threads: None) -> AsyncIterator[PhoneMaker]:
    """Registers a rig phone with a user name of its own (the registrar outlives a test)."""
    started: list[RigPhone] = []

    async def make(role: str) -> RigPhone:
        made = RigPhone(sip_proxy, f"{role}-{uuid.uuid4().hex[:8]}", "secret", local_address())
        await made.start()
        started.append(made)
        return made

    yield make
    for made in started:
        await made.stop()


@pytest.fixture
def example_scenarios() -> Path:
    return Path(__file__).resolve().parents[2] / "config" / "rig" / "example.yaml"
