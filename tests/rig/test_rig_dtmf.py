"""DTMF without a network: RFC 4733 payloads and packet trains, in-band tones and the
Goertzel detector on generated tones, noise, the phone path's distortions and speech."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from ivr.rig.audio import from_unsigned8, load_wav, to_unsigned8
from ivr.rig.dtmf import (
    KEYS,
    DtmfError,
    RtpHeader,
    TelephoneEvent,
    as_event,
    detect,
    detect_keys,
    key_press,
    key_presses,
    tone,
    tones,
)
from rigkit import PROMPTS

# --- RFC 4733 ------------------------------------------------------------------------------


def test_a_telephone_event_is_four_bytes_as_rfc4733_lays_them_out() -> None:
    # event 5, E bit set, volume 10, duration 800 samples (100 ms)
    assert TelephoneEvent("5", True, 10, 800).encode() == bytes([5, 0x80 | 10, 0x03, 0x20])
    assert TelephoneEvent("#", False, 0, 160).encode() == bytes([11, 0, 0, 160])


@pytest.mark.parametrize("key", list(KEYS))
def test_every_key_survives_encode_and_decode(key: str) -> None:
    event = TelephoneEvent(key, key in "05#", 10, 480)
    assert TelephoneEvent.decode(event.encode()) == event


@pytest.mark.parametrize(
    "payload, fragment",
    [(b"\x05\x0a\x00", "4 bytes"), (bytes([16, 10, 0, 160]), "event 16")],
)
def test_a_broken_payload_is_refused(payload: bytes, fragment: str) -> None:
    with pytest.raises(DtmfError, match=fragment):
        TelephoneEvent.decode(payload)


@pytest.mark.parametrize("key", ["x", "12", "", "E"])
def test_a_non_key_is_refused(key: str) -> None:
    with pytest.raises(DtmfError, match="not a DTMF key"):
        TelephoneEvent(key, False, 10, 160).encode()


def test_one_key_press_is_a_marked_start_growing_durations_and_three_end_packets() -> None:
    packets = key_press("7", duration_ms=100)
    events = [TelephoneEvent.decode(p.payload) for p in packets]

    assert [p.marker for p in packets] == [True] + [False] * 7
    assert [p.starts_event for p in packets] == [True] + [False] * 7
    assert [e.duration for e in events] == [160, 320, 480, 640, 800, 800, 800, 800]
    assert [e.end for e in events] == [False] * 5 + [True] * 3
    assert {e.key for e in events} == {"7"}


def test_several_keys_leave_audio_slots_between_them() -> None:
    slots = key_presses("12", duration_ms=60, gap_ms=100)
    starts = [i for i, p in enumerate(slots) if p is not None and p.starts_event]

    assert starts == [0, 6 + 5]  # 3 + 3 end packets, then 5 slots (100 ms) of audio
    assert slots[6:11] == [None] * 5


def test_an_audio_packet_becomes_an_event_packet_of_the_same_stream() -> None:
    audio = RtpHeader(False, 0, 4711, 123456, 0xCAFE).encode() + b"\xff" * 160
    event = key_press("9")[0]

    packet = as_event(audio, event, 101, 120000)

    header = RtpHeader.parse(packet)
    assert header == RtpHeader(True, 101, 4711, 120000, 0xCAFE)  # same sequence and SSRC
    assert TelephoneEvent.decode(packet[12:]) == TelephoneEvent("9", False, 10, 160)
    assert len(packet) == 16


def test_a_packet_that_is_not_rtp_version_2_is_refused() -> None:
    with pytest.raises(DtmfError):
        RtpHeader.parse(struct.pack("!BBHII", 0x40, 0, 1, 2, 3))


# --- in-band tones ----------------------------------------------------------------------------


def test_every_key_generated_is_detected() -> None:
    assert detect_keys(tones(KEYS)) == KEYS


def test_a_key_pressed_twice_is_detected_twice_and_its_start_is_found() -> None:
    pcm = np.concatenate([np.zeros(800, dtype=np.int16), tones("44")])
    found = detect(pcm)
    assert [k.key for k in found] == ["4", "4"]
    assert abs(found[0].start - 800) <= 205  # within one detector block
    assert abs(found[1].start - (800 + 2 * 960)) <= 205


@pytest.mark.parametrize("snr_db", [20, 10, 6])
def test_tones_in_white_noise_are_detected(snr_db: float) -> None:
    pcm = tones("0123456789*#").astype(np.float64)
    rng = np.random.default_rng(snr_db)
    power = np.mean(tone("5").astype(np.float64) ** 2)
    noisy = pcm + rng.normal(0, np.sqrt(power / 10 ** (snr_db / 10)), len(pcm))
    assert detect_keys(np.clip(noisy, -32768, 32767).astype(np.int16)) == "0123456789*#"


def test_tones_through_the_phone_path_are_detected() -> None:
    # what pyVoIP hands out: mu-law decoded to 8-bit linear, 6 dB down
    pcm = (tones("147*").astype(np.float64) * 0.5).astype(np.int16)
    assert detect_keys(from_unsigned8(to_unsigned8(pcm))) == "147*"


def test_noise_and_silence_hold_no_keys() -> None:
    rng = np.random.default_rng(7)
    noise = np.clip(rng.normal(0, 3000, 8000 * 5), -32768, 32767).astype(np.int16)
    assert detect_keys(noise) == ""
    assert detect_keys(np.zeros(8000, dtype=np.int16)) == ""


def test_too_short_tones_are_not_keys() -> None:
    assert detect_keys(tones("123", on=0.02, off=0.05)) == ""


def test_speech_holds_no_keys() -> None:
    """No built prompt (both languages) makes the detector hear a key."""
    heard = {f"{p.parent.name}/{p.stem}": detect_keys(load_wav(p)) for p in sorted(PROMPTS.glob("*/*.wav"))}
    assert len(heard) > 40
    assert {name: keys for name, keys in heard.items() if keys} == {}
