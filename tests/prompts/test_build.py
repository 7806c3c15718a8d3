"""`ivr prompts build` with the offline engine: real espeak-ng audio, format, length, rebuilds."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import pytest
from click.testing import CliRunner

from ivr.cli.main import main
from ivr.prompts.audio import decode
from ivr.prompts.build import Builder
from ivr.prompts.catalog import load_catalog
from ivr.prompts.engines import EngineError, EspeakEngine

ESPEAK = ["--engine", "espeak-ng"]


def build(catalog: Path, *args: str) -> str:
    result = CliRunner().invoke(main, ["prompts", "build", "--catalog", str(catalog), *args])
    assert result.exit_code == 0, result.output
    return result.output


def params(path: Path) -> tuple[int, int, int, float]:
    with wave.open(str(path), "rb") as w:
        return w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes() / w.getframerate()


def test_builds_8khz_mono_16bit_wavs_of_plausible_length(small_catalog: Path) -> None:
    out = build(small_catalog, *ESPEAK)
    sounds = small_catalog.parent / "sounds"
    assert "4 built, 0 unchanged, 0 failed" in out
    assert "[1/4] zh-CN/choose-language: built (espeak-ng cmn@195" in out  # progress, one line per file
    lengths = {}
    for name in ("zh-CN/welcome", "en-US/welcome", "zh-CN/choose-language", "en-US/goodbye"):
        rate, channels, width, seconds = params(sounds / f"{name}.wav")
        assert (rate, channels, width) == (8000, 1, 2), name
        lengths[name] = seconds
    # real speech, trimmed: a one-word prompt is short, a two-language sentence long
    assert 0.3 < lengths["en-US/goodbye"] < 1.2
    assert 1.0 < lengths["en-US/welcome"] < 3.0
    assert 2.5 < lengths["zh-CN/choose-language"] < 6.0
    assert lengths["zh-CN/choose-language"] > lengths["zh-CN/welcome"]


def test_audio_is_trimmed_and_normalised(small_catalog: Path) -> None:
    build(small_catalog, *ESPEAK)
    segment = decode((small_catalog.parent / "sounds" / "en-US" / "welcome.wav").read_bytes(), "wav")
    assert -21.0 < segment.dBFS < -19.0  # the catalog's default loudness, -20 dBFS RMS
    assert segment.max_dBFS <= -0.9  # under the peak ceiling
    # no more than the padding (40 ms) of near-silence at either end: speech starts at once
    assert segment[:60].max_dBFS > -40 or segment[60:120].max_dBFS > -40
    assert segment[-60:].max_dBFS > -40 or segment[-120:-60].max_dBFS > -40
    assert segment[:30].max_dBFS < segment.max_dBFS


def test_rebuilding_with_nothing_changed_does_nothing(small_catalog: Path) -> None:
    build(small_catalog, *ESPEAK)
    sounds = small_catalog.parent / "sounds"
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in sounds.rglob("*") if p.is_file()}
    out = build(small_catalog, *ESPEAK)
    assert out.splitlines()[1:] == ["0 built, 4 unchanged, 0 failed"]
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in sounds.rglob("*") if p.is_file()} == before


def test_only_a_changed_text_or_a_damaged_file_is_rebuilt(small_catalog: Path) -> None:
    build(small_catalog, *ESPEAK)
    sounds = small_catalog.parent / "sounds"
    small_catalog.write_text(small_catalog.read_text().replace("Welcome to Example Company.", "Hello."))
    (sounds / "zh-CN" / "welcome.wav").write_bytes(b"RIFF damaged")
    out = build(small_catalog, *ESPEAK)
    assert "en-US/welcome: built" in out and "zh-CN/welcome: built" in out
    assert "2 built, 2 unchanged, 0 failed" in out
    manifest = json.loads((sounds / "manifest.json").read_text())
    entry = manifest["files"]["en-US/welcome.wav"]
    assert entry["engine"] == "espeak-ng" and entry["voice"].startswith("en-us@195")
    assert len(entry["input"]) == len(entry["output"]) == 64
    assert params(sounds / "en-US" / "welcome.wav")[3] < 1.0  # "Hello." now


def test_ulaw_on_request(small_catalog: Path) -> None:
    build(small_catalog, *ESPEAK, "--ulaw", "--prompt", "welcome", "--language", "en-US")
    sounds = small_catalog.parent / "sounds" / "en-US"
    frames = params(sounds / "welcome.wav")[3] * 8000
    assert (sounds / "welcome.ulaw").stat().st_size == round(frames)  # one byte a sample, no header
    assert not (small_catalog.parent / "sounds" / "zh-CN").exists()


def test_a_recorded_file_overrides_synthesis_and_is_converted(small_catalog: Path, tmp_path: Path) -> None:
    recorded = small_catalog.parent / "recorded" / "goodbye.wav"
    recorded.parent.mkdir()
    with wave.open(str(recorded), "wb") as w:  # 16 kHz stereo tone, 0.5 s of silence around it
        w.setnchannels(2), w.setsampwidth(2), w.setframerate(16000)
        import math

        quiet = b"\0\0\0\0" * 8000
        tone = b"".join(int(8000 * math.sin(2 * math.pi * 440 * n / 16000)).to_bytes(2, "little", signed=True) * 2
                        for n in range(16000))
        w.writeframes(quiet + tone + quiet)
    small_catalog.write_text(small_catalog.read_text().replace(
        "{text: Goodbye., voice: en-US-GuyNeural}", "{text: Goodbye., file: recorded/goodbye.wav}"))
    out = build(small_catalog, *ESPEAK)
    assert "en-US/goodbye: built (recorded, 1.0" in out
    rate, channels, width, seconds = params(small_catalog.parent / "sounds" / "en-US" / "goodbye.wav")
    assert (rate, channels, width) == (8000, 1, 2)
    assert 1.0 <= seconds <= 1.1  # the silence around the tone is trimmed (40 ms padding each side)


async def test_a_failed_synthesis_leaves_the_good_file_and_no_temp_file(small_catalog: Path) -> None:
    loaded, problems = load_catalog(small_catalog)
    assert loaded is not None and not problems
    await Builder(loaded, EspeakEngine()).run(prompts=["welcome"], languages=["en-US"])
    good = loaded.output_dir / "en-US" / "welcome.wav"
    before = good.read_bytes()

    class Broken(EspeakEngine):
        async def synthesize(self, text: str, language: str, voice: str) -> object:
            raise EngineError("synthesiser crashed")

    report = await Builder(loaded, Broken(), force=True).run(prompts=["welcome"], languages=["en-US"])
    assert [o.status for o in report.outcomes] == ["failed"]
    assert "synthesiser crashed" in report.outcomes[0].detail
    assert good.read_bytes() == before
    assert sorted(p.name for p in good.parent.iterdir()) == ["welcome.wav"]


def test_a_catalog_error_is_reported_with_its_line(small_catalog: Path) -> None:
    small_catalog.write_text(small_catalog.read_text().replace("  goodbye:\n    en-US: {text: Goodbye., voice: en-US-GuyNeural}\n",
                                                               "  goodbye:\n    en-US: {voice: en-US-GuyNeural}\n"))
    result = CliRunner().invoke(main, ["prompts", "build", "--catalog", str(small_catalog), *ESPEAK])
    assert result.exit_code == 2
    assert "catalog.yaml:12:12: prompts.goodbye.en-US" in result.output
    assert "a prompt needs a text or a file" in result.output


@pytest.mark.parametrize("engine", ["auto"])
def test_offline_auto_picks_espeak_quickly(small_catalog: Path, engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket
    import time

    from edge_tts import communicate

    with socket.socket() as s:  # a port nobody listens on: connection refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(communicate, "WSS_URL", f"ws://127.0.0.1:{port}/edge/v1?TrustedClientToken=x")
    start = time.monotonic()
    out = build(small_catalog, "--engine", engine, "--prompt", "goodbye")
    assert time.monotonic() - start < 5
    assert out.startswith(f"engine: espeak-ng (127.0.0.1:{port} not reachable within 2 s: offline)")
