"""A reader and checker for Asterisk 22 configuration files, in pure Python.

`read()` follows main/config.c (config_text_file_load and process_text_line) rule by rule:
lines as fgets() gives them (at most 8191 bytes); `;` starts a comment unless written `\\;`
(the backslash is dropped); `;--` opens a block comment (nested, unless the next character is
another `-`) and `--;` closes one, with config.c's quirk that a stray `--;` drives the nesting
count negative; the rest is stripped of blanks. `[name]` starts a category (repeats are new
categories, as pjsip.conf needs); `[name](!)` is a template, `[name](tpl1,tpl2)` copies the
variables of earlier categories (templates included) before its own, `[name](+)` appends to an
existing one; `#include`/`#tryinclude` (quotes or `<>`, globs, relative to the top directory,
at most 10 levels) go on in the includer's current category; `name = value` and
`name => value` (an object), a leading `\\` escaping the first character, `name += more`
appending to the last `name`. What config.c rejects (no `]`/`)`, unknown base, `(+)` of
nothing, missing #include, bad escape, no category) stops the file like Asterisk does; what
it only warns about (no `=`, no name, unknown directive, unterminated comment) is a problem.

`dialplan()` then loads extensions.conf as pbx_config.c does (`exten`/`same`, priorities
`n`/`s`/`hint`/labels/`+N`, `include`), and the `check_*` functions lint each file. Every
problem reads `file:line: message`.

One file past 600 lines: the reader follows main/config.c rule by rule, in its order.
"""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

MAX_NESTED_COMMENTS = 128  # config.c
MAX_INCLUDE_LEVEL = 10  # config.c
LINE_MAX = 8191  # char buf[8192] for fgets()
BLANKS = " \t\n\r\v\f"


@dataclass(frozen=True)
class Problem:
    file: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass
class Variable:
    name: str
    value: str
    file: Path
    line: int
    object: bool = False  # written with =>
    inherited: bool = False


@dataclass
class Category:
    name: str
    file: Path
    line: int
    template: bool = False
    bases: list[str] = field(default_factory=list)
    variables: list[Variable] = field(default_factory=list)

    def get(self, name: str) -> str | None:
        """The effective value: the last one, as sorcery and app_queue apply them in order."""
        values = [v.value for v in self.variables if v.name.lower() == name.lower()]
        return values[-1] if values else None

    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class Config:
    top: Path
    categories: list[Category] = field(default_factory=list)  # templates included
    problems: list[Problem] = field(default_factory=list)
    current: Category | None = None

    def sections(self, name: str | None = None) -> list[Category]:
        """Categories as ast_category_browse() returns them: templates skipped."""
        return [c for c in self.categories if not c.template and (name is None or c.name == name)]

    def find(self, name: str) -> Category | None:
        for cat in self.categories:
            if cat.name.lower() == name.lower():
                return cat
        return None


def _strip(text: str) -> str:
    return text.strip(BLANKS)


def _uncomment(line: str, level: int) -> tuple[str | None, int, bool]:
    """config.c's comment loop on one line: (text to process or None, nesting, stray `--;`)."""
    buf = line + "\0"
    process: int | None = None if level else 0
    new = 0
    stray = False
    while True:
        end = buf.index("\0", new)
        p = buf.find(";", new, end)
        if p < 0:
            break
        if p > new and buf[p - 1] == "\\":  # escaped: drop the backslash
            buf = buf[: p - 1] + buf[p:]
            new = p
        elif buf[p + 1 : p + 3] == "--" and buf[p + 3 : p + 4] != "-":  # ";--" opens
            if level >= MAX_NESTED_COMMENTS:
                break
            buf = buf[:p] + "\0" + buf[p + 1 :]
            new = p + 3
            level += 1
        elif p >= new + 2 and buf[p - 2 : p] == "--":  # "--;" closes
            level -= 1
            stray = stray or level < 0
            new = p + 1
            if level == 0:
                if process is not None:
                    old = buf.index("\0", process)
                    rest = buf[new : buf.index("\0", new)]
                    buf = buf[:old] + rest + "\0" + buf[old + len(rest) + 1 :]
                    new = old
                else:
                    process = new
        elif level == 0:  # plain comment: the line ends here
            buf = buf[:p] + "\0" + buf[p + 1 :]
            new = p
        else:
            new = p + 1
    if process is None:
        return None, level, stray
    return buf[process : buf.index("\0", process)], level, stray


class _Stop(Exception):
    """config.c returned -1: the whole configuration is refused."""


def read(path: Path) -> Config:
    """Read a configuration file (and its #includes) the way Asterisk's config.c does."""
    config = Config(top=Path(path))
    try:
        _read_file(config, Path(path), 1)
    except _Stop:
        pass
    return config


def _read_file(config: Config, path: Path, level: int) -> None:
    def problem(line: int, message: str) -> None:
        config.problems.append(Problem(path, line, message))

    text = path.read_bytes().decode("utf-8", errors="surrogateescape")
    cat = config.current
    comment = 0
    opened_at: list[int] = []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for lineno, raw in enumerate(lines, start=1):
        if len(raw.encode("utf-8", errors="surrogateescape")) + 1 > LINE_MAX:
            problem(lineno, "line too long: Asterisk skips it (8191 bytes at most)")
            continue
        before = comment
        processed, comment, stray = _uncomment(raw, comment)
        if comment > before:
            opened_at.extend([lineno] * (comment - before))
        elif comment < before:
            del opened_at[max(comment, 0) :]
        if stray:
            problem(lineno, "'--;' closes no ';--' block comment: Asterisk then treats the following lines as comments")
        if processed is None:
            continue
        stripped = _strip(processed)
        if stripped:
            cat = _process_line(config, cat, stripped, path, lineno, level, problem)
    if comment > 0:
        problem(opened_at[0] if opened_at else len(lines), "unterminated ';--' block comment")


def _process_line(
    config: Config, cat: Category | None, cur: str, path: Path, lineno: int, level: int, problem: Callable[[int, str], None]
) -> Category | None:
    if cur[0] == "[":
        close = cur.find("]")
        if close < 0:
            problem(lineno, "parse error: no closing ']'")
            raise _Stop
        name, rest = cur[1:close], cur[close + 1 :]
        new = Category(name, path, lineno)
        target: Category | None = new
        if rest.startswith("("):
            end = rest.find(")")
            if end < 0:
                problem(lineno, "parse error: no closing ')'")
                raise _Stop
            if _strip(rest[end + 1 :]):
                problem(lineno, f"text after ')' is ignored by Asterisk: {_strip(rest[end + 1:])!r}")
            for option in rest[1:end].split(","):
                if option == "!":
                    new.template = True
                elif option.startswith("+"):
                    existing = config.find(name)
                    if existing is None:
                        problem(lineno, f"category addition requested, but category '{name}' does not exist")
                        raise _Stop
                    existing.template |= new.template
                    existing.variables.extend(new.variables)
                    target = existing
                else:
                    base = config.find(option)
                    if base is None:
                        problem(lineno, f"inheritance requested, but category '{option}' does not exist")
                        raise _Stop
                    new.bases.append(option)
                    new.variables.extend(
                        Variable(v.name, v.value, v.file, v.line, v.object, True) for v in base.variables
                    )
        elif _strip(rest):
            problem(lineno, f"text after ']' is ignored by Asterisk: {_strip(rest)!r}")
        if target is new:
            config.categories.append(new)
        config.current = target
        return target
    if cur[0] == "#":
        directive, _, argument = cur[1:].partition(" ")
        directive, argument = directive.split("\t")[0], _strip(argument)
        if directive.lower() not in ("include", "tryinclude", "exec"):
            problem(lineno, f"unknown directive '#{directive}'")
            return cat
        if not argument:
            problem(lineno, f"directive '#{directive}' needs an argument")
            return cat
        if directive.lower() == "exec":
            problem(lineno, "#exec runs a program at load time: not allowed in these samples")
            return cat
        if argument[0] in "\"<" and argument[-1] == {'"': '"', "<": ">"}[argument[0]] and len(argument) > 1:
            argument = argument[1:-1]
        pattern = argument if argument.startswith("/") else str(config.top.parent / argument)
        found = sorted(glob.glob(pattern))
        if not found and directive.lower() == "include":
            problem(lineno, f"the file '{argument}' was listed as a #include but it does not exist")
            raise _Stop
        if level + 1 > MAX_INCLUDE_LEVEL:
            problem(lineno, f"maximum include level ({MAX_INCLUDE_LEVEL}) exceeded")
            return cat
        for name in found:
            _read_file(config, Path(name), level + 1)
        return cat
    if cat is None:
        problem(lineno, "parse error: no category context for this line")
        raise _Stop
    escaped = cur[0] == "\\"
    if escaped:
        cur = cur[1:]
        if not cur or ord(cur[0]) < 33:
            problem(lineno, "invalid escape")
            raise _Stop
    eq = cur.find("=", 1 if escaped else 0)
    if eq < 0:
        problem(lineno, f"no '=' (equal sign) in line: {cur!r}")
        return cat
    if eq > (1 if escaped else 0) and cur[eq - 1] == "+":
        name, more = _strip(cur[: eq - 1]), cur[eq + 1 :]
        previous = [v for v in cat.variables if v.name == name]
        if previous:
            previous[-1].value = (previous[-1].value + more).rstrip(BLANKS).lstrip(BLANKS)
            return cat
        value, is_object = _strip(more), False
    else:
        name, value, is_object = _strip(cur[:eq]), cur[eq + 1 :], False
        if value.startswith(">"):
            value, is_object = value[1:], True
        value = _strip(value)
    if not name:
        problem(lineno, "no variable name before '='")
        return cat
    cat.variables.append(Variable(name, value, path, lineno, is_object))
    return cat


# --- extensions.conf ----------------------------------------------------------------------

# Dialplan applications of a stock Asterisk 22 build (app_macro, Monitor, etc. are gone).
APPLICATIONS_22 = frozenset(
    a.lower()
    for a in """
    AGI EAGI Answer Background BackgroundDetect Busy ChanIsAvail ChanSpy Congestion
    ContinueWhile Dial Echo EndWhile Exec ExecIf ExecIfTime ExitWhile Gosub GosubIf Goto GotoIf
    GotoIfTime Hangup Log MSet MixMonitor StopMixMonitor NoOp Playback Playtones StopPlaytones
    Progress Queue QueueLog AddQueueMember RemoveQueueMember PauseQueueMember UnpauseQueueMember
    Read Record Return Ringing SayAlpha SayDigits SayNumber SendDTMF Set Stack StackPop System
    TryExec TrySystem Verbose VoiceMail VoiceMailMain Wait WaitExten While ImportVar
    Originate Bridge BridgeWait ConfBridge Page Directory SayUnixTime
    """.split()
)

GOTO_APPS = {"goto": "goto", "gotoif": "if", "gosub": "goto", "gosubif": "if"}
# Options of Dial (3rd argument) and Queue (2nd) that name a dialplan place: context^exten^priority.
PLACE_OPTIONS = {"dial": (2, "FGbB"), "queue": (1, "FbB")}


@dataclass
class Step:
    priority: int
    label: str | None
    app: str
    data: str
    rest: str  # text after the closing ')'
    file: Path
    line: int


@dataclass
class Context:
    name: str
    file: Path
    line: int
    extensions: dict[str, dict[int, Step]] = field(default_factory=dict)
    includes: list[tuple[str, Path, int]] = field(default_factory=list)

    def matching(self, exten: str) -> list[str]:
        return [name for name in self.extensions if extension_matches(name, exten)]


@dataclass
class Dialplan:
    contexts: dict[str, Context]
    globals: dict[str, str]
    problems: list[Problem]

    def has_place(self, context: str, exten: str, seen: frozenset[str] = frozenset()) -> bool:
        ctx = self.contexts.get(context)
        if ctx is None or context in seen:
            return False
        if ctx.matching(exten):
            return True
        return any(self.has_place(inc, exten, seen | {context}) for inc, _, _ in ctx.includes)

    def labels(self, context: str, exten: str) -> set[str]:
        ctx = self.contexts.get(context)
        found: set[str] = set()
        if ctx is None:
            return found
        for name in [exten] if exten in ctx.extensions else ctx.matching(exten):
            found |= {s.label for s in ctx.extensions[name].values() if s.label}
        return found


def extension_matches(pattern: str, exten: str) -> bool:
    """Asterisk's extension match: literal, or `_` with X Z N [a-z] . ! ."""
    if not pattern.startswith("_"):
        return pattern == exten
    regex = ""
    rest = pattern[1:]
    i = 0
    while i < len(rest):
        ch = rest[i]
        if ch == "X":
            regex += "[0-9]"
        elif ch == "Z":
            regex += "[1-9]"
        elif ch == "N":
            regex += "[2-9]"
        elif ch == "[":
            end = rest.find("]", i)
            if end < 0:
                return False
            regex += "[" + re.sub(r"([\\\]^])", r"\\\1", rest[i + 1 : end]) + "]"
            i = end
        elif ch == ".":
            regex += ".+"
            break
        elif ch == "!":
            regex += ".*"
            break
        elif ch != "-":
            regex += re.escape(ch)
        i += 1
    return re.fullmatch(regex, exten) is not None


def _strsep_brackets(text: str, delim: str) -> tuple[str, str | None]:
    """pbx_config.c's pbx_strsep: split at the first delimiter outside [...]."""
    square = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "[":
            square += 1
        elif ch == "]":
            square = max(square - 1, 0)
        elif ch == "\\":
            i += 1
        elif ch in delim and not square:
            return text[:i], text[i + 1 :]
        i += 1
    return text, None


def _leading_int(text: str) -> int | None:
    match = re.match(r"[ \t]*([+-]?\d+)", text)
    return int(match.group(1)) if match else None


def dialplan(config: Config) -> Dialplan:
    """Load extensions.conf as pbx_config.c's pbx_load_config does, keeping every problem."""
    problems: list[Problem] = []
    globals_: dict[str, str] = {}
    for cat in config.sections():
        if cat.name.lower() == "globals":
            globals_.update((v.name, v.value) for v in cat.variables)
    contexts: dict[str, Context] = {}
    for cat in config.sections():
        if cat.name.lower() in ("general", "globals"):
            continue
        ctx = contexts.setdefault(cat.name, Context(cat.name, cat.file, cat.line))
        last_ext, last_pri = "", -2
        for v in cat.variables:
            def problem(message: str, v: Variable = v) -> None:
                problems.append(Problem(v.file, v.line, message))

            kind = v.name.lower()
            if kind.startswith("same") or kind == "exten":
                if kind.startswith("same"):
                    if not last_ext:
                        problem(f"'same' before any 'exten' in context '{cat.name}'")
                        continue
                    ext, rest = last_ext, v.value
                else:
                    ext_raw, rest_opt = _strsep_brackets(v.value, ",")
                    rest = rest_opt or ""
                    ext = re.sub(r"\$\{(\w+)\}", lambda m: globals_.get(m.group(1), ""), ext_raw)
                    last_ext = ext
                name = ext.split("/", 1)[0]
                pri_text, _, appl = rest.partition(",")
                pri_text = _strip(pri_text)
                label = None
                if "(" in pri_text:
                    pri_text, _, label = pri_text.partition("(")
                    if ")" not in label:
                        problem("label missing trailing ')'")
                        continue
                    label = label[: label.index(")")]
                plus = None
                if "+" in pri_text:
                    pri_text, _, plus = pri_text.partition("+")
                steps = ctx.extensions.setdefault(name, {})
                if pri_text == "hint":
                    pri = -1
                elif pri_text in ("n", "next", "s", "same"):
                    if last_pri <= -2:
                        problem(f"can't use '{pri_text}' priority on the first entry")
                        continue
                    pri = last_pri + 1 if pri_text in ("n", "next") else last_pri
                else:
                    number = _leading_int(pri_text)
                    labelled = {s.label: s.priority for s in steps.values() if s.label}
                    if number is None and pri_text not in labelled:
                        problem(f"invalid priority/label '{pri_text}'")
                        continue
                    pri = number if number is not None else labelled[pri_text]
                    if pri < 1:
                        problem(f"invalid priority '{pri_text}'")
                        continue
                if plus is not None:
                    pri += _leading_int(plus) or 0
                last_pri = pri
                app, data, after = appl, "", ""
                if "(" in appl:
                    head, _, tail = appl.partition("(")
                    if "${" in head or "$[" in head:
                        app = appl
                    else:
                        app = head
                        close = tail.rfind(")")
                        if close < 0:
                            problem(f"no closing parenthesis: '{appl}'")
                            data = tail
                        else:
                            data, after = tail[:close], tail[close + 1 :]
                app = app.lstrip(BLANKS)
                if name in ("_.", "_!"):
                    problem(f"the use of '{name}' for an extension is strongly discouraged")
                if pri in steps:
                    problem(f"priority {pri} of extension '{name}' in context '{cat.name}' is already in use")
                    continue
                steps[pri] = Step(pri, label, app, data, after, v.file, v.line)
            elif kind == "include":
                ctx.includes.append((_strip(v.value), v.file, v.line))
            elif kind in ("ignorepat", "switch", "lswitch", "eswitch"):
                pass
            else:
                problem(f"unknown directive '{v.name}' in context '{cat.name}'")
    return Dialplan(contexts, globals_, problems)


def unbalanced(text: str) -> str | None:
    """Why ${...}, $[...] and (...) in an application's data do not nest, or None."""
    stack: list[tuple[str, int]] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if text.startswith("${", i) or text.startswith("$[", i):
            stack.append(("}" if text[i + 1] == "{" else "]", i))
            i += 2
            continue
        if ch == "(":
            stack.append((")", i))
        elif ch in ")}]":
            if not stack or stack[-1][0] != ch:
                expected = f"expected '{stack[-1][0]}'" if stack else "nothing is open"
                return f"unbalanced '{ch}' at offset {i} ({expected}) in {text!r}"
            stack.pop()
        i += 1
    if stack:
        closer, at = stack[-1]
        return f"'{text[at:at + 2] if closer != ')' else '('}' at offset {at} is never closed with '{closer}' in {text!r}"
    return None


def split_args(text: str, sep: str = ",") -> list[str]:
    """Split at `sep` outside ${...}, $[...] and (...), like ast_app_separate_args."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(text):
        if text.startswith("${", i) or text.startswith("$[", i):
            depth += 1
            i += 2
            continue
        ch = text[i]
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(depth - 1, 0)
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def _dynamic(text: str) -> bool:
    return "${" in text or "$[" in text


def _targets(app: str, data: str) -> list[list[str]]:
    """Dialplan places ([context,]exten,]priority) an application jumps to."""
    kind = GOTO_APPS.get(app.lower())
    if kind == "goto":
        return [split_args(data)]
    if kind == "if":
        branches = split_args(data, "?")
        if len(branches) < 2:
            return []
        return [split_args(b) for b in split_args("?".join(branches[1:]), ":") if _strip(b)]
    if app.lower() in PLACE_OPTIONS:
        index, letters = PLACE_OPTIONS[app.lower()]
        args = split_args(data)
        options = args[index] if len(args) > index else ""
        return [m.group(2).split("^") for m in re.finditer(r"([%s])\(([^)]*)\)" % letters, options)]
    return []


def check_dialplan(plan: Dialplan, applications: frozenset[str] = APPLICATIONS_22) -> list[Problem]:
    """Applications, nesting and jump targets of every step; include targets."""
    problems = list(plan.problems)
    for ctx in plan.contexts.values():
        for inc, file, line in ctx.includes:
            if not _dynamic(inc) and inc not in plan.contexts:
                problems.append(Problem(file, line, f"include => {inc}: context '{inc}' does not exist"))
        for exten, steps in ctx.extensions.items():
            for step in steps.values():
                if step.priority == -1:
                    continue
                problems.extend(_check_step(plan, ctx.name, exten, step, step.app, step.data, applications))
                if _strip(step.rest):
                    problems.append(Problem(step.file, step.line, f"text after the closing ')' is ignored: {step.rest!r}"))
    return problems


def _check_step(plan: Dialplan, context: str, exten: str, step: Step, app: str, data: str, applications: frozenset[str]) -> list[Problem]:
    found: list[Problem] = []

    def problem(message: str) -> None:
        found.append(Problem(step.file, step.line, message))

    if not app:
        problem("no application")
    elif not _dynamic(app) and app.lower() not in applications:
        problem(f"unknown application '{app}' (not in the list of Asterisk 22 applications)")
    why = unbalanced(data)
    if why:
        problem(why)
        return found
    if app.lower() == "execif":
        branches = split_args(data, "?")
        for branch in split_args("?".join(branches[1:]), ":") if len(branches) > 1 else []:
            inner, _, rest = branch.partition("(")
            if _strip(inner):
                found.extend(_check_step(plan, context, exten, step, _strip(inner), rest[: rest.rfind(")")], applications))
    for target in _targets(app, data):
        target = [_strip(t) for t in target]
        if len(target) == 1:
            place = [context, exten, target[0]]
        elif len(target) == 2:
            place = [context, target[0], target[1]]
        else:
            place = target[:3]
        ctx_name, ext, pri = place
        pri = pri.split("(", 1)[0]  # Gosub arguments
        if not ctx_name or _dynamic(ctx_name):
            continue
        if ctx_name not in plan.contexts:
            problem(f"{app} target '{','.join(target)}': context '{ctx_name}' does not exist")
            continue
        if _dynamic(ext):
            continue
        if len(target) > 1 and not plan.has_place(ctx_name, ext):
            problem(f"{app} target '{','.join(target)}': no extension '{ext}' in context '{ctx_name}'")
            continue
        if pri and not _dynamic(pri) and _leading_int(pri) is None and pri not in plan.labels(ctx_name, ext):
            problem(f"{app} target '{','.join(target)}': no label '{pri}' in {ctx_name},{ext}")
    return found


# --- pjsip.conf, queues.conf, manager.conf ------------------------------------------------

PJSIP_TYPES = frozenset(
    "transport endpoint aor auth identify registration domain_alias contact system global acl "
    "phoneprov resource_list outbound-publish inbound-publication asterisk-publication".split()
)
# option -> the type of the sections it names (a comma-separated list)
PJSIP_REFERENCES = {
    "endpoint": {"auth": "auth", "outbound_auth": "auth", "aors": "aor", "transport": "transport"},
    "registration": {"outbound_auth": "auth", "transport": "transport", "endpoint": "endpoint"},
    "identify": {"endpoint": "endpoint"},
    "aor": {"outbound_proxy": ""},
}


def check_pjsip(config: Config) -> list[Problem]:
    problems = list(config.problems)
    objects: dict[str, set[str]] = {}
    for cat in config.sections():
        kind = cat.get("type")
        if kind is None:
            problems.append(Problem(cat.file, cat.line, f"[{cat.name}] has no type= (directly or via its templates)"))
        elif kind not in PJSIP_TYPES:
            problems.append(Problem(cat.file, cat.line, f"[{cat.name}] has type={kind}, not one of {sorted(PJSIP_TYPES)}"))
        else:
            objects.setdefault(kind, set()).add(cat.name)
    for cat in config.sections():
        for option, wanted in PJSIP_REFERENCES.get(cat.get("type") or "", {}).items():
            value = cat.get(option)
            if not wanted or value is None:
                continue
            for name in filter(None, (_strip(n) for n in value.split(","))):
                if name not in objects.get(wanted, set()):
                    line = next(v.line for v in reversed(cat.variables) if v.name.lower() == option)
                    problems.append(Problem(cat.file, line, f"[{cat.name}] {option}={name}: no type={wanted} section named '{name}'"))
    return problems


QUEUE_OPTIONS = frozenset(
    """musicclass music musiconhold announce context timeout ringinuse setinterfacevar setqueuevar
    setqueueentryvar monitor-format membergosub queue-youarenext queue-thereare queue-callswaiting
    queue-quantity1 queue-quantity2 queue-holdtime queue-minutes queue-minute queue-seconds
    queue-thankyou queue-callerannounce queue-reporthold announce-frequency announce-to-first-user
    min-announce-frequency announce-round-seconds announce-holdtime announce-position
    announce-position-limit periodic-announce periodic-announce-frequency relative-periodic-announce
    random-periodic-announce retry wrapuptime penaltymemberslimit autofill autopause autopausedelay
    autopausebusy autopauseunavail maxlen servicelevel strategy joinempty leavewhenempty
    reportholdtime memberdelay weight timeoutrestart defaultrule timeoutpriority member""".split()
)
QUEUE_GENERAL_OPTIONS = frozenset(
    """persistentmembers autofill updatecdr shared_lastcall negative_penalty_invalid
    log_membername_as_agent force_longest_waiting_caller""".split()
)
QUEUE_STRATEGIES = frozenset("ringall leastrecent fewestcalls random rrmemory linear wrandom rrordered".split())
QUEUE_EMPTY = frozenset(
    "paused penalty inuse ringing invalid wrapup unavailable unknown loose strict "
    "yes no true false on off 1 0 y n t f".split()
)


def check_queues(config: Config) -> list[Problem]:
    problems = list(config.problems)
    for cat in config.sections():
        general = cat.name.lower() == "general"
        allowed = QUEUE_GENERAL_OPTIONS if general else QUEUE_OPTIONS
        for v in cat.variables:
            name = v.name.lower()
            if name not in allowed:
                problems.append(Problem(v.file, v.line, f"[{cat.name}] '{v.name}' is not a queues.conf option of app_queue"))
            elif name == "strategy" and v.value.lower() not in QUEUE_STRATEGIES:
                problems.append(Problem(v.file, v.line, f"[{cat.name}] strategy '{v.value}' is not one of {sorted(QUEUE_STRATEGIES)}"))
            elif name in ("joinempty", "leavewhenempty"):
                bad = [o for o in v.value.split(",") if _strip(o).lower() not in QUEUE_EMPTY]
                if bad:
                    problems.append(Problem(v.file, v.line, f"[{cat.name}] {v.name}: unknown condition(s) {bad}"))
    return problems


def queue_members(config: Config) -> dict[str, list[Variable]]:
    return {c.name: [v for v in c.variables if v.name.lower() == "member"] for c in config.sections() if c.name.lower() != "general"}


MANAGER_CLASSES = frozenset(
    "system call log verbose command agent user config dtmf reporting cdr dialplan originate "
    "agi cc aoc test security message all none".split()
)


def check_manager(config: Config) -> list[Problem]:
    problems = list(config.problems)
    general = config.sections("general")
    if not general or (general[-1].get("enabled") or "no").lower() not in ("yes", "true", "on", "1", "y", "t"):
        problems.append(Problem(config.top, 1, "[general] enabled = yes is missing: AMI is off"))
    for cat in config.sections():
        if cat.name.lower() == "general":
            continue
        for v in cat.variables:
            if v.name.lower() in ("read", "write"):
                for cls in filter(None, (_strip(c).lower() for c in v.value.split(","))):
                    if cls not in MANAGER_CLASSES:
                        problems.append(Problem(v.file, v.line, f"[{cat.name}] {v.name}: '{cls}' is not an AMI class"))
    return problems
