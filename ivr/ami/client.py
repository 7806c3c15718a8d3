"""The controller's AMI link, on panoramisk's Manager.

The link feeds Hangup causes into the call records (Asterisk knows why a channel ended
better than the FastAGI session does), and the agent's answer, the bridge, talk and hold
times (`ivr.records.ami_times`: DialEnd, BridgeEnter, BridgeLeave, Hold, Unhold, Hangup), and,
with the ACD on, tells a `LinkObserver`
(`routing.ami_agents.AmiAgents`) of DeviceStateChange and Hangup events, of the link
going down, and of the device states Asterisk lists after every (re)login: the link
sends `Action: DeviceStateList` (res_manager_devicestate: a `Response: Success` with
`EventList: start`, one `DeviceStateChange` per cached device carrying our ActionID, then
`DeviceStateListComplete` with `ListItems`) and hands the pairs to the observer, which
only then lets routing resume. A refused DeviceStateList (module not loaded, no `write`
permission) is logged as an error and routing resumes on live events alone; no answer
within `RESYNC_TIMEOUT` drops the connection (then reconnect and try again).

panoramisk (1.4) stays the AMI client, with three things fixed around it here:

- Reconnecting: it retries at a fixed interval, drops the timer handle, and retries
  even after a deliberate `close()` (the pending `call_later(connect)` fires and opens
  a socket nobody closes). `_BackoffManager` keeps every timer and connect task, backs
  off exponentially (reset after a successful login) and cancels both on close.
- Parsing: `AMIProtocol.data_received` decodes each TCP chunk on its own with
  errors="ignore", so a UTF-8 caller name cut between two reads loses characters, and it
  needs CRLF CRLF between messages. `_CodecProtocol` feeds the bytes to our sans-IO
  `ivr.ami.codec` parser (CRLF or LF, line/message caps) and hands panoramisk the same
  `Message` objects it would have built; garbage drops the connection (then reconnect).
- A refused login (Asterisk answers "Authentication failed" and closes) is logged as an
  error; the link retries with back-off rather than crashing.

`AmiLink.originate` sends an asynchronous `Originate` (the callback worker's agent leg) and
waits for its `OriginateResponse` (panoramisk collects the event by ActionID). Originate is
never replayed after a reconnect (panoramisk would resend an unanswered action): a call
placed twice is worse than one given up on, which the caller of `originate` retries.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote

from panoramisk import Manager
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message as PanoramiskMessage

from ivr.ami.codec import AmiParser, AmiProtocolError, Banner, ConnectionClosed, Event, Response
from ivr.config.models import AmiSettings
from ivr.records.ami_times import AmiTimes
from ivr.records.store import CallStore

log = logging.getLogger(__name__)

# Seconds a login's DeviceStateList may take before the connection is dropped and retried.
RESYNC_TIMEOUT = 10.0
# Events a LinkObserver is told of.
OBSERVED_EVENTS = ("DeviceStateChange", "Hangup", "AgentLogin", "AgentLogoff", "QueueMemberPause")
# Events whose times reconcile the call records (ivr.records.ami_times).
TIMED_EVENTS = ("DialEnd", "BridgeEnter", "BridgeLeave", "Hold", "Unhold", "Hangup")


class LinkObserver(Protocol):
    """Told of what the ACD's live state needs from AMI, in wire order (see the module docstring)."""

    def event(self, headers: Mapping[str, str]) -> None: ...

    def link_down(self) -> None: ...

    def resynced(self, devices: Sequence[tuple[str, str]]) -> None: ...


def _first(value: Any) -> str:
    """A header value as one string (panoramisk makes a repeated header a list)."""
    if isinstance(value, list):
        return str(value[0]) if value else ""
    return "" if value is None else str(value)


def device_states(reply: Any) -> list[tuple[str, str]]:
    """(Device, State) of every DeviceStateChange in a completed DeviceStateList reply."""
    messages = reply if isinstance(reply, list) else [reply]
    return [
        (_first(m.get("Device")), _first(m.get("State")))
        for m in messages
        if _first(m.get("Event")).lower() == "devicestatechange" and m.get("Device")
    ]


def to_panoramisk(message: Response | Event) -> Any:
    """The panoramisk Message that Message.from_line would build: repeated keys become lists,
    `Result` is unquoted."""
    headers: dict[str, Any] = {}
    for key, value in message.headers:
        if key.lower() in PanoramiskMessage.quoted_keys:
            value = unquote(value).strip()
        if key in headers:
            old = headers[key]
            headers[key] = [*old, value] if isinstance(old, list) else [old, value]
        else:
            headers[key] = value
    return PanoramiskMessage(headers, "")


class _CodecProtocol(AMIProtocol):  # type: ignore[misc]
    """panoramisk's protocol with our codec doing the byte parsing (see the module docstring)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.parser = AmiParser("client")

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.receive_data(data)
            for item in self.parser.events():
                if isinstance(item, Banner):
                    self.version = item.version
                elif isinstance(item, (Response, Event)):
                    self.handle_message(to_panoramisk(item))
                elif isinstance(item, ConnectionClosed):  # pragma: no cover - EOF goes to connection_lost
                    pass
        except AmiProtocolError as exc:
            log.error("AMI stream is not AMI (%s); dropping the connection", exc)
            self.transport.abort()


class _BackoffManager(Manager):  # type: ignore[misc]
    def __init__(self, *, reconnect_min: float, reconnect_max: float, observer: LinkObserver | None = None,
                 **config: Any) -> None:
        # DeviceStateList is ours to resend after each login: panoramisk must not replay it.
        super().__init__(protocol_factory=_CodecProtocol, forgetable_actions=("ping", "login", "devicestatelist", "originate"),
                         **config)
        self._min = reconnect_min
        self._max = reconnect_max
        self._delay = reconnect_min
        self.closing = False
        self.logins = 0  # successful logins so far (tests and logs)
        self._retry: asyncio.TimerHandle | None = None
        self._connecting: asyncio.Task[Any] | None = None
        self.observer = observer
        self._resync: asyncio.Task[None] | None = None
        self.resync_timeout = RESYNC_TIMEOUT

    # panoramisk calls connect() itself only through the timers below, which we own.
    def connect(self, run_forever: bool = False, on_startup: Any = None, on_shutdown: Any = None) -> Any:
        self._retry = None
        if self.closing:
            return None
        self._connecting = super().connect()
        return self._connecting

    def _schedule_reconnect(self) -> None:
        if self.closing or self._retry is not None:
            return
        delay = self._delay
        self._delay = min(self._delay * 2, self._max)
        self._retry = self.loop.call_later(delay, self.connect)
        log.info("AMI: next connection attempt to %s:%s in %.1f s", self.config["host"], self.config["port"], delay)

    def connection_made(self, future: asyncio.Future[Any]) -> None:
        self._connecting = None
        if future.cancelled():
            return
        exc = future.exception()
        if self.closing:
            if exc is None:
                future.result()[0].close()
            return
        if exc is not None:
            log.warning("AMI connect to %s:%s failed: %s", self.config["host"], self.config["port"], exc)
            self._schedule_reconnect()
            return
        super().connection_made(future)

    def login(self, future: asyncio.Future[Any]) -> bool:
        if self.closing or future.cancelled():
            return False
        ok = bool(super().login(future))
        if ok:
            self._delay = self._min
            self.logins += 1
            log.info("AMI logged in to %s:%s", self.config["host"], self.config["port"])
            if self.observer is not None:
                self._cancel_resync()
                self._resync = self.loop.create_task(self._resynchronise(), name="ami-resync")
        else:
            message = getattr(future.result(), "message", "") or "refused"
            log.error("AMI login to %s:%s as %r refused: %s", self.config["host"], self.config["port"],
                      self.config.get("username"), message)
        return ok

    async def _resynchronise(self) -> None:
        """DeviceStateList, then the observer gets every device's state (see the module docstring)."""
        assert self.observer is not None
        try:
            reply = await asyncio.wait_for(self.send_action({"Action": "DeviceStateList"}), self.resync_timeout)
        except TimeoutError:
            log.error("AMI: no answer to DeviceStateList within %g s; dropping the connection", self.resync_timeout)
            self._drop()
            return
        except Exception:  # e.g. the transport went away under us: retry on a new connection
            log.exception("AMI: DeviceStateList failed; dropping the connection")
            self._drop()
            return
        if not isinstance(reply, list):
            log.error("AMI: DeviceStateList refused (%s: %s); is res_manager_devicestate loaded and does the "
                      "manager.conf user have write = call? Routing goes on with live device events only",
                      _first(reply.get("Response")), _first(reply.get("Message")))
            self.observer.resynced([])
            return
        self.observer.resynced(device_states(reply))

    def _drop(self) -> None:
        protocol = self.protocol
        transport = getattr(protocol, "transport", None)
        if transport is not None:
            transport.abort()

    def _cancel_resync(self) -> None:
        if self._resync is not None:
            self._resync.cancel()
            self._resync = None

    def connection_lost(self, exc: Exception | None) -> None:
        # Replaces panoramisk's: it would schedule an untracked reconnect at a fixed interval.
        self._connected = False
        self.authenticated = False
        self._cancel_resync()
        if self.observer is not None and not self.closing:
            self.observer.link_down()
        pinger: asyncio.TimerHandle | None = getattr(self, "pinger", None)
        if pinger is not None:
            pinger.cancel()
            self.pinger = None
        if self.closing:
            return
        log.warning("AMI link to %s:%s lost", self.config["host"], self.config["port"])
        self._schedule_reconnect()

    def close(self) -> None:
        self.closing = True
        self._cancel_resync()
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self._connecting is not None:
            self._connecting.cancel()
            self._connecting = None
        super().close()


def hangup_cause_handler(store: CallStore) -> Callable[[Any, Any], None]:
    def on_hangup(_manager: Any, event: Any) -> None:
        uniqueid = event.get("Uniqueid")
        try:
            cause = int(event.get("Cause", "0"))
        except ValueError:
            cause = 0
        if uniqueid:
            store.set_hangup_cause(uniqueid, cause, event.get("Cause-txt", ""))

    return on_hangup


@dataclass(frozen=True)
class OriginateResult:
    """How an asynchronous Originate ended: `success` (the channel answered and entered the
    dialplan) and why, e.g. "Reason 3" (rang, no answer) or "AMI link down"."""

    success: bool
    reason: str
    uniqueid: str | None = None


def originate_result(reply: Any) -> OriginateResult:
    """The OriginateResponse in panoramisk's reply (a list: the ack, then the event), or the
    refusal (a single `Response: Error`)."""
    messages = reply if isinstance(reply, list) else [reply]
    for message in messages:
        if _first(message.get("Event")).lower() == "originateresponse":
            uniqueid = _first(message.get("Uniqueid"))
            return OriginateResult(_first(message.get("Response")) == "Success",
                                   f"Reason {_first(message.get('Reason')) or '?'}",
                                   uniqueid if uniqueid and uniqueid != "<null>" else None)
    first = messages[0] if messages else None
    if first is None:
        return OriginateResult(False, "no answer")
    return OriginateResult(False, f"{_first(first.get('Response'))}: {_first(first.get('Message'))}")


class AmiLink:
    """What `start_ami_link` returns: call it (or `close()`) to stop; `manager` for tests."""

    def __init__(self, manager: _BackoffManager) -> None:
        self.manager = manager

    async def originate(self, fields: Mapping[str, str | Sequence[str]], timeout: float) -> OriginateResult:
        """Send `Action: Originate` with `fields` (Async: true is added) and wait up to
        `timeout` seconds for its OriginateResponse."""
        if not self.manager.authenticated or self.manager.closing:
            return OriginateResult(False, "AMI link down")
        action: dict[str, Any] = {key: list(value) if not isinstance(value, str) else value
                                  for key, value in fields.items()}
        action["Action"] = "Originate"
        action["Async"] = "true"
        try:
            reply = await asyncio.wait_for(self.manager.send_action(action), timeout)
        except TimeoutError:
            return OriginateResult(False, f"no OriginateResponse within {timeout:g} s")
        except (ConnectionError, AttributeError) as exc:  # the transport went away under us
            return OriginateResult(False, f"AMI link down ({exc})")
        return originate_result(reply)

    def close(self) -> None:
        self.manager.close()

    def __call__(self) -> None:
        self.close()

    @property
    def logins(self) -> int:
        return self.manager.logins


class EventSink(Protocol):
    def event(self, headers: Mapping[str, str]) -> None: ...


def observer_handler(observer: EventSink) -> Callable[[Any, Any], None]:
    def on_event(_manager: Any, event: Any) -> None:
        observer.event({str(key): _first(value) for key, value in event.items()})

    return on_event


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


async def start_ami_link(settings: AmiSettings, store: CallStore, observer: LinkObserver | None = None,
                         clock: Callable[[], dt.datetime] = _utc_now) -> AmiLink:
    """Connect (retrying in the background) and return a callable that closes the link.
    With an `observer`, every login is followed by a DeviceStateList resynchronisation.
    `clock` dates events that carry no Timestamp header (their arrival)."""
    manager = _BackoffManager(
        host=settings.host,
        port=settings.port,
        username=settings.username,
        secret=settings.secret,
        reconnect_min=settings.reconnect_min,
        reconnect_max=settings.reconnect_max,
        loop=asyncio.get_running_loop(),
        log=log,
        observer=observer,
    )
    manager.register_event("Hangup", hangup_cause_handler(store))
    times = observer_handler(AmiTimes(store, clock))
    for name in TIMED_EVENTS:
        manager.register_event(name, times)
    if observer is not None:
        for name in OBSERVED_EVENTS:
            manager.register_event(name, observer_handler(observer))
    manager.connect()
    return AmiLink(manager)
