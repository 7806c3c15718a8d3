"""prompts/catalog.yaml: what each prompt says in each language.

    output: sounds                       # where `ivr prompts build` writes <language>/<id>.wav
    languages:                           # synthesis settings per language
      zh-CN: {voice: zh-CN-XiaoxiaoNeural, espeak: cmn}
    audio: {loudness: -20.0, trim_threshold: -40.0}
    prompts:
      welcome:
        zh-CN: 您好，欢迎致电。          # a text ...
        en-US:                           # ... or text, voice and/or a recorded file
          text: Welcome.
          voice: en-US-GuyNeural
          file: recorded/en-US/welcome.wav   # overrides synthesis (relative to this file)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from ivr.config.problems import Problem
from ivr.config.typecheck import validate_document
from ivr.config.yamlsource import SourceMap, parse

PromptId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_./-]+$")]
LanguageKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+$")]
CATALOG_FILE = "catalog.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LanguageVoices(_Strict):
    voice: str | None = None  # edge-tts voice, e.g. zh-CN-XiaoxiaoNeural
    espeak: str | None = None  # espeak-ng voice, e.g. cmn, en-us
    espeak_speed: int = Field(175, ge=80, le=450)  # words per minute


class AudioSettings(_Strict):
    # Target loudness: RMS level of the whole prompt, dBFS (peaks are kept under peak_ceiling).
    loudness: float = Field(-20.0, ge=-40.0, le=-6.0)
    peak_ceiling: float = Field(-1.0, ge=-20.0, le=0.0)
    # Leading and trailing audio quieter than this (dBFS) is cut.
    trim_threshold: float = Field(-40.0, ge=-80.0, le=-10.0)
    # Silence kept at each end after trimming, milliseconds.
    padding_ms: int = Field(40, ge=0, le=1000)


class PromptText(_Strict):
    text: str | None = Field(None, min_length=1)
    voice: str | None = None  # overrides the language's edge-tts voice
    file: str | None = None  # a recording that overrides synthesis

    @model_validator(mode="after")
    def _something_to_play(self) -> PromptText:
        if self.text is None and self.file is None:
            raise ValueError("a prompt needs a text or a file")
        return self


class Catalog(_Strict):
    output: str = "sounds"
    languages: dict[LanguageKey, LanguageVoices] = {}
    audio: AudioSettings = AudioSettings()
    prompts: dict[PromptId, dict[LanguageKey, Annotated[str, StringConstraints(min_length=1)] | PromptText]]

    def entry(self, prompt_id: str, language: str) -> PromptText | None:
        by_language = self.prompts.get(prompt_id)
        if by_language is None or language not in by_language:
            return None
        value = by_language[language]
        return PromptText(text=value) if isinstance(value, str) else value


@dataclass(frozen=True)
class LoadedCatalog:
    catalog: Catalog
    path: Path  # the catalog file
    shown: str  # its name in problems (relative to the config directory when checked from there)
    src: SourceMap

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def output_dir(self) -> Path:
        out = Path(self.catalog.output)
        return out if out.is_absolute() else self.root / out

    def recorded(self, entry: PromptText) -> Path | None:
        if entry.file is None:
            return None
        path = Path(entry.file)
        return path if path.is_absolute() else self.root / path


def load_catalog(path: Path, shown: str | None = None) -> tuple[LoadedCatalog | None, list[Problem]]:
    """Parse and validate a catalog file; every problem with its line and column."""
    shown = shown or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [Problem.whole_file(shown, "not found (expected a prompt catalog: prompt id -> language -> text)")]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem.whole_file(shown, f"cannot read as UTF-8 text: {exc}")]
    doc = parse(text, shown)
    problems = [Problem.at(e.mark, e.path, e.message) for e in doc.errors]
    if doc.data is None and doc.errors:
        return None, problems
    catalog, found = validate_document(Catalog, doc)
    problems += found
    if catalog is None:
        return None, problems
    return LoadedCatalog(catalog, path, shown, doc.source), problems
