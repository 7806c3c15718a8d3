"""Asterisk 22's side of AMI, for tests: a loopback server that logs clients in and emits the
events of the calls pbxsim plays.

What it says and when follows main/manager.c (Asterisk 22): the banner
``Asterisk Call Manager/11.0.0``; ``Login`` answered ``Success`` / ``Authentication accepted``
then ``Event: FullyBooted``, or, after a one-second pause, ``Error`` / ``Authentication failed``
and the connection closed; ``Ping`` -> ``Ping: Pong`` + ``Timestamp``; ``Logoff`` ->
``Goodbye`` / ``Thanks for all the fish.`` and close; any other action before login ->
``Permission denied``; an unknown one -> ``Invalid/unknown command: ...``. ActionID is
echoed when the client sent one.

Device states (res/res_manager_devicestate.c, main/devicestate.c): `devices` is the device
state cache; `set_device(device, state)` changes it and emits ``DeviceStateChange``
(``Privilege: call,all``, ``Device``, ``State``, as in ami-queue.txt). ``DeviceStateList``
answers ``Response: Success`` / ``EventList: start`` / ``Message: Device State Changes will
follow``, one ``DeviceStateChange`` per cached device (``ActionID`` instead of
``Privilege``), then ``DeviceStateListComplete`` / ``EventList: Complete`` / ``ListItems: N``.
A test can hold the answer back (`hold_device_list()` / `release_device_list()`).
`channel_hangup(name)` emits the Hangup of any channel, e.g. an agent's ``PJSIP/1001-0000001a``.

Originate (main/manager.c action_originate, fast_originate): without ``Channel`` ->
``Error`` / ``Channel not specified``; a Channel without ``/`` -> ``Error`` / ``Invalid
channel``; ``Exten`` without ``Context`` or ``Priority`` is not checked here. With ``Async:
true`` the answer is ``Success`` / ``Message: Originate successfully queued`` at once; when
the originated channel answered or failed, ``Event: OriginateResponse`` (``Privilege:
call,all``, the ActionID, ``Response: Success|Failure``, ``Channel`` as requested,
``Context``, ``Exten``, ``Reason`` — the last control frame: 4 answered, 3 rang without an
answer, 5 busy, 8 congestion, 0 failed to create — ``Uniqueid``, ``CallerIDNum``,
``CallerIDName``). A test sets what happens next with `originate_outcomes` (popped per
Originate, else `default_originate`); `originated` keeps each action with the name of the
channel Asterisk created (e.g. ``PJSIP/1001-00000101``), for the test to hang it up later.

Events carry the header names, in the order, of the recordings in ../shared/asterisk/ami-*.txt
(a client logged in with ``read = all``, hence ``Privilege: call,all`` and so on).

`AmiCallEvents` is a `ivr.pbxsim.peer.CallObserver`: pass it to `place_call(...,
observer=...)` and the peer emits Newchannel, Newexten, Newstate, VarSet,
AGIExecStart/End, DTMFBegin/End, MixMonitorStart, DialBegin/End, BridgeCreate/Enter/Leave/Destroy
and Hangup for that call. A Dial's events come when Asterisk sends them (ami-survey.txt), which
`place_call(..., time_scale=...)` plays in real time: DialBegin when the command starts; when the
agent answers, DialEnd ANSWER, BridgeCreate and BridgeEnter of the agent's channel, then of the
caller's; when the call ends, BridgeLeave of the side that left first, the agent channel's Hangup,
BridgeDestroy; then AGIExecEnd with the reply. An unanswered Dial's DialEnd and Hangup come when it
stopped ringing (BUSY: at once).

One file past 600 lines: it follows manager.c action by action and event by event; the
actions and the events they cause stay side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from ivr.ami.codec import Action, AmiParser, AmiProtocolError, ConnectionClosed, Header, banner, encode_message
from ivr.pbxsim.channel import DialLeg, SimChannel, parse_args
from ivr.pbxsim.peer import CallResult, SimCall

log = logging.getLogger(__name__)

AMI_VERSION = "11.0.0"  # Asterisk 22's AMI_VERSION, as in the recorded banner

# main/channel.c causes[] (ast_cause2str); 0 is not in the table, hence "Unknown".
CAUSE_TEXT = {
    0: "Unknown", 1: "Unallocated (unassigned) number", 3: "No route to destination",
    16: "Normal Clearing", 17: "User busy", 18: "No user responding", 19: "User alerting, no answer",
    21: "Call Rejected", 27: "Destination out of order", 31: "Normal, unspecified",
    34: "Circuit/channel congestion", 38: "Network out of order", 41: "Temporary failure",
}
STATE_DESC = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up"}
# Dial's outcome -> the cause the dialed channel hangs up with (simulator's choice, see README).
DIAL_CAUSE = {"ANSWER": 16, "BUSY": 17, "NOANSWER": 19, "CANCEL": 16}


def cause_text(cause: int) -> str:
    return CAUSE_TEXT.get(cause, "Unknown")


def bridge_headers(bridge_id: str, channels: int) -> list[Header]:
    """The basic bridge app_dial puts the caller and the agent in (ami-survey.txt)."""
    return [("BridgeUniqueid", bridge_id), ("BridgeType", "basic"), ("BridgeTechnology", "simple_bridge"),
            ("BridgeCreator", "<unknown>"), ("BridgeName", "<unknown>"), ("BridgeNumChannels", str(channels)),
            ("BridgeVideoSourceMode", "none")]


@dataclass
class ChannelSnapshot:
    """The fields of ast_manager_build_channel_state_string, in its order."""

    name: str
    uniqueid: str
    linkedid: str
    context: str
    exten: str
    priority: int = 1
    state: int = 4
    caller_num: str = "<unknown>"
    caller_name: str = "<unknown>"
    connected_num: str = "<unknown>"
    connected_name: str = "<unknown>"
    language: str = "en"
    accountcode: str = ""

    def headers(self, prefix: str = "") -> list[Header]:
        return [
            (f"{prefix}Channel", self.name),
            (f"{prefix}ChannelState", str(self.state)),
            (f"{prefix}ChannelStateDesc", STATE_DESC.get(self.state, "Unknown")),
            (f"{prefix}CallerIDNum", self.caller_num),
            (f"{prefix}CallerIDName", self.caller_name),
            (f"{prefix}ConnectedLineNum", self.connected_num),
            (f"{prefix}ConnectedLineName", self.connected_name),
            (f"{prefix}Language", self.language),
            (f"{prefix}AccountCode", self.accountcode),
            (f"{prefix}Context", self.context),
            (f"{prefix}Exten", self.exten),
            (f"{prefix}Priority", str(self.priority)),
            (f"{prefix}Uniqueid", self.uniqueid),
            (f"{prefix}Linkedid", self.linkedid),
        ]


@dataclass
class _Session:
    writer: asyncio.StreamWriter
    authenticated: bool = False
    events: bool = True
    username: str | None = None

    def send(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)


@dataclass(frozen=True)
class OriginateOutcome:
    """What becomes of one originated channel: `response` Success (answered) or Failure,
    Asterisk's `reason` code, after `delay` seconds (ringing)."""

    response: str = "Success"
    reason: int = 4
    delay: float = 0.0


ORIGINATE_ANSWERED = OriginateOutcome()
ORIGINATE_NO_ANSWER = OriginateOutcome("Failure", 3)
ORIGINATE_BUSY = OriginateOutcome("Failure", 5)


@dataclass
class Originated:
    action: Action
    channel: str  # the channel Asterisk created, e.g. PJSIP/1001-00000101
    uniqueid: str
    outcome: OriginateOutcome


@dataclass
class LoginAttempt:
    username: str
    accepted: bool


@dataclass
class AmiPeer:
    """A loopback AMI server. `start()`, then connect a client to `port`."""

    username: str = "ivr"
    secret: str = "secret"
    host: str = "127.0.0.1"
    port: int = 0
    version: str = AMI_VERSION
    auth_failure_delay: float = 1.0  # manager.c sleeps 1 s before "Authentication failed"
    started_at: float = field(default_factory=time.monotonic)
    actions: list[Action] = field(default_factory=list)
    logins: list[LoginAttempt] = field(default_factory=list)
    connections: int = 0  # accepted so far
    sent_events: list[bytes] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _sessions: list[_Session] = field(default_factory=list)
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)
    _changed: asyncio.Condition | None = None
    devices: dict[str, str] = field(default_factory=dict)  # the device state cache: device -> state
    # False: res_manager_devicestate is not loaded, DeviceStateList is an unknown command.
    devicestate_module: bool = True
    device_lists: int = 0  # DeviceStateList actions answered
    _list_gate: asyncio.Event | None = None
    originate_outcomes: list[OriginateOutcome] = field(default_factory=list)
    default_originate: OriginateOutcome = ORIGINATE_ANSWERED
    originated: list[Originated] = field(default_factory=list)
    _originating: set[asyncio.Task[None]] = field(default_factory=set)

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> int:
        """Listen (again, on the same port after the first start); return the port."""
        if self._server is not None:
            return self.port
        self._changed = self._changed or asyncio.Condition()
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop_listening(self) -> None:
        """Stop accepting connections (existing ones stay)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def restart(self) -> None:
        """Drop every link, stop listening, then listen again on the same port."""
        await self.drop_link()
        await self.stop_listening()
        await self.start()

    async def drop_link(self) -> None:
        """Close every client connection, as when Asterisk restarts or the network breaks."""
        for session in list(self._sessions):
            session.writer.close()
        await self._reap()

    async def close(self) -> None:
        for task in list(self._originating):
            task.cancel()
        await asyncio.gather(*self._originating, return_exceptions=True)
        await self.stop_listening()
        await self.drop_link()

    async def _reap(self) -> None:
        if self._handlers:
            await asyncio.wait(set(self._handlers), timeout=5.0)

    @property
    def clients(self) -> int:
        """Connections open now."""
        return len(self._sessions)

    @property
    def logged_in(self) -> int:
        return sum(1 for s in self._sessions if s.authenticated)

    async def wait_for(self, predicate_name: str, value: int, timeout: float = 5.0) -> None:
        """Wait until `getattr(self, predicate_name) >= value` (e.g. "logged_in", 1)."""
        assert self._changed is not None

        async def until() -> None:
            assert self._changed is not None
            async with self._changed:
                await self._changed.wait_for(lambda: getattr(self, predicate_name) >= value)

        await asyncio.wait_for(until(), timeout)

    async def _notify(self) -> None:
        if self._changed is not None:
            async with self._changed:
                self._changed.notify_all()

    # --- one connection --------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        session = _Session(writer)
        self._sessions.append(session)
        self.connections += 1
        await self._notify()
        parser = AmiParser("server", max_line=1024)  # manager.c reads lines into a 1025-byte inbuf
        try:
            writer.write(banner(self.version))
            while not writer.is_closing():
                data = await reader.read(65536)
                parser.receive_data(data)
                for item in parser.events():
                    if isinstance(item, ConnectionClosed):
                        return
                    assert isinstance(item, Action)
                    if not await self._handle(session, item):
                        return
                await writer.drain()
                if not data:
                    return
        except AmiProtocolError as exc:
            log.warning("AMI peer: dropping a client that sent garbage: %s", exc)
        except ConnectionError:
            pass
        finally:
            self._sessions.remove(session)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            self._handlers.discard(task)
            await self._notify()

    @staticmethod
    def _response(action: Action, status: str, *rest: Header) -> bytes:
        headers: list[Header] = [("Response", status)]
        if action.action_id:  # astman_send_response_full: only when not empty
            headers.append(("ActionID", action.action_id))
        headers.extend(rest)
        return encode_message(headers)

    async def _handle(self, session: _Session, action: Action) -> bool:
        """Answer one action; False = close the connection (manager.c: the action returned -1)."""
        self.actions.append(action)
        name = action.name.lower()
        if not name:
            session.send(self._response(action, "Error", ("Message", "Missing action in request")))
            return True
        if not session.authenticated and name not in ("login", "logoff", "challenge"):
            session.send(self._response(action, "Error", ("Message", "Permission denied")))
            return True
        if name == "login":
            return await self._login(session, action)
        if name == "logoff":
            session.send(self._response(action, "Goodbye", ("Message", "Thanks for all the fish.")))
            return False
        if name == "ping":
            now = time.time()
            session.send(self._response(action, "Success", ("Ping", "Pong"),
                                        ("Timestamp", f"{int(now)}.{int(now % 1 * 1e6):06d}")))
            return True
        if name == "devicestatelist" and self.devicestate_module:
            await self._device_state_list(session, action)
            return True
        if name == "originate":
            self._originate(session, action)
            return True
        if name == "events":
            mask = (action.get("EventMask") or "").lower()
            session.events = mask not in ("off", "")
            session.send(self._response(action, "Success", ("Events", "On" if session.events else "Off")))
            return True
        session.send(self._response(action, "Error", ("Message", (
            f"Invalid/unknown command: {action.name}. Use Action: ListCommands to show available commands."))))
        return True

    async def _login(self, session: _Session, action: Action) -> bool:
        if session.authenticated:
            session.send(self._response(action, "Success", ("Message", "Already authenticated")))
            return True
        user = action.get("Username") or ""
        # manager.c: the user is a manager.conf category (case-insensitive), the secret is exact.
        ok = user.lower() == self.username.lower() and action.get("Secret") == self.secret
        self.logins.append(LoginAttempt(user, ok))
        if not ok:
            await asyncio.sleep(self.auth_failure_delay)
            session.send(self._response(action, "Error", ("Message", "Authentication failed")))
            return False
        session.authenticated = True
        session.username = user
        events = (action.get("Events") or "").lower()
        if events:  # set_eventmask: an empty Events header keeps the default (all)
            session.events = events != "off"
        session.send(self._response(action, "Success", ("Message", "Authentication accepted")))
        if session.events:
            uptime = int(time.monotonic() - self.started_at)
            session.send(encode_message([
                ("Event", "FullyBooted"), ("Privilege", "system,all"), ("Uptime", str(uptime)),
                ("LastReload", str(uptime)), ("Status", "Fully Booted"),
            ]))
        await self._notify()
        return True

    # --- originate ---------------------------------------------------------------------------

    def _originate(self, session: _Session, action: Action) -> None:
        target = action.get("Channel") or ""
        if not target:
            session.send(self._response(action, "Error", ("Message", "Channel not specified")))
            return
        if "/" not in target:
            session.send(self._response(action, "Error", ("Message", "Invalid channel")))
            return
        outcome = self.originate_outcomes.pop(0) if self.originate_outcomes else self.default_originate
        n = next(_channel_numbers)
        record = Originated(action, f"{target}-{n:08x}", f"{int(time.time())}.{n}", outcome)
        self.originated.append(record)
        if (action.get("Async") or "").lower() not in ("true", "yes", "1", "y", "t", "on"):
            # Synchronous: the answer waits for the outcome (not used by the controller).
            session.send(self._response(action, "Success" if outcome.response == "Success" else "Error",
                                        ("Message", "Originate successfully queued" if outcome.response == "Success"
                                         else "Originate failed")))
            return
        session.send(self._response(action, "Success", ("Message", "Originate successfully queued")))
        task = asyncio.create_task(self._originate_response(record), name="ami-peer-originate")
        self._originating.add(task)
        task.add_done_callback(self._originating.discard)

    async def _originate_response(self, record: Originated) -> None:
        outcome, action = record.outcome, record.action
        if outcome.delay:
            await asyncio.sleep(outcome.delay)
        action_id: list[Header] = [("ActionID", action.action_id)] if action.action_id else []
        caller = action.get("CallerID") or ""
        name, _, number = caller.rpartition("<")
        self.emit("OriginateResponse", "call", [
            *action_id, ("Response", outcome.response), ("Channel", action.get("Channel") or ""),
            ("Context", action.get("Context") or ""), ("Exten", action.get("Exten") or ""),
            ("Reason", str(outcome.reason)),
            ("Uniqueid", record.uniqueid if outcome.response == "Success" else "<null>"),
            ("CallerIDNum", number.rstrip(">") or "<unknown>"),
            ("CallerIDName", name.strip().strip('"') or "<unknown>"),
        ])
        await self._notify()

    # --- device states -----------------------------------------------------------------------

    def hold_device_list(self) -> None:
        """DeviceStateList actions wait (unanswered) until `release_device_list()`."""
        self._list_gate = asyncio.Event()

    def release_device_list(self) -> None:
        gate, self._list_gate = self._list_gate, None
        if gate is not None:
            gate.set()

    async def _device_state_list(self, session: _Session, action: Action) -> None:
        while self._list_gate is not None and not self._list_gate.is_set():
            if session.writer.is_closing():
                return
            await asyncio.sleep(0.01)
        # ActionID in the list events only when the action had one (astman_append in the action).
        action_id: list[Header] = [("ActionID", action.action_id)] if action.action_id else []
        data = self._response(action, "Success", ("EventList", "start"),
                              ("Message", "Device State Changes will follow"))
        for device, state in list(self.devices.items()):
            data += encode_message([("Event", "DeviceStateChange"), *action_id, ("Device", device), ("State", state)])
        data += encode_message([("Event", "DeviceStateListComplete"), *action_id, ("EventList", "Complete"),
                                ("ListItems", str(len(self.devices)))])
        session.send(data)
        self.device_lists += 1
        await self._notify()

    def set_device(self, device: str, state: str, *, emit: bool = True) -> bytes | None:
        """Asterisk's device state of `device` (e.g. PJSIP/1001) becomes `state` (NOT_INUSE,
        INUSE, RINGING, UNAVAILABLE...); told to logged-in clients unless `emit` is False
        (a change nobody hears, e.g. while the link is down: only DeviceStateList shows it)."""
        self.devices[device] = state
        if not emit:
            return None
        return self.emit("DeviceStateChange", "call", [("Device", device), ("State", state)])

    def channel_hangup(self, channel: str, cause: int = 16, *, uniqueid: str | None = None,
                       context: str = "agents", exten: str = "") -> bytes:
        """The Hangup of one channel (e.g. an agent's leg of a call another controller placed)."""
        n = next(_channel_numbers)
        uid = uniqueid or f"{int(time.time())}.{n}"
        return self.hangup(ChannelSnapshot(name=channel, uniqueid=uid, linkedid=uid, context=context, exten=exten,
                                           state=6), cause)

    # --- events ----------------------------------------------------------------------------

    def emit(self, name: str, privilege: str, headers: Sequence[Header]) -> bytes:
        """Send ``Event: name`` / ``Privilege: ...,all`` / headers to every logged-in client."""
        data = encode_message([("Event", name), ("Privilege", f"{privilege},all"), *headers])
        self.sent_events.append(data)
        for session in self._sessions:
            if session.authenticated and session.events:
                session.send(data)
        return data

    def hangup(self, snapshot: ChannelSnapshot, cause: int) -> bytes:
        return self.emit("Hangup", "call", [*snapshot.headers(), ("Cause", str(cause)),
                                            ("Cause-txt", cause_text(cause))])


_channel_numbers = itertools.count(0x100)


class AmiCallEvents:
    """A pbxsim CallObserver that makes `peer` emit what Asterisk 22 emits for the call.

    `hangup_cause` is the Cause of the AGI channel's Hangup (16 = Normal Clearing unless a
    test says otherwise, e.g. 17 User busy, 19 No answer); a call whose HangUp step gave a
    cause hangs up with that one."""

    def __init__(self, peer: AmiPeer, *, hangup_cause: int = 16) -> None:
        self.peer = peer
        self.hangup_cause = hangup_cause
        self.channels: dict[str, ChannelSnapshot] = {}
        self._seen: dict[str, tuple[int, int, int]] = {}  # uniqueid -> (#pressed, #mixmonitor, #dials) told

    def call_started(self, call: SimCall, uniqueid: str, channel: str, request: str) -> None:
        snap = ChannelSnapshot(
            name=channel, uniqueid=uniqueid, linkedid=uniqueid, context=call.context, exten=call.extension,
            caller_num=call.caller.caller_id or "<unknown>", caller_name=call.caller.caller_name or "<unknown>",
            language=call.language,
        )
        self.channels[uniqueid] = snap
        self._seen[uniqueid] = (0, 0, 0)
        emit = self.peer.emit
        emit("Newchannel", "call", snap.headers())
        emit("Newexten", "dialplan", [*snap.headers(), ("Extension", snap.exten), ("Application", "Answer"),
                                      ("AppData", "")])
        snap.state = 6
        emit("Newstate", "call", snap.headers())
        snap.priority = 2
        app_data = ",".join([request, *call.args])
        emit("Newexten", "dialplan", [*snap.headers(), ("Extension", snap.exten), ("Application", "AGI"),
                                      ("AppData", app_data)])

    def command(self, uniqueid: str, line: str, reply: list[str], channel: SimChannel) -> Iterator[float]:
        snap = self.channels[uniqueid]
        emit = self.peer.emit
        command_id = str(random.randrange(1, 2**31))
        emit("AGIExecStart", "agi", [*snap.headers(), ("CommandId", command_id), ("Command", line)])
        words = parse_args(line)
        verb = " ".join(words[:2]).upper()
        pressed_before, mix_before, dials_before = self._seen[uniqueid]
        if verb == "SET VARIABLE" and len(words) >= 4:
            emit("VarSet", "dialplan", [*snap.headers(), ("Variable", words[2]), ("Value", words[3])])
        elif words[:1] == ["EXEC"] or words[:1] == ["exec"]:
            app = words[1].lower() if len(words) > 1 else ""
            data = words[2] if len(words) > 2 else ""
            if app == "set" and "=" in data:
                key, _, value = data.partition("=")
                emit("VarSet", "dialplan", [*snap.headers(), ("Variable", key), ("Value", value)])
            elif app == "mixmonitor" and len(channel.mixmonitor) > mix_before:
                emit("VarSet", "dialplan", [*snap.headers(), ("Variable", "MIXMONITOR_FILENAME"),
                                            ("Value", channel.mixmonitor[-1].split(",")[0])])
                emit("MixMonitorStart", "call", snap.headers())
        elif verb in ("SET CONTEXT", "SET EXTENSION", "SET PRIORITY") and len(words) >= 3:
            # res_agi changes the channel at once: later snapshots show the new place.
            if verb == "SET CONTEXT":
                snap.context = words[2]
            elif verb == "SET EXTENSION":
                snap.exten = words[2]
            elif words[2].isdigit():
                snap.priority = int(words[2])
        # Keys pressed while the command ran, when they were pressed (the channel has run it whole).
        for at, digit, _consumed in channel.pressed[pressed_before:]:
            yield at
            emit("DTMFBegin", "dtmf", [*snap.headers(), ("Digit", digit), ("Direction", "Received")])
            yield min(at + DTMF_SECONDS, channel.now)
            emit("DTMFEnd", "dtmf", [*snap.headers(), ("Digit", digit), ("DurationMs", str(round(DTMF_SECONDS * 1000))),
                                     ("Direction", "Received")])
        for leg in channel.dials[dials_before:]:
            yield from self._dial(snap, leg)
        self._seen[uniqueid] = (len(channel.pressed), len(channel.mixmonitor), len(channel.dials))
        code, result = agi_result(words, reply)
        yield channel.now  # res_agi tells the end when the command has run
        emit("AGIExecEnd", "agi", [*snap.headers(), ("CommandId", command_id), ("Command", line),
                                   ("ResultCode", code), ("Result", result)])

    def _dial(self, snap: ChannelSnapshot, leg: DialLeg) -> Iterator[float]:
        """The events of one Dial, each yielded after the moment it comes at (see the module docstring)."""
        tech, _, resource = leg.target.partition("/")
        n = next(_channel_numbers)
        name = f"{leg.target}-{n:08x};1" if tech.lower() == "local" else f"{leg.target}-{n:08x}"
        exten, _, context = resource.partition("@")
        dest = ChannelSnapshot(
            name=name, uniqueid=f"{snap.uniqueid}{n}", linkedid=snap.linkedid, context=context or "default",
            exten=exten, state=0, caller_num=snap.exten, caller_name=snap.caller_name, connected_num=snap.caller_num,
            connected_name=snap.caller_name, language=snap.language,
        )
        emit, peer = self.peer.emit, self.peer
        emit("Newchannel", "call", dest.headers())
        emit("DialBegin", "call", [*snap.headers(), *dest.headers("Dest"), ("DialString", resource)])
        if leg.answered is None:
            yield leg.ended
            emit("DialEnd", "call", [*snap.headers(), *dest.headers("Dest"), ("DialStatus", leg.status)])
            peer.hangup(dest, DIAL_CAUSE.get(leg.status, 16))
            return
        yield leg.answered
        dest.state, dest.exten = 6, ""  # app_dial's answered peer has no extension (ami-survey.txt)
        emit("DialEnd", "call", [*snap.headers(), *dest.headers("Dest"), ("DialStatus", leg.status)])
        bridge = str(uuid.uuid4())
        emit("BridgeCreate", "call", bridge_headers(bridge, 0))
        emit("BridgeEnter", "call", [*bridge_headers(bridge, 1), *dest.headers()])
        emit("BridgeEnter", "call", [*bridge_headers(bridge, 2), *snap.headers()])
        yield leg.ended
        # ami-survey.txt has the agent leave first; when the caller does, the simulator mirrors it.
        first, second = (dest, snap) if leg.agent_left else (snap, dest)
        emit("BridgeLeave", "call", [*bridge_headers(bridge, 1), *first.headers()])
        if leg.agent_left:
            peer.hangup(dest, DIAL_CAUSE["ANSWER"])
        emit("BridgeLeave", "call", [*bridge_headers(bridge, 0), *second.headers()])
        if not leg.agent_left:
            peer.hangup(dest, DIAL_CAUSE["ANSWER"])
        emit("BridgeDestroy", "call", bridge_headers(bridge, 0))

    def call_ended(self, result: CallResult) -> None:
        snap = self.channels.pop(result.uniqueid, None)
        self._seen.pop(result.uniqueid, None)
        if snap is None:
            return
        self.peer.emit("VarSet", "dialplan", [*snap.headers(), ("Variable", "AGISTATUS"),
                                               ("Value", "HANGUP" if result.hung_up_by else "SUCCESS")])
        self.peer.hangup(snap, result.hangup_cause if result.hangup_cause is not None else self.hangup_cause)


DTMF_SECONDS = 0.1  # how long a simulated key is held (DTMFEnd's DurationMs, as in ami-digits.txt)

_FAILS_ON_MINUS_ONE = {"STREAM FILE", "CONTROL STREAM", "WAIT FOR", "SAY DIGITS", "SAY NUMBER", "SAY ALPHA",
                       "SAY DATE", "SAY TIME", "ANSWER"}


def agi_result(words: list[str], reply: list[str]) -> tuple[str, str]:
    """AGIExecEnd's ResultCode and Result for a reply (res_agi.c agi_handle_command)."""
    first = reply[0] if reply else ""
    if first.startswith("510"):
        return "510", "Invalid or unknown command"
    if first.startswith("511"):
        return "511", "Command Not Permitted on a dead channel or intercept routine"
    if first.startswith("520"):
        return "520", "Usage"
    value = first.partition("result=")[2].split(" ")[0]
    verb = " ".join(words[:2]).upper()
    if words[:1] and words[0].upper() == "EXEC":
        # handle_exec returns the application's own result: 0 is RESULT_SUCCESS, others unknown.
        return ("200", "Success") if value == "0" else ("200", "Unknown Result")
    if value.startswith("-") and (verb in _FAILS_ON_MINUS_ONE or words[:1] == ["ANSWER"]):
        return "-1", "Failure"
    return "200", "Success"
