"""One FastAGI session: the typed call API a call flow uses.

Commands are strictly sequential, as AGI is. The `HANGUP` line may arrive at any time
(before a reply, or while the server is busy elsewhere); once seen, media commands raise
`AgiHangup` without being sent, while variable commands still work, as on a real
Asterisk (GET VARIABLE answers after a hang-up; STREAM FILE gets 511).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ivr.agi import commands as c
from ivr.agi.codec import (
    NEED_DATA,
    TRYING,
    AgiParser,
    ConnectionClosed,
    Environment,
    HangupLine,
    Reply,
)
from ivr.agi.errors import AgiConnectionLost, AgiHangup, AgiProtocolError, AgiTimeout

T = TypeVar("T")
log = logging.getLogger(__name__)

# After a media command's `result=-1`, how long to wait for the `HANGUP` line before asking
# CHANNEL STATUS whether the channel is still there. A real Asterisk 22 sends it about 40 ms
# after the reply, without waiting for a command; a command sent meanwhile gets 511.
HANGUP_LINE_WAIT = 0.5

# Called with (verb, seconds) for every command: the server's turnaround, i.e. how long
# Asterisk waited between our previous reply being complete and this command being sent.
TurnaroundHook = Callable[[str, float], None]


class AgiSession:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        parser: AgiParser,
        env: Environment,
        *,
        idle_timeout: float,
        media_timeout: float,
        on_turnaround: TurnaroundHook | None = None,
    ) -> None:
        self.env = env
        self._reader = reader
        self._writer = writer
        self._parser = parser
        self._idle_timeout = idle_timeout
        self._media_timeout = media_timeout
        self._on_turnaround = on_turnaround
        self._last_reply_at = time.perf_counter()
        self.hung_up = False
        self.closed = False
        self.moved = False  # continue_at was sent: the dialplan goes on elsewhere after this AGI

    # --- core -------------------------------------------------------------------

    async def run(self, command: c.Command[T], *, timeout: float | None = None) -> T:
        """Send one command and decode its reply; raise `AgiHangup` if the channel is gone."""
        if self.closed:
            raise AgiConnectionLost("FastAGI connection is closed")
        if self.hung_up and not command.dead_ok:
            raise AgiHangup(f"{command.verb}: caller already hung up")
        data = command.line().encode()
        if self._on_turnaround is not None:
            self._on_turnaround(command.verb, time.perf_counter() - self._last_reply_at)
        self._writer.write(data)
        try:
            await self._writer.drain()
        except ConnectionError as exc:
            self.closed = True
            raise AgiConnectionLost(f"write failed: {exc}") from exc
        if timeout is None:
            timeout = self._media_timeout if command.media else self._idle_timeout
        reply = await self._read_reply(timeout, command.verb)
        self._last_reply_at = time.perf_counter()
        return command.decode(c.check_reply(reply))

    async def _read_reply(self, timeout: float, verb: str) -> Reply:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = self._parser.next_event()
            if event is NEED_DATA:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise AgiTimeout(f"no reply to {verb} within {timeout:g} s")
                try:
                    # asyncio.timeout, not wait_for: no task per read (3.11), far less garbage.
                    async with asyncio.timeout(remaining):
                        data = await self._reader.read(65536)
                except TimeoutError:
                    raise AgiTimeout(f"no reply to {verb} within {timeout:g} s") from None
                except ConnectionError as exc:
                    data = b""
                    log.debug("read failed on %s: %s", self.env.channel, exc)
                self._parser.receive_data(data)
                continue
            if isinstance(event, HangupLine):
                self.hung_up = True
                continue
            if isinstance(event, ConnectionClosed):
                self.hung_up = True
                self.closed = True
                raise AgiConnectionLost(f"Asterisk closed the connection during {verb}")
            if isinstance(event, Reply):
                if event.code == TRYING:
                    continue
                return event
            raise AgiTimeout(f"unexpected event {event!r}")  # pragma: no cover - env is parsed once

    async def until_hangup(self, work: Awaitable[T]) -> T:
        """Await `work` (a backend lookup) between commands while reading the connection:
        Asterisk sends `HANGUP` the moment the caller hangs up, so the work is cancelled
        and `AgiHangup` raised at once instead of after the backend's timeout."""
        task = asyncio.ensure_future(work)
        if self.hung_up:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise AgiHangup("caller already hung up")
        watcher = asyncio.create_task(self._watch_hangup())
        try:
            await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pending in (watcher, task):
                if not pending.done():
                    pending.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        if task.done() and not task.cancelled():
            return task.result()
        await asyncio.gather(task, return_exceptions=True)
        watcher.result()  # a protocol error seen while watching
        raise AgiHangup("caller hung up while the controller was busy")

    async def hangup_follows(self, within: float = HANGUP_LINE_WAIT) -> bool:
        """Whether Asterisk tells a hang-up (the HANGUP line, or closing) within `within`
        seconds, while no command is outstanding."""
        if self.hung_up or self.closed:
            return True
        try:
            async with asyncio.timeout(within):
                await self._watch_hangup()
        except TimeoutError:
            return False
        return True

    async def _watch_hangup(self) -> None:
        """Read until the HANGUP line or EOF; nothing else may come while no command is out."""
        while True:
            event = self._parser.next_event()
            if event is NEED_DATA:
                try:
                    data = await self._reader.read(65536)
                except ConnectionError:
                    data = b""
                self._parser.receive_data(data)
                continue
            if isinstance(event, HangupLine):
                self.hung_up = True
                return
            if isinstance(event, ConnectionClosed):
                self.hung_up = self.closed = True
                return
            raise AgiProtocolError(f"{event!r} arrived while no command was outstanding")

    async def close(self) -> None:
        """Close the connection: Asterisk keeps it open after the last reply, so we must."""
        if self.closed:
            return
        self.closed = True
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except ConnectionError:
            pass

    # --- typed API ---------------------------------------------------------------

    async def answer(self) -> None:
        await self.run(c.Answer())

    async def stream_file(self, filename: str, escape_digits: str = "") -> c.Playback:
        """Play a file; a caller who hung up during it raises `AgiHangup` here, not at the
        next command: result -1 means either "no such file" or "hung up". Asterisk follows a
        hang-up with the HANGUP line at once; only when none comes is CHANNEL STATUS asked
        (511 on a dead channel): no command is sent to a channel known to be gone."""
        played = await self.run(c.StreamFile(filename, escape_digits))
        if played.failed:
            if await self.hangup_follows():
                raise AgiHangup(f"STREAM FILE {filename}: the caller hung up")
            await self.channel_status()
        return played

    async def get_data(self, filename: str, timeout_ms: int, max_digits: int) -> c.DigitInput:
        return await self.run(c.GetData(filename, timeout_ms, max_digits))

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        return await self.run(c.WaitForDigit(timeout_ms))

    async def say_digits(self, digits: str, escape_digits: str = "") -> str | None:
        return await self.run(c.SayDigits(digits, escape_digits))

    async def say_number(self, number: int, escape_digits: str = "") -> str | None:
        return await self.run(c.SayNumber(str(number), escape_digits))

    async def say_alpha(self, text: str, escape_digits: str = "") -> str | None:
        return await self.run(c.SayAlpha(text, escape_digits))

    async def say_date(self, epoch_seconds: int, escape_digits: str = "") -> str | None:
        return await self.run(c.SayDate(str(epoch_seconds), escape_digits))

    async def exec(self, application: str, *arguments: str, timeout: float | None = None) -> int:
        return await self.run(c.Exec(application, arguments), timeout=timeout)

    async def get_variable(self, name: str) -> str | None:
        return await self.run(c.GetVariable(name))

    async def get_full_variable(self, expression: str) -> str | None:
        return await self.run(c.GetFullVariable(expression))

    async def set_variable(self, name: str, value: str) -> None:
        await self.run(c.SetVariable(name, value))

    async def record_file(
        self,
        filename: str,
        fmt: str = "wav",
        *,
        escape_digits: str = "#",
        timeout_ms: int = -1,
        beep: bool = False,
        silence_s: int | None = None,
    ) -> c.Recording:
        result = await self.run(
            c.RecordFile(filename, fmt, escape_digits, timeout_ms, beep, silence_s)
        )
        if result.ended_by == "hangup":
            self.hung_up = True
        return result

    async def channel_status(self) -> int:
        return await self.run(c.ChannelStatus())

    async def verbose(self, message: str, level: int = 1) -> None:
        await self.run(c.Verbose(message, level))

    async def hangup(self) -> None:
        await self.run(c.Hangup())
        self.hung_up = True

    async def continue_at(self, context: str, extension: str, priority: str = "1") -> None:
        """Make the dialplan continue at context,extension,priority once this AGI ends."""
        await self.run(c.SetContext(context))
        await self.run(c.SetExtension(extension))
        await self.run(c.SetPriority(priority))
        self.moved = True
