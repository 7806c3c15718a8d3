"""How a rig call captures what it hears (ivr.rig.phone): the conference bridge's clock
thread hands the call's media port one 20 ms frame per tick, jitter-buffered; the port lays
them one after the other on the call's timeline, a frame without audio as silence."""

from __future__ import annotations

import time

import numpy as np
import pjsua2 as pj
import pytest

from ivr.rig.audio import Timeline
from ivr.rig.phone import FRAME, _endpoint, _Media, _Port, _vector_reader


@pytest.fixture(autouse=True)
def endpoint() -> None:
    _endpoint()  # a media port belongs to the process's endpoint, also when it goes away


def frame(value: int | None) -> pj.MediaFrame:
    made = pj.MediaFrame()
    if value is None:
        made.type = pj.PJMEDIA_FRAME_TYPE_NONE
        made.size = 0
    else:
        made.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
        made.buf = pj.ByteVector(np.full(FRAME, value, dtype="<i2").tobytes())
        made.size = 2 * FRAME
    return made


def test_received_frames_are_laid_end_to_end_and_a_frame_without_audio_is_silence() -> None:
    media = _Media()
    port = _Port(media, _vector_reader())
    port.onFrameReceived(frame(1000))  # before the call's audio is connected: not heard
    media.timeline = Timeline(time.monotonic())
    for value in (1000, None, -2000):
        port.onFrameReceived(frame(value))
    heard = media.timeline.pcm(time.monotonic())
    first = int(np.argmax(heard != 0))
    assert first % FRAME == 0
    assert [int(heard[first + n * FRAME + 17]) for n in range(3)] == [1000, 0, -2000]
    assert media.received == 3 * FRAME


def test_queued_audio_is_sent_in_frames_then_silence() -> None:
    media = _Media()
    port = _Port(media, _vector_reader())
    media.outgoing += np.arange(FRAME + 10, dtype="<i2").tobytes()
    sent = []
    for _ in range(3):
        out = pj.MediaFrame()
        port.onFrameRequested(out)
        assert out.type == pj.PJMEDIA_FRAME_TYPE_AUDIO and out.size == 2 * FRAME
        sent.append(np.frombuffer(bytes(out.buf), dtype="<i2"))
    assert list(sent[0]) == list(range(FRAME))
    assert list(sent[1][:10]) == list(range(FRAME, FRAME + 10)) and not sent[1][10:].any()
    assert not sent[2].any()
    assert media.sent == 2 * (FRAME + 10)


def test_the_fast_vector_read_gives_the_vectors_bytes() -> None:
    data = bytes(range(256)) * 2
    assert _vector_reader()(pj.ByteVector(data), len(data)) == data
