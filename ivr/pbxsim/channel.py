"""A deterministic model of one Asterisk channel running AGI, on a virtual clock.

`SimChannel.handle(line)` takes one command line and returns the exact lines Asterisk
22 would send back (res_agi.c semantics, checked against recorded transcripts). Media
commands advance the clock by what they would take; the caller's key presses and
hang-up are events on that clock, and so are a Dial's answer and end (`dials`), for what
Asterisk tells over AMI meanwhile.

One file past 600 lines: one AGI command a method, as res_agi.c has them, each next to the
channel state it reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from ivr.pbxsim.caller import Agent, AgentBehaviour, Busy, CallerScript, HangUp, NoAnswer, Press
from ivr.pbxsim.sounds import SoundLibrary

DEAD = "511 Command Not Permitted on a dead channel or intercept routine"
# res_agi's commands that still run after a hang-up (dead=1 in its command table).
DEAD_OK = {"GET VARIABLE", "GET FULL VARIABLE", "SET VARIABLE", "EXEC", "VERBOSE", "NOOP",
           "DATABASE GET", "DATABASE PUT", "DATABASE DEL", "DATABASE DELTREE", "ASYNCAGI BREAK"}
STREAM_FILE_USAGE = (
    "520-Invalid command syntax.  Proper usage follows:",
    "Send the given file, allowing playback to be interrupted by the given digits, if any. Returns "
    "<literal>0</literal> if playback completes without a digit being pressed, or the ASCII numerical "
    "value of the digit if one was pressed, or <literal>-1</literal> on error or if the channel was "
    "disconnected. If musiconhold is playing before calling stream file it will be automatically "
    "stopped and will not be restarted after completion.",
    "It sets the following channel variables upon completion:",
    "<variable>PLAYBACKSTATUS</variable>: The status of the playback attempt as a text string.",
    "    <value>SUCCESS</value>",
    "    <value>FAILED</value>",
    "520 End of proper usage.",
)
SAY_ITEM_SECONDS = 0.6
# Longest verbs first so that "GET FULL VARIABLE" wins over "GET VARIABLE"... by length.
VERBS = sorted(
    ["ANSWER", "STREAM FILE", "CONTROL STREAM FILE", "GET DATA", "WAIT FOR DIGIT", "SAY DIGITS",
     "SAY NUMBER", "SAY ALPHA", "SAY DATE", "SAY TIME", "EXEC", "GET VARIABLE", "GET FULL VARIABLE",
     "SET VARIABLE", "SET CONTEXT", "SET EXTENSION", "SET PRIORITY", "CHANNEL STATUS", "RECORD FILE",
     "HANGUP", "VERBOSE", "NOOP", "GOSUB", "SET MUSIC"],
    key=len, reverse=True,
)


def parse_args(line: str) -> list[str]:
    """res_agi.c parse_args: whitespace splits, double quotes group, backslash escapes."""
    argv: list[str] = []
    current: list[str] | None = None
    quoted = escaped = False
    whitespace = True
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and whitespace:
                current = []
                argv.append("")
                whitespace = False
            escaped = False
            continue
        if ch in " \t" and not quoted and not escaped:
            whitespace = True
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        if whitespace:
            current = []
            argv.append("")
            whitespace = False
        assert current is not None
        current.append(ch)
        argv[-1] = "".join(current)
        escaped = False
    return argv


def separate_args(data: str, delim: str = ",", *, remove_chars: bool = True) -> list[str]:
    """app.c __ast_app_separate_args: split at `delim` outside `(...)`, `[...]` and `"..."`;
    a backslash keeps the next character literal. `remove_chars` (AST_STANDARD_APP_ARGS):
    the quotes and backslashes are removed; without it (the RAW variant) they stay."""
    args: list[str] = []
    current: list[str] = []
    paren = bracket = 0
    quote = False
    i = 0
    while i < len(data):
        ch = data[i]
        if ch == "(":
            paren += 1
        elif ch == ")":
            paren = max(0, paren - 1)
        elif ch == "[":
            bracket += 1
        elif ch == "]":
            bracket = max(0, bracket - 1)
        elif ch == '"' and delim != '"':
            quote = not quote
            if remove_chars:
                i += 1
                continue
        elif ch == "\\":
            if remove_chars:
                i += 1
                if i < len(data):
                    current.append(data[i])
                i += 1
                continue
            current.append(ch)
            i += 1
            if i < len(data):
                current.append(data[i])
            i += 1
            continue
        elif ch == delim and not paren and not quote and not bracket:
            args.append("".join(current))
            current = []
            i += 1
            continue
        current.append(ch)
        i += 1
    args.append("".join(current))
    return args


def parse_options(text: str) -> dict[str, str | None]:
    """app.c ast_app_parse_options: one letter each, some with a `(argument)` (nested
    parentheses counted; a backslash outside quotes removed, the next character kept; quotes
    honoured only when the argument starts with one)."""
    options: dict[str, str | None] = {}
    i = 0
    while i < len(text):
        letter = text[i]
        i += 1
        if i < len(text) and text[i] == "(":
            i += 1
            quoted = i < len(text) and text[i] == '"'
            depth, inside, argument = 1, False, []
            while i < len(text):
                ch = text[i]
                if ch == "(" and not inside:
                    depth += 1
                elif ch == ")" and not inside:
                    depth -= 1
                    if depth == 0:
                        i += 1
                        break
                elif ch == '"' and quoted:
                    inside = not inside
                    i += 1
                    continue
                elif ch == "\\":
                    if not inside or text[i + 1:i + 2] == '"':
                        i += 1
                        ch = text[i] if i < len(text) else ""
                    else:
                        argument.append(ch)
                        i += 1
                        ch = text[i] if i < len(text) else ""
                argument.append(ch)
                i += 1
            options[letter] = "".join(argument)
        else:
            options[letter] = None
    return options


def gosub_target(handler: str) -> tuple[str, str, str, list[str]]:
    """Where a Dial b()/B() handler goes and its arguments: app_dial turns `^` into `,`, then
    app_stack's Gosub takes the label up to the first `(` and splits what lies before the last
    `)` as RAW arguments (ARG1...). (context, extension, priority, arguments)."""
    text = handler.replace("^", ",")
    label, paren, rest = text.partition("(")
    arguments = separate_args(rest[:rest.rfind(")")] if ")" in rest else rest, remove_chars=False) if paren else []
    parts = label.split(",")
    while len(parts) < 3:
        parts.insert(0, "")
    context, extension, priority = parts[-3:]
    return context, extension, priority, arguments


def _agent_headers(arguments: Sequence[str]) -> dict[str, str]:
    """[ivr-agent-headers] of dialplans/extensions_ivr.conf on a PJSIP channel: ARG1..ARG5 as
    X-IVR-Call-Id, -Queue, -Hotline, -Language, -Customer; ARG6 as X-IVR-Pop-Url when not empty."""
    names = ("X-IVR-Call-Id", "X-IVR-Queue", "X-IVR-Hotline", "X-IVR-Language", "X-IVR-Customer")
    values = [*arguments, *[""] * 6]
    headers = dict(zip(names, values))
    if values[5]:
        headers["X-IVR-Pop-Url"] = values[5]
    return headers


# What the dialplan's pre-dial handlers (Dial's b option) do to the agent's INVITE: context ->
# the SIP headers they add, from the handler's arguments.
PREDIAL_HANDLERS: Mapping[str, Callable[[Sequence[str]], dict[str, str]]] = MappingProxyType(
    {"ivr-agent-headers": _agent_headers})


@dataclass(frozen=True)
class Heard:
    """Something the caller heard: a prompt or spoken value, and the key that cut it."""

    what: str
    start: float
    end: float
    interrupted_by: str | None = None


@dataclass(frozen=True)
class DialLeg:
    """One Dial that created the dialed channel, on the channel's clock. Unanswered, it ended
    (DialEnd) at `ended`; answered, the caller and the agent were bridged from `answered` to
    `ended`, when `agent_left` says who went first."""

    target: str
    status: str  # its DIALSTATUS
    began: float
    ended: float
    answered: float | None = None
    agent_left: bool = False
    # Dial's b() pre-dial handler on the dialed channel: (context, extension, priority, its
    # arguments), and the SIP headers it added to the INVITE the agent's phone got.
    predial: tuple[str, str, str, tuple[str, ...]] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class _Event:
    at: float
    digit: str | None  # None = hang-up
    cause: int | None = None  # a hang-up's cause when the step gave one
    patience: bool = False  # the caller giving up on hold (an agent's answer cancels it)


@dataclass
class SimChannel:
    caller: CallerScript
    sounds: SoundLibrary
    variables: dict[str, str] = field(default_factory=dict)
    agents: dict[str, AgentBehaviour] = field(default_factory=dict)
    now: float = 0.0
    alive: bool = True
    hangup_noticed: bool = False
    hung_up_by: str | None = None  # caller, ivr, agent, or pbx (a HangUp step with a cause other than 16)
    hung_up_at: float | None = None
    hangup_cause: int | None = None  # a HangUp step's own cause, if it gave one
    # Directories RECORD FILE cannot create a file in (missing on this PBX): `(writefile)`.
    unwritable: frozenset[str] = frozenset()
    heard: list[Heard] = field(default_factory=list)
    pressed: list[tuple[float, str, bool]] = field(default_factory=list)  # (time, digit, consumed)
    mixmonitor: list[str] = field(default_factory=list)
    location: tuple[str, str, str] | None = None
    music: str | None = None  # the music-on-hold class playing (SET MUSIC ON), if any
    music_log: list[tuple[float, str]] = field(default_factory=list)  # (time, "on <class>" | "off")
    dials: list[DialLeg] = field(default_factory=list)
    predial_handlers: Mapping[str, Callable[[Sequence[str]], dict[str, str]]] = field(
        default_factory=lambda: PREDIAL_HANDLERS)
    # When the caller's channel was answered, on this clock: the dialplan's Answer() before the
    # AGI (0.0); None: not yet (ANSWER, or a Dial's answer, answers it). Asterisk's Dial sets
    # ANSWEREDTIME from it, not from the agent's answer.
    answered_at: float | None = 0.0
    _events: list[_Event] = field(default_factory=list)
    _step: int = 0
    _holding: bool = False  # the caller's patience has started to run (CallerScript.patience)

    def __post_init__(self) -> None:
        self._schedule_absolute()

    # --- the caller's timeline -----------------------------------------------------------

    def _schedule_absolute(self) -> None:
        """Schedule the leading steps that have absolute times."""
        while self._step < len(self.caller.steps):
            step = self.caller.steps[self._step]
            if step.at is None:
                return
            self._add(step, step.at)
            self._step += 1

    def _prompt_started(self, name: str) -> None:
        if self._step >= len(self.caller.steps):
            return
        step = self.caller.steps[self._step]
        if step.on_prompt is not None and (name == step.on_prompt or name.endswith("/" + step.on_prompt)):
            self._add(step, self.now + step.after)
            self._step += 1
            self._schedule_absolute()

    def _add(self, step: Press | HangUp, at: float) -> None:
        if isinstance(step, HangUp):
            self._events.append(_Event(at, None, step.cause))
        else:
            for index, digit in enumerate(step.digits):
                self._events.append(_Event(at + index * step.gap, digit))
        self._events.sort(key=lambda e: e.at)

    def _next_event(self, until: float | None) -> _Event | None:
        """Pop the first event before `until`, dropping keys pressed while nobody listened."""
        while self._events and self._events[0].at < self.now:
            stale = self._events.pop(0)
            if stale.digit is None:
                self._die(stale.at, "caller", stale.cause)
                return stale
            self.pressed.append((stale.at, stale.digit, False))
        if self._events and (until is None or self._events[0].at < until):
            event = self._events.pop(0)
            self.now = max(self.now, event.at)
            if event.digit is None:
                self._die(event.at, "caller", event.cause)
            return event
        return None

    def pass_time(self, until: float) -> None:
        """The clock runs on to `until` with no command running (the controller is silent, e.g.
        music on hold): keys pressed meanwhile are lost, a hang-up due ends the call."""
        while self.alive and self._events and self._events[0].at <= until:
            event = self._events.pop(0)
            if event.digit is None:
                self._die(event.at, "caller", event.cause)
            else:
                self.pressed.append((event.at, event.digit, False))
        self.now = max(self.now, until)

    def hangup_due(self) -> float | None:
        """When the caller's next scheduled hang-up is, on this clock (None: none scheduled)."""
        return next((event.at for event in self._events if event.digit is None), None) if self.alive else None

    def _die(self, at: float, by: str, cause: int | None = None) -> None:
        if self.alive:
            self.alive = False
            self.hung_up_by = "pbx" if cause is not None and cause != 16 else by
            self.hung_up_at = at
            self.hangup_cause = cause

    # --- commands -------------------------------------------------------------------------

    def handle(self, line: str) -> list[str]:
        """Reply lines (without newlines) for one command line, HANGUP line included."""
        verb, args = self._split(line)
        if verb is None:
            return ["510 Invalid or unknown command"]
        if not self.alive and verb not in DEAD_OK:
            reply = [DEAD]
        else:
            reply = self._run(verb, args)
        if not self.alive and not self.hangup_noticed:
            # res_agi notices the hang-up when it goes back to waiting for a command.
            self.hangup_noticed = True
            if self.variables.get("AGISIGHUP", "yes") != "no":
                reply.append("HANGUP")
        return reply

    def idle_hangup_after(self) -> float | None:
        """Real seconds of silence from the controller after which the caller hangs up."""
        if self.alive and self._step < len(self.caller.steps):
            step = self.caller.steps[self._step]
            if isinstance(step, HangUp) and step.idle is not None:
                return step.idle
        return None

    def hang_up_while_idle(self) -> list[str]:
        """The caller hangs up between commands: res_agi's loop sends HANGUP at once."""
        step = self.caller.steps[self._step]
        self._step += 1
        self._die(self.now, "caller", step.cause if isinstance(step, HangUp) else None)
        self.hangup_noticed = True
        return ["HANGUP"] if self.variables.get("AGISIGHUP", "yes") != "no" else []

    @classmethod
    def verb_of(cls, line: str) -> str:
        """The AGI verb of a command line (`STREAM FILE`), or `?` for an unknown one."""
        return cls._split(line)[0] or "?"

    @staticmethod
    def _split(line: str) -> tuple[str | None, list[str]]:
        words = parse_args(line)
        upper = [w.upper() for w in words]
        for verb in VERBS:
            n = len(verb.split())
            if upper[:n] == verb.split():
                return verb, words[n:]
        return None, []

    def _run(self, verb: str, args: list[str]) -> list[str]:
        try:
            handler = getattr(self, "_" + verb.lower().replace(" ", "_"))
            result: list[str] = handler(args)
            return result
        except _Usage:
            if verb == "STREAM FILE":
                return list(STREAM_FILE_USAGE)
            return ["520-Invalid command syntax.  Proper usage follows:",
                    f"Usage: {verb}", "520 End of proper usage."]

    def _answer(self, args: list[str]) -> list[str]:
        if self.answered_at is None:
            self.answered_at = self.now
        return ["200 result=0"]

    def _play(self, name: str, escape: str, seconds: float | None) -> tuple[str | None, float, bool]:
        """Play; return (digit, seconds played, hung up)."""
        start = self.now
        self._prompt_started(name)
        length = seconds if seconds is not None else 0.0
        while True:
            event = self._next_event(start + length)
            if event is None:
                self.now = start + length
                self.heard.append(Heard(name, start, self.now))
                return None, length, False
            if event.digit is None:
                self.heard.append(Heard(name, start, self.now, "hangup"))
                return None, self.now - start, True
            if event.digit in escape:
                self.pressed.append((event.at, event.digit, True))
                self.heard.append(Heard(name, start, self.now, event.digit))
                return event.digit, self.now - start, False
            self.pressed.append((event.at, event.digit, False))

    def _stop_music(self) -> None:
        """STREAM FILE stops music on hold and does not restart it (res_agi's usage text)."""
        if self.music is not None:
            self.music = None
            self.music_log.append((self.now, "off"))

    def _stream_file(self, args: list[str]) -> list[str]:
        if len(args) < 1:
            raise _Usage
        name, escape = args[0], (args[1] if len(args) > 1 else "")
        length = self.sounds.duration(name)
        if length is None:
            return ["200 result=-1 endpos=0"]
        self._stop_music()
        digit, played, hung = self._play(name, escape, length)
        endpos = int(round(played * 8000))
        if hung:
            return [f"200 result=-1 endpos={endpos}"]
        return [f"200 result={ord(digit) if digit else 0} endpos={endpos}"]

    def _wait_digit(self, timeout: float | None) -> _Event | None:
        until = None if timeout is None else self.now + timeout
        event = self._next_event(until)
        if event is None and until is not None:
            self.now = until
        if event is not None and event.digit is not None:
            self.pressed.append((event.at, event.digit, True))
        return event

    def _wait_for_digit(self, args: list[str]) -> list[str]:
        if len(args) != 1:
            raise _Usage
        ms = int(args[0])
        event = self._wait_digit(None if ms < 0 else ms / 1000)
        if event is None:
            return ["200 result=0"]
        if event.digit is None:
            return ["200 result=-1"]
        return [f"200 result={ord(event.digit)}"]

    def _get_data(self, args: list[str]) -> list[str]:
        if len(args) < 1:
            raise _Usage
        timeout = int(args[1]) / 1000 if len(args) > 1 and int(args[1]) > 0 else 6.0
        max_digits = int(args[2]) if len(args) > 2 else 1024
        digits = ""
        length = self.sounds.duration(args[0])
        first, _, hung = self._play(args[0], "0123456789*#", length or 0.0)
        if hung:
            return ["200 result=-1"]
        if first is not None:
            if first == "#":
                return ["200 result="]
            digits = first
        while len(digits) < max_digits:
            event = self._wait_digit(timeout)
            if event is None:
                return [f"200 result={digits} (timeout)"]
            if event.digit is None:
                return ["200 result=-1"]
            if event.digit == "#":
                break
            digits += event.digit
        return [f"200 result={digits}"]

    def _say(self, what: str, items: int, escape: str) -> list[str]:
        digit, _, hung = self._play(what, escape, items * SAY_ITEM_SECONDS)
        if hung:
            return ["200 result=-1"]
        return [f"200 result={ord(digit) if digit else 0}"]

    def _say_digits(self, args: list[str]) -> list[str]:
        if len(args) < 1:
            raise _Usage
        return self._say(f"digits:{args[0]}", len(args[0]), args[1] if len(args) > 1 else "")

    def _say_alpha(self, args: list[str]) -> list[str]:
        if len(args) < 1:
            raise _Usage
        return self._say(f"alpha:{args[0]}", len(args[0]), args[1] if len(args) > 1 else "")

    def _say_number(self, args: list[str]) -> list[str]:
        if len(args) < 1 or not re.fullmatch(r"-?\d+", args[0]):
            raise _Usage
        return self._say(f"number:{args[0]}", max(1, len(args[0]) - 1), args[1] if len(args) > 1 else "")

    def _say_date(self, args: list[str]) -> list[str]:
        if len(args) < 1 or not args[0].isdigit():
            raise _Usage
        return self._say(f"date:{args[0]}", 4, args[1] if len(args) > 1 else "")

    _say_time = _say_date

    def expand(self, text: str) -> str:
        """`${NAME}` references replaced as the dialplan would (unknown names: empty)."""

        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            specials = {
                "EXTEN": self.variables.get("__exten", ""),
                "UNIQUEID": self.variables.get("__uniqueid", ""),
                "CALLERID(num)": self.caller.caller_id,
                "CALLERID(name)": self.caller.caller_name,
                "CHANNEL(language)": self.variables.get("CHANNEL(language)", "en"),
                "CHANNEL(state)": "Up",
            }
            return specials.get(name, self.variables.get(name, ""))

        return re.sub(r"\$\{([^}]+)\}", value, text)

    def _get_variable(self, args: list[str]) -> list[str]:
        if len(args) != 1:
            raise _Usage
        name = args[0]
        expanded = self.expand("${" + name + "}")
        known = name in self.variables or name in ("EXTEN", "UNIQUEID", "CHANNEL(state)",
                                                   "CHANNEL(language)", "CALLERID(num)", "CALLERID(name)")
        return [f"200 result=1 ({expanded})"] if known else ["200 result=0"]

    def _get_full_variable(self, args: list[str]) -> list[str]:
        if len(args) < 1:
            raise _Usage
        return [f"200 result=1 ({self.expand(args[0])})"]

    def _set_variable(self, args: list[str]) -> list[str]:
        if len(args) != 2:
            raise _Usage
        self.variables[args[0]] = args[1]
        return ["200 result=1"]

    def _set_context(self, args: list[str]) -> list[str]:
        return self._set_location(args, 0)

    def _set_extension(self, args: list[str]) -> list[str]:
        return self._set_location(args, 1)

    def _set_priority(self, args: list[str]) -> list[str]:
        return self._set_location(args, 2)

    def _set_location(self, args: list[str], index: int) -> list[str]:
        if len(args) != 1:
            raise _Usage
        here = list(self.location or (self.variables.get("__context", ""), self.variables.get("__exten", ""), ""))
        here[index] = args[0]
        self.location = (here[0], here[1], here[2])
        return ["200 result=0"]

    def _set_music(self, args: list[str]) -> list[str]:
        """res_agi handle_setmusic: `SET MUSIC ON|OFF [class]`, always `200 result=0`."""
        if len(args) not in (1, 2):
            raise _Usage
        if args[0].lower() == "on":
            self.music = args[1] if len(args) > 1 else "default"
            self.music_log.append((self.now, f"on {self.music}"))
            if self.caller.patience is not None and not self._holding:
                self._holding = True
                self._events.append(_Event(self.now + self.caller.patience, None, patience=True))
                self._events.sort(key=lambda e: e.at)
        else:
            self.music = None
            self.music_log.append((self.now, "off"))
        return ["200 result=0"]

    def _channel_status(self, args: list[str]) -> list[str]:
        return ["200 result=6"]

    def _verbose(self, args: list[str]) -> list[str]:
        return ["200 result=1"]

    def _noop(self, args: list[str]) -> list[str]:
        return ["200 result=0"]

    def _hangup(self, args: list[str]) -> list[str]:
        self._die(self.now, "ivr")
        return ["200 result=1"]

    def _record_file(self, args: list[str]) -> list[str]:
        """res_agi.c handle_recordfile: `RECORD FILE name format escape ms [offset] [BEEP] [s=N]`.
        The beep plays first and an escape digit (or a hang-up) during it ends the command with
        `(randomerror)` before anything is recorded; then the file is created, or `(writefile)`
        when its directory is missing (the session goes on); then the caller speaks until their
        next key or hang-up, or, with nothing left to do, is silent (`s=N` ends it)."""
        if len(args) < 4:
            raise _Usage
        escape, ms = args[2], int(args[3])
        beep = any("=" not in arg and not re.fullmatch(r"-?\d+", arg) for arg in args[4:6])
        if beep:
            digit, _, hung = self._play("beep", escape, self.sounds.duration("beep") or 0.0)
            if hung:
                return ["200 result=-1 (randomerror) endpos=0"]
            if digit is not None:
                return [f"200 result={ord(digit)} (randomerror) endpos=0"]
        directory = args[0].rpartition("/")[0]
        if directory and directory.rstrip("/") in self.unwritable:
            return ["200 result=-1 (writefile)"]
        start = self.now
        silence = next((float(arg[2:]) for arg in args[4:] if arg.startswith("s=")), 0.0)
        if silence > 0 and not self._events and self._step >= len(self.caller.steps):
            # A caller with nothing left to do says nothing: Asterisk's silence detection ends
            # the recording `silence` seconds in and keeps its first second (res_agi rewinds
            # silence - 1000 ms).
            self.now = start + silence
            return [f"200 result=0 (timeout) endpos={int(min(silence, 1.0) * 8000)}"]
        event = self._next_event(None if ms < 0 else start + ms / 1000)
        if event is None:
            self.now = start + ms / 1000
            return [f"200 result=0 (timeout) endpos={int((self.now - start) * 8000)}"]
        endpos = int((self.now - start) * 8000)
        if event.digit is None:
            return [f"200 result=-1 (hangup) endpos={endpos}"]
        if event.digit in escape:
            return [f"200 result={ord(event.digit)} (dtmf) endpos={endpos}"]
        return [f"200 result=0 (timeout) endpos={endpos}"]

    def _gosub(self, args: list[str]) -> list[str]:
        if len(args) < 3:
            raise _Usage
        return ["100 result=0 Trying...", "200 result=0 Gosub complete"]

    def _control_stream_file(self, args: list[str]) -> list[str]:
        return self._stream_file(args[:2])

    def _exec(self, args: list[str]) -> list[str]:
        if len(args) < 1:
            raise _Usage
        app, data = args[0], (args[1] if len(args) > 1 else "")
        parts = data.split(",")
        name = app.lower()
        if name == "playback":
            if self.alive:
                self._play(parts[0], "", self.sounds.duration(parts[0]) or 0.0)
            return ["200 result=0"]
        if name == "wait":
            if self.alive:
                self._next_event(self.now + float(parts[0] or 0))
            return ["200 result=0"]
        if name == "mixmonitor":
            self.mixmonitor.append(self.expand(data))
            return ["200 result=0"]
        if name == "set":
            key, _, value = data.partition("=")
            self.variables[key] = self.expand(value)
            return ["200 result=0"]
        if name == "dial":
            return self._dial(data)
        if name in ("noop", "answer", "ringing", "progress", "musiconhold", "goto"):
            return ["200 result=0"]
        return ["200 result=-2"]

    def _dial(self, data: str) -> list[str]:
        parts = separate_args(data)
        target = parts[0]
        ring = float(parts[1]) if len(parts) > 1 and parts[1] else 60.0
        options = parse_options(parts[2]) if len(parts) > 2 else {}
        proceed = "g" in options
        behaviour = self.agents.get(target)
        predial: tuple[str, str, str, tuple[str, ...]] | None = None
        headers: dict[str, str] = {}
        if options.get("b"):
            context, extension, priority, arguments = gosub_target(options["b"] or "")
            predial = (context, extension, priority, tuple(arguments))
            handler = self.predial_handlers.get(context)
            if handler is not None and target.upper().startswith("PJSIP/"):
                headers = handler(arguments)
        for name in ("ANSWEREDTIME", "ANSWEREDTIME_MS", "DIALEDTIME", "DIALEDTIME_MS"):
            self.variables[name] = ""
        if not self.alive:  # no channel is requested (ami-silent.txt: no DialBegin)
            self.variables["DIALSTATUS"] = "CANCEL"
            return ["200 result=-1"]
        if behaviour is None:
            self.variables["DIALSTATUS"] = "CHANUNAVAIL"
            return ["200 result=0"]
        began = self.now

        def unanswered(status: str) -> None:
            self.variables["DIALSTATUS"] = status
            self.dials.append(DialLeg(target, status, began, self.now, predial=predial, headers=headers))

        if isinstance(behaviour, Busy):
            unanswered("BUSY")
            return ["200 result=0"]
        # The caller hears ringback from here: HangUp(on_prompt="ringing:<target>") hangs up while it rings.
        self._prompt_started(f"ringing:{target}")
        answer_at = self.now + (ring if isinstance(behaviour, NoAnswer) else min(behaviour.answer_after, ring))
        event = self._next_event(answer_at)
        while event is not None and event.digit is not None:
            event = self._next_event(answer_at)
        if event is not None:
            unanswered("CANCEL")
            return ["200 result=-1"]
        self.now = answer_at
        if isinstance(behaviour, NoAnswer):
            unanswered("NOANSWER")
            return ["200 result=0"]
        assert isinstance(behaviour, Agent)
        self.variables["DIALSTATUS"] = "ANSWER"
        self._events = [event for event in self._events if not event.patience]  # talking now
        end = self.now + behaviour.talk
        event = self._next_event(end)
        while event is not None and event.digit is not None:
            event = self._next_event(end)
        talked = (self.now if event is not None else end) - answer_at
        if self.answered_at is None:  # Dial answers the caller when the agent answers
            self.answered_at = answer_at
        self._bridge_ended(answer_at + talked)
        self.dials.append(DialLeg(target, "ANSWER", began, answer_at + talked, answer_at,
                                  agent_left=event is None and behaviour.hangs_up_first,
                                  predial=predial, headers=headers))
        if event is not None:  # the caller hung up first
            return ["200 result=-1"]
        self.now = end
        if not behaviour.hangs_up_first:
            self._die(end, "caller")
            return ["200 result=-1"]
        return ["200 result=0"] if proceed else self._agent_ended_call()

    def _bridge_ended(self, at: float) -> None:
        """app_dial's end_bridge_callback: ANSWEREDTIME is the caller channel's time since its
        own answer and DIALEDTIME its age (it exists from 0.0, or its earlier answer), both whole
        seconds (milliseconds / 1000) and in _MS."""
        answered = self.answered_at if self.answered_at is not None else at
        created = min(0.0, answered)
        for name, ms in (("ANSWEREDTIME", round((at - answered) * 1000)), ("DIALEDTIME", round((at - created) * 1000))):
            self.variables[name] = str(ms // 1000)
            self.variables[f"{name}_MS"] = str(ms)

    def _agent_ended_call(self) -> list[str]:
        # Without the g option Dial returns -1 and the dialplan ends the caller's channel.
        self._die(self.now, "agent")
        return ["200 result=-1"]


class _Usage(Exception):
    pass
