"""`ivr prompts build`: every missing or changed prompt, synthesised and converted for Asterisk.

For each (prompt id, language) of the catalog: the inputs (text, voice, engine, audio
settings, or the recorded file's bytes) are hashed; when the manifest holds that hash and
the file on disk still has the bytes the manifest recorded, nothing happens. Otherwise the
prompt is synthesised (or the recording loaded), converted, and written atomically; the
manifest is saved after each prompt, so an interrupted build loses nothing already built.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ivr.prompts.audio import Segment, for_asterisk, load_file, ulaw_bytes, wav_bytes
from ivr.prompts.catalog import LoadedCatalog, PromptText
from ivr.prompts.engines import Engine, EngineError
from ivr.prompts.manifest import MANIFEST_FILE, Entry, Manifest, atomic_write, input_hash, sha256

RECORDED = "recorded"
# Bump when the conversion itself changes in a way that should rebuild every file.
PIPELINE = 1

Status = Literal["built", "unchanged", "failed"]


@dataclass(frozen=True)
class Outcome:
    prompt: str
    language: str
    status: Status
    detail: str = ""  # engine and length when built, the reason when failed
    files: tuple[str, ...] = ()


@dataclass
class BuildReport:
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def ok(self) -> bool:
        return self.count("failed") == 0


@dataclass(frozen=True)
class _Job:
    prompt: str
    language: str
    entry: PromptText


def _jobs(loaded: LoadedCatalog, prompts: Iterable[str] | None, languages: Iterable[str] | None) -> list[_Job]:
    wanted_prompts = set(prompts) if prompts is not None else None
    wanted_languages = set(languages) if languages is not None else None
    jobs = []
    for prompt_id in sorted(loaded.catalog.prompts):
        if wanted_prompts is not None and prompt_id not in wanted_prompts:
            continue
        for language in sorted(loaded.catalog.prompts[prompt_id]):
            if wanted_languages is not None and language not in wanted_languages:
                continue
            entry = loaded.catalog.entry(prompt_id, language)
            assert entry is not None
            jobs.append(_Job(prompt_id, language, entry))
    return jobs


class Builder:
    def __init__(
        self,
        loaded: LoadedCatalog,
        engine: Engine,
        *,
        fallback: Engine | None = None,
        ulaw: bool = False,
        force: bool = False,
    ) -> None:
        self.loaded = loaded
        self.engine = engine
        self.fallback = fallback
        self.ulaw = ulaw
        self.force = force
        self.out = loaded.output_dir
        self.manifest_path = self.out / MANIFEST_FILE
        self.manifest = Manifest.load(self.manifest_path)

    def _inputs(self, job: _Job, engine: Engine | None) -> tuple[dict[str, Any], str, str]:
        """What shapes the output file, the engine name and the voice."""
        settings = self.loaded.catalog.audio.model_dump()
        recorded = self.loaded.recorded(job.entry)
        if recorded is not None:
            try:
                digest = sha256(recorded.read_bytes())
            except OSError as exc:
                raise EngineError(f"recorded file {job.entry.file}: {exc.strerror or exc}") from exc
            return {"pipeline": PIPELINE, "file": digest, "audio": settings}, RECORDED, ""
        assert engine is not None and job.entry.text is not None
        voice = engine.voice(self.loaded.catalog, job.language, job.entry)
        inputs = {"pipeline": PIPELINE, "text": job.entry.text, "engine": engine.name, "voice": voice, "audio": settings}
        return inputs, engine.name, voice

    def _targets(self, job: _Job) -> list[tuple[str, str]]:
        """(manifest name, format) of each file this job writes."""
        formats = ["wav", "ulaw"] if self.ulaw else ["wav"]
        return [(f"{job.language}/{job.prompt}.{fmt}", fmt) for fmt in formats]

    def _up_to_date(self, job: _Job, inputs: dict[str, Any]) -> bool:
        if self.force:
            return False
        return all(
            self.manifest.up_to_date(name, input_hash({**inputs, "format": fmt}), self.out / name)
            for name, fmt in self._targets(job)
        )

    async def _audio(self, job: _Job, engine: Engine, voice: str) -> Segment:
        recorded = self.loaded.recorded(job.entry)
        if recorded is not None:
            raw = await asyncio.to_thread(load_file, recorded)
        else:
            assert job.entry.text is not None
            raw = await engine.synthesize(job.entry.text, job.language, voice)
        return await asyncio.to_thread(for_asterisk, raw, self.loaded.catalog.audio)

    async def _build_one(self, job: _Job) -> Outcome:
        engines = [self.engine] + ([self.fallback] if self.fallback is not None else [])
        errors = []
        for engine in engines:
            try:
                inputs, engine_name, voice = self._inputs(job, engine)
                if self._up_to_date(job, inputs):
                    return Outcome(job.prompt, job.language, "unchanged")
                segment = await self._audio(job, engine, voice)
            except (EngineError, ValueError, OSError) as exc:
                errors.append(f"{engine.name}: {exc}")
                if self.loaded.recorded(job.entry) is not None:
                    break  # another engine does not help a broken recording
                continue
            names = []
            for name, fmt in self._targets(job):
                data = wav_bytes(segment) if fmt == "wav" else ulaw_bytes(segment)
                atomic_write(self.out / name, data)
                self.manifest.files[name] = Entry(
                    input_hash({**inputs, "format": fmt}), sha256(data), engine_name, voice, len(segment) / 1000
                )
                names.append(name)
            self.manifest.save(self.manifest_path)
            shown = engine_name if not voice else f"{engine_name} {voice.split(';')[0]}"
            return Outcome(job.prompt, job.language, "built", f"{shown}, {len(segment) / 1000:.2f} s", tuple(names))
        return Outcome(job.prompt, job.language, "failed", "; ".join(errors))

    async def run(
        self,
        *,
        prompts: Iterable[str] | None = None,
        languages: Iterable[str] | None = None,
        progress: Callable[[int, int, Outcome], None] | None = None,
    ) -> BuildReport:
        jobs = _jobs(self.loaded, prompts, languages)
        report = BuildReport()
        for n, job in enumerate(jobs, 1):
            outcome = await self._build_one(job)
            report.outcomes.append(outcome)
            if progress is not None:
                progress(n, len(jobs), outcome)
        return report

    def stale(self) -> list[str]:
        """Files in the manifest that no catalog entry makes any more (left in place)."""
        made = {f"{j.language}/{j.prompt}" for j in _jobs(self.loaded, None, None)}
        return sorted(name for name in self.manifest.files if name.rsplit(".", 1)[0] not in made)


def sound_path(out: Path, language: str, prompt: str, fmt: str = "wav") -> Path:
    return out / language / f"{prompt}.{fmt}"
