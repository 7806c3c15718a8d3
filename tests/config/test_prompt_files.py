"""Every prompt a hotline can play exists in each of its languages, in a format Asterisk plays."""

from __future__ import annotations

import wave

from configkit import Example

FLOW = "flows/main.yaml"
HOTLINES = "hotlines.yaml"
FORMATS = "{wav,ulaw,alaw,gsm,sln,g722}"


def write_wav(path: str, rate: int, channels: int = 1, width: int = 2) -> None:
    with wave.open(path, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(b"\0" * (width * channels * rate // 10))


def test_missing_prompt_file_for_one_language(example: Example) -> None:
    example.own_sounds()
    (example.sounds / "en-US" / "goodbye.wav").unlink()
    assert example.problems() == [
        f"{example.where(FLOW, '[goodbye]', offset=1)}: nodes.goodbye.prompts[0]: prompt 'goodbye' has no file for "
        f"language en-US (expected ../prompts/sounds/en-US/goodbye.{FORMATS}; needed by hotline 4008001234, 4008005678)"
    ]


def test_prompt_in_another_accepted_format_is_enough(example: Example) -> None:
    example.own_sounds()
    (example.sounds / "en-US" / "goodbye.wav").rename(example.sounds / "en-US" / "goodbye.ulaw")
    assert example.problems() == []


def test_every_kind_of_prompt_reference_is_checked(example: Example) -> None:
    example.own_sounds()
    for prompt in ("recording-notice", "no-input", "please-wait", "order-status-unknown", "yuan"):
        (example.sounds / "zh-CN" / f"{prompt}.wav").unlink()
    problems = example.problems()
    paths = [p.split(": ")[1] for p in problems]
    assert paths == [
        "nodes.main-menu.no_input.prompt",
        "nodes.billing-menu.no_input.prompt",
        "nodes.balance-lookup.wait_prompt",
        "nodes.balance-lookup.branches[1].say[2].prompt",
        "nodes.technical-menu.no_input.prompt",
        "nodes.order-lookup.wait_prompt",
        "nodes.order-lookup.branches[2].say[0].default_prompt",
        "hotlines.4008001234.recording_notice",
    ]
    assert all("language zh-CN" in p and "hotline 4008001234)" in p for p in problems)
    assert problems[-1].startswith(example.where(HOTLINES, "recording-notice"))


def test_prompt_only_in_a_part_the_hotline_cannot_reach_is_not_required(example: Example) -> None:
    # choose-language is not reachable from 4008005678's entry, and 4008001234 offers en-US too:
    # removing the en-US file must be reported for 4008001234 only.
    example.own_sounds()
    (example.sounds / "en-US" / "choose-language.wav").unlink()
    [problem] = example.problems()
    assert problem.endswith("needed by hotline 4008001234)")


def test_wav_with_wrong_sample_rate(example: Example) -> None:
    example.own_sounds()
    write_wav(str(example.sounds / "zh-CN" / "welcome.wav"), 16000)
    assert example.problems() == [
        f"{example.where(FLOW, '[welcome]', offset=1)}: nodes.welcome.prompts[0]: ../prompts/sounds/zh-CN/welcome.wav: "
        "16000 Hz, mono, 16-bit (expected 8000 Hz, mono, 16-bit: convert with `sox in.wav -r 8000 -c 1 -b 16 out.wav`)"
    ]


def test_wav_stereo_or_8_bit_or_not_a_wav(example: Example) -> None:
    example.own_sounds()
    write_wav(str(example.sounds / "en-US" / "closed.wav"), 8000, channels=2)
    write_wav(str(example.sounds / "en-US" / "goodbye.wav"), 8000, width=1)
    (example.sounds / "en-US" / "yuan.wav").write_bytes(b"ID3 mp3 renamed")
    messages = [p.split(": ", 2)[2] for p in example.problems()]
    assert messages == [
        "../prompts/sounds/en-US/closed.wav: 8000 Hz, 2 channels, 16-bit (expected 8000 Hz, mono, 16-bit: "
        "convert with `sox in.wav -r 8000 -c 1 -b 16 out.wav`)",
        "../prompts/sounds/en-US/yuan.wav: not a PCM WAV file Asterisk can play (file does not start with RIFF id); "
        "expected 8000 Hz, mono, 16-bit",
        "../prompts/sounds/en-US/goodbye.wav: 8000 Hz, mono, 8-bit (expected 8000 Hz, mono, 16-bit: "
        "convert with `sox in.wav -r 8000 -c 1 -b 16 out.wav`)",
    ]


def test_language_without_a_prompt_directory_is_reported_once(example: Example) -> None:
    example.edit(HOTLINES, "  en-US:\n    asterisk: en\n", "  en-US:\n    asterisk: en\n  ja-JP:\n    asterisk: ja\n")
    example.edit(HOTLINES, "    languages: [en-US]", "    languages: [en-US, ja-JP]")
    assert example.problems() == [
        "server.yaml:45:14: prompts.local_dir: no prompt directory ../prompts/sounds/ja-JP for language 'ja-JP' "
        "(needed by hotline 4008005678)"
    ]


def test_missing_prompt_directory(example: Example) -> None:
    example.sounds.unlink()
    assert example.problems() == [
        "server.yaml:45:14: prompts.local_dir: prompt directory ../prompts/sounds not found (expected "
        "<local_dir>/<language>/<prompt id>.<format>, relative to the config directory)"
    ]
