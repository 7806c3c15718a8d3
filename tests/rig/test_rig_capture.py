"""How a rig call captures what it hears from pyVoIP's receiver thread (ivr.rig.phone).

The receiver thread writes each packet to its RTP client's `pmin`; the call swaps in its
own capture once it sees the call answered. A packet the thread wrote to pyVoIP's buffer
while the swap happened used to be lost: the first 20 ms of a prompt the far end played at
once, enough to make its recognition fail (score 0.62 against 0.85 needed)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

import numpy as np
from pyVoIP import RTP
from pyVoIP.VoIP import VoIPCall

from ivr.rig.audio import to_unsigned8
from ivr.rig.phone import RigCall


def packet(value: int) -> bytes:
    return to_unsigned8(np.full(160, value * 256, dtype=np.int16))


def test_a_packet_written_to_pyvoips_buffer_during_the_swap_is_still_heard_in_its_place() -> None:
    pyvoip_buffer = RTP.RTPPacketManager()  # type: ignore[no-untyped-call]
    client = SimpleNamespace(pmin=pyvoip_buffer)
    call = RigCall(cast(VoIPCall, SimpleNamespace(call_id="c1", RTPClients=[client])))
    pyvoip_buffer.write(5000, packet(1))  # before the call looked: replayed by the swap
    call._listen()
    pyvoip_buffer.write(5160, packet(2))  # the receiver thread still held the old buffer
    client.pmin.write(5320, packet(3))  # and then the capture
    heard = call.heard()
    first = int(np.argmax(heard != 0))
    assert [int(heard[first + n * 160]) // 256 for n in range(3)] == [1, 2, 3]
