"""Exceptions raised by the AGI codec and session.

One exception type, `AgiHangup`, means "the caller is gone": call flows catch it once,
at the top, to unwind cleanly. The others are programming or protocol errors.
"""

from __future__ import annotations


class AgiError(Exception):
    """Base class of every AGI failure."""


class AgiHangup(AgiError):
    """The channel hung up (HANGUP line, 511 on a dead channel, -1 from a media command)."""


class AgiConnectionLost(AgiHangup):
    """Asterisk closed the FastAGI connection; for the flow this is a hang-up too."""


class AgiProtocolError(AgiError):
    """The peer sent bytes that are not AGI (garbage, an over-long line, a broken env block)."""


class AgiTimeout(AgiError):
    """No reply (or no environment block) within the allowed time."""


class AgiInvalidCommand(AgiError):
    """510: Asterisk does not know the command."""


class AgiUsageError(AgiError):
    """520: the command's arguments were wrong; `usage` is Asterisk's usage text."""

    def __init__(self, message: str, usage: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.usage = usage


class AgiAppNotFound(AgiError):
    """EXEC of an application Asterisk does not have (result=-2)."""


class AgiCommandFailed(AgiError):
    """Any other failure reply (e.g. 503)."""


class AgiRecordNotWritten(AgiCommandFailed):
    """RECORD FILE answered `200 result=-1 (writefile)`: Asterisk could not create the file
    (its directory is missing on the PBX or not writable by Asterisk). The channel is still
    up and the session goes on; Asterisk ends the AGI with AGISTATUS=FAILURE afterwards."""

    def __init__(self, message: str, filename: str) -> None:
        super().__init__(message)
        self.filename = filename
