"""Who ended a call, from the hang-up cause Asterisk gives the caller's channel (no I/O).

The FastAGI session only learns that the channel is gone, so the `ivr` script records
`hung_up_by = caller` for every hang-up it did not make itself. AMI's `Hangup` event of the
caller's channel then tells why (Q.850 cause, main/channel.c ast_cause2str): a caller's BYE is
16 Normal Clearing, but Asterisk also tears calls down on its own, e.g. 18 "No user
responding" when a phone never ACKs the 200 OK of its call, or when its timers expire.
"""

from __future__ import annotations

from typing import Final

# Asterisk's own timers ended the call: no response to a request (18; chan_pjsip maps a
# transaction timeout, 408, to it), no answer (19), a timer expiring (102).
PBX_CAUSES: Final = frozenset({18, 19, 102})
# The path to the caller failed: destination or network out of order, temporary failure,
# congestion, resource unavailable.
NETWORK_CAUSES: Final = frozenset({27, 34, 38, 41, 42, 47})


def ended_by_cause(cause: int) -> str | None:
    """`pbx` or `network` when the cause says the PBX or the network ended the call, None when
    it says nothing against the caller having hung up (16, 17, 31, 0 ...)."""
    if cause in PBX_CAUSES:
        return "pbx"
    if cause in NETWORK_CAUSES:
        return "network"
    return None
