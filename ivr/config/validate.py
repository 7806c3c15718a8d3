"""Semantic checks over validated models: references, reachability, clashes, hours, prompts.

Pure functions: they read the models, the source maps (for file:line:column) and a
`PromptIndex` the loader builds from the prompt directory; they return Problems.

One file past 600 lines: every cross-file check reads the same models and source maps, and
`ivr check` reports them in one pass; split by file (directory, flows, routing, surveys) it
would pass the same context between modules for no gain.
"""

from __future__ import annotations

import re
import string
import zoneinfo
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from ivr.config import hours
from ivr.config.models import (
    CollectNode,
    Directory,
    Flow,
    GotoNode,
    HangupNode,
    Hotline,
    HoursNode,
    LanguageNode,
    LookupNode,
    MenuNode,
    Node,
    PlayNode,
    QueueNode,
    Schedule,
    SurveyOptInNode,
    TransferNode,
    VoicemailNode,
)
from ivr.config.problems import Problem, one_of
from ivr.config.yamlsource import Path, SourceMap
from ivr.prompts.speech import prompts_needed
from routing import crm
from routing import wrapup
from routing.config import BUILTIN_PAUSE_REASONS, AgentConfig, QueueConfig, RoutingConfig, Step, WrapUp
from survey_engine.config import Match, SurveysConfig
from survey_engine.model import WEB_SCORE_QUESTION, QuestionKind

TERMINAL = (QueueNode, TransferNode, VoicemailNode, HangupNode)
RECORDING_PLACEHOLDERS = frozenset({"hotline", "uniqueid", "call_id", "date", "time", "caller"})


# --- inputs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DirectoryInput:
    """hotlines.yaml: the model (possibly partial when some entries failed) and its keys."""

    directory: Directory
    src: SourceMap
    # Every key written in the file, valid or not, so that a broken entry does not also
    # show up as "unknown" wherever it is referred to.
    languages: frozenset[str]
    schedules: frozenset[str]
    queues: frozenset[str]


@dataclass(frozen=True)
class FlowInput:
    name: str
    flow: Flow  # when not `complete`, only the nodes that passed the schema
    src: SourceMap
    node_ids: frozenset[str]  # every node id written in the file
    complete: bool


@dataclass(frozen=True)
class PromptFile:
    shown: str  # path as shown to admins, relative to the config dir
    problem: str | None = None  # why Asterisk cannot play it (WAV format), if so


@dataclass(frozen=True)
class PromptIndex:
    local_dir: str  # as configured, e.g. ../prompts/sounds
    formats: tuple[str, ...]
    found: bool  # the directory exists
    languages: frozenset[str]  # language directories present
    files: Mapping[tuple[str, str], PromptFile] = field(default_factory=dict)  # (language, id)


# --- flow graph --------------------------------------------------------------------------


def edges(node: Node) -> list[tuple[Path, str]]:
    """Every node reference of a node: (path inside the node, target node id)."""
    if isinstance(node, PlayNode | LanguageNode | SurveyOptInNode):
        return [(("next",), node.next)]
    if isinstance(node, MenuNode):
        out: list[tuple[Path, str]] = [(("options", d), t) for d, t in node.options.items()]
        out += [(("no_input", "then"), node.no_input.then), (("invalid", "then"), node.invalid.then)]
        if node.operator is not None:
            out.append((("operator",), node.operator))
        return out
    if isinstance(node, HoursNode):
        return [(("open",), node.open), (("closed",), node.closed)]
    if isinstance(node, CollectNode):
        return [(("invalid", "then"), node.invalid.then), (("next",), node.next)]
    if isinstance(node, LookupNode):
        out = [(("branches", i, "next"), b.next) for i, b in enumerate(node.branches)]
        return out + [(("on_failure",), node.on_failure)]
    if isinstance(node, GotoNode):
        return [(("target",), node.target)]
    return []


def prompt_refs(node: Node) -> list[tuple[Path, str]]:
    """Every prompt a node can play: (path inside the node, prompt id)."""
    out: list[tuple[Path, str]] = []
    if not isinstance(node, HoursNode | GotoNode | LookupNode):
        out += [(("prompts", i), p) for i, p in enumerate(node.prompts)]
    if isinstance(node, MenuNode):
        for name, policy in (("no_input", node.no_input), ("invalid", node.invalid)):
            if policy.prompt is not None:
                out.append(((name, "prompt"), policy.prompt))
    if isinstance(node, CollectNode) and node.invalid.prompt is not None:
        out.append((("invalid", "prompt"), node.invalid.prompt))
    if isinstance(node, LookupNode):
        if node.wait_prompt is not None:
            out.append((("wait_prompt",), node.wait_prompt))
        for b, branch in enumerate(node.branches):
            for s, item in enumerate(branch.say):
                base: Path = ("branches", b, "say", s)
                if item.prompt is not None:
                    out.append(((*base, "prompt"), item.prompt))
                out += [((*base, "prompts", k), p) for k, p in item.prompts.items()]
                if item.default_prompt is not None:
                    out.append(((*base, "default_prompt"), item.default_prompt))
    return out


def walk(flow: Flow, start: str) -> list[str]:
    """The nodes reachable from `start` in the order callers meet them: breadth first, each
    node's ways out in the order the node lists them (a menu's options by key)."""
    order: dict[str, None] = {}
    todo = deque([start])
    while todo:
        node_id = todo.popleft()
        if node_id in order or node_id not in flow.nodes:
            continue
        order[node_id] = None
        todo.extend(target for _, target in edges(flow.nodes[node_id]))
    return list(order)


def reachable(flow: Flow, start: str) -> set[str]:
    return set(walk(flow, start))


def hotline_start(hotline: Hotline, flow: Flow) -> str:
    return hotline.entry or flow.start


def offered_languages(hotline: Hotline) -> tuple[str, ...]:
    return hotline.languages or (hotline.language,)


# --- directory (hotlines.yaml) -------------------------------------------------------------


def _timezone_problem(name: str) -> str | None:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        import difflib

        close = difflib.get_close_matches(name, sorted(zoneinfo.available_timezones()), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"unknown time zone {name!r} ({hint}expected an IANA name such as Asia/Shanghai or America/New_York)"
    return None


def check_schedule(key: str, schedule: Schedule, src: SourceMap) -> list[Problem]:
    base: Path = ("schedules", key)
    problems: list[Problem] = []

    def ranges(path: Path, items: tuple[str, ...]) -> None:
        for i, text in enumerate(items):
            try:
                hours.parse_range(text)
            except hours.SpecError as exc:
                problems.append(Problem.at(src.value((*path, i)), (*path, i), str(exc)))

    if schedule.timezone is not None:
        message = _timezone_problem(schedule.timezone)
        if message:
            problems.append(Problem.at(src.value((*base, "timezone")), (*base, "timezone"), message))
    covered: dict[int, str] = {}
    for spec, items in schedule.weekly.items():
        path = (*base, "weekly", spec)
        try:
            days = hours.parse_weekdays(spec)
        except hours.SpecError as exc:
            problems.append(Problem.at(src.key(path), (*base, "weekly"), str(exc)))
        else:
            for day in sorted(days):
                if day in covered:
                    problems.append(
                        Problem.at(
                            src.key(path),
                            (*base, "weekly"),
                            f"{hours.WEEKDAYS[day]} is in both {covered[day]!r} and {spec!r} "
                            "(expected each weekday in one entry)",
                        )
                    )
                    break
                covered[day] = spec
        ranges(path, items)
    holiday_days: dict[object, int] = {}
    for i, holiday in enumerate(schedule.holidays):
        path = (*base, "holidays", i)
        if holiday.until is not None and holiday.until < holiday.date:
            problems.append(
                Problem.at(
                    src.value((*path, "until")),
                    (*path, "until"),
                    f"until {holiday.until} is before date {holiday.date} (expected a date on or after it)",
                )
            )
        ranges((*path, "hours"), holiday.hours)
        if holiday.until is not None and holiday.until >= holiday.date:
            for n in range((holiday.until - holiday.date).days + 1):
                holiday_days.setdefault(holiday.date.fromordinal(holiday.date.toordinal() + n), i)
        else:
            holiday_days.setdefault(holiday.date, i)
    for i, working in enumerate(schedule.working_days):
        path = (*base, "working_days", i)
        ranges((*path, "hours"), working.hours)
        if not working.hours:
            problems.append(
                Problem.at(src.value((*path, "hours")), (*path, "hours"), "no open hours (expected at least one range)")
            )
        if working.date in holiday_days:
            problems.append(
                Problem.at(
                    src.value((*path, "date")),
                    (*path, "date"),
                    f"{working.date} is also a holiday (holidays[{holiday_days[working.date]}]); "
                    "expected a working day outside every holiday",
                )
            )
    return problems


def check_directory(d: DirectoryInput, flow_files: Iterable[str]) -> list[Problem]:
    """hotlines.yaml on its own: languages, time zones, schedules, queues, flow files."""
    directory, src = d.directory, d.src
    flows = sorted(flow_files)
    problems: list[Problem] = []

    def at(path: Path, message: str) -> None:
        problems.append(Problem.at(src.value(path), path, message))

    def language(path: Path, key: str) -> None:
        if key not in d.languages:
            at(path, f"unknown language {key!r} ({one_of(d.languages, key)}; languages are defined under languages:)")

    for number, hotline in directory.hotlines.items():
        base: Path = ("hotlines", number)
        language((*base, "language"), hotline.language)
        for i, key in enumerate(hotline.languages):
            language((*base, "languages", i), key)
        if hotline.languages and hotline.language not in hotline.languages:
            at(
                (*base, "language"),
                f"default language {hotline.language!r} is not one of the hotline's languages "
                f"({one_of(hotline.languages)})",
            )
        message = _timezone_problem(hotline.timezone)
        if message:
            at((*base, "timezone"), message)
        if hotline.flow not in flows:
            at(
                (*base, "flow"),
                f"flow {hotline.flow!r} not found: no file flows/{hotline.flow}.yaml ({one_of(flows, hotline.flow)})",
            )
        if hotline.fallback_queue is not None and hotline.fallback_queue not in d.queues:
            at((*base, "fallback_queue"), f"unknown queue {hotline.fallback_queue!r} ({one_of(d.queues, hotline.fallback_queue)})")
        try:
            names = {f for _, f, _, _ in string.Formatter().parse(hotline.recording.filename) if f is not None}
        except ValueError as exc:
            at((*base, "recording", "filename"), f"invalid file name pattern: {exc}")
        else:
            for name in sorted(names - RECORDING_PLACEHOLDERS):
                at(
                    (*base, "recording", "filename"),
                    f"unknown placeholder {{{name}}} ({one_of(RECORDING_PLACEHOLDERS, name)})",
                )
        if hotline.crm_url is not None:
            for message in crm.template_problems(hotline.crm_url):
                at((*base, "crm_url"), message)
    for key, schedule in directory.schedules.items():
        problems += check_schedule(key, schedule, src)
    return problems


# --- one flow ------------------------------------------------------------------------------


def check_flow(f: FlowInput, d: DirectoryInput | None, acd_queues: frozenset[str] = frozenset()) -> list[Problem]:
    """One flow file: references, clashes, node settings, schedules and queues it names.

    `acd_queues`: the queues of routing.yaml; each still needs its hotlines.yaml place."""
    flow, src = f.flow, f.src
    problems: list[Problem] = []

    def at(path: Path, message: str, key: bool = False) -> None:
        problems.append(Problem.at(src.key(path) if key else src.value(path), path, message))

    def node_ref(path: Path, target: str, what: str = "node") -> None:
        if target not in f.node_ids:
            at(path, f"unknown {what} {target!r} ({one_of(f.node_ids, target)})")

    node_ref(("start",), flow.start)
    for node_id, node in flow.nodes.items():
        base: Path = ("nodes", node_id)
        for rel, target in edges(node):
            node_ref((*base, *rel), target)
        if isinstance(node, MenuNode):
            specials = []
            if node.back:
                specials.append(("*", "the back key (back: true)"))
            if node.repeat is not None:
                specials.append((node.repeat, f"the repeat key (repeat: '{node.repeat}')"))
            if node.operator is not None:
                specials.append(("0", "the operator key (operator is set)"))
            for digit, role in specials:
                if digit in node.options:
                    at(
                        (*base, "options", digit),
                        f"digit {digit!r} is also {role}; the option would hide it "
                        "(expected another digit, or remove the special key)",
                        key=True,
                    )
        if isinstance(node, CollectNode) and node.min_digits > node.max_digits:
            at(
                (*base, "min_digits"),
                f"min_digits {node.min_digits} is more than max_digits {node.max_digits} (expected min_digits <= max_digits)",
            )
        if isinstance(node, LookupNode):
            problems += _check_lookup(node, base, src)
        if d is not None:
            if isinstance(node, HoursNode) and node.schedule not in d.schedules:
                at((*base, "schedule"), f"unknown schedule {node.schedule!r} ({one_of(d.schedules, node.schedule)})")
            if isinstance(node, QueueNode) and node.queue not in d.queues:
                if node.queue in acd_queues:
                    at(
                        (*base, "queue"),
                        f"queue {node.queue!r} is in routing.yaml but not in hotlines.yaml queues (expected a "
                        "dialplan place there too: callers go to it when the ACD cannot route)",
                    )
                else:
                    at((*base, "queue"), f"unknown queue {node.queue!r} ({one_of(d.queues, node.queue)})")
            if isinstance(node, LanguageNode):
                for digit, key in node.options.items():
                    if key not in d.languages:
                        at((*base, "options", digit), f"unknown language {key!r} ({one_of(d.languages, key)})")
        for rel, prompt in prompt_refs(node):
            message = _prompt_id_problem(prompt)
            if message:
                at((*base, *rel), message)
    if f.complete:
        problems += _check_way_out(f)
    return problems


def check_lookup_urls(f: FlowInput, base_url: str | None, server_file: str) -> list[Problem]:
    """Lookup URLs are absolute http(s) URLs, or paths under lookups.base_url."""
    problems: list[Problem] = []
    for node_id, node in f.flow.nodes.items():
        if not isinstance(node, LookupNode):
            continue
        path: Path = ("nodes", node_id, "request", "url")
        url = node.request.url
        if url.startswith("/"):
            if base_url is None:
                problems.append(
                    Problem.at(
                        f.src.value(path),
                        path,
                        f"relative URL {url!r} but no lookups.base_url in {server_file} "
                        "(expected an absolute http(s) URL, or a base_url)",
                    )
                )
        elif not url.startswith(("http://", "https://", "{")):
            problems.append(
                Problem.at(
                    f.src.value(path), path, f"invalid URL {url!r} (expected http://..., https://... or /path)"
                )
            )
    return problems


def _check_lookup(node: LookupNode, base: Path, src: SourceMap) -> list[Problem]:
    problems: list[Problem] = []
    if not node.branches:
        problems.append(
            Problem.at(src.value((*base, "branches")), (*base, "branches"), "no branches (expected at least one)")
        )
    for b, branch in enumerate(node.branches):
        if branch.when is None and b != len(node.branches) - 1:
            path: Path = (*base, "branches", b)
            problems.append(
                Problem.at(
                    src.value(path), path, "a branch without `when` matches everything (expected it last)"
                )
            )
        if branch.when is not None:
            tests = branch.when.model_fields_set & {"equals", "in_", "exists", "gt", "lt"}
            if not tests:
                path = (*base, "branches", b, "when")
                problems.append(
                    Problem.at(src.value(path), path, "no test (expected one of: equals, in, exists, gt, lt)")
                )
        for s, item in enumerate(branch.say):
            path = (*base, "branches", b, "say", s)
            chosen = sorted(item.model_fields_set & {"prompt", "digits", "number", "date", "prompt_by"})
            if len(chosen) != 1:
                got = ", ".join(chosen) if chosen else "none"
                problems.append(
                    Problem.at(
                        src.value(path),
                        path,
                        f"a say item sets {got} (expected exactly one of: prompt, digits, number, date, prompt_by)",
                    )
                )
            elif chosen != ["prompt_by"] and (item.prompts or item.default_prompt is not None):
                problems.append(
                    Problem.at(
                        src.value(path), path, "prompts/default_prompt are only used with prompt_by (expected prompt_by)"
                    )
                )
    return problems


def _prompt_id_problem(prompt: str) -> str | None:
    parts = prompt.split("/")
    if prompt.startswith("/") or ".." in parts or "" in parts:
        return f"invalid prompt id {prompt!r} (expected a path inside the prompt directory, without '..' or empty parts)"
    return None


def _check_way_out(f: FlowInput) -> list[Problem]:
    """Nodes from which no path reaches a queue, transfer, voicemail or hang-up."""
    flow = f.flow
    # A reference to a missing node is reported on its own; count it as a way out here.
    good = {n for n, node in flow.nodes.items() if isinstance(node, TERMINAL)}
    changed = True
    while changed:
        changed = False
        for node_id, node in flow.nodes.items():
            if node_id in good:
                continue
            if any(t in good or t not in flow.nodes for _, t in edges(node)):
                good.add(node_id)
                changed = True
    problems = []
    for node_id, node in flow.nodes.items():
        if node_id not in good:
            path: Path = ("nodes", node_id)
            problems.append(
                Problem.at(
                    f.src.key(path),
                    path,
                    f"no way out: no path from {node.type} node {node_id!r} reaches a queue, transfer, "
                    "voicemail or hangup node (expected every node to lead to one)",
                )
            )
    return problems


# --- hotlines and their flows ----------------------------------------------------------------


def check_hotline_flows(
    d: DirectoryInput, flows: Mapping[str, FlowInput], overflow_nodes: Iterable[str] = ()
) -> list[Problem]:
    """Entries, unreachable nodes, and language choices a hotline does not offer.

    `overflow_nodes`: nodes routing.yaml sends overflowing callers to; reachable where they exist."""
    problems: list[Problem] = []
    starts: dict[str, set[str]] = {name: {f.flow.start} for name, f in flows.items()}
    overflow_seeds = frozenset(overflow_nodes)
    for number, hotline in d.directory.hotlines.items():
        f = flows.get(hotline.flow)
        if f is None:
            continue
        if hotline.entry is not None:
            if hotline.entry in f.flow.nodes:
                starts[hotline.flow].add(hotline.entry)
            if hotline.entry not in f.node_ids:
                path: Path = ("hotlines", number, "entry")
                problems.append(
                    Problem.at(
                        d.src.value(path),
                        path,
                        f"unknown node {hotline.entry!r} in flow {hotline.flow!r} ({one_of(f.node_ids, hotline.entry)})",
                    )
                )
        if not f.complete:
            continue
        offered = offered_languages(hotline)
        for node_id in sorted(reachable(f.flow, hotline_start(hotline, f.flow))):
            node = f.flow.nodes[node_id]
            if not isinstance(node, LanguageNode):
                continue
            for digit, key in node.options.items():
                if key in d.languages and key not in offered:
                    path = ("nodes", node_id, "options", digit)
                    problems.append(
                        Problem.at(
                            f.src.value(path),
                            path,
                            f"language {key!r} is not offered by hotline {number} "
                            f"(expected one of its languages: {', '.join(offered)})",
                        )
                    )
    for name, f in flows.items():
        if not f.complete or any(t not in f.flow.nodes for n in f.flow.nodes.values() for _, t in edges(n)):
            continue  # with a reference to fix first, "unreachable" would only add noise
        seen: set[str] = set()
        for start in starts[name] | (overflow_seeds & f.flow.nodes.keys()):
            seen |= reachable(f.flow, start)
        for node_id in f.flow.nodes:
            if node_id not in seen:
                path = ("nodes", node_id)
                problems.append(
                    Problem.at(
                        f.src.key(path),
                        path,
                        f"unreachable node {node_id!r}: no path leads to it from start {f.flow.start!r}"
                        + (f" or a hotline entry ({', '.join(sorted(starts[name] - {f.flow.start}))})"
                           if len(starts[name]) > 1 else "")
                        + " (expected it to be used, or remove it)",
                    )
                )
    return problems


# --- prompt files --------------------------------------------------------------------------


@dataclass
class Need:
    """One place that makes a hotline play a prompt."""

    src: SourceMap
    path: Path
    prompt: str
    hotlines: list[str] = field(default_factory=list)


_Need = Need


def speech_refs(node: Node, language: str) -> list[tuple[Path, str]]:
    """Catalog prompts that a lookup's spoken values (number, digits, date) play in a language."""
    if not isinstance(node, LookupNode):
        return []
    out: list[tuple[Path, str]] = []
    for b, branch in enumerate(node.branches):
        for s, item in enumerate(branch.say):
            for kind in ("number", "digits", "date"):
                if getattr(item, kind) is not None:
                    out += [(("branches", b, "say", s, kind), p) for p in sorted(prompts_needed(kind, language))]
    return out


def needed_prompts(
    d: DirectoryInput, flows: Mapping[str, FlowInput], surveys: SurveysInput | None = None
) -> Iterator[tuple[str, str, Need]]:
    """(language, prompt id, where) for every prompt a hotline can play. Any caller of any
    hotline may be surveyed after a call: every survey prompt counts for every hotline."""
    needs: dict[tuple[str, str, Path, str], Need] = {}
    survey_refs = [
        (surveys.src, surveys.src.file, path, prompt) for path, prompt in survey_prompt_refs(surveys.surveys)
    ] if surveys is not None else []
    for number, hotline in d.directory.hotlines.items():
        refs: list[tuple[SourceMap, str, Path, str]] = list(survey_refs)
        for attr in ("recording_notice", "error_prompt"):
            prompt = getattr(hotline, attr)
            if prompt is not None:
                refs.append((d.src, "hotlines.yaml", ("hotlines", number, attr), prompt))
        nodes: list[tuple[str, Node]] = []
        f = flows.get(hotline.flow)
        if f is not None and f.complete:
            for node_id in sorted(reachable(f.flow, hotline_start(hotline, f.flow))):
                nodes.append((node_id, f.flow.nodes[node_id]))
                for rel, prompt in prompt_refs(f.flow.nodes[node_id]):
                    refs.append((f.src, f.src.file, ("nodes", node_id, *rel), prompt))
        for language in offered_languages(hotline):
            if language not in d.languages:
                continue
            spoken = [
                (f.src, f.src.file, ("nodes", node_id, *rel), prompt)
                for node_id, node in nodes
                for rel, prompt in speech_refs(node, language)
            ] if f is not None else []
            for src, file, path, prompt in refs + spoken:
                need = needs.setdefault((language, file, path, prompt), Need(src, path, prompt))
                if number not in need.hotlines:
                    need.hotlines.append(number)
    for (language, _, _, prompt), need in needs.items():
        yield language, prompt, need


_needed = needed_prompts


def check_prompts(
    d: DirectoryInput, flows: Mapping[str, FlowInput], index: PromptIndex, where: tuple[SourceMap, Path],
    surveys: SurveysInput | None = None,
) -> list[Problem]:
    """Every prompt each hotline can play exists in each of its languages, in a playable format.

    `where` is the place of prompts.local_dir (server.yaml) for directory-level problems.
    """
    problems: list[Problem] = []
    dir_src, dir_path = where
    if not index.found:
        return [
            Problem.at(
                dir_src.value(dir_path),
                dir_path,
                f"prompt directory {index.local_dir} not found (expected <local_dir>/<language>/<prompt id>.<format>, "
                "relative to the config directory)",
            )
        ]
    missing_languages: set[str] = set()
    checked_files: set[str] = set()
    formats = ",".join(index.formats)
    for language, prompt, need in _needed(d, flows, surveys):
        if language not in index.languages:
            if language not in missing_languages:
                missing_languages.add(language)
                problems.append(
                    Problem.at(
                        dir_src.value(dir_path),
                        dir_path,
                        f"no prompt directory {index.local_dir}/{language} for language {language!r} "
                        f"(needed by hotline {', '.join(need.hotlines)})",
                    )
                )
            continue
        found = index.files.get((language, prompt))
        if found is None:
            problems.append(
                Problem.at(
                    need.src.value(need.path),
                    need.path,
                    f"prompt {prompt!r} has no file for language {language} (expected "
                    f"{index.local_dir}/{language}/{prompt}.{{{formats}}}; needed by hotline "
                    f"{', '.join(need.hotlines)})",
                )
            )
        elif found.problem is not None and found.shown not in checked_files:
            checked_files.add(found.shown)
            problems.append(Problem.at(need.src.value(need.path), need.path, f"{found.shown}: {found.problem}"))
    return problems


# --- routing.yaml (the ACD) ----------------------------------------------------------------

# What Dial accepts as one endpoint: TECH/resource (PJSIP/1001, PJSIP/1001@trunk, SIP/x, Local/1001@agents).
ENDPOINT = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*/[^\s,&/][^\s,&]*$")
MAILBOX = re.compile(r"^[^\s,@]+(@[^\s,@]+)?$")
CALLER_NUMBER = re.compile(r"^\+?[0-9][0-9 ()-]*$")
OVERFLOW_CAUSES = ("timeout", "no_agents", "full")


@dataclass(frozen=True)
class RoutingInput:
    """routing.yaml: the model (possibly partial when some entries failed) and its keys."""

    routing: RoutingConfig
    src: SourceMap
    agents: frozenset[str]  # every agent id written, valid or not
    queues: frozenset[str]  # every queue name written, valid or not
    agents_complete: bool  # every agent entry is valid: "no agent has ..." checks are meaningful


def overflow_nodes(r: RoutingInput) -> frozenset[str]:
    """Flow nodes that overflowing callers are sent to (they count as reachable)."""
    out: set[str] = set()
    for queue in r.routing.queues.values():
        for cause in OVERFLOW_CAUSES:
            dest = getattr(queue.overflow, cause)
            if dest is not None and dest.node is not None:
                out.add(dest.node)
    return frozenset(out)


def acd_usage(r: RoutingInput, d: DirectoryInput, flows: Mapping[str, FlowInput]) -> dict[str, set[str]]:
    """Hotline number -> the ACD queues its callers can reach: queue nodes reachable from its
    start, and the queues and flow nodes those overflow to, transitively."""
    queues = r.routing.queues
    usage: dict[str, set[str]] = {}
    for number, hotline in d.directory.hotlines.items():
        f = flows.get(hotline.flow)
        if f is None or not f.complete:
            continue
        nodes = reachable(f.flow, hotline_start(hotline, f.flow))
        used: set[str] = set()
        while True:
            before = (len(nodes), len(used))
            used |= {
                n.queue for n in (f.flow.nodes[i] for i in nodes) if isinstance(n, QueueNode) and n.queue in queues
            }
            for name in list(used):
                for cause in OVERFLOW_CAUSES:
                    dest = getattr(queues[name].overflow, cause)
                    if dest is None:
                        continue
                    if dest.queue is not None and dest.queue in queues:
                        used.add(dest.queue)
                    if dest.node is not None and dest.node in f.flow.nodes and dest.node not in nodes:
                        nodes |= reachable(f.flow, dest.node)
            if (len(nodes), len(used)) == before:
                break
        usage[number] = used
    return usage


def _requirement(queue: QueueConfig, step: Step) -> tuple[dict[str, int], list[tuple[str, ...]]]:
    """Minimum proficiencies and the group lists (one group of each) an agent needs for a step."""
    skills = dict(queue.skills)
    for skill, level in step.skills.items():
        skills[skill] = max(level, skills.get(skill, 0))
    groups = [g for g in (queue.groups, step.groups) if g]
    return skills, groups


def _meets(agent: AgentConfig, skills: Mapping[str, int], groups: list[tuple[str, ...]], language: str | None) -> bool:
    if any(agent.skills.get(skill, 0) < level for skill, level in skills.items()):
        return False
    if any(not set(agent.groups) & set(choice) for choice in groups):
        return False
    return language is None or not agent.languages or language in agent.languages


def _describe_need(skills: Mapping[str, int], groups: list[tuple[str, ...]], language: str | None) -> str:
    parts = [f"{skill} >= {level}" for skill, level in sorted(skills.items())]
    parts += [f"in group {' or '.join(choice)}" for choice in groups]
    if language is not None:
        parts.append(f"speaking {language}")
    return ", ".join(parts) if parts else "any agent"


def _cycles(graph: Mapping[str, list[tuple[str, str]]]) -> list[list[tuple[str, str, str]]]:
    """One cycle (as edges queue, cause, target) per strongly connected group of queues,
    starting at its first name in alphabetical order."""
    out: list[list[tuple[str, str, str]]] = []
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        # Shortest path from start back to start (breadth first, causes in written order).
        parent: dict[str, tuple[str, str]] = {}
        frontier = [start]
        found = False
        while frontier and not found:
            nxt: list[str] = []
            for q in frontier:
                for cause, target in graph.get(q, []):
                    if target == start:
                        parent[start] = (q, cause)
                        found = True
                        break
                    if target not in parent and target in graph:
                        parent[target] = (q, cause)
                        nxt.append(target)
                if found:
                    break
            frontier = nxt
        if not found:
            continue
        cycle: list[tuple[str, str, str]] = []
        node = start
        while True:
            q, cause = parent[node]
            cycle.append((q, cause, node))
            node = q
            if node == start:
                break
        cycle.reverse()
        out.append(cycle)
        done |= {q for q, _, _ in cycle}
    return out


def _wrap_up_problems(wrap_up: WrapUp, queue: Path, src: SourceMap, d: DirectoryInput | None) -> list[Problem]:
    """A queue's wrap-up codes (routing.wrapup.tree_problems), its limit, and labels in
    languages no hotline offers (a warning: nobody reads them, yet nothing breaks)."""
    base: Path = (*queue, "wrap_up")
    problems = [Problem.at(src.value((*base, "codes", *where)), (*base, "codes", *where), message)
                for where, message in wrapup.tree_problems(wrap_up.codes)]
    if wrap_up.limit <= 0:
        problems.append(Problem.at(src.value((*base, "limit")), (*base, "limit"),
                                   f"limit {wrap_up.limit:g} is not a time to pick a code in (expected seconds "
                                   "after the call's end, more than 0, e.g. 120)"))
    if d is not None:
        spoken = {language for hotline in d.directory.hotlines.values() for language in offered_languages(hotline)}
        for where, language in wrapup.languages_of(wrap_up.codes):
            if language not in spoken:
                path = (*base, "codes", *where)
                problems.append(Problem.at(src.key(path), path, f"label in {language!r}, a language no hotline "
                                           f"offers ({one_of(spoken, language)}): no agent will read it",
                                           warning=True))
    return problems


def check_routing(r: RoutingInput, d: DirectoryInput | None, flows: Mapping[str, FlowInput]) -> list[Problem]:
    """routing.yaml against itself, hotlines.yaml and the flows: endpoints, languages, skills
    and groups nobody has, overflow targets and cycles, fallback places."""
    routing, src = r.routing, r.src
    agents, queues = routing.agents, routing.queues
    problems: list[Problem] = []

    def at(path: Path, message: str, key: bool = False) -> None:
        problems.append(Problem.at(src.key(path) if key else src.value(path), path, message))

    # Agents: endpoints and languages.
    endpoints: dict[str, str] = {}
    for agent_id, agent in agents.items():
        base: Path = ("agents", agent_id)
        if not ENDPOINT.match(agent.endpoint):
            at((*base, "endpoint"), f"invalid endpoint {agent.endpoint!r} (expected TECH/resource, e.g. PJSIP/1001)")
        else:
            tech, resource = agent.endpoint.split("/", 1)
            normal = f"{tech.upper()}/{resource}"
            if normal in endpoints:
                at(
                    (*base, "endpoint"),
                    f"endpoint {agent.endpoint!r} is also agent {endpoints[normal]}'s "
                    "(expected each agent its own endpoint: Dial would ring one phone for two agents)",
                )
            else:
                endpoints[normal] = agent_id
        if d is not None:
            for i, spoken in enumerate(agent.languages):
                if spoken not in d.languages:
                    at(
                        (*base, "languages", i),
                        f"unknown language {spoken!r} ({one_of(d.languages, spoken)}; "
                        "languages are defined in hotlines.yaml)",
                    )

    skill_names = {skill for agent in agents.values() for skill in agent.skills}
    group_names = {group for agent in agents.values() for group in agent.groups}
    graph: dict[str, list[tuple[str, str]]] = {}
    for name, queue in queues.items():
        base = ("queues", name)
        if d is not None and name not in d.queues:
            at(
                base,
                f"queue {name!r} has no dialplan place in hotlines.yaml queues (expected an entry {name!r} there: "
                "callers go to it when the ACD cannot route, e.g. when Redis is unreachable)",
                key=True,
            )
        language = queue.language if queue.language != "caller" else None
        if language is not None and d is not None and language not in d.languages:
            at(
                (*base, "language"),
                f"unknown language {language!r} (expected 'caller', null or a language key: {one_of(d.languages, language)})",
            )
            language = None
        # Skills and groups that nobody has: the queue or step could never be served.
        names_ok = r.agents_complete
        if r.agents_complete:
            named: list[tuple[Path, str, bool]] = [((*base, "skills", s), s, True) for s in queue.skills]
            named += [((*base, "groups", i), g, False) for i, g in enumerate(queue.groups)]
            for s_i, step in enumerate(queue.steps):
                named += [((*base, "steps", s_i, "skills", s), s, True) for s in step.skills]
                named += [((*base, "steps", s_i, "groups", i), g, False) for i, g in enumerate(step.groups)]
            for path, value, is_skill in named:
                have = skill_names if is_skill else group_names
                if value not in have:
                    names_ok = False
                    what = "skill" if is_skill else "group"
                    at(
                        path,
                        f"no agent has {what} {value!r} ({one_of(have, value)}); the queue could never be served",
                        key=is_skill,
                    )
        if names_ok:
            queue_skills, queue_groups = _requirement(queue, Step())
            if not any(_meets(a, queue_skills, queue_groups, language) for a in agents.values()):
                at(
                    base,
                    f"no agent can serve queue {name!r} (it needs {_describe_need(queue_skills, queue_groups, language)}; "
                    "expected at least one such agent)",
                    key=True,
                )
            else:
                for s_i, step in enumerate(queue.steps):
                    skills, groups = _requirement(queue, step)
                    if not any(_meets(a, skills, groups, language) for a in agents.values()):
                        at(
                            (*base, "steps", s_i),
                            f"no agent meets step {s_i + 1} ({_describe_need(skills, groups, language)}); "
                            "expected at least one such agent, else the step never offers the call",
                        )
        # Overflow destinations.
        for cause in OVERFLOW_CAUSES:
            dest = getattr(queue.overflow, cause)
            if dest is None:
                continue
            path = (*base, "overflow", cause)
            if dest.queue is not None:
                if dest.queue not in r.queues:
                    hint = (
                        f"; {dest.queue!r} is only a dialplan queue: use dialplan: 'context,extension'"
                        if d is not None and dest.queue in d.queues
                        else ""
                    )
                    at((*path, "queue"), f"unknown ACD queue {dest.queue!r} ({one_of(r.queues, dest.queue)}{hint})")
                elif dest.queue in queues:
                    graph.setdefault(name, []).append((cause, dest.queue))
            if dest.voicemail is not None and not MAILBOX.match(dest.voicemail):
                at((*path, "voicemail"), f"invalid mailbox {dest.voicemail!r} (expected mailbox or mailbox@context, e.g. '400')")
            if dest.dialplan is not None and not all(part.strip() for part in dest.dialplan.split(",")):
                at((*path, "dialplan"), f"invalid dialplan place {dest.dialplan!r} (expected 'context,extension', both given)")
        graph.setdefault(name, [])
        if queue.crm_url is not None:
            for message in crm.template_problems(queue.crm_url):
                at((*base, "crm_url"), message)
        if queue.wrap_up is not None:
            problems.extend(_wrap_up_problems(queue.wrap_up, base, src, d))
    for cycle in _cycles(graph):
        first, cause, _ = cycle[0]
        shown = first + "".join(f" -{c}-> {t}" for _, c, t in cycle)
        at(
            ("queues", first, "overflow", cause, "queue"),
            f"overflow cycle: {shown} (expected overflows to end at voicemail, a flow node or the dialplan)",
        )

    # Overflow nodes exist in the flow of every hotline whose callers can reach the queue.
    usage = acd_usage(r, d, flows) if d is not None else {}
    for name, queue in queues.items():
        users = sorted(number for number, used in usage.items() if name in used)
        for cause in OVERFLOW_CAUSES:
            dest = getattr(queue.overflow, cause)
            if dest is None or dest.node is None:
                continue
            path = ("queues", name, "overflow", cause, "node")
            if users and d is not None:
                by_flow: dict[str, list[str]] = {}
                for number in users:
                    by_flow.setdefault(d.directory.hotlines[number].flow, []).append(number)
                for flow_name, numbers in sorted(by_flow.items()):
                    f = flows[flow_name]
                    if dest.node not in f.node_ids:
                        at(
                            path,
                            f"unknown node {dest.node!r} in flow {flow_name!r} of hotline {', '.join(numbers)}, "
                            f"whose callers can reach queue {name!r} ({one_of(f.node_ids, dest.node)})",
                        )
            elif flows and not any(dest.node in f.node_ids for f in flows.values()):
                every = sorted({n for f in flows.values() for n in f.node_ids})
                at(path, f"unknown node {dest.node!r}: no flow has it ({one_of(every, dest.node)})")

    # Classification and state.
    for i, number in enumerate(routing.classification.vip_numbers):
        if not CALLER_NUMBER.match(number):
            at(("classification", "vip_numbers", i), f"invalid caller number {number!r} (expected digits, optionally with a leading +, spaces or -, e.g. '13800138000')")
    url = routing.state.redis_url
    if not url.startswith(("redis://", "rediss://", "unix://")):
        at(("state", "redis_url"), f"invalid Redis URL {url!r} (expected redis://host:port/db, rediss://... or unix://path)")

    # Pause reasons: a code names one reason, and the built-in ones keep their meaning.
    builtin = {reason.code: reason for reason in BUILTIN_PAUSE_REASONS}
    first_at: dict[str, int] = {}
    for i, reason in enumerate(routing.pause_reasons):
        path = ("pause_reasons", i, "code")
        if reason.code in builtin:
            at(path, f"pause reason {reason.code!r} is built in ({builtin[reason.code].label['en-US'].lower()}): "
                     "expected another code; the built-in one needs no entry")
        elif reason.code in first_at:
            at(path, f"duplicate pause reason {reason.code!r} (also pause_reasons[{first_at[reason.code]}]; "
                     "expected each code once)")
        else:
            first_at[reason.code] = i
    return problems


# --- surveys.yaml (post-call surveys) --------------------------------------------------------

# The values an answer of each kind can have (yes_no: 1 = yes, 0 = no).
ANSWER_RANGE: dict[QuestionKind, tuple[int, int]] = {"scale": (1, 5), "yes_no": (0, 1), "nps": (0, 10)}


@dataclass(frozen=True)
class SurveysInput:
    surveys: SurveysConfig
    src: SourceMap


def survey_prompt_refs(config: SurveysConfig) -> list[tuple[Path, str]]:
    """Every prompt a survey can play: (path in surveys.yaml, prompt id)."""
    out: list[tuple[Path, str]] = []
    for name, survey in config.surveys.items():
        base: Path = ("surveys", name)
        for attr in ("intro", "invalid_prompt", "no_input_prompt", "thanks"):
            prompt = getattr(survey, attr)
            if prompt is not None:
                out.append(((*base, attr), prompt))
        out += [((*base, "questions", i, "prompt"), q.prompt) for i, q in enumerate(survey.questions)]
        if survey.comment is not None:
            out.append(((*base, "comment", "prompt"), survey.comment.prompt))
    return out


def _match_problem(when: Match, kind: QuestionKind) -> str | None:
    """Why a rule's test can never match, or always matches, an answer of this kind."""
    low, high = ANSWER_RANGE[kind]
    if when.equals is not None and not low <= when.equals <= high:
        return f"equals {when.equals} never matches a {kind} answer (expected {low} to {high})"
    if when.at_most is not None and when.at_most < low:
        return f"at_most {when.at_most} never matches a {kind} answer (expected {low} to {high - 1})"
    if when.at_most is not None and when.at_most >= high:
        return f"at_most {when.at_most} matches every {kind} answer (expected {low} to {high - 1})"
    return None


def check_surveys(
    s: SurveysInput, d: DirectoryInput | None, r: RoutingInput | None, flows: Mapping[str, FlowInput] | None
) -> list[Problem]:
    """surveys.yaml against itself, the queues of hotlines.yaml and routing.yaml, and the flows.

    `flows` None: a flow file could not be read whole, so whether any flow has a
    survey_opt_in node is not known (its own problems are reported)."""
    config, src = s.surveys, s.src
    problems: list[Problem] = []

    def at(path: Path, message: str, key: bool = False) -> None:
        problems.append(Problem.at(src.key(path) if key else src.value(path), path, message))

    names = frozenset(config.surveys)
    queues = (d.queues if d is not None else frozenset()) | (r.queues if r is not None else frozenset())
    selection = config.selection
    if selection.default.survey is not None and selection.default.survey not in names:
        at(("selection", "default", "survey"),
           f"unknown survey {selection.default.survey!r} ({one_of(names, selection.default.survey)})")
    for queue, override in selection.queues.items():
        base: Path = ("selection", "queues", queue)
        if d is not None and queue not in queues:
            at(base, f"unknown queue {queue!r} ({one_of(queues, queue)}; queues are defined in hotlines.yaml "
                     "and routing.yaml)", key=True)
        if override.survey is not None and override.survey not in names:
            at((*base, "survey"), f"unknown survey {override.survey!r} ({one_of(names, override.survey)})")
    for queue in config.followups.owners.queues:
        if d is not None and queue not in queues:
            at(("followups", "owners", "queues", queue), f"unknown queue {queue!r} ({one_of(queues, queue)})", key=True)

    kinds: dict[str, set[QuestionKind]] = {}
    for survey in config.surveys.values():
        for question in survey.questions:
            kinds.setdefault(question.id, set()).add(question.kind)
    if config.web.enabled:  # the web form's one 1-5 score
        kinds.setdefault(WEB_SCORE_QUESTION, set()).add("scale")
    # The default rules cover every kind; only rules an admin wrote can be wrong.
    written = ("followups", "rules") in src.values
    for i, rule in enumerate(config.followups.rules if written else ()):
        path: Path = ("followups", "rules", i, "when")
        when = rule.when
        if when.question is not None and when.question not in kinds:
            at((*path, "question"), f"unknown question {when.question!r} ({one_of(kinds, when.question)})")
            continue
        asked = {kind for found in kinds.values() for kind in found}
        if when.kind is not None and when.kind not in asked:
            at((*path, "kind"), f"no survey asks a {when.kind} question: the rule never matches "
                                f"(expected one of: {', '.join(sorted(asked))})")
            continue
        tested = sorted(kinds[when.question]) if when.question is not None else [when.kind]
        for kind in tested:
            message = _match_problem(when, kind) if kind is not None else None
            if message is not None:
                at((*path, "at_most" if when.at_most is not None else "equals"),
                   (f"question {when.question!r} is {kind}: " if when.question is not None else "") + message)

    if flows is not None and not any(
        isinstance(node, SurveyOptInNode) for f in flows.values() for node in f.flow.nodes.values()
    ):
        chosen: list[Path] = [("selection", "default")] if selection.default.mode == "opt_in" else []
        chosen += [("selection", "queues", q) for q, o in selection.queues.items() if o.mode == "opt_in"]
        for base in chosen:
            at((*base, "mode"), "mode opt_in, but no flow has a survey_opt_in node: nobody could opt in "
                                "(expected one before the queue node, or another mode)")

    for path, prompt in survey_prompt_refs(config):
        message = _prompt_id_problem(prompt)
        if message:
            at(path, message)
    return problems
