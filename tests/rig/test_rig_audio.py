"""Prompt recognition on the real built prompts, with and without what a phone path does to
them; the receive timeline; sound and silence."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from ivr.rig.audio import (
    RATE,
    AudioError,
    Template,
    Timeline,
    best_match,
    find_prompt,
    from_unsigned8,
    load_wav,
    silence,
    sound,
    to_unsigned8,
)
from ivr.rig import audio
from ivr.rig.dtmf import Pcm
from rigkit import prompt

# The prompts the example scenarios expect, in the order the example flow plays them.
FLOW = [
    ("zh-CN", "recording-notice"),
    ("zh-CN", "welcome"),
    ("zh-CN", "choose-language"),
    ("en-US", "main-menu"),
    ("en-US", "billing-menu"),
    ("en-US", "connecting-agent"),
    ("en-US", "survey-intro"),
    ("en-US", "goodbye"),
]


def _quiet(seconds: float) -> Pcm:
    return np.zeros(round(seconds * RATE), dtype=np.int16)


def _phone_path(pcm: Pcm, *, gain_db: float = 0.0, snr_db: float | None = None, seed: int = 0) -> Pcm:
    """What a rig phone receives: gain, line noise, then pyVoIP's 8-bit samples."""
    x = pcm.astype(np.float64) * 10 ** (gain_db / 20)
    if snr_db is not None:
        power = np.mean(x**2)
        x = x + np.random.default_rng(seed).normal(0, np.sqrt(power / 10 ** (snr_db / 10)), len(x))
    return from_unsigned8(to_unsigned8(np.clip(x, -32768, 32767).astype(np.int16)))


def _call(prompts: list[tuple[str, str]]) -> tuple[Pcm, dict[tuple[str, str], int]]:
    """The prompts played one after the other, as an IVR does; where each starts."""
    parts: list[Pcm] = [_quiet(0.7)]
    starts = {}
    at = len(parts[0])
    for key in prompts:
        pcm = prompt(*key)
        starts[key] = at
        parts += [pcm, _quiet(0.05)]
        at += len(pcm) + round(0.05 * RATE)
    return np.concatenate(parts), starts


@pytest.mark.parametrize(
    "distortion",
    [{}, {"gain_db": -9.0}, {"gain_db": 4.0, "snr_db": 30.0}, {"gain_db": -3.0, "snr_db": 20.0}],
    ids=["8-bit", "quieter", "louder-noisy", "noisy"],
)
def test_each_prompt_of_the_flow_is_recognised_where_it_was_played(distortion: dict[str, float]) -> None:
    played, starts = _call(FLOW)
    heard = _phone_path(played, **distortion)
    for key in FLOW:
        template = Template.of(key[1], prompt(*key))
        match = find_prompt(template, heard, threshold=0.85)
        assert match is not None, key
        sound_starts = starts[key] + template.lead_in
        assert abs(match.start - sound_starts) <= 160, key  # within 20 ms
        assert match.end - match.start == pytest.approx(template.seconds * RATE, abs=1)


def test_prompts_that_were_not_played_are_not_recognised() -> None:
    heard = _phone_path(_call(FLOW)[0], snr_db=30.0)
    others = [("en-US", p) for p in ("billing-menu", "technical-menu", "closed", "leave-message", "invalid-option")]
    others += [("zh-CN", p) for p in ("main-menu", "goodbye", "connecting-operator")]
    for key in others:
        if key in FLOW:
            continue
        template = Template.of(key[1], prompt(*key))
        assert find_prompt(template, heard, threshold=0.85) is None, key
        best = best_match(template, heard)
        assert best is not None and best.score < 0.8, (key, best.score)


def test_the_same_prompt_in_the_other_language_is_not_recognised() -> None:
    heard = _phone_path(_call([("zh-CN", "main-menu")])[0])
    assert find_prompt(Template.of("main-menu", prompt("en-US", "main-menu")), heard) is None


def test_a_prompt_cut_short_is_not_recognised() -> None:
    menu = prompt("en-US", "main-menu")
    heard = _phone_path(np.concatenate([_quiet(0.5), menu[: len(menu) * 6 // 10], _quiet(3.0)]))
    assert find_prompt(Template.of("main-menu", menu), heard) is None


def test_the_search_starts_where_it_is_told() -> None:
    heard = _phone_path(_call([("en-US", "goodbye"), ("en-US", "welcome")])[0])
    goodbye = Template.of("goodbye", prompt("en-US", "goodbye"))
    first = find_prompt(goodbye, heard)
    assert first is not None
    assert find_prompt(goodbye, heard, start=first.end) is None


def test_not_enough_audio_yet_is_no_match() -> None:
    menu = Template.of("main-menu", prompt("en-US", "main-menu"))
    assert find_prompt(menu, _quiet(2.0)) is None
    assert best_match(menu, _quiet(2.0)) is None


def test_a_silent_file_cannot_be_a_template() -> None:
    with pytest.raises(AudioError, match="nothing to recognise"):
        Template.of("silence", _quiet(2.0))


def test_a_wav_that_is_not_8khz_mono_16bit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cd.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(44100)
        w.writeframes(b"\0" * 400)
    with pytest.raises(AudioError, match="44100 Hz, 2 channel"):
        load_wav(path)
    with pytest.raises(AudioError):
        load_wav(tmp_path / "missing.wav")


# --- the receive timeline -------------------------------------------------------------------


def _packet(value: int) -> Pcm:
    return np.full(160, value, dtype=np.int16)


def test_packets_are_placed_by_timestamp_not_by_arrival() -> None:
    timeline = Timeline(start=100.0)
    timeline.add(100.02, 5000, _packet(1))
    # the next two come in one burst, late and swapped
    timeline.add(100.09, 5320, _packet(3))
    timeline.add(100.09, 5160, _packet(2))
    pcm = timeline.pcm(100.2)
    assert list(pcm[0:480:160]) == [1, 2, 3]


def test_a_stream_starts_on_the_envelopes_frame_grid_whenever_its_first_packet_came() -> None:
    timeline = Timeline(start=0.0)
    timeline.add(0.1234, 7000, _packet(1))  # arrived 987 samples in: 827 once its 160 are taken off
    timeline.add(0.1434, 7160, _packet(2))
    pcm = timeline.pcm(0.3, latency=0.0)
    assert int(np.argmax(pcm != 0)) == 800 and pcm[960] == 2


def test_a_gap_is_silence_and_the_timeline_runs_on_to_now() -> None:
    timeline = Timeline(start=0.0)
    timeline.add(0.02, 0, _packet(5))
    timeline.add(1.02, 8000, _packet(6))  # nothing for one second
    pcm = timeline.pcm(3.0, latency=0.1)
    assert len(pcm) == round(2.9 * RATE)
    assert (pcm[160:8000] == 0).all() and pcm[8000] == 6


def test_a_new_source_with_another_timestamp_base_is_placed_by_its_arrival() -> None:
    timeline = Timeline(start=0.0)
    timeline.add(0.02, 1000, _packet(1))
    timeline.add(2.02, 3_000_000_000, _packet(2))  # e.g. the PBX bridged another stream
    timeline.add(2.04, 3_000_000_160, _packet(3))
    pcm = timeline.pcm(2.1, latency=0.0)
    assert pcm[2 * RATE] == 2 and pcm[2 * RATE + 160] == 3


def test_timestamps_wrap_around() -> None:
    timeline = Timeline(start=0.0)
    timeline.add(0.02, 2**32 - 160, _packet(1))
    timeline.add(0.04, 0, _packet(2))
    pcm = timeline.pcm(0.04, latency=0.0)
    assert pcm[0] == 1 and pcm[160] == 2


# --- sound and silence ----------------------------------------------------------------------


def test_sound_and_silence_are_found_after_the_start_given() -> None:
    beep = (8000 * np.sin(2 * np.pi * 1000 * np.arange(800) / RATE)).astype(np.int16)
    pcm = np.concatenate([_quiet(1.0), beep, _quiet(2.0)])

    end = sound(pcm, seconds=0.08)
    assert end is not None and RATE < end <= RATE + 800
    assert sound(pcm, seconds=0.2) is None  # the beep lasts 0.1 s
    assert sound(pcm, start=RATE + 800) is None

    quiet_end = silence(pcm, start=RATE, seconds=1.5)
    assert quiet_end is not None and quiet_end >= RATE + 800 + round(1.5 * RATE)
    assert silence(pcm, start=RATE, seconds=2.5) is None


def _jitter_buffer_warps(pcm: Pcm) -> Pcm:
    """What pjmedia's adaptive jitter buffer did to prompts on the real PBX: 30-40 ms of
    silence inserted when it ran empty, 10 ms frames dropped while it shrank, every second
    or so (0.69-0.89 where a rigid match wants 0.85)."""
    parts, last = [], 0
    for n, second in enumerate(np.arange(0.6, len(pcm) / audio.RATE - 0.5, 0.8)):
        at = round(second * audio.RATE)
        parts.append(pcm[last:at])
        if n % 2:
            last = at + 80  # a 10 ms frame dropped
        else:
            parts.append(np.zeros(320, dtype=np.int16))  # 40 ms of silence
            last = at
    parts.append(pcm[last:])
    return np.concatenate(parts)


def test_a_prompt_a_jitter_buffer_warped_is_still_recognised_and_others_are_not() -> None:
    played = prompt("en-US", "main-menu")
    heard = np.concatenate([np.zeros(4000, dtype=np.int16), _jitter_buffer_warps(played), np.zeros(4000, dtype=np.int16)])
    template = audio.Template.of("main-menu", played)
    rigid = audio._ncc(template.envelope, audio.envelope(heard)).max()
    assert rigid < 0.85  # a rigid match misses it, as the rig did after a bridge
    match = audio.find_prompt(template, heard, threshold=0.85)
    assert match is not None and abs(match.start - (4000 + template.lead_in)) <= 2 * audio.HOP, match
    for other in ("billing-menu", "technical-menu", "no-input", "goodbye"):
        assert audio.find_prompt(audio.Template.of(other, prompt("en-US", other)), heard, threshold=0.85) is None, other
