"""`ivr check` and `ivr prompts check`: missing translations, unplayable files."""

from __future__ import annotations

import shutil
import wave
from pathlib import Path

import pytest
from click.testing import CliRunner

from ivr.cli.main import main
from ivr.config.loader import check_config

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A copy of the example: config/, prompts/catalog.yaml and prompts/sounds/."""
    shutil.copytree(REPO / "config", tmp_path / "config")
    shutil.copytree(REPO / "prompts", tmp_path / "prompts")
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def line_col(path: Path, needle: str, offset: int = 0) -> str:
    text = path.read_text(encoding="utf-8")
    index = text.index(needle) + offset
    return f"{text.count(chr(10), 0, index) + 1}:{index - text.rfind(chr(10), 0, index)}"


def write_wav(path: Path, rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(rate)
        w.writeframes(b"\1\0" * rate)


def test_example_is_clean(example: Path) -> None:
    assert check_config(example / "config") == []
    result = CliRunner().invoke(main, ["prompts", "check", "--config", str(example / "config")])
    assert result.exit_code == 0, result.output


def test_ivr_check_flags_a_missing_translation(example: Path) -> None:
    edit(example / "prompts" / "catalog.yaml", "    en-US: Thank you for calling. Goodbye.\n", "")
    result = CliRunner().invoke(main, ["check", str(example / "config")])
    assert result.exit_code == 1
    where = line_col(example / "config" / "flows" / "main.yaml", "[goodbye]", 1)
    assert (
        f"{example / 'config'}/flows/main.yaml:{where}: nodes.goodbye.prompts[0]: prompt 'goodbye' has no en-US translation in "
        "../prompts/catalog.yaml (expected prompts.goodbye.en-US beside zh-CN; needed by hotline 4008001234, 4008005678)"
    ) in result.output.splitlines()


def test_ivr_check_flags_a_prompt_missing_from_the_catalog_and_speech_prompts(example: Path) -> None:
    catalog = example / "prompts" / "catalog.yaml"
    edit(catalog, "  say/point:\n    zh-CN: 点\n    en-US: point\n", "")
    problems = [str(p) for p in check_config(example / "config")]
    assert len(problems) == 2  # one per language the hotlines offer; the balance is read with SAY NUMBER
    assert all("branches[1].say[1].number: prompt 'say/point' is not in ../prompts/catalog.yaml" in p for p in problems)


def test_ivr_check_flags_a_wrong_sample_rate(example: Path) -> None:
    write_wav(example / "prompts" / "sounds" / "zh-CN" / "welcome.wav", 16000)
    result = CliRunner().invoke(main, ["check", str(example / "config")])
    assert result.exit_code == 1
    assert "nodes.welcome.prompts[0]: ../prompts/sounds/zh-CN/welcome.wav: 16000 Hz, mono, 16-bit" in result.output


def test_ivr_check_reports_a_broken_catalog_with_its_line(example: Path) -> None:
    catalog = example / "prompts" / "catalog.yaml"
    edit(catalog, "  loudness: -20.0\n", "  loudness: loud\n")
    [problem] = [str(p) for p in check_config(example / "config")]
    assert problem.startswith(f"../prompts/catalog.yaml:{line_col(catalog, 'loudness: loud', 10)}: audio.loudness:")


def test_prompts_check_lists_file_problems_as_file_colon_problem(example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(example)
    write_wav(example / "prompts" / "sounds" / "en-US" / "say" / "cents.wav", 22050)  # used by no flow yet
    (example / "prompts" / "sounds" / "zh-CN" / "say" / "jiao.wav").unlink()
    result = CliRunner().invoke(main, ["prompts", "check"])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert "prompts/sounds/en-US/say/cents.wav: 22050 Hz, mono, 16-bit (expected 8000 Hz, mono, 16-bit: " \
           "rebuild with `ivr prompts build`)" in lines
    assert "prompts/sounds/zh-CN/say/jiao.wav: missing (expected it built: run `ivr prompts build`)" in lines
    assert lines[-1] == "2 problem(s)"


def test_prompts_check_names_a_broken_file_once_where_a_flow_uses_it(example: Path) -> None:
    write_wav(example / "prompts" / "sounds" / "zh-CN" / "welcome.wav", 16000)

    result = CliRunner().invoke(main, ["prompts", "check", "--config", str(example / "config")])

    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if "welcome.wav" in line]
    assert len(lines) == 1 and lines[0].startswith(f"{example / 'config'}/flows/main.yaml:"), result.output
    assert "1 problem(s)" in result.output
