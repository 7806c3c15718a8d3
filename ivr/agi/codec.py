"""Sans-IO FastAGI codec: bytes from Asterisk in, typed events out; commands in, bytes out.

Nothing here awaits or touches a socket (the h11 pattern). `AgiParser` is fed whatever the
transport received and yields, in order: one `Environment`, then `Reply` and `HangupLine`
events, and finally `ConnectionClosed`. Reply forms follow Asterisk 22's res_agi.c and the
transcripts recorded from it (`200 result=N [(data)] [endpos=N]`, `100 result=0 Trying...`,
`510`, `511`, the multi-line `520-` usage block, the asynchronous `HANGUP` line).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final, Union
from urllib.parse import parse_qsl, urlsplit

from ivr.agi.errors import AgiProtocolError

DEAD_CHANNEL: Final = 511
USAGE: Final = 520
INVALID: Final = 510
TRYING: Final = 100
SUCCESS: Final = 200


@dataclass(frozen=True)
class Environment:
    """The `agi_*` block Asterisk sends when it connects."""

    variables: dict[str, str]
    args: tuple[str, ...]

    def get(self, name: str, default: str = "") -> str:
        return self.variables.get(name, default)

    @property
    def channel(self) -> str:
        return self.get("channel")

    @property
    def uniqueid(self) -> str:
        return self.get("uniqueid")

    @property
    def callerid(self) -> str:
        return self.get("callerid")

    @property
    def calleridname(self) -> str:
        return self.get("calleridname")

    @property
    def extension(self) -> str:
        return self.get("extension")

    @property
    def context(self) -> str:
        return self.get("context")

    @property
    def language(self) -> str:
        return self.get("language")

    @property
    def dnid(self) -> str:
        """The dialed number, or "" when Asterisk says `unknown` (Local channels, many trunks)."""
        value = self.get("dnid")
        return "" if value == "unknown" else value

    @property
    def network_script(self) -> str:
        return self.get("network_script")

    @property
    def script_path(self) -> str:
        """`ivr` for `agi://host/ivr?hotline=400`."""
        return urlsplit("agi://h/" + self.network_script).path.strip("/")

    @property
    def query(self) -> dict[str, str]:
        """Query parameters of the AGI URL (first value wins)."""
        pairs = parse_qsl(urlsplit("agi://h/" + self.network_script).query, keep_blank_values=True)
        result: dict[str, str] = {}
        for key, value in pairs:
            result.setdefault(key, value)
        return result


@dataclass(frozen=True)
class Reply:
    """One complete reply to a command."""

    code: int
    result: str | None = None  # the text after `result=`, e.g. "50", "", "-1", "13"
    data: str | None = None  # the text in parentheses: a value, "timeout", "dtmf", "hangup"
    endpos: int | None = None
    extra: str = ""  # trailing text, e.g. "Gosub complete" or a 510 message
    usage: tuple[str, ...] = ()  # the body of a 520 block
    line: str = ""

    @property
    def result_int(self) -> int:
        if self.result is None or self.result == "":
            raise AgiProtocolError(f"reply has no numeric result: {self.line!r}")
        try:
            return int(self.result)
        except ValueError:
            raise AgiProtocolError(f"reply result is not a number: {self.line!r}") from None

    @property
    def timed_out(self) -> bool:
        return self.data == "timeout"


@dataclass(frozen=True)
class HangupLine:
    """The `HANGUP` line FastAGI sends when the channel hangs up (AGISIGHUP)."""


@dataclass(frozen=True)
class ConnectionClosed:
    """The peer closed the connection; `partial` is what was left unparsed."""

    partial: bytes = b""


class NeedData:
    """Sentinel: feed more bytes before the next event."""

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = NeedData()

Event = Union[Environment, Reply, HangupLine, ConnectionClosed]

_ENV_LINE = re.compile(r"^agi_([a-z0-9_]+): ?(.*)$")
_STATUS_LINE = re.compile(r"^(\d{3})(?:[ -](.*))?$")
_DATA_ENDPOS = re.compile(r"^\((.*)\) endpos=(-?\d+)$")
_ENDPOS = re.compile(r"^endpos=(-?\d+)(?: (.*))?$")
_MAX_ENV_LINES: Final = 512


class AgiParser:
    """Incremental parser for what Asterisk sends on a FastAGI connection."""

    def __init__(self, max_line: int = 8192) -> None:
        self._max_line = max_line
        self._buffer = bytearray()
        self._eof = False
        self._closed_emitted = False
        self._env_done = False
        self._env: dict[str, str] = {}
        self._env_lines = 0
        self._usage: list[str] | None = None
        self._usage_first = ""

    @property
    def in_environment(self) -> bool:
        return not self._env_done

    def receive_data(self, data: bytes) -> None:
        """Feed bytes; `b""` means the peer closed the connection."""
        if self._eof:
            if data:
                raise RuntimeError("data received after EOF")
            return
        if not data:
            self._eof = True
            return
        self._buffer += data
        if len(self._buffer) > self._max_line and b"\n" not in self._buffer[: self._max_line + 1]:
            raise AgiProtocolError(f"line longer than {self._max_line} bytes")

    def next_event(self) -> Event | NeedData:
        while True:
            line = self._take_line()
            if line is None:
                if self._eof and not self._closed_emitted:
                    self._closed_emitted = True
                    partial = bytes(self._buffer)
                    self._buffer.clear()
                    return ConnectionClosed(partial)
                return NEED_DATA
            event = self._handle_line(line)
            if event is not None:
                return event

    def _take_line(self) -> str | None:
        end = self._buffer.find(b"\n")
        if end < 0:
            return None
        raw = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        if len(raw) > self._max_line:
            raise AgiProtocolError(f"line longer than {self._max_line} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise AgiProtocolError(f"line is not UTF-8: {raw[:80]!r}") from None
        return text.removesuffix("\r")

    def _handle_line(self, line: str) -> Event | None:
        if not self._env_done:
            return self._env_line(line)
        if self._usage is not None:
            if line.startswith("520 "):
                usage = tuple(self._usage)
                self._usage = None
                return Reply(USAGE, extra=self._usage_first, usage=usage, line=line)
            self._usage.append(line)
            if len(self._usage) > _MAX_ENV_LINES:
                raise AgiProtocolError("520 usage block does not end")
            return None
        if line == "HANGUP":
            return HangupLine()
        return self._status_line(line)

    def _env_line(self, line: str) -> Environment | None:
        if line == "":
            if not self._env:
                raise AgiProtocolError("empty AGI environment")
            self._env_done = True
            args = []
            index = 1
            while f"arg_{index}" in self._env:
                args.append(self._env[f"arg_{index}"])
                index += 1
            return Environment(dict(self._env), tuple(args))
        match = _ENV_LINE.match(line)
        if match is None:
            raise AgiProtocolError(f"not an AGI environment line: {line[:80]!r}")
        self._env_lines += 1
        if self._env_lines > _MAX_ENV_LINES:
            raise AgiProtocolError("AGI environment block does not end")
        self._env[match.group(1)] = match.group(2)
        return None

    def _status_line(self, line: str) -> Reply | None:
        match = _STATUS_LINE.match(line)
        if match is None:
            raise AgiProtocolError(f"not an AGI reply: {line[:80]!r}")
        code = int(match.group(1))
        rest = match.group(2) or ""
        if code == USAGE and line.startswith("520-"):
            self._usage = []
            self._usage_first = rest
            return None
        if rest.startswith("result="):
            return _result_reply(code, rest, line)
        return Reply(code, extra=rest, line=line)


def _result_reply(code: int, rest: str, line: str) -> Reply:
    """`result=<value> [(data)] [endpos=<n>] [text]`; data may itself hold parentheses
    (a variable's value), so it runs to the last `)` unless an endpos follows it."""
    result, _, tail = rest[len("result=") :].partition(" ")
    data: str | None = None
    endpos: int | None = None
    extra = ""
    if tail.startswith("("):
        with_endpos = _DATA_ENDPOS.match(tail)
        if with_endpos is not None:
            data, endpos = with_endpos.group(1), int(with_endpos.group(2))
        elif tail.endswith(")"):
            data = tail[1:-1]
        else:
            raise AgiProtocolError(f"malformed result: {line[:80]!r}")
    elif tail.startswith("endpos="):
        matched = _ENDPOS.match(tail)
        if matched is None:
            raise AgiProtocolError(f"malformed endpos: {line[:80]!r}")
        endpos, extra = int(matched.group(1)), matched.group(2) or ""
    else:
        extra = tail
    return Reply(code, result=result, data=data, endpos=endpos, extra=extra, line=line)


# --- encoding --------------------------------------------------------------------

_NEEDS_QUOTES = re.compile(r'[\s"\\]')


def quote(arg: str) -> str:
    """Quote one argument the way res_agi's parse_args reads it back."""
    if "\n" in arg or "\r" in arg:
        raise ValueError(f"AGI arguments cannot contain line breaks: {arg!r}")
    if arg and not _NEEDS_QUOTES.search(arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class Word:
    """A command word sent as is (never quoted), e.g. `STREAM FILE`."""

    text: str


@dataclass(frozen=True)
class Quoted:
    """An argument always sent in double quotes (escape digits, as Asterisk's own docs show)."""

    text: str


@dataclass(frozen=True)
class CommandLine:
    parts: tuple[Word | Quoted | str, ...] = field(default=())

    def encode(self) -> bytes:
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, Word):
                out.append(part.text)
            elif isinstance(part, Quoted):
                if "\n" in part.text or "\r" in part.text:
                    raise ValueError(f"AGI arguments cannot contain line breaks: {part.text!r}")
                out.append('"' + part.text.replace("\\", "\\\\").replace('"', '\\"') + '"')
            else:
                out.append(quote(part))
        return (" ".join(out) + "\n").encode("utf-8")


def encode_environment(variables: list[tuple[str, str]]) -> bytes:
    """Bytes of an env block as Asterisk writes it (used by tests and the PBX peer's checks)."""
    return "".join(f"agi_{key}: {value}\n" for key, value in variables).encode() + b"\n"
