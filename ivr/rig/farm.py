"""Rig phones in host processes: as many phones and calls at once as a run needs.

pjsua holds 8 phones and 4 calls per process (`ivr.rig.phone`). A `PhoneFarm` starts host
processes (`ivr.rig.host`) as phones are asked for, and puts each phone in a host with room
for it and for the calls it will hold at once. `RemotePhone` and `RemoteCall` drive a host
over a socket (`ivr.rig.hostwire`) and meet `ivr.rig.lines`' protocols: the scenario runner
and the agent phones do not know where a phone runs. A caller that places more calls at
once than one host holds gets a line in each of several hosts (`CallerLines`): the first
line registers, the others only place calls (each INVITE is authenticated on its own).

A host that dies ends its calls (status "phone host exited") and fails what was asked of
it with a `PhoneError`; the run goes on with the other hosts.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ivr.rig import hostwire as wire
from ivr.rig.audio import RATE
from ivr.rig.dtmf import Pcm
from ivr.rig.lines import wait_for_end
from ivr.rig.phone import MAX_CALLS, MAX_PHONES, LocalAddress, PhoneError, SipServer

log = logging.getLogger(__name__)

HOST_EXIT_WAIT = 15.0  # seconds a host may take to hang up, unregister and exit when closed


class PhoneHost:
    """One host process and the conversation with it."""

    def __init__(self, process: asyncio.subprocess.Process, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._process = process
        self._reader = reader
        self._writer = writer
        self._refs = itertools.count(1)
        self._call_numbers = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[wire.Done]] = {}
        self.calls: dict[int, RemoteCall] = {}
        self.phones: dict[int, RemotePhone] = {}
        self._gone: str | None = None
        self._reading = asyncio.create_task(self._read(), name=f"rig-host-{process.pid}")

    @classmethod
    async def start(cls, *, verbose: bool = False) -> PhoneHost:
        ours, theirs = socket.socketpair()
        try:
            args = [sys.executable, "-m", "ivr.rig.host", str(theirs.fileno()), *(["--verbose"] if verbose else [])]
            process = await asyncio.create_subprocess_exec(*args, pass_fds=[theirs.fileno()], stdin=asyncio.subprocess.DEVNULL)
        finally:
            theirs.close()
        reader, writer = await asyncio.open_connection(sock=ours)
        return cls(process, reader, writer)

    @property
    def pid(self) -> int:
        return self._process.pid

    def new_call_number(self) -> int:
        return next(self._call_numbers)

    async def request(self, make: Callable[[int], wire.Request]) -> wire.Done:
        """Send a request; its `Done`. A `PhoneError` if the host failed it or is gone."""
        if self._gone is not None:
            raise PhoneError(self._gone)
        ref = next(self._refs)
        waiter: asyncio.Future[wire.Done] = asyncio.get_running_loop().create_future()
        self._waiting[ref] = waiter
        try:
            self._writer.write(wire.encode(make(ref)))
            await self._writer.drain()
            done = await waiter
        except ConnectionError:
            raise PhoneError(self._gone or f"the rig's phone host (pid {self.pid}) is gone") from None
        finally:
            self._waiting.pop(ref, None)
        if done.error is not None:
            raise PhoneError(done.error)
        return done

    async def close(self) -> None:
        """Let the host hang up, unregister and exit; kill it if it does not in time."""
        self._writer.close()
        try:
            await asyncio.wait_for(self._process.wait(), HOST_EXIT_WAIT)
        except TimeoutError:
            log.warning("rig: phone host %d did not exit within %g s: killed", self.pid, HOST_EXIT_WAIT)
            self._process.kill()
            await self._process.wait()
        await self._reading

    async def _read(self) -> None:
        decoder = wire.Decoder()
        try:
            while data := await self._reader.read(65536):
                for message in decoder.feed(data):
                    self._dispatch(message)
            decoder.at_end()
        except (ConnectionError, wire.WireError) as exc:
            log.error("rig: phone host %d: %s", self.pid, exc)
        code = await self._process.wait()
        self._gone = f"the rig's phone host (pid {self.pid}) exited (status {code})"
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.set_result(wire.Done(0, error=self._gone))
        for call in list(self.calls.values()):
            call._end("phone host exited")
        self.calls.clear()

    def _dispatch(self, message: wire.Message) -> None:
        match message:
            case wire.Done():
                waiter = self._waiting.get(message.ref)
                if waiter is not None and not waiter.done():
                    waiter.set_result(message)
            case wire.Heard():
                found = self.calls.get(message.call)
                if found is not None:
                    found._heard(message.pcm)
            case wire.Ended():
                ended = self.calls.pop(message.call, None)
                if ended is not None:
                    ended._end(message.status)
            case wire.Offered():
                phone = self.phones.get(message.phone)
                if phone is not None:
                    call = RemoteCall(self, message.call, message.sip_call_id)
                    self.calls[message.call] = call
                    phone._offered(call)


class RemoteCall:
    """A call of a phone in a host process (`ivr.rig.lines.Call`)."""

    def __init__(self, host: PhoneHost, number: int, sip_call_id: str = "") -> None:
        self._host = host
        self._number = number
        self.sip_call_id = sip_call_id
        self.status = ""
        self.finished = threading.Event()
        self._audio = np.zeros(RATE * 10, dtype=np.int16)
        self._samples = 0
        self._ended = False
        self._ended_event = asyncio.Event()
        self._events = False
        self._on_end: list[Callable[[], None]] = []

    def __repr__(self) -> str:
        return f"RemoteCall({self.sip_call_id}, host {self._host.pid})"

    def _heard(self, data: bytes) -> None:
        pcm = np.frombuffer(data, dtype="<i2")
        need = self._samples + len(pcm)
        if need > len(self._audio):
            grown = np.zeros(max(need, 2 * len(self._audio)), dtype=np.int16)
            grown[: self._samples] = self._audio[: self._samples]
            self._audio = grown
        self._audio[self._samples : need] = pcm
        self._samples = need

    def _end(self, status: str) -> None:
        if self._ended:
            return
        self.status = status or self.status
        self._ended = True
        self.finished.set()
        self._ended_event.set()
        for callback in self._on_end:
            callback()

    def when_ended(self, callback: Callable[[], None]) -> None:
        if self._ended:
            callback()
        else:
            self._on_end.append(callback)

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def telephone_events(self) -> bool:
        return self._events

    async def wait_ended(self, timeout: float) -> bool:
        return self._ended or await wait_for_end(self._ended_event, timeout) or self._ended

    def heard(self) -> Pcm:
        """What the call received so far (a read-only view, up to STREAM_EVERY s behind)."""
        view = self._audio[: self._samples]
        view.flags.writeable = False
        return view

    async def answer(self) -> None:
        done = await self._host.request(lambda ref: wire.Answer(ref, self._number))
        self._events = done.telephone_events

    async def play(self, pcm: Pcm) -> None:
        if self._ended:
            return
        await self._host.request(lambda ref: wire.Play(ref, self._number, pcm.astype("<i2").tobytes()))

    async def send_keys(self, keys: str, *, inband: bool) -> None:
        if self._ended:
            return
        await self._host.request(lambda ref: wire.SendKeys(ref, self._number, keys, inband))

    async def hangup(self) -> None:
        if not self._ended:
            try:
                await self._host.request(lambda ref: wire.Hangup(ref, self._number))
            except PhoneError as exc:
                log.debug("rig: hang-up of %s: %s", self.sip_call_id, exc)
        self.finished.set()


class RemotePhone:
    """A phone in a host process (`ivr.rig.lines.Phone`)."""

    def __init__(self, host: PhoneHost, number: int, server: SipServer, user: str, password: str, local: LocalAddress,
                 *, expiry: int = 300, register: bool = True) -> None:  # fmt: skip
        self.user = user
        self._host = host
        self._number = number
        self._add = lambda ref: wire.AddPhone(ref, number, server, user, password, local, expiry, register)
        self._incoming: asyncio.Queue[RemoteCall] = asyncio.Queue()
        host.phones[number] = self

    def __repr__(self) -> str:
        return f"RemotePhone({self.user}, host {self._host.pid})"

    def _offered(self, call: RemoteCall) -> None:
        self._incoming.put_nowait(call)

    async def start(self) -> None:
        await self._host.request(self._add)

    async def stop(self) -> None:
        try:
            await self._host.request(lambda ref: wire.StopPhone(ref, self._number))
        except PhoneError as exc:
            log.debug("rig: stopping %s: %s", self.user, exc)

    async def dial(self, number: str, *, timeout: float) -> RemoteCall:
        host = self._host
        call = RemoteCall(host, host.new_call_number())
        host.calls[call._number] = call
        try:
            done = await host.request(lambda ref: wire.Dial(ref, self._number, call._number, number, timeout))
        except PhoneError:
            host.calls.pop(call._number, None)
            call._end("not placed")
            raise
        call.sip_call_id = done.sip_call_id
        call._events = done.telephone_events
        return call

    async def incoming(self) -> RemoteCall:
        return await self._incoming.get()


class CallerLines:
    """One caller's phones in several hosts, each placing at most its share of the calls."""

    def __init__(self, lines: list[tuple[RemotePhone, int]]) -> None:
        self.user = lines[0][0].user
        self._lines = lines
        self._up = [0] * len(lines)

    @property
    def lines(self) -> int:
        return len(self._lines)

    async def start(self) -> None:
        await self._lines[0][0].start()  # the registering line first: it proves the password
        await asyncio.gather(*(phone.start() for phone, _ in self._lines[1:]))

    async def stop(self) -> None:
        await asyncio.gather(*(phone.stop() for phone, _ in self._lines))

    async def dial(self, number: str, *, timeout: float) -> RemoteCall:
        free = [i for i, (_, share) in enumerate(self._lines) if self._up[i] < share]
        index = min(free or range(len(self._lines)), key=lambda i: self._up[i] / self._lines[i][1])
        self._up[index] += 1

        def down() -> None:
            self._up[index] -= 1

        try:
            call = await self._lines[index][0].dial(number, timeout=timeout)
        except PhoneError:
            down()
            raise
        call.when_ended(down)
        return call

    async def incoming(self) -> RemoteCall:
        return await self._lines[0][0].incoming()


@dataclass
class _Room:
    host: PhoneHost
    phones: int = 0
    calls: int = 0  # calls at once promised to its phones


class PhoneFarm:
    """Phones in host processes, started as needed; `close()` ends them all."""

    def __init__(self, server: SipServer, *, verbose: bool = False) -> None:
        self._server = server
        self._verbose = verbose
        self._rooms: list[_Room] = []
        self._numbers = itertools.count(1)

    @property
    def hosts(self) -> int:
        return len(self._rooms)

    async def phone(self, user: str, password: str, local: LocalAddress, *, calls: int = 1, expiry: int = 300) -> RemotePhone:
        """A registering phone that holds up to `calls` calls at once (not yet started)."""
        room = await self._room(calls)
        return self._place(room, user, password, local, calls, expiry=expiry, register=True)

    async def caller(self, user: str, password: str, locals_: Callable[[], LocalAddress], *, calls: int) -> CallerLines:
        """A caller placing up to `calls` calls at once, in as many hosts as that needs."""
        lines: list[tuple[RemotePhone, int]] = []
        left = calls
        while left:
            room = await self._room(1)
            share = min(left, MAX_CALLS - room.calls)
            lines.append((self._place(room, user, password, locals_(), share, expiry=300, register=not lines), share))
            left -= share
        return CallerLines(lines)

    async def close(self) -> None:
        await asyncio.gather(*(room.host.close() for room in self._rooms))

    def _place(self, room: _Room, user: str, password: str, local: LocalAddress, calls: int,
               *, expiry: int, register: bool) -> RemotePhone:  # fmt: skip
        room.phones += 1
        room.calls += calls
        return RemotePhone(room.host, next(self._numbers), self._server, user, password, local, expiry=expiry, register=register)

    async def _room(self, calls: int) -> _Room:
        if calls > MAX_CALLS:
            raise PhoneError(f"a phone holds at most {MAX_CALLS} calls at once (pjsua's limit per process)")
        for room in self._rooms:
            if room.phones < MAX_PHONES and room.calls + calls <= MAX_CALLS:
                return room
        room = _Room(await PhoneHost.start(verbose=self._verbose))
        self._rooms.append(room)
        return room
