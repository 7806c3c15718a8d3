"""A phone-host process: rig phones (`ivr.rig.phone`) driven by the rig's controlling process
over a socket (`python -m ivr.rig.host FD`, FD one end of a socketpair; `ivr.rig.farm`
starts it). The messages are `ivr.rig.hostwire`'s.

It does what it is asked, one task per request, and streams every call's received audio
back every STREAM_EVERY seconds; a call's `Ended` follows its last audio. When the
controlling process goes away (the socket ends), it hangs up, unregisters and exits.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np

from ivr.rig import hostwire as wire
from ivr.rig.dtmf import Pcm
from ivr.rig.phone import PhoneError, RigCall, RigPhone

log = logging.getLogger(__name__)

STREAM_EVERY = 0.05  # seconds between audio updates to the controlling process


class Host:
    def __init__(self, send: Callable[[wire.Message], None]) -> None:
        self._send = send
        self._phones: dict[int, RigPhone] = {}
        self._calls: dict[int, RigCall] = {}
        self._streamed: dict[int, int] = {}  # call -> samples of its audio sent back
        self._offered_ids = itertools.count(-1, -1)
        self._tasks: set[asyncio.Task[None]] = set()

    def handle(self, request: wire.Request) -> None:
        self._spawn(self._answer(request))

    async def stream(self) -> None:
        while True:
            self.flush()
            await asyncio.sleep(STREAM_EVERY)

    def flush(self) -> None:
        """Send what each call heard since the last time; a call that is over, its end."""
        for number, call in list(self._calls.items()):
            ended = call.ended  # before reading the audio: none comes after the end
            heard = call.heard()
            done = self._streamed.get(number, 0)
            if len(heard) > done:
                self._send(wire.Heard(number, heard[done:].astype("<i2").tobytes()))
                self._streamed[number] = len(heard)
            if ended:
                self._send(wire.Ended(number, call.status))
                del self._calls[number]
                self._streamed.pop(number, None)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(phone.stop() for phone in self._phones.values()), return_exceptions=True)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, request: wire.Request) -> None:
        try:
            done = await self._do(request)
        except PhoneError as exc:
            done = wire.Done(request.ref, error=str(exc))
        except Exception as exc:  # a defect of the host: the controller hears of it, the host lives on
            log.exception("rig host: %s failed", type(request).__name__)
            done = wire.Done(request.ref, error=f"rig host error: {exc!r}")
        self._send(done)

    async def _do(self, request: wire.Request) -> wire.Done:
        match request:
            case wire.AddPhone():
                phone = RigPhone(request.server, request.user, request.password, request.local,
                                 register_expiry=request.expiry, register=request.register)  # fmt: skip
                await phone.start()
                self._phones[request.phone] = phone
                self._spawn(self._offer(request.phone, phone))
                return wire.Done(request.ref)
            case wire.StopPhone():
                stopping = self._phones.pop(request.phone, None)
                if stopping is not None:
                    await stopping.stop()
                return wire.Done(request.ref)
            case wire.Dial():
                call = await self._phone(request.phone).dial(request.number, timeout=request.timeout)
                self._calls[request.call] = call
                return wire.Done(request.ref, sip_call_id=call.sip_call_id, telephone_events=call.telephone_events)
            case wire.Answer():
                answering = self._calls.get(request.call)
                if answering is None:
                    raise PhoneError("the call is over")
                await answering.answer()
                return wire.Done(request.ref, telephone_events=answering.telephone_events)
            # A call that is over takes no audio, keys or hang-up, as in one process: its
            # Ended is on its way to the controlling process.
            case wire.Play():
                if (playing := self._calls.get(request.call)) is not None:
                    await playing.play(_pcm(request.pcm))
                return wire.Done(request.ref)
            case wire.SendKeys():
                if (pressing := self._calls.get(request.call)) is not None:
                    await pressing.send_keys(request.keys, inband=request.inband)
                return wire.Done(request.ref)
            case wire.Hangup():
                if (ending := self._calls.get(request.call)) is not None:
                    await ending.hangup()
                    self.flush()  # its Ended before this Done: the caller of hangup() sees it over
                return wire.Done(request.ref)
        raise PhoneError(f"unknown request {request!r}")

    def _phone(self, number: int) -> RigPhone:
        phone = self._phones.get(number)
        if phone is None:
            raise PhoneError(f"no phone {number} in this host")
        return phone

    async def _offer(self, number: int, phone: RigPhone) -> None:
        while True:
            call = await phone.incoming()
            call_number = next(self._offered_ids)
            self._calls[call_number] = call
            self._send(wire.Offered(number, call_number, call.sip_call_id))


def _pcm(data: bytes) -> Pcm:
    return np.frombuffer(data, dtype="<i2").astype(np.int16)


async def serve(sock: socket.socket) -> None:
    reader, writer = await asyncio.open_connection(sock=sock)

    def send(message: wire.Message) -> None:
        if not writer.is_closing():
            writer.write(wire.encode(message))

    host = Host(send)
    streaming = asyncio.create_task(host.stream())
    decoder = wire.Decoder()
    try:
        while data := await reader.read(65536):
            for message in decoder.feed(data):
                if isinstance(message, wire.REQUESTS):
                    host.handle(message)
            await writer.drain()
    except (ConnectionError, wire.WireError) as exc:
        log.warning("rig host: the controlling process's stream broke: %s", exc)
    finally:
        streaming.cancel()
        await host.close()
        writer.close()


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s rig-host %(name)s: %(message)s")
    if len(sys.argv) > 2 and sys.argv[2] == "--verbose":
        logging.getLogger().setLevel(logging.DEBUG)
    sock = socket.socket(fileno=int(sys.argv[1]))
    asyncio.run(serve(sock))


if __name__ == "__main__":
    main()
