"""Tier 2: whole calls through the real controller over TCP, played by the Asterisk peer.

Each test states what the caller hears, where the call goes, and what row is written.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from callkit import Backend

from ivr.app import Controller, ControllerOptions
from ivr.pbxsim import CallerScript, CallResult, HangUp, Press, SimCall, SoundLibrary, place_call
from ivr.records.model import CallRow, Disposition
from ivr.records.schema import calls

REPO = Path(__file__).resolve().parents[2]
SHANGHAI = ZoneInfo("Asia/Shanghai")
OPEN = dt.datetime(2026, 11, 25, 10, 30, tzinfo=SHANGHAI)  # a Wednesday morning
NATIONAL_DAY = dt.datetime(2026, 10, 2, 10, 30, tzinfo=SHANGHAI)


class Rig:
    def __init__(self, controller: Controller, backend: Backend, db: Path) -> None:
        self.controller = controller
        self.backend = backend
        self.db = db
        assert controller.server is not None
        self.port = controller.server.bound_port
        self.sounds = SoundLibrary([(controller.config.server.prompts.asterisk_dir, REPO / "prompts" / "sounds")])
        self.now = OPEN

    async def call(self, *steps: Press | HangUp, hotline: str = "4008001234") -> CallResult:
        call = SimCall(CallerScript(steps), extension=hotline, script=f"ivr?hotline={hotline}")
        return await place_call("127.0.0.1", self.port, call, sounds=self.sounds)

    async def row(self, result: CallResult) -> CallRow:
        store = self.controller.store
        assert store is not None
        await store.flush()
        async for row in store.iter_calls():
            if row.uniqueid == result.uniqueid:
                return row
        raise AssertionError("no call record")


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    backend = await Backend().start()
    holder: list[Rig] = []
    # These tests are about the menus: queue nodes hand off to the dialplan (as without
    # routing.yaml); calls through the engine's own ACD are in tests/routing/test_acd_calls.py.
    controller = Controller(
        REPO / "config",
        ControllerOptions(port=0, sqlite_path=tmp_path / "calls.sqlite", clock=lambda: holder[0].now if holder else OPEN,
                          lookup_base_url=backend.url, acd=False),
    )
    await controller.start()
    holder.append(Rig(controller, backend, tmp_path / "calls.sqlite"))
    yield holder[0]
    await controller.stop()
    backend.close()


def path(row: CallRow) -> list[str]:
    return [f"{e.kind.value}:{e.value}" for e in row.events if e.kind.value in ("digit", "queue", "hours", "lookup")]


async def test_caller_picks_technical_queue_in_english(rig: Rig) -> None:
    result = await rig.call(Press("2", on_prompt="choose-language"), Press("2", on_prompt="main-menu"),
                            Press("2", on_prompt="technical-menu"))
    assert result.prompts == ["recording-notice", "welcome", "choose-language", "main-menu",
                              "technical-menu", "connecting-agent"]
    assert result.location == ("ivr-queue", "technical", "1")
    assert result.variables["IVR_QUEUE"] == "technical" and result.variables["IVR_LANGUAGE"] == "en"
    assert result.server_closed
    row = await rig.row(result)
    assert row.disposition is Disposition.QUEUED and row.detail == "technical"
    assert row.language == "en-US" and row.caller == "*******8000"
    assert path(row) == ["digit:2", "hours:open", "digit:2", "digit:2", "queue:technical"]


async def test_notice_plays_before_recording_starts(rig: Rig) -> None:
    result = await rig.call(HangUp(on_prompt="welcome", after=1.0))
    assert result.prompts[0] == "recording-notice"
    sent = [line for direction, line in result.transcript if direction == "S"]
    notice = next(i for i, line in enumerate(sent) if "recording-notice" in line)
    mixmonitor = next(i for i, line in enumerate(sent) if line.startswith("EXEC MixMonitor"))
    assert notice < mixmonitor
    row = await rig.row(result)
    assert row.notice_played_at is not None and row.recording_started_at is not None
    assert row.notice_played_at <= row.recording_started_at
    assert result.mixmonitor == [row.recording_file]


async def test_hang_up_during_the_notice_is_abandoned_and_not_recorded(rig: Rig) -> None:
    result = await rig.call(HangUp(on_prompt="recording-notice", after=0.5))
    assert result.mixmonitor == []
    row = await rig.row(result)
    assert row.disposition is Disposition.ABANDONED and row.hung_up_by == "caller"
    assert row.recording_started_at is None


@pytest.mark.parametrize("node", ["choose-language", "main-menu", "billing-menu", "balance-account"])
async def test_hang_up_at_each_node_type_is_abandoned_there(rig: Rig, node: str) -> None:
    steps = {
        "choose-language": (HangUp(on_prompt="choose-language"),),
        "main-menu": (Press("1", on_prompt="choose-language"), HangUp(on_prompt="main-menu")),
        "billing-menu": (Press("1", on_prompt="choose-language"), Press("1", on_prompt="main-menu"),
                         HangUp(on_prompt="billing-menu")),
        "balance-account": (Press("1", on_prompt="choose-language"), Press("1", on_prompt="main-menu"),
                            Press("1", on_prompt="billing-menu"), HangUp(on_prompt="enter-account")),
    }[node]
    result = await rig.call(*steps)
    row = await rig.row(result)
    assert row.disposition is Disposition.ABANDONED
    assert row.detail == node
    assert row.events[-1].kind.value == "hangup"


async def test_balance_is_read_out_without_an_agent(rig: Rig) -> None:
    result = await rig.call(Press("1", on_prompt="choose-language"), Press("1", on_prompt="main-menu"),
                            Press("1", on_prompt="billing-menu"), Press("12345678#", on_prompt="enter-account"),
                            HangUp(on_prompt="anything-else", after=1.0))
    assert "number:128" in [h.what for h in result.heard]
    row = await rig.row(result)
    assert row.disposition is Disposition.SELF_SERVED
    assert "lookup:ok: branch 2" in path(row)
    assert "digit:account_number: 8 digits" in path(row)  # the number itself is not kept


async def test_slow_backend_sends_the_caller_to_an_agent(rig: Rig) -> None:
    rig.backend.delay = 4.0  # the lookup's timeout is 3 s
    result = await rig.call(Press("1", on_prompt="choose-language"), Press("1", on_prompt="main-menu"),
                            Press("1", on_prompt="billing-menu"), Press("12345678#", on_prompt="enter-account"))
    assert "lookup-failed" in result.prompts
    assert result.location == ("ivr-queue", "billing", "1")
    row = await rig.row(result)
    assert "lookup:failed: timeout after 3 s" in path(row)


async def test_caller_hanging_up_during_a_slow_lookup_is_noticed_at_once(rig: Rig) -> None:
    """Asterisk sends HANGUP while the controller waits on the backend: the lookup is
    dropped and the call closed there, not after the backend's 3 s timeout."""
    rig.backend.delay = 4.0
    result = await rig.call(Press("1", on_prompt="choose-language"), Press("1", on_prompt="main-menu"),
                            Press("1", on_prompt="billing-menu"), Press("12345678#", on_prompt="enter-account"),
                            HangUp(idle=0.3))
    hangup = result.transcript.index(("A", "HANGUP"))
    assert [line for direction, line in result.transcript[hangup:] if direction == "S"] == []
    assert result.server_closed and result.prompts[-1] == "please-wait"
    row = await rig.row(result)
    assert row.disposition is Disposition.ABANDONED and row.hung_up_by == "caller"
    assert [e.value for e in row.events if e.kind.value == "lookup"] == []
    assert (row.events[-1].kind.value, row.events[-1].node) == ("hangup", "balance-lookup")


async def test_closed_on_national_day_goes_to_voicemail(rig: Rig) -> None:
    rig.now = NATIONAL_DAY
    result = await rig.call(Press("1", on_prompt="choose-language"))
    assert "closed" in result.prompts
    assert result.location == ("ivr-voicemail", "400", "1")
    row = await rig.row(result)
    assert row.disposition is Disposition.VOICEMAIL
    assert "hours:closed" in path(row)


async def test_silence_at_the_main_menu_ends_with_goodbye(rig: Rig) -> None:
    result = await rig.call(Press("1", on_prompt="choose-language"))
    assert result.prompts.count("main-menu") == 3  # asked, then re-asked twice
    assert result.prompts.count("no-input") == 2
    assert result.prompts[-1] == "goodbye" and result.hung_up_by == "ivr"
    row = await rig.row(result)
    assert row.disposition is Disposition.IVR_HANGUP


async def test_invalid_digits_are_re_asked_then_star_goes_back(rig: Rig) -> None:
    result = await rig.call(Press("1", on_prompt="choose-language"), Press("7", on_prompt="main-menu"),
                            Press("2", on_prompt="main-menu"), Press("*", on_prompt="technical-menu"),
                            Press("0", on_prompt="main-menu"))
    assert "invalid-option" in result.prompts
    assert result.location == ("ivr-queue", "operator", "1")
    row = await rig.row(result)
    assert path(row)[:4] == ["digit:1", "hours:open", "digit:2", "digit:* (back)"]


async def test_single_language_hotline_skips_the_choice(rig: Rig) -> None:
    result = await rig.call(Press("3", on_prompt="main-menu"), hotline="4008005678")
    assert "choose-language" not in result.prompts
    assert result.location == ("ivr-voicemail", "400", "1")


async def test_unknown_number_is_recorded_as_not_in_service_without_an_error_in_the_log(
        rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ivr.flow.script")
    result = await rig.call(hotline="4009999999")
    assert result.server_closed and result.variables["IVR_STATUS"] == "NO_HOTLINE"
    row = await rig.row(result)
    assert row.disposition is Disposition.NOT_IN_SERVICE and "no hotline" in row.detail
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(r.levelno == logging.INFO and "4009999999" in r.getMessage() for r in caplog.records)


async def test_reload_keeps_calls_on_their_version_and_refuses_broken_files(rig: Rig, tmp_path: Path) -> None:
    before = rig.controller.config.version
    rig.controller.configs.config_dir = tmp_path / "missing"
    refused = rig.controller.reload()
    assert not refused.ok and rig.controller.config.version == before
    rig.controller.configs.config_dir = REPO / "config"
    assert rig.controller.reload().ok


async def test_the_controller_signs_its_calls_with_the_host_name(rig: Rig) -> None:
    """A restarted controller closes only the open calls it signed (tests/records/test_shared_store.py)."""
    result = await rig.call(HangUp(on_prompt="welcome", after=0.5))
    await rig.row(result)
    store = rig.controller.store
    assert store is not None
    async with store.engine.connect() as conn:
        signed = (await conn.execute(select(calls.c.controller).where(calls.c.uniqueid == result.uniqueid))).all()
    assert signed == [(socket.gethostname(),)]


LANG, BILLING, TECHNICAL = Press("1", on_prompt="choose-language"), Press("1", on_prompt="main-menu"), Press("2", on_prompt="main-menu")


@pytest.mark.parametrize(
    ("node", "steps", "disposition"),
    [
        ("welcome", (HangUp(on_prompt="welcome", after=0.5),), Disposition.ABANDONED),
        ("technical-queue", (LANG, TECHNICAL, Press("2", on_prompt="technical-menu"),
                             HangUp(on_prompt="connecting-agent", after=0.3)), Disposition.ABANDONED),
        ("goodbye", (LANG, HangUp(on_prompt="goodbye", after=0.3)), Disposition.ABANDONED),
        ("balance-lookup", (LANG, BILLING, Press("1", on_prompt="billing-menu"),
                            Press("12345678#", on_prompt="enter-account"), HangUp(on_prompt="balance-is", after=0.2)),
         Disposition.SELF_SERVED),
    ],
)
async def test_hang_up_at_play_queue_hangup_and_say_nodes(
    rig: Rig, node: str, steps: tuple[Press | HangUp, ...], disposition: Disposition
) -> None:
    result = await rig.call(*steps)
    assert result.hung_up_by == "caller" and result.server_closed
    row = await rig.row(result)
    assert (row.disposition, row.detail, row.hung_up_by) == (disposition, node, "caller")
    assert row.events[-1].kind.value == "hangup"


async def test_hang_up_during_the_voicemail_greeting_stays_a_closed_hours_call(rig: Rig) -> None:
    rig.now = NATIONAL_DAY
    result = await rig.call(LANG, HangUp(on_prompt="leave-message", after=0.3))
    assert result.location is None  # never moved to the voicemail context
    row = await rig.row(result)
    assert (row.disposition, row.detail, row.hung_up_by) == (Disposition.CLOSED_HOURS, "leave-message", "caller")


async def test_a_reply_asterisk_never_sends_is_one_warning_and_the_caller_is_not_dropped(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """`999 what` to the first STREAM FILE: a WARNING line naming the channel, no traceback;
    the caller goes to the hotline's fallback queue and the row says why."""
    import asyncio

    reader, writer = await asyncio.open_connection("127.0.0.1", rig.port)
    env = {"agi_network_script": "ivr?hotline=4008001234", "agi_channel": "PJSIP/caller1-00000007",
           "agi_uniqueid": "1796530000.7", "agi_callerid": "13700000001", "agi_extension": "4008001234"}
    writer.write("".join(f"{k}: {v}\n" for k, v in env.items()).encode() + b"\n")
    sent: list[str] = []
    while line := (await asyncio.wait_for(reader.readline(), 10)).decode().strip():
        sent.append(line)
        writer.write(b"999 what\n" if line.startswith("STREAM FILE") else b"200 result=0\n")
    writer.close()
    await rig.controller.store.flush()  # type: ignore[union-attr]
    row = [r async for r in rig.controller.store.iter_calls() if r.uniqueid == "1796530000.7"][0]  # type: ignore[union-attr]

    assert sent[-3:] == ["SET CONTEXT ivr-queue", "SET EXTENSION general", "SET PRIORITY 1"], sent
    assert row.disposition is Disposition.ERROR and "999 what" in (row.detail or "")
    logged = [r for r in caplog.records if r.name.startswith("ivr.flow")]
    assert [(r.levelname, r.exc_info) for r in logged] == [("WARNING", None)] * 2  # the failure, the apology
    assert "PJSIP/caller1-00000007" in logged[0].getMessage() and "999 what" in logged[0].getMessage()
