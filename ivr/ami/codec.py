"""A sans-IO codec for the Asterisk Manager Interface (AMI), in the style of h11.

Bytes go in with `receive_data()` (`b""` means the peer closed), typed messages come out
of `next_event()`: first the `Banner` (``Asterisk Call Manager/<version>``) when reading
Asterisk's side, then `Response`, `Event` (or `Action`, when reading a client's side),
and `ConnectionClosed` after a clean EOF. Headers keep their order and repeated keys
(``ChanVariable``, ``Variable``). Lines may end in CRLF (what Asterisk sends) or a bare
LF. A line or a message over its cap, a header line without a colon, a message of an
unknown kind or a close in the middle of a message raise `AmiProtocolError`, and every
later call raises it again.

`encode_action()` / `encode_message()` turn headers into the bytes Asterisk expects.
The codec never blocks, awaits or touches a socket.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

CRLF: Final = b"\r\n"
BANNER_PREFIX: Final = "Asterisk Call Manager/"
DEFAULT_MAX_LINE: Final = 16 * 1024
DEFAULT_MAX_MESSAGE: Final = 1024 * 1024
DEFAULT_MAX_HEADERS: Final = 4096
# Header names Asterisk uses: letters, digits and - _ ( ) . / (e.g. "Cause-txt", "CID-CallingPres").
_KEY = re.compile(r"[A-Za-z0-9_\-()./]+\Z")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

Header = tuple[str, str]
HeaderInput = Mapping[str, "str | Sequence[str]"] | Iterable[Header]


class AmiProtocolError(Exception):
    """The byte stream is not AMI (garbage, a line or message over the cap, cut short)."""


class _NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = _NeedData()


@dataclass(frozen=True)
class Banner:
    """The first line Asterisk sends: ``Asterisk Call Manager/11.0.0``."""

    line: str

    @property
    def version(self) -> str:
        return self.line[len(BANNER_PREFIX):] if self.line.startswith(BANNER_PREFIX) else ""


@dataclass(frozen=True)
class ConnectionClosed:
    """The peer closed the connection between two messages."""


@dataclass(frozen=True)
class Message:
    """One AMI message: its headers in wire order, repeated keys kept."""

    headers: tuple[Header, ...]

    def get(self, key: str, default: str | None = None) -> str | None:
        """The first value of `key` (case-insensitive, as Asterisk's astman_get_header)."""
        wanted = key.lower()
        for name, value in self.headers:
            if name.lower() == wanted:
                return value
        return default

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def get_all(self, key: str) -> list[str]:
        wanted = key.lower()
        return [value for name, value in self.headers if name.lower() == wanted]

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.headers]

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")

    def encode(self) -> bytes:
        return encode_message(self.headers)


@dataclass(frozen=True)
class Response(Message):
    """``Response: Success|Error|Goodbye|Follows`` and what follows it."""

    @property
    def status(self) -> str:
        return self.headers[0][1]

    @property
    def success(self) -> bool:
        return self.status in ("Success", "Goodbye", "Follows")

    @property
    def message(self) -> str | None:
        return self.get("Message")


@dataclass(frozen=True)
class Event(Message):
    """``Event: <name>`` and its headers."""

    @property
    def name(self) -> str:
        return self.headers[0][1]

    @property
    def privilege(self) -> str | None:
        return self.get("Privilege")


@dataclass(frozen=True)
class Action(Message):
    """What a client sends (read by an Asterisk stand-in); `name` is "" without an Action header."""

    @property
    def name(self) -> str:
        return self.get("Action") or ""


AmiMessage = Response | Event | Action
AmiEvent = Banner | Response | Event | Action | ConnectionClosed

_KINDS: Final[dict[str, type[Response] | type[Event]]] = {"response": Response, "event": Event}


class AmiParser:
    """Incremental AMI parser.

    role="client": reading what Asterisk sends (banner first, then Response/Event).
    role="server": reading what a client sends (no banner; every message is an `Action`).
    """

    def __init__(
        self,
        role: Literal["client", "server"] = "client",
        *,
        max_line: int = DEFAULT_MAX_LINE,
        max_message: int = DEFAULT_MAX_MESSAGE,
        max_headers: int = DEFAULT_MAX_HEADERS,
    ) -> None:
        self.role = role
        self.max_line = max_line
        self.max_message = max_message
        self.max_headers = max_headers
        self._buf = bytearray()
        self._pos = 0  # start of the unread bytes in _buf
        self._scan = 0  # where to resume looking for b"\n"
        self._want_banner = role == "client"
        self._headers: list[Header] = []
        self._message_bytes = 0
        self._eof = False
        self._closed_reported = False
        self._error: AmiProtocolError | None = None

    # --- input --------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        if self._eof:
            if data:
                raise RuntimeError("receive_data() after EOF")
            return
        if not data:
            self._eof = True
            return
        self._buf += data

    # --- output -------------------------------------------------------------------------

    def next_event(self) -> AmiEvent | _NeedData:
        """The next complete item, or NEED_DATA. Raises AmiProtocolError (sticky)."""
        if self._error is not None:
            raise self._error
        try:
            return self._next()
        except AmiProtocolError as exc:
            self._error = exc
            raise

    def feed(self, data: bytes) -> list[AmiEvent]:
        """receive_data() then every complete item (convenience for one-shot callers)."""
        self.receive_data(data)
        return list(self.events())

    def events(self) -> Iterator[AmiEvent]:
        while True:
            item = self.next_event()
            if isinstance(item, _NeedData):
                return
            yield item
            if isinstance(item, ConnectionClosed):
                return

    @property
    def pending(self) -> int:
        """Bytes received but not yet part of a returned item."""
        return len(self._buf) - self._pos + self._message_bytes

    # --- internals ----------------------------------------------------------------------

    def _fail(self, reason: str) -> AmiProtocolError:
        return AmiProtocolError(reason)

    def _line(self) -> str | None:
        index = self._buf.find(b"\n", max(self._scan, self._pos))
        if index < 0:
            self._scan = len(self._buf)
            if len(self._buf) - self._pos > self.max_line:
                raise self._fail(f"line longer than {self.max_line} bytes")
            if self._pos:
                del self._buf[: self._pos]
                self._scan -= self._pos
                self._pos = 0
            return None
        raw = bytes(self._buf[self._pos:index])
        self._message_bytes += index + 1 - self._pos
        self._pos = index + 1
        if self._pos >= 65536:
            del self._buf[: self._pos]
            self._pos = 0
        self._scan = self._pos
        if len(raw) > self.max_line:
            raise self._fail(f"line longer than {self.max_line} bytes")
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if self._message_bytes > self.max_message:
            raise self._fail(f"message larger than {self.max_message} bytes")
        return raw.decode("utf-8", errors="replace")

    def _next(self) -> AmiEvent | _NeedData:
        while True:
            line = self._line()
            if line is None:
                if self._eof:
                    if len(self._buf) > self._pos or self._headers:
                        raise self._fail(
                            f"connection closed inside a message ({self.pending} bytes pending)")
                    if self._want_banner:
                        raise self._fail("connection closed before the banner")
                    if not self._closed_reported:
                        self._closed_reported = True
                        return ConnectionClosed()
                return NEED_DATA
            if self._want_banner:
                self._want_banner = False
                self._message_bytes = 0
                if not line.startswith(BANNER_PREFIX):
                    raise self._fail(f"expected the banner {BANNER_PREFIX}<version>, got {line[:80]!r}")
                return Banner(line)
            if line == "":
                if not self._headers:
                    self._message_bytes = 0
                    continue  # blank lines between messages
                return self._finish()
            key, sep, rest = line.partition(":")
            if not sep or not _KEY.match(key):
                raise self._fail(f"not an AMI header line: {line[:80]!r}")
            if self.role == "client" and not self._headers and key.lower() not in ("response", "event"):
                raise self._fail(f"message starts with {key!r}, expected Response or Event")
            if len(self._headers) >= self.max_headers:
                raise self._fail(f"more than {self.max_headers} headers in one message")
            # Asterisk writes "Key: value"; astman_get_header skips the blanks after the colon.
            self._headers.append((key, rest[1:] if rest.startswith(" ") else rest))

    def _finish(self) -> AmiMessage:
        headers = tuple(self._headers)
        self._headers = []
        self._message_bytes = 0
        if self.role == "server":
            return Action(headers)  # Asterisk looks for the Action header anywhere in the message
        return _KINDS[headers[0][0].lower()](headers)


def parse_stream(data: bytes, role: Literal["client", "server"] = "client") -> list[AmiEvent]:
    """Parse a complete byte stream (EOF included); raises AmiProtocolError."""
    parser = AmiParser(role)
    parser.receive_data(data)
    parser.receive_data(b"")
    return list(parser.events())


# --- encoding -----------------------------------------------------------------------------


def _pairs(headers: HeaderInput) -> Iterator[Header]:
    if isinstance(headers, Mapping):
        for key, value in headers.items():
            if isinstance(value, str):
                yield key, value
            else:
                for item in value:
                    yield key, item
    else:
        yield from headers


def encode_message(headers: HeaderInput) -> bytes:
    """``Key: value\\r\\n`` for each header, then the blank line. Refuses CR/LF injection."""
    out: list[str] = []
    for key, value in _pairs(headers):
        if not _KEY.match(key):
            raise ValueError(f"invalid AMI header name {key!r}")
        if _BAD_VALUE.search(value):
            raise ValueError(f"control character in the value of {key!r}")
        out.append(f"{key}: {value}\r\n")
    if not out:
        raise ValueError("an AMI message needs at least one header")
    return ("".join(out) + "\r\n").encode("utf-8")


_action_ids = itertools.count(1)


def encode_action(name: str, headers: HeaderInput = (), *, action_id: str | None = None) -> bytes:
    """An action: ``Action: <name>``, ``ActionID``, then the headers in the order given.
    Lists (or repeated pairs) become repeated keys, e.g. ``Variable: A=1`` ``Variable: B=2``."""
    pairs = list(_pairs(headers))
    if any(key.lower() in ("action", "actionid") for key, _ in pairs):
        raise ValueError("pass the action name and action_id as arguments, not as headers")
    aid = action_id if action_id is not None else f"ivr-{next(_action_ids)}"
    return encode_message([("Action", name), ("ActionID", aid), *pairs])


def banner(version: str = "11.0.0") -> bytes:
    """What Asterisk sends first on a new AMI connection (manager.c: "Asterisk Call Manager/%s\\r\\n")."""
    return f"{BANNER_PREFIX}{version}\r\n".encode()
