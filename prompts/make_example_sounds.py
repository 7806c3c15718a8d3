"""Synthesize the example prompts from texts.yaml: sounds/<language>/<id>.wav, 8 kHz mono 16-bit.

Needs espeak-ng and sox. Placeholder audio for the demo; record real prompts before going live.

    python prompts/make_example_sounds.py [--force]
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
VOICES = {"zh-CN": "cmn", "en-US": "en-us"}
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]+[0-9\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]*")
SPEED = 195  # words per minute: brisk, short files


def segments(text: str, language: str) -> list[tuple[str, str]]:
    """Split mixed Chinese/English text into (voice, text) parts."""
    parts: list[tuple[str, str]] = []
    pos = 0
    for match in CJK.finditer(text):
        before = text[pos : match.start()].strip()
        if before:
            parts.append((VOICES["en-US"] if language == "zh-CN" or before.isascii() else VOICES[language], before))
        parts.append((VOICES["zh-CN"], match.group()))
        pos = match.end()
    rest = text[pos:].strip()
    if rest:
        parts.append((VOICES["en-US"], rest))
    if not CJK.search(text):
        return [(VOICES[language], text)]
    return parts


def synthesize(text: str, language: str, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pieces = []
        for i, (voice, part) in enumerate(segments(text, language)):
            raw = Path(tmp) / f"{i}.wav"
            subprocess.run(["espeak-ng", "-v", voice, "-s", str(SPEED), "-w", str(raw), part], check=True)
            pieces.append(str(raw))
        subprocess.run(
            [
                "sox", "-V1", *pieces, "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", str(out),
                # trim leading/trailing silence, leave headroom (no clipping after resampling)
                "silence", "1", "0.02", "0.5%", "reverse", "silence", "1", "0.02", "0.5%", "reverse",
                "gain", "-n", "-3",
            ],
            check=True,
        )


def main(argv: list[str]) -> int:
    force = "--force" in argv
    texts = yaml.safe_load((HERE / "texts.yaml").read_text(encoding="utf-8"))
    for prompt_id, by_language in texts.items():
        for language, text in by_language.items():
            out = HERE / "sounds" / language / f"{prompt_id}.wav"
            if out.exists() and not force:
                continue
            synthesize(str(text), language, out)
            print(out.relative_to(HERE))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
