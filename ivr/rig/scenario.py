"""Rig scenarios: what a test caller does and expects, written in YAML.

    prompts: ../../prompts/sounds      # built prompts: <dir>/<language>/<id>.wav
    defaults: {within: 20}             # seconds a step may take (optional)
    scenarios:
      - name: billing
        dial: "4008001234"
        language: zh-CN                # the language prompts are expected in
        steps:
          - prompt: recording-notice   # heard, matched against the built prompt audio
          - press: 2                   # RFC 4733 when agreed, else in-band tones
          - language: en-US            # from here on, prompts are in English
          - prompt: main-menu
          - hangup

Each step is one of the keys of `Step`. Problems are reported all at once with file,
line and column, like `ivr check config` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from ivr.config.problems import Problem
from ivr.config.typecheck import validate_document
from ivr.config.yamlsource import Document, Mark, parse
from ivr.rig.audio import AudioError, Template, load_wav

PromptId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_./-]+$")]
LanguageKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+$")]
Seconds = Annotated[float, Field(gt=0)]
DtmfMode = Literal["auto", "rfc4733", "inband"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PromptStep(_Strict):
    """`prompt: main-menu` or `prompt: {id: main-menu, within: 30, min_score: 0.8}`."""

    id: PromptId
    within: Seconds | None = None
    # Normalised correlation of the energy envelopes (0..1) needed to count as heard.
    min_score: float | None = Field(None, gt=0, le=1)


class AudioStep(_Strict):
    """Some sound (speech, music, a tone) lasting `seconds` without a break."""

    seconds: Seconds = 0.3
    within: Seconds | None = None


class SilenceStep(_Strict):
    """Nothing heard for `seconds`."""

    seconds: Seconds = 1.0
    within: Seconds | None = None


class PressStep(_Strict):
    """`press: 12#` or `press: {keys: "1", dtmf: inband}`."""

    keys: str
    dtmf: DtmfMode | None = None

    @field_validator("keys")
    @classmethod
    def _keys(cls, value: str) -> str:
        bad = sorted({k for k in value if k not in "0123456789*#ABCDabcd"})
        if not value or bad:
            raise ValueError(f"invalid keys {value!r} (expected DTMF keys: 0-9, *, #, A-D)")
        return value.upper()


class SpeakStep(_Strict):
    """The caller talks for `seconds` (a voice-like sound: a spoken survey comment, say)."""

    seconds: Seconds = 2.0


class WaitFor(_Strict):
    within: Seconds | None = None


class Hangup(_Strict):
    pass


STEP_KINDS = ("prompt", "audio", "silence", "press", "speak", "wait", "language", "agent", "agent_hangup", "far_hangup", "hangup")


class Step(_Strict):
    """One list item of `steps`: a mapping with exactly one of these keys."""

    prompt: PromptStep | None = None
    audio: AudioStep | None = None
    silence: SilenceStep | None = None
    press: PressStep | None = None
    speak: SpeakStep | None = None
    wait: Seconds | None = None  # do nothing for this long
    language: LanguageKey | None = None  # prompts from here on are in this language
    agent: WaitFor | None = None  # an agent phone of the rig answers this call
    agent_hangup: WaitFor | None = None  # that agent hangs up (after its hold time)
    far_hangup: WaitFor | None = None  # the far end (PBX, IVR) hangs up
    hangup: Hangup | None = None  # the caller hangs up

    @model_validator(mode="before")
    @classmethod
    def _bare(cls, data: Any) -> Any:
        # `- hangup` (a plain item) is the same as `- hangup: {}`.
        return {"hangup": {}} if data == "hangup" else data

    @field_validator("prompt", mode="before")
    @classmethod
    def _prompt_id(cls, value: Any) -> Any:
        return {"id": value} if isinstance(value, str) else value

    @field_validator("press", mode="before")
    @classmethod
    def _press_keys(cls, value: Any) -> Any:
        return {"keys": value} if isinstance(value, str | int) and not isinstance(value, bool) else value

    @field_validator("agent", "agent_hangup", "far_hangup", "hangup", mode="before")
    @classmethod
    def _empty(cls, value: Any) -> Any:
        return {} if value is None else value  # `- hangup:` written with nothing after it

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        given = [k for k in STEP_KINDS if k in self.model_fields_set]
        if len(given) != 1:
            found = f"got {', '.join(given)}" if given else "got none"
            raise ValueError(f"a step has exactly one of: {', '.join(STEP_KINDS)} ({found})")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in STEP_KINDS if k in self.model_fields_set)


class Defaults(_Strict):
    within: Seconds = 20.0  # seconds a step may take
    answer_within: Seconds = 30.0  # seconds for the PBX to answer the call
    min_score: float = Field(0.85, gt=0, le=1)
    dtmf: DtmfMode = "auto"


class Scenario(_Strict):
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+$")]
    dial: str  # the number (or SIP user) the caller phone calls
    language: LanguageKey | None = None
    steps: list[Step]

    @field_validator("dial")
    @classmethod
    def _dial(cls, value: str) -> str:
        if not value or any(not (c.isascii() and c.isalnum()) and c not in "_.+*#-" for c in value):
            raise ValueError(f"invalid number {value!r} (expected digits, letters and _ . + * # -, as dialled)")
        return value

    @field_validator("steps")
    @classmethod
    def _some_steps(cls, value: list[Step]) -> list[Step]:
        if not value:
            raise ValueError("a scenario needs at least one step")
        return value


class ScenarioFile(_Strict):
    # Built prompt audio, relative to this file: <prompts>/<language>/<prompt id>.wav
    prompts: str | None = None
    defaults: Defaults = Defaults()
    scenarios: list[Scenario]

    @field_validator("scenarios")
    @classmethod
    def _some_scenarios(cls, value: list[Scenario]) -> list[Scenario]:
        if not value:
            raise ValueError("no scenarios: expected a list of scenarios")
        return value


# --- what the runner gets -----------------------------------------------------------------


@dataclass(frozen=True)
class PlannedStep:
    number: int  # 1-based, in its scenario
    where: str  # file:line:col of the step
    step: Step
    within: float
    template: Template | None = None  # prompt steps: the prompt as built
    language: str | None = None  # prompt steps: the language it is expected in
    min_score: float = 0.85
    dtmf: DtmfMode = "auto"

    @property
    def kind(self) -> str:
        return self.step.kind

    def describe(self) -> str:
        s = self.step
        if s.prompt is not None:
            return f"prompt {s.prompt.id} ({self.language})"
        if s.press is not None:
            return f"press {s.press.keys}"
        if s.audio is not None:
            return f"audio {s.audio.seconds:g} s"
        if s.silence is not None:
            return f"silence {s.silence.seconds:g} s"
        if s.speak is not None:
            return f"speak {s.speak.seconds:g} s"
        if s.wait is not None:
            return f"wait {s.wait:g} s"
        if s.language is not None:
            return f"language {s.language}"
        return self.kind.replace("_", " ")


@dataclass(frozen=True)
class PlannedScenario:
    file: str
    name: str
    dial: str
    answer_within: float
    steps: tuple[PlannedStep, ...]

    @property
    def uses_agents(self) -> bool:
        return any(s.kind in ("agent", "agent_hangup") for s in self.steps)


class ScenarioError(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


def _where(mark: Mark) -> str:
    return f"{mark.file}:{mark.line}:{mark.column}"


class _Planner:
    def __init__(self, path: Path, doc: Document, model: ScenarioFile) -> None:
        self.doc = doc
        self.model = model
        self.problems: list[Problem] = []
        self.templates: dict[Path, Template] = {}
        self.prompt_dir = (path.parent / model.prompts) if model.prompts is not None else None

    def template(self, language: str, prompt_id: str, at: tuple[str | int, ...]) -> Template | None:
        mark = self.doc.source.value(at)
        if self.prompt_dir is None:
            message = "a prompt step needs `prompts:` (the built prompt directory) at the top of the file"
            self.problems.append(Problem.at(mark, at, message))
            return None
        wav = self.prompt_dir / language / f"{prompt_id}.wav"
        if wav not in self.templates:
            try:
                self.templates[wav] = Template.of(prompt_id, load_wav(wav))
            except AudioError as exc:
                self.problems.append(Problem.at(mark, at, f"prompt {prompt_id!r} in {language}: {exc}"))
                return None
        return self.templates[wav]

    def scenario(self, index: int, scenario: Scenario) -> PlannedScenario:
        d = self.model.defaults
        language = scenario.language
        steps: list[PlannedStep] = []
        for j, step in enumerate(scenario.steps):
            at: tuple[str | int, ...] = ("scenarios", index, "steps", j)
            where = _where(self.doc.source.value(at))
            within = d.within
            template = None
            min_score = d.min_score
            dtmf = d.dtmf
            for waits in (step.prompt, step.audio, step.silence, step.agent, step.agent_hangup, step.far_hangup):
                if waits is not None and waits.within is not None:
                    within = waits.within
            if step.language is not None:
                language = step.language
            if step.prompt is not None:
                if language is None:
                    message = "which language is this prompt in? set the scenario's `language` or add a `language` step"
                    self.problems.append(Problem.at(self.doc.source.value(at), at, message))
                else:
                    template = self.template(language, step.prompt.id, (*at, "prompt"))
                min_score = step.prompt.min_score or d.min_score
            if step.press is not None and step.press.dtmf is not None:
                dtmf = step.press.dtmf
            steps.append(PlannedStep(j + 1, where, step, within, template, language, min_score, dtmf))
        return PlannedScenario(self.doc.file, scenario.name, scenario.dial, d.answer_within, tuple(steps))

    def plan(self) -> list[PlannedScenario]:
        seen: dict[str, int] = {}
        out = []
        for i, scenario in enumerate(self.model.scenarios):
            at: tuple[str | int, ...] = ("scenarios", i, "name")
            if scenario.name in seen:
                first = self.doc.source.value(("scenarios", seen[scenario.name], "name"))
                message = f"duplicate scenario name {scenario.name!r} (first at line {first.line})"
                self.problems.append(Problem.at(self.doc.source.value(at), at, message))
            seen.setdefault(scenario.name, i)
            out.append(self.scenario(i, scenario))
        return out


def load_file(path: Path) -> list[PlannedScenario]:
    """The scenarios of one file; ScenarioError lists every problem (file:line:col)."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError([Problem.whole_file(name, f"cannot read: {exc.strerror or exc}")]) from exc
    except UnicodeDecodeError as exc:
        raise ScenarioError([Problem.whole_file(name, f"not UTF-8 text (byte {exc.start})")]) from exc
    doc = parse(text, name)
    problems = [Problem.at(e.mark, e.path, e.message) for e in doc.errors]
    if problems:
        raise ScenarioError(problems)
    model, problems = validate_document(ScenarioFile, doc)
    if model is None:
        raise ScenarioError(problems)
    planner = _Planner(path, doc, model)
    planned = planner.plan()
    if planner.problems:
        raise ScenarioError(planner.problems)
    return planned


def load_files(paths: list[Path]) -> list[PlannedScenario]:
    """All scenarios of all files, or ScenarioError with the problems of every file."""
    problems: list[Problem] = []
    planned: list[PlannedScenario] = []
    for path in paths:
        try:
            planned += load_file(path)
        except ScenarioError as exc:
            problems += exc.problems
    if problems:
        raise ScenarioError(sorted(problems))
    return planned
