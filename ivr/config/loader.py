"""Load a configuration directory: every file, every check, every problem at once.

    <config>/server.yaml          ServerConfig (optional)
    <config>/hotlines.yaml        Directory
    <config>/flows/<name>.yaml    Flow, named by a hotline's `flow`
    <config>/routing.yaml         RoutingConfig (optional: absent = no ACD)
    <config>/surveys.yaml         SurveysConfig (optional: absent = no post-call survey)

`load_config` returns an immutable `LoadedConfig` or raises `ConfigError` listing every
problem with its file, line and column; `check_config` returns the list.
"""

from __future__ import annotations

import hashlib
import os
import re
import wave
from collections.abc import Container
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from ivr.config import validate
from ivr.config.models import MAX_SOCKET_PATH, Directory, Flow, Hotline, Language, QueueTarget, Schedule, ServerConfig
from ivr.config.problems import Problem
from ivr.config.typecheck import validate_document
from ivr.config.validate import DirectoryInput, FlowInput, PromptFile, PromptIndex, RoutingInput, SurveysInput
from ivr.config.yamlsource import Document, SourceMap, parse
from ivr.prompts.check import config_catalog_problems
from routing.config import AgentConfig, Classification, PauseReason, QueueConfig, RoutingConfig, StateSettings
from survey_engine.config import SurveysConfig

__all__ = ["ConfigError", "LoadedConfig", "Problem", "check_config", "load_config"]

SERVER_FILE = "server.yaml"
DIRECTORY_FILE = "hotlines.yaml"
FLOWS_DIR = "flows"
ROUTING_FILE = "routing.yaml"
SURVEYS_FILE = "surveys.yaml"
FLOW_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
# What Asterisk plays from a .wav without transcoding surprises: signed linear 8 kHz mono.
WAV_RATE, WAV_CHANNELS, WAV_WIDTH = 8000, 1, 2


class ConfigError(Exception):
    """The configuration cannot be used; `problems` lists every reason."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n  ".join(str(p) for p in problems)
        super().__init__(f"{len(problems)} configuration problem(s):\n  {lines}")


def hotline_number(dialed: str, numbers: Container[str]) -> str | None:
    """Which of the configured hotline `numbers` a dialed number is: exact key, else digits
    only, else with a trunk prefix (+, 0, 86, 086, 0086) removed."""
    if dialed in numbers:
        return dialed
    digits = "".join(ch for ch in dialed if ch.isdigit())
    if digits in numbers:
        return digits
    for prefix in ("0086", "086", "86", "0"):
        if digits.startswith(prefix) and digits[len(prefix):] in numbers:
            return digits[len(prefix):]
    return None


@dataclass(frozen=True)
class LoadedConfig:
    server: ServerConfig
    directory: Directory
    flows: dict[str, Flow]
    flow_versions: dict[str, str]  # Flow.version, else "sha-" + 12 hex of the file's SHA-256
    config_dir: Path
    version: str  # "cfg-" + 12 hex of a SHA-256 over every config file and used prompt file
    routing: RoutingConfig | None = None  # routing.yaml; None: no ACD, queues are dialplan places
    surveys: SurveysConfig | None = None  # surveys.yaml; None: nobody is surveyed

    def hotline_for(self, dialed: str) -> tuple[str, Hotline] | None:
        """The hotline for a dialed number (`hotline_number`). Returns (configured number, hotline)."""
        hotlines = self.directory.hotlines
        number = hotline_number(dialed, hotlines)
        return None if number is None else (number, hotlines[number])

    def flow_for(self, hotline: Hotline) -> Flow:
        """The hotline's flow (always present in a loaded config)."""
        return self.flows[hotline.flow]

    def entry_for(self, hotline: Hotline) -> str:
        """The node a call to this hotline starts at: its `entry`, else the flow's `start`."""
        return hotline.entry or self.flow_for(hotline).start

    def prompt_path(self, language: str, prompt_id: str) -> str:
        """What STREAM FILE gets: <prompts.asterisk_dir>/<language>/<prompt id> (no extension)."""
        return f"{self.server.prompts.asterisk_dir.rstrip('/')}/{language}/{prompt_id}"

    @property
    def prompt_dir(self) -> Path:
        """The local prompt tree (`prompts.local_dir` resolved against the config dir)."""
        local = self.server.prompts.local_dir
        return local if local.is_absolute() else self.config_dir / local


# --- reading -----------------------------------------------------------------------------


def _read(config_dir: Path, rel: str, problems: list[Problem]) -> tuple[Document, bytes] | None:
    path = config_dir / rel
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        problems.append(Problem.whole_file(rel, f"cannot read: {exc.strerror or exc}"))
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(Problem.whole_file(rel, f"not UTF-8 text (byte {exc.start}); expected a UTF-8 YAML file"))
        return None
    doc = parse(text, rel)
    problems += [Problem.at(e.mark, e.path, e.message) for e in doc.errors]
    return doc, raw


def _entries(model: type[BaseModel], doc: Document, key: str) -> tuple[dict[str, Any], frozenset[str]]:
    """The entries of one top-level mapping that validate on their own, and all its keys."""
    data = doc.data.get(key) if isinstance(doc.data, dict) else None
    if not isinstance(data, dict):
        return {}, frozenset()
    good: dict[str, Any] = {}
    for name, value in data.items():
        try:
            good[name] = model.model_validate(value)
        except ValidationError:
            continue
    return good, frozenset(data)


def _unreadable(doc: Document) -> bool:
    """Broken YAML: already reported, nothing to validate."""
    return doc.data is None and bool(doc.errors)


def _directory(doc: Document, problems: list[Problem]) -> DirectoryInput | None:
    if _unreadable(doc):
        return None
    directory, found = validate_document(Directory, doc)
    problems += found
    if directory is not None:
        return DirectoryInput(
            directory, doc.source, frozenset(directory.languages), frozenset(directory.schedules), frozenset(directory.queues)
        )
    if not isinstance(doc.data, dict):
        return None
    # Keep checking what can be checked: the entries that are valid on their own.
    languages, language_keys = _entries(Language, doc, "languages")
    hotlines, _ = _entries(Hotline, doc, "hotlines")
    schedules, schedule_keys = _entries(Schedule, doc, "schedules")
    queues, queue_keys = _entries(QueueTarget, doc, "queues")
    partial = Directory.model_construct(languages=languages, hotlines=hotlines, schedules=schedules, queues=queues)
    return DirectoryInput(partial, doc.source, language_keys, schedule_keys, queue_keys)


def _flow(name: str, doc: Document, problems: list[Problem]) -> FlowInput | None:
    if _unreadable(doc):
        return None
    flow, found = validate_document(Flow, doc)
    problems += found
    if flow is not None:
        return FlowInput(name, flow, doc.source, frozenset(flow.nodes), True)
    if not isinstance(doc.data, dict):
        return None
    raw_nodes = doc.data.get("nodes")
    node_ids = frozenset(raw_nodes) if isinstance(raw_nodes, dict) else frozenset()
    nodes = {}
    for node_id, value in (raw_nodes.items() if isinstance(raw_nodes, dict) else ()):
        try:
            nodes[node_id] = Flow.model_validate({"start": "x", "nodes": {node_id: value}}).nodes[node_id]
        except ValidationError:
            continue
    start = doc.data.get("start")
    partial = Flow.model_construct(start=start if isinstance(start, str) else "", nodes=nodes, version=None)
    return FlowInput(name, partial, doc.source, node_ids, False)


def _routing(doc: Document, problems: list[Problem]) -> RoutingInput | None:
    if _unreadable(doc):
        return None
    routing, found = validate_document(RoutingConfig, doc, empty={})
    problems += found
    if routing is not None:
        return RoutingInput(routing, doc.source, frozenset(routing.agents), frozenset(routing.queues), True)
    if not isinstance(doc.data, dict):
        return None
    # Keep checking what can be checked: the entries that are valid on their own.
    agents, agent_keys = _entries(AgentConfig, doc, "agents")
    queues, queue_keys = _entries(QueueConfig, doc, "queues")
    parts: dict[str, Any] = {}
    for key, model in (("classification", Classification), ("state", StateSettings)):
        try:
            parts[key] = model.model_validate(doc.data.get(key, {}))
        except ValidationError:
            parts[key] = model()
    if "pause_reasons" in doc.data:  # so that duplicates are reported along with the rest
        try:
            parts["pause_reasons"] = TypeAdapter(tuple[PauseReason, ...]).validate_python(doc.data["pause_reasons"])
        except ValidationError:
            pass  # the default list stands in; the problems are reported above
    partial = RoutingConfig.model_construct(agents=agents, queues=queues, **parts)
    raw_agents = doc.data.get("agents")
    complete = len(agents) == len(agent_keys) and (raw_agents is None or isinstance(raw_agents, dict))
    return RoutingInput(partial, doc.source, agent_keys, queue_keys, complete)


def _surveys(doc: Document, problems: list[Problem]) -> SurveysInput | None:
    """Cross checks need the whole file valid: a survey is small enough to fix in one go."""
    if _unreadable(doc):
        return None
    surveys, found = validate_document(SurveysConfig, doc, empty={})
    problems += found
    return SurveysInput(surveys, doc.source) if surveys is not None else None


def _wav_problem(path: Path) -> str | None:
    try:
        with wave.open(str(path), "rb") as w:
            rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
    except (wave.Error, EOFError, OSError) as exc:
        return f"not a PCM WAV file Asterisk can play ({exc}); expected 8000 Hz, mono, 16-bit"
    if (rate, channels, width) != (WAV_RATE, WAV_CHANNELS, WAV_WIDTH):
        return (
            f"{rate} Hz, {'mono' if channels == 1 else f'{channels} channels'}, {width * 8}-bit "
            "(expected 8000 Hz, mono, 16-bit: convert with "
            "`sox in.wav -r 8000 -c 1 -b 16 out.wav`)"
        )
    return None


def _prompt_root(config_dir: Path, server: ServerConfig) -> Path:
    local = server.prompts.local_dir
    return local if local.is_absolute() else config_dir / local


def _prompt_index(config_dir: Path, server: ServerConfig) -> tuple[PromptIndex, dict[str, Path]]:
    settings = server.prompts
    root = settings.local_dir if settings.local_dir.is_absolute() else config_dir / settings.local_dir
    shown_root = settings.local_dir.as_posix()
    if not root.is_dir():
        return PromptIndex(shown_root, settings.formats, False, frozenset()), {}
    languages = frozenset(p.name for p in root.iterdir() if p.is_dir())
    files: dict[tuple[str, str], PromptFile] = {}
    paths: dict[str, Path] = {}
    for language in sorted(languages):
        lang_dir = root / language
        for fmt in settings.formats:  # earlier formats win, as listed
            for path in sorted(lang_dir.rglob(f"*.{fmt}")):
                prompt_id = path.relative_to(lang_dir).as_posix()[: -len(fmt) - 1]
                if (language, prompt_id) in files:
                    continue
                shown = f"{shown_root}/{language}/{prompt_id}.{fmt}"
                files[(language, prompt_id)] = PromptFile(shown, _wav_problem(path) if fmt == "wav" else None)
                paths[shown] = path
    return PromptIndex(shown_root, settings.formats, True, languages, files), paths


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- the whole directory -------------------------------------------------------------------


def _load(config_dir: Path) -> tuple[LoadedConfig | None, list[Problem]]:
    problems: list[Problem] = []
    digest = hashlib.sha256()

    server: ServerConfig | None = ServerConfig()
    server_src = SourceMap(SERVER_FILE)
    read = _read(config_dir, SERVER_FILE, problems)
    if read is not None:
        doc, raw = read
        digest.update(f"{SERVER_FILE}\0{_sha(raw)}\0".encode())
        server_src = doc.source
        if _unreadable(doc):
            server = None
        else:
            server, found = validate_document(ServerConfig, doc, empty={})
            problems += found

    directory: DirectoryInput | None = None
    read = _read(config_dir, DIRECTORY_FILE, problems)
    if read is None:
        if not (config_dir / DIRECTORY_FILE).exists():
            problems.append(
                Problem.whole_file(
                    DIRECTORY_FILE,
                    f"not found in {config_dir} (expected languages, hotlines, schedules and queues)",
                )
            )
    else:
        doc, raw = read
        digest.update(f"{DIRECTORY_FILE}\0{_sha(raw)}\0".encode())
        directory = _directory(doc, problems)

    routing: RoutingInput | None = None
    read = _read(config_dir, ROUTING_FILE, problems)
    if read is not None:
        doc, raw = read
        digest.update(f"{ROUTING_FILE}\0{_sha(raw)}\0".encode())
        routing = _routing(doc, problems)

    surveys: SurveysInput | None = None
    read = _read(config_dir, SURVEYS_FILE, problems)
    if read is not None:
        doc, raw = read
        digest.update(f"{SURVEYS_FILE}\0{_sha(raw)}\0".encode())
        surveys = _surveys(doc, problems)

    flows: dict[str, FlowInput] = {}
    flow_shas: dict[str, str] = {}
    flow_files: set[str] = set()
    flows_dir = config_dir / FLOWS_DIR
    for path in sorted(flows_dir.glob("*.yaml")) if flows_dir.is_dir() else []:
        name = path.stem
        rel = f"{FLOWS_DIR}/{path.name}"
        flow_files.add(name)
        if not FLOW_NAME.match(name):
            problems.append(Problem.whole_file(rel, "invalid flow file name (expected letters, digits, '_', '.' or '-')"))
            continue
        read = _read(config_dir, rel, problems)
        if read is None:
            continue
        doc, raw = read
        flow_shas[name] = _sha(raw)
        digest.update(f"{rel}\0{flow_shas[name]}\0".encode())
        flow = _flow(name, doc, problems)
        if flow is not None:
            flows[name] = flow

    if directory is not None:
        problems += validate.check_directory(directory, flow_files)
    for flow in flows.values():
        problems += validate.check_flow(flow, directory, routing.queues if routing is not None else frozenset())
        if server is not None:
            problems += validate.check_lookup_urls(flow, server.lookups.base_url, SERVER_FILE)
    prompt_paths: dict[str, Path] = {}
    if directory is not None:
        problems += validate.check_hotline_flows(
            directory, flows, validate.overflow_nodes(routing) if routing is not None else ()
        )
        if server is not None:
            index, prompt_paths = _prompt_index(config_dir, server)
            where = ("prompts", "local_dir") if ("prompts", "local_dir") in server_src.values else ("prompts",)
            problems += validate.check_prompts(directory, flows, index, (server_src, where), surveys)
            # The prompt catalog beside the prompt tree (prompts/catalog.yaml): translations.
            problems += config_catalog_problems(
                config_dir, _prompt_root(config_dir, server), directory, flows, surveys
            )

    if server is not None:
        problems += _server_paths(config_dir, server, server_src)
    if routing is not None:
        # Every routing problem: against itself, hotlines.yaml (languages, dialplan places) and the flows.
        problems += validate.check_routing(routing, directory, flows)
    if surveys is not None:
        whole = flows.keys() == flow_files and all(f.complete for f in flows.values())
        problems += validate.check_surveys(surveys, directory, routing, flows if whole else None)

    problems = sorted(set(problems))
    warnings = [p for p in problems if p.warning]
    if len(warnings) < len(problems) or server is None or directory is None:
        return None, problems
    for shown in sorted(prompt_paths):
        try:
            digest.update(f"{shown}\0{_sha(prompt_paths[shown].read_bytes())}\0".encode())
        except OSError as exc:  # pragma: no cover - vanished between the scan and now
            return None, [*problems, Problem.whole_file(shown, f"cannot read: {exc}")]
    loaded_flows = {name: f.flow for name, f in flows.items()}
    return (
        LoadedConfig(
            server=server,
            directory=directory.directory,
            flows=loaded_flows,
            flow_versions={
                name: flow.version or f"sha-{flow_shas[name][:12]}" for name, flow in loaded_flows.items()
            },
            config_dir=config_dir,
            version=f"cfg-{digest.hexdigest()[:12]}",
            routing=routing.routing if routing is not None else None,
            surveys=surveys.surveys if surveys is not None else None,
        ),
        warnings,
    )


SQLITE_HEADER = b"SQLite format 3\0"


def _server_paths(config_dir: Path, server: ServerConfig, source: SourceMap) -> list[Problem]:
    """What `ivr serve` needs of the paths in server.yaml, before it listens anywhere."""
    problems: list[Problem] = []

    def problem(path: tuple[str, ...], message: str) -> None:
        problems.append(Problem.at(source.value(path), path, message))

    if server.store.url is None:
        sqlite = server.store.sqlite_path if server.store.sqlite_path.is_absolute() else config_dir / server.store.sqlite_path
        if sqlite.is_dir():
            problem(("store", "sqlite_path"), f"{sqlite} is a folder: name the database file in it (e.g. calls.sqlite)")
        elif sqlite.is_file() and sqlite.stat().st_size > 0:
            with sqlite.open("rb") as head:
                if head.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
                    problem(("store", "sqlite_path"), f"{sqlite} exists and is not a SQLite database")
    socket_path = server.admin_socket if server.admin_socket.is_absolute() else config_dir / server.admin_socket
    if len(os.fsencode(socket_path.absolute())) > MAX_SOCKET_PATH:
        problem(("admin_socket",), f"{socket_path.absolute()} is longer than {MAX_SOCKET_PATH} bytes, the limit of a "
                                   "Unix socket path: give a shorter one")
    return problems


def check_config(config_dir: Path) -> list[Problem]:
    """Every problem of a configuration directory (none but warnings: it loads)."""
    return _load(Path(config_dir))[1]


def load_config(config_dir: Path) -> LoadedConfig:
    """Load and check a configuration directory; raise ConfigError with every problem."""
    loaded, problems = _load(Path(config_dir))
    if loaded is None:
        raise ConfigError(problems)
    return loaded
