"""Tier 2: the controller's AMI link (panoramisk + ivr.ami.client) against the AMI peer.

Hang-up causes reach the call records; a refused login is an error in the log, not a crash;
a dropped link comes back with back-off; closing the controller stops it all, with no task
or socket left behind."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callkit import eventually

from amiconfig import config_with_ami

from ivr.ami.client import AmiLink
from ivr.app import Controller, ControllerOptions
from ivr.pbxsim import CallerScript, CallResult, HangUp, SimCall, SoundLibrary, place_call
from ivr.pbxsim.ami import AmiCallEvents, AmiPeer
from ivr.records.model import CallRow

REPO = Path(__file__).resolve().parents[2]
HOTLINE = "4008001234"


class Rig:
    def __init__(self, controller: Controller, peer: AmiPeer) -> None:
        self.controller = controller
        self.peer = peer
        assert controller.server is not None
        self.sounds = SoundLibrary([(controller.config.server.prompts.asterisk_dir, REPO / "prompts" / "sounds")])

    @property
    def link(self) -> AmiLink:
        link = self.controller._ami_close
        assert isinstance(link, AmiLink)
        return link

    async def call(self, cause: int = 16, *, step_cause: int | None = None) -> CallResult:
        assert self.controller.server is not None
        call = SimCall(CallerScript((HangUp(at=1.0, cause=step_cause),)), extension=HOTLINE,
                       script=f"ivr?hotline={HOTLINE}")
        return await place_call("127.0.0.1", self.controller.server.bound_port, call, sounds=self.sounds,
                                observer=AmiCallEvents(self.peer, hangup_cause=cause))

    async def row(self, result: CallResult) -> CallRow | None:
        store = self.controller.store
        assert store is not None
        await store.flush()
        async for row in store.iter_calls():
            if row.uniqueid == result.uniqueid:
                return row
        return None

    async def cause_of(self, result: CallResult, timeout: float = 5.0) -> tuple[int | None, str | None]:
        async def recorded() -> bool:
            row = await self.row(result)
            return row is not None and row.hangup_cause is not None

        await eventually(recorded, timeout)
        row = await self.row(result)
        assert row is not None
        return row.hangup_cause, row.hangup_cause_txt


async def make_rig(tmp_path: Path, peer: AmiPeer, secret: str = "secret") -> Rig:
    controller = Controller(config_with_ami(tmp_path, peer.port, secret=secret, reconnect_max=0.4),
                            ControllerOptions(port=0, sqlite_path=tmp_path / "calls.sqlite"))
    await controller.start()
    return Rig(controller, peer)


@pytest.fixture
async def peer() -> AsyncIterator[AmiPeer]:
    p = AmiPeer(auth_failure_delay=0.05)
    await p.start()
    yield p
    await p.close()


@pytest.fixture
async def rig(tmp_path: Path, peer: AmiPeer) -> AsyncIterator[Rig]:
    r = await make_rig(tmp_path, peer)
    yield r
    await r.controller.stop()


async def assert_nothing_left(peer: AmiPeer, link: AmiLink) -> None:
    """No task but the test's own, no AMI socket open on either side, no timer pending."""
    me = asyncio.current_task()
    await eventually(lambda: not [t for t in asyncio.all_tasks() if t is not me])
    await eventually(lambda: peer.clients == 0)
    manager = link.manager
    assert manager._retry is None and manager._connecting is None
    assert manager.pinger is None
    protocol = manager.protocol
    assert protocol is None or protocol.transport.is_closing()


@pytest.mark.parametrize(("cause", "text"), [(16, "Normal Clearing"), (17, "User busy"),
                                             (19, "User alerting, no answer")])
async def test_hangup_cause_reaches_the_call_record(rig: Rig, cause: int, text: str) -> None:
    await rig.peer.wait_for("logged_in", 1)
    result = await rig.call(cause)
    assert result.error is None and result.server_closed
    assert await rig.cause_of(result) == (cause, text)


@pytest.mark.parametrize(("cause", "hung_up_by"), [(16, "caller"), (18, "pbx"), (19, "pbx"), (102, "pbx"),
                                                   (38, "network")])
async def test_a_call_asterisk_tore_down_is_not_recorded_as_hung_up_by_the_caller(
        rig: Rig, cause: int, hung_up_by: str) -> None:
    """The FastAGI session sees any hang-up alike; AMI's Hangup of the caller's channel tells a
    caller's BYE (16) from Asterisk ending the call itself (18: the phone never ACKed the 200 OK)."""
    await rig.peer.wait_for("logged_in", 1)
    result = await rig.call(step_cause=cause)
    assert result.error is None and result.server_closed
    assert (await rig.cause_of(result))[0] == cause
    row = await rig.row(result)
    assert row is not None and row.hung_up_by == hung_up_by


async def test_refused_login_is_an_error_in_the_log_and_is_retried(
    tmp_path: Path, peer: AmiPeer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ivr.ami.client")
    rig = await make_rig(tmp_path, peer, secret="not-the-secret")
    try:
        await eventually(lambda: len(peer.logins) >= 2)  # refused, connection closed, tried again later
        assert not any(login.accepted for login in peer.logins)
        refusals = [r for r in caplog.records if r.levelno == logging.ERROR and "refused" in r.getMessage()]
        assert refusals and "Authentication failed" in refusals[0].getMessage()
        # the controller still answers calls; without AMI there is simply no cause
        result = await rig.call(17)
        assert result.error is None
        row = await rig.row(result)
        assert row is not None and row.hangup_cause is None
    finally:
        await rig.controller.stop()
    attempts = peer.connections
    await asyncio.sleep(0.5)  # > reconnect_max
    assert peer.connections == attempts
    await assert_nothing_left(peer, rig.link)


async def test_reconnects_after_the_link_drops_and_processes_later_events(rig: Rig) -> None:
    peer = rig.peer
    await peer.wait_for("logged_in", 1)
    await peer.drop_link()
    await peer.wait_for("logged_in", 1)  # back by itself
    assert peer.connections == 2 and rig.link.logins == 2
    result = await rig.call(17)
    assert await rig.cause_of(result) == (17, "User busy")


async def test_reconnects_with_back_off_while_asterisk_is_down(rig: Rig) -> None:
    peer = rig.peer
    await peer.wait_for("logged_in", 1)
    await peer.drop_link()
    await peer.stop_listening()
    manager = rig.link.manager
    await eventually(lambda: manager._delay >= 0.4)  # 0.05, 0.1, 0.2, 0.4: doubled up to reconnect_max
    assert manager._delay == 0.4
    await peer.start()  # same port
    await peer.wait_for("logged_in", 1, timeout=3.0)
    assert manager._delay == 0.05  # reset by the login
    result = await rig.call(19)
    assert await rig.cause_of(result) == (19, "User alerting, no answer")


async def test_closing_the_controller_stops_reconnecting_and_leaks_nothing(tmp_path: Path, peer: AmiPeer) -> None:
    rig = await make_rig(tmp_path, peer)
    await peer.wait_for("logged_in", 1)
    await peer.drop_link()
    await peer.stop_listening()
    await asyncio.sleep(0.1)  # let a retry be pending
    await rig.controller.stop()
    await peer.start()
    await asyncio.sleep(0.6)  # longer than any back-off: nobody comes back
    assert peer.connections == 1
    await assert_nothing_left(peer, rig.link)


async def test_closing_a_live_link_closes_its_socket(tmp_path: Path, peer: AmiPeer) -> None:
    rig = await make_rig(tmp_path, peer)
    await peer.wait_for("logged_in", 1)
    await rig.controller.stop()
    await assert_nothing_left(peer, rig.link)
    await asyncio.sleep(0.5)
    assert peer.connections == 1


async def test_garbage_from_the_server_drops_and_reconnects(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    peer = rig.peer
    await peer.wait_for("logged_in", 1)
    for session in peer._sessions:
        session.send(b"\x16\x03\x01 this is not AMI\r\n")
    await eventually(lambda: peer.connections == 2 and peer.logged_in == 1)
    assert any("not AMI" in r.getMessage() for r in caplog.records)
