"""Typed AGI commands: each encodes itself and decodes its own reply (the pystrix pattern).

Nothing above this module sees `200 result=...`. Failure replies common to every command
(510, 511, 520, other codes) are turned into exceptions by `check_reply` before `decode`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Generic, Literal, TypeVar

from ivr.agi.codec import (
    DEAD_CHANNEL,
    INVALID,
    SUCCESS,
    USAGE,
    CommandLine,
    Quoted,
    Reply,
    Word,
)
from ivr.agi.errors import (
    AgiAppNotFound,
    AgiCommandFailed,
    AgiHangup,
    AgiInvalidCommand,
    AgiProtocolError,
    AgiRecordNotWritten,
    AgiUsageError,
)

T = TypeVar("T")
ALL_DIGITS = "0123456789*#"


def check_reply(reply: Reply) -> Reply:
    """Raise the exception for a failure reply; return success replies unchanged."""
    if reply.code == SUCCESS:
        return reply
    if reply.code == DEAD_CHANNEL:
        raise AgiHangup(f"511 {reply.extra}".strip())
    if reply.code == INVALID:
        raise AgiInvalidCommand(reply.extra or "invalid or unknown command")
    if reply.code == USAGE:
        raise AgiUsageError(reply.extra or "invalid command syntax", reply.usage)
    raise AgiCommandFailed(reply.line or f"{reply.code}")


def _digit(code: int) -> str | None:
    """ASCII code of a DTMF digit as Asterisk reports it (0 = none)."""
    if code == 0:
        return None
    if code < 0:
        raise AgiHangup(f"result={code}")
    char = chr(code)
    if char not in ALL_DIGITS and char not in "ABCD":
        raise AgiProtocolError(f"result {code} is not a DTMF digit")
    return char


class Command(Generic[T]):
    """Base of every command. `dead_ok` mirrors res_agi's table: may it run after a hang-up?
    `media` commands may take as long as the caller listens (they get the media timeout)."""

    dead_ok: ClassVar[bool] = False
    media: ClassVar[bool] = False
    verb: ClassVar[str]

    def line(self) -> CommandLine:
        raise NotImplementedError

    def decode(self, reply: Reply) -> T:
        raise NotImplementedError


class _NoResult(Command[None]):
    def decode(self, reply: Reply) -> None:
        if reply.result == "-1":
            raise AgiHangup(f"{self.verb} failed: result=-1")
        return None


@dataclass(frozen=True)
class Playback:
    """Outcome of STREAM FILE: the digit that interrupted it, or `failed` (no such file,
    or the channel went away: the next command tells which)."""

    digit: str | None
    endpos: int
    failed: bool = False


@dataclass(frozen=True)
class DigitInput:
    digits: str
    timed_out: bool


@dataclass(frozen=True)
class Recording:
    """How RECORD FILE ended. `dtmf` with endpos 0 and `during_beep`: the key was pressed
    while the beep played, so nothing was recorded (res_agi's `(randomerror)` reply)."""

    ended_by: Literal["dtmf", "timeout", "hangup"]
    digit: str | None
    endpos: int
    during_beep: bool = False


@dataclass(frozen=True)
class Answer(_NoResult):
    verb: ClassVar[str] = "ANSWER"

    def line(self) -> CommandLine:
        return CommandLine((Word("ANSWER"),))


@dataclass(frozen=True)
class StreamFile(Command[Playback]):
    filename: str
    escape_digits: str = ""
    offset: int | None = None
    verb: ClassVar[str] = "STREAM FILE"
    media: ClassVar[bool] = True

    def line(self) -> CommandLine:
        parts: tuple[Word | Quoted | str, ...] = (
            Word("STREAM FILE"),
            self.filename,
            Quoted(self.escape_digits),
        )
        if self.offset is not None:
            parts += (str(self.offset),)
        return CommandLine(parts)

    def decode(self, reply: Reply) -> Playback:
        code = reply.result_int
        endpos = reply.endpos or 0
        if code < 0:
            return Playback(None, endpos, failed=True)
        return Playback(_digit(code), endpos)


@dataclass(frozen=True)
class GetData(Command[DigitInput]):
    filename: str
    timeout_ms: int
    max_digits: int
    verb: ClassVar[str] = "GET DATA"
    media: ClassVar[bool] = True

    def line(self) -> CommandLine:
        return CommandLine(
            (Word("GET DATA"), self.filename, str(self.timeout_ms), str(self.max_digits))
        )

    def decode(self, reply: Reply) -> DigitInput:
        if reply.result == "-1":
            raise AgiHangup("GET DATA: result=-1")
        digits = reply.result or ""
        if any(c not in ALL_DIGITS for c in digits):
            raise AgiProtocolError(f"GET DATA returned non-digits: {reply.line!r}")
        return DigitInput(digits, reply.timed_out)


@dataclass(frozen=True)
class WaitForDigit(Command["str | None"]):
    timeout_ms: int
    verb: ClassVar[str] = "WAIT FOR DIGIT"
    media: ClassVar[bool] = True

    def line(self) -> CommandLine:
        return CommandLine((Word("WAIT FOR DIGIT"), str(self.timeout_ms)))

    def decode(self, reply: Reply) -> str | None:
        return _digit(reply.result_int)


@dataclass(frozen=True)
class _Say(Command["str | None"]):
    value: str
    escape_digits: str = ""
    media: ClassVar[bool] = True

    def line(self) -> CommandLine:
        return CommandLine((Word(self.verb), self.value, Quoted(self.escape_digits)))

    def decode(self, reply: Reply) -> str | None:
        return _digit(reply.result_int)


@dataclass(frozen=True)
class SayDigits(_Say):
    verb: ClassVar[str] = "SAY DIGITS"


@dataclass(frozen=True)
class SayNumber(_Say):
    verb: ClassVar[str] = "SAY NUMBER"


@dataclass(frozen=True)
class SayAlpha(_Say):
    verb: ClassVar[str] = "SAY ALPHA"


@dataclass(frozen=True)
class SayDate(_Say):
    """`value` is seconds since the epoch, as res_agi expects."""

    verb: ClassVar[str] = "SAY DATE"


@dataclass(frozen=True)
class SayTime(_Say):
    verb: ClassVar[str] = "SAY TIME"


@dataclass(frozen=True)
class Exec(Command[int]):
    """Run a dialplan application. res_agi passes only one argument string to the app,
    so the app's arguments are joined with commas and sent as one quoted word if needed."""

    application: str
    arguments: tuple[str, ...] = ()
    verb: ClassVar[str] = "EXEC"
    dead_ok: ClassVar[bool] = True
    media: ClassVar[bool] = True

    def line(self) -> CommandLine:
        parts: tuple[Word | Quoted | str, ...] = (Word("EXEC"), Word(self.application))
        if self.arguments:
            parts += (",".join(self.arguments),)
        return CommandLine(parts)

    def decode(self, reply: Reply) -> int:
        code = reply.result_int
        if code == -2:
            raise AgiAppNotFound(f"no application {self.application!r}")
        return code


@dataclass(frozen=True)
class GetVariable(Command["str | None"]):
    name: str
    verb: ClassVar[str] = "GET VARIABLE"
    dead_ok: ClassVar[bool] = True

    def line(self) -> CommandLine:
        return CommandLine((Word("GET VARIABLE"), self.name))

    def decode(self, reply: Reply) -> str | None:
        if reply.result_int == 0:
            return None
        return reply.data if reply.data is not None else ""


@dataclass(frozen=True)
class GetFullVariable(GetVariable):
    """Evaluates an expression such as `${CALLERID(num)}-${EXTEN}`."""

    verb: ClassVar[str] = "GET FULL VARIABLE"

    def line(self) -> CommandLine:
        return CommandLine((Word("GET FULL VARIABLE"), Quoted(self.name)))


@dataclass(frozen=True)
class SetVariable(Command[None]):
    name: str
    value: str
    verb: ClassVar[str] = "SET VARIABLE"
    dead_ok: ClassVar[bool] = True

    def line(self) -> CommandLine:
        return CommandLine((Word("SET VARIABLE"), self.name, Quoted(self.value)))

    def decode(self, reply: Reply) -> None:
        return None


@dataclass(frozen=True)
class SetMusic(Command[None]):
    """`SET MUSIC ON|OFF [class]`: music on hold while the AGI waits (res_agi handle_setmusic,
    always `200 result=0`; STREAM FILE stops it and does not restart it)."""

    on: bool
    music_class: str = "default"
    verb: ClassVar[str] = "SET MUSIC"

    def line(self) -> CommandLine:
        if self.on:
            return CommandLine((Word("SET MUSIC"), Word("ON"), self.music_class))
        return CommandLine((Word("SET MUSIC"), Word("OFF")))

    def decode(self, reply: Reply) -> None:
        return None


@dataclass(frozen=True)
class RecordFile(Command[Recording]):
    filename: str
    format: str = "wav"
    escape_digits: str = "#"
    timeout_ms: int = -1
    beep: bool = False
    silence_s: int | None = None
    verb: ClassVar[str] = "RECORD FILE"
    media: ClassVar[bool] = True

    def line(self) -> CommandLine:
        parts: tuple[Word | Quoted | str, ...] = (
            Word("RECORD FILE"),
            self.filename,
            self.format,
            Quoted(self.escape_digits),
            str(self.timeout_ms),
            "0",
        )
        if self.beep:
            parts += ("BEEP",)
        if self.silence_s is not None:
            parts += (f"s={self.silence_s}",)
        return CommandLine(parts)

    def decode(self, reply: Reply) -> Recording:
        """res_agi.c handle_recordfile's replies. `(randomerror)` is the beep's ast_waitstream
        result: the ASCII code of an escape digit pressed during the beep (the recording never
        started), or -1 when the channel hung up during it. `(writefile)`: the file could not be
        created. `(waitfor)`: waiting for audio failed, which on a live call means a hang-up."""
        endpos = reply.endpos or 0
        if reply.data == "dtmf":
            return Recording("dtmf", _digit(reply.result_int), endpos)
        if reply.data == "timeout":
            return Recording("timeout", None, endpos)
        if reply.data in ("hangup", "waitfor"):
            return Recording("hangup", None, endpos)
        if reply.data == "randomerror":
            code = reply.result_int
            if code < 0:
                return Recording("hangup", None, endpos, during_beep=True)
            return Recording("dtmf", _digit(code), endpos, during_beep=True)
        if reply.data == "writefile":
            raise AgiRecordNotWritten(f"Asterisk could not create {self.filename}.{self.format}: {reply.line}",
                                      self.filename)
        raise AgiCommandFailed(f"RECORD FILE failed: {reply.line}")


@dataclass(frozen=True)
class Hangup(Command[None]):
    verb: ClassVar[str] = "HANGUP"

    def line(self) -> CommandLine:
        return CommandLine((Word("HANGUP"),))

    def decode(self, reply: Reply) -> None:
        return None


@dataclass(frozen=True)
class ChannelStatus(Command[int]):
    verb: ClassVar[str] = "CHANNEL STATUS"

    def line(self) -> CommandLine:
        return CommandLine((Word("CHANNEL STATUS"),))

    def decode(self, reply: Reply) -> int:
        return reply.result_int


@dataclass(frozen=True)
class SetContext(_NoResult):
    context: str
    verb: ClassVar[str] = "SET CONTEXT"

    def line(self) -> CommandLine:
        return CommandLine((Word("SET CONTEXT"), self.context))


@dataclass(frozen=True)
class SetExtension(_NoResult):
    extension: str
    verb: ClassVar[str] = "SET EXTENSION"

    def line(self) -> CommandLine:
        return CommandLine((Word("SET EXTENSION"), self.extension))


@dataclass(frozen=True)
class SetPriority(_NoResult):
    priority: str
    verb: ClassVar[str] = "SET PRIORITY"

    def line(self) -> CommandLine:
        return CommandLine((Word("SET PRIORITY"), self.priority))


@dataclass(frozen=True)
class Verbose(Command[None]):
    message: str
    level: int = 1
    verb: ClassVar[str] = "VERBOSE"
    dead_ok: ClassVar[bool] = True

    def line(self) -> CommandLine:
        return CommandLine((Word("VERBOSE"), Quoted(self.message), str(self.level)))

    def decode(self, reply: Reply) -> None:
        return None
