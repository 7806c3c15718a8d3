"""AMI's times reconcile the call records: the agent's answer (also on the answered queue leg),
the bridge and the hold total, the same whether AMI or the call's end is written first."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callkit import eventually

from ivr.ami.client import start_ami_link
from ivr.ami.codec import Event, parse_stream
from ivr.config.models import AmiSettings
from ivr.pbxsim.ami import AmiPeer
from ivr.records.ami_times import AmiTimes
from ivr.records.model import CallEnded, CallRow, CallStarted, Disposition, QueueLeg
from ivr.records.store import CallStore

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 16, 10, 0, 0, tzinfo=UTC)
CALLER = "1795485499.7"  # the AGI channel of ami-survey.txt (Local/400@ivr-00000003;2)
AGENT = "1795485499.8"  # the agent's channel it dialed


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


class Sink:
    def __init__(self) -> None:
        self.told: list[tuple[str, dict[str, object]]] = []

    def set_ami_times(self, uniqueid: str, **times: object) -> None:
        self.told.append((uniqueid, {k: v for k, v in times.items() if v is not None}))


def recorded_events(transcripts: Path, name: str) -> list[Event]:
    data = (transcripts / name).read_bytes()
    data = data[len(b"Asterisk banner: "):].replace(b"--- originate ---\r\n", b"", 1)
    return [item for item in parse_stream(data) if isinstance(item, Event)]


def headers(event: Event) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in event.headers:
        found.setdefault(key, value)
    return found


def test_the_recorded_survey_call_gives_the_agents_answer_and_the_bridge(transcripts: Path) -> None:
    events = recorded_events(transcripts, "ami-survey.txt")
    now = [T0]
    sink = Sink()
    times = AmiTimes(sink, lambda: now[0])
    for n, event in enumerate(events):
        now[0] = at(n)  # event n arrives at T0 + n s
        times.event(headers(event))
    answered = next(n for n, e in enumerate(events) if e.name == "DialEnd" and e.get("Uniqueid") == CALLER)
    bridged = next(n for n, e in enumerate(events) if e.name == "BridgeEnter" and e.get("Uniqueid") == CALLER)
    entered, left = (next(n for n, e in enumerate(events) if e.name == name and e.get("Uniqueid") == AGENT)
                     for name in ("BridgeEnter", "BridgeLeave"))
    # The Originate's DialEnd (no caller channel) tells nothing; the agent channel's BridgeEnter
    # starts the talk and its BridgeLeave ends it.
    assert sink.told == [(CALLER, {"agent_answered_at": at(answered)}), (CALLER, {"bridged_at": at(bridged)}),
                         (CALLER, {"bridge_seconds": float(left - entered)})]


def event(name: str, uniqueid: str, stamp: float | None = None, **more: str) -> dict[str, str]:
    found = {"Event": name, "Uniqueid": uniqueid, **more}
    if stamp is not None:
        found["Timestamp"] = f"{at(stamp).timestamp():.6f}"  # manager.conf timestampevents = yes
    return found


def test_hold_on_either_channel_counts_once_and_uses_the_events_timestamps() -> None:
    sink = Sink()
    times = AmiTimes(sink, lambda: at(9999))  # never used: every event carries its Timestamp
    times.event(event("Hold", "ivr-only", 1))  # a channel that never reached an agent
    times.event(event("DialEnd", CALLER, 10, DestUniqueid=AGENT, DialStatus="ANSWER"))
    times.event(event("DialEnd", CALLER, 11, DestUniqueid="1795485499.12", DialStatus="ANSWER"))  # not the first
    times.event(event("BridgeEnter", AGENT, 11))  # the agent's channel: not the caller's bridge
    times.event(event("BridgeEnter", CALLER, 11.5))
    times.event(event("Hold", AGENT, 100))
    times.event(event("Hold", CALLER, 110))  # both held: still one hold
    times.event(event("Unhold", AGENT, 120))
    times.event(event("Unhold", CALLER, 130.25))
    times.event(event("Hold", AGENT, 200))
    times.event(event("Hangup", AGENT, 210))  # hung up while held: the hold ends there
    times.event(event("Hangup", CALLER, 211))
    times.event(event("Hold", CALLER, 300))  # forgotten after its Hangup
    times.event(event("Unhold", CALLER, 310))
    assert sink.told == [
        (CALLER, {"agent_answered_at": at(10)}),
        (CALLER, {"bridged_at": at(11.5)}),
        (CALLER, {"hold_seconds": 30.25}),
        (CALLER, {"hold_seconds": 40.25}),
    ]


def test_talk_is_the_agent_channels_time_in_the_bridge_carried_on_by_a_channel_swapped_in() -> None:
    sink = Sink()
    times = AmiTimes(sink, lambda: at(9999))
    times.event(event("BridgeEnter", "1795485499.3", 5))  # a channel of no answered call
    times.event(event("DialEnd", CALLER, 10, DestUniqueid=AGENT, DialStatus="ANSWER"))
    times.event(event("BridgeEnter", AGENT, 10.25))
    times.event(event("BridgeEnter", CALLER, 10.5))
    # The agent's Local channel is optimised away: the phone's channel takes its place.
    times.event(event("BridgeEnter", "1795485499.11", 11, SwapUniqueid=AGENT))
    times.event(event("BridgeLeave", AGENT, 11))
    times.event(event("BridgeLeave", CALLER, 70))  # the caller's side tells nothing
    times.event(event("BridgeLeave", "1795485499.11", 70.5))
    times.event(event("BridgeLeave", "1795485499.11", 80))  # told once
    assert sink.told == [
        (CALLER, {"agent_answered_at": at(10)}),
        (CALLER, {"bridged_at": at(10.5)}),
        (CALLER, {"bridge_seconds": 60.25}),
    ]


def the_call(call_id: str) -> tuple[CallStarted, CallEnded]:
    leg = QueueLeg("billing", at(30), at(200), "answered", answered_at=at(41), agent_id="1002", talk_seconds=159.0,
                   offers=1, ended_by="caller", wrap_seconds=10.0)
    return (CallStarted(call_id, f"u-{call_id}", "PJSIP/t", "400", "13800138000", "400", "en", "v", "cfg", T0),
            CallEnded(call_id, at(200), Disposition.ANSWERED, "billing: 1002", "en", None, None, None, "caller", (),
                      (leg,)))


def tell_ami(store: CallStore, call_id: str) -> None:
    store.set_ami_times(f"u-{call_id}", agent_answered_at=at(40.5))
    store.set_ami_times(f"u-{call_id}", bridged_at=at(40.6))
    store.set_ami_times(f"u-{call_id}", hold_seconds=12.0)
    store.set_ami_times(f"u-{call_id}", hold_seconds=20.5)  # the running total replaces the stored one
    store.set_ami_times(f"u-{call_id}", agent_answered_at=at(99))  # a later answer does not
    store.set_ami_times(f"u-{call_id}", bridge_seconds=158.75)  # the agent's BridgeEnter..BridgeLeave
    store.set_ami_times(f"u-{call_id}", bridge_seconds=3.0)  # nor does a later bridge


@pytest.mark.parametrize("flush_between", [False, True], ids=["one-batch", "separate-batches"])
async def test_ami_times_come_out_the_same_before_or_after_the_calls_end(
    target: Path | str, flush_between: bool
) -> None:
    store = await CallStore.open(target)
    try:
        for call_id, ami_first in (("ami-first", True), ("end-first", False)):
            started, ended = the_call(call_id)
            store.call_started(started)
            if flush_between:
                await store.flush()
            if ami_first:
                tell_ami(store, call_id)
            if flush_between:
                await store.flush()
            store.call_ended(ended)
            if flush_between:
                await store.flush()
            if not ami_first:
                tell_ami(store, call_id)
        await store.flush()
        first, second = [row async for row in store.iter_calls()]
    finally:
        await store.close()

    def anonymous(row: CallRow) -> CallRow:
        return dataclasses.replace(row, call_id="", uniqueid="")

    assert anonymous(first) == anonymous(second)
    assert (first.agent_answered_at, first.bridged_at, first.hold_seconds) == (at(40.5), at(40.6), 20.5)
    assert first.queue_legs[0].answered_at == at(40.5)  # AMI's, not the controller's 41 s
    assert first.queue_legs[0].talk_seconds == 158.75  # the bridge, not the controller's 159 s
    assert first.queue_legs[0].waited == 10.5


@pytest.fixture
async def peer() -> AsyncIterator[AmiPeer]:
    p = AmiPeer(auth_failure_delay=0.05)
    await p.start()
    yield p
    await p.close()


async def test_the_ami_link_reconciles_a_call_with_what_asterisk_sent(
    peer: AmiPeer, transcripts: Path, tmp_path: Path
) -> None:
    store = await CallStore.open(tmp_path / "calls.sqlite")
    link = await start_ami_link(AmiSettings(enabled=True, port=peer.port, secret="secret", reconnect_min=0.05),
                                store, clock=lambda: at(45))
    try:
        await peer.wait_for("logged_in", 1)
        store.call_started(CallStarted("c1", CALLER, "Local/400@ivr-00000003;2", "400", "13800138000", "400", "en",
                                       "v", "cfg", T0))
        # Asterisk's own DialEnd and BridgeEnter of the recorded call (no Timestamp: dated on arrival),
        # then a hold on the agent's phone with timestampevents on.
        for recorded in recorded_events(transcripts, "ami-survey.txt"):
            if recorded.name in ("DialEnd", "BridgeEnter") and recorded.get("Uniqueid") in (CALLER, AGENT):
                peer.emit(recorded.name, "call", recorded.headers[2:])
        peer.emit("Hold", "call", [("Channel", "Local/agent1@agents-00000004;1"), ("Uniqueid", AGENT),
                                   ("Timestamp", f"{at(60).timestamp():.6f}"), ("MusicClass", "default")])
        peer.emit("Unhold", "call", [("Channel", "Local/agent1@agents-00000004;1"), ("Uniqueid", AGENT),
                                     ("Timestamp", f"{at(75.5).timestamp():.6f}")])

        async def reconciled() -> bool:
            await store.flush()
            row = await store.get_call("c1")
            return row is not None and row.hold_seconds > 0

        await eventually(reconciled)
        row = await store.get_call("c1")
        assert row is not None
        assert (row.agent_answered_at, row.bridged_at, row.hold_seconds) == (at(45), at(45), 15.5)
    finally:
        link.close()
        await store.close()
