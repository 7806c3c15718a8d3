"""`ivr prompts check`, and the catalog part of `ivr check`.

* every prompt a hotline can play (menus, lookups' spoken values, announcements such as
  the recording notice) has a text or recording in the catalog for each language the
  hotline offers: a missing translation is reported where the prompt is used;
* every file the catalog makes exists and is playable by Asterisk (rate, channels,
  sample width, checked with the `wave` module).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ivr.config.problems import Problem
from ivr.config.validate import DirectoryInput, FlowInput, SurveysInput, needed_prompts
from ivr.prompts.catalog import CATALOG_FILE, LoadedCatalog, load_catalog
from ivr.prompts.playable import wav_problem


def catalog_beside(sounds_dir: Path) -> Path:
    """Where the catalog of a prompt tree lives: prompts/catalog.yaml for prompts/sounds/."""
    return sounds_dir.parent / CATALOG_FILE


def shown_path(path: Path, relative_to: Path) -> str:
    """`path` as admins see it in problems: relative to the config dir (../prompts/...)."""
    try:
        return Path(os.path.relpath(path, relative_to)).as_posix()
    except ValueError:  # pragma: no cover - another drive on Windows
        return path.as_posix()


def translation_problems(
    loaded: LoadedCatalog, d: DirectoryInput, flows: Mapping[str, FlowInput], surveys: SurveysInput | None = None
) -> list[Problem]:
    """Each prompt a hotline can play, in each of its languages, is in the catalog."""
    problems: list[Problem] = []
    prompts = loaded.catalog.prompts
    for language, prompt, need in needed_prompts(d, flows, surveys):
        by_language = prompts.get(prompt)
        hotlines = ", ".join(need.hotlines)
        if by_language is None:
            message = (f"prompt {prompt!r} is not in {loaded.shown} (expected prompts.{prompt} with a text "
                       f"per language; needed by hotline {hotlines})")
        elif language not in by_language:
            have = ", ".join(sorted(by_language))
            message = (f"prompt {prompt!r} has no {language} translation in {loaded.shown} "
                       f"(expected prompts.{prompt}.{language} beside {have}; needed by hotline {hotlines})")
        else:
            continue
        problems.append(Problem.at(need.src.value(need.path), need.path, message))
    return problems


def file_problems(loaded: LoadedCatalog, relative_to: Path) -> list[Problem]:
    """Every (prompt, language) of the catalog has a playable .wav in the output tree."""
    problems = []
    out = loaded.output_dir
    for prompt in sorted(loaded.catalog.prompts):
        for language in sorted(loaded.catalog.prompts[prompt]):
            entry = loaded.catalog.entry(prompt, language)
            recorded = loaded.recorded(entry) if entry is not None else None
            if recorded is not None and not recorded.exists():
                path = ("prompts", prompt, language, "file")
                problems.append(
                    Problem.at(loaded.src.value(path), path, f"recorded file {shown_path(recorded, relative_to)} not found")
                )
            wav = out / language / f"{prompt}.wav"
            shown = shown_path(wav, relative_to)
            if not wav.exists():
                problems.append(Problem.whole_file(shown, "missing (expected it built: run `ivr prompts build`)"))
                continue
            message = wav_problem(wav)
            if message is not None:
                problems.append(Problem.whole_file(shown, message))
    return problems


def config_catalog_problems(
    config_dir: Path, sounds_dir: Path, d: DirectoryInput, flows: Mapping[str, FlowInput],
    surveys: SurveysInput | None = None,
) -> list[Problem]:
    """For `ivr check`: the catalog beside the prompt tree (if there is one) is valid and
    has every translation the hotlines need. File formats are checked by the loader."""
    path = catalog_beside(sounds_dir)
    if not path.is_file():
        return []  # recordings only, no catalog: nothing to compare
    loaded, problems = load_catalog(path, shown_path(path, config_dir))
    if loaded is not None:
        problems += translation_problems(loaded, d, flows, surveys)
    return problems
