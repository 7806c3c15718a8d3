"""Typed configuration: server settings, hotlines, schedules, queues and menu flows.

Admins write these as YAML; `ivr.config.loader` turns the YAML into these models and
reports every problem with its file, line and column. Models are frozen so that a
loaded configuration can be shared by concurrent calls and swapped atomically on reload.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path
from urllib.parse import urlsplit
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

Digit = Annotated[str, StringConstraints(pattern=r"^[0-9*#]$")]
NodeId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+$")]
PromptId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_./-]+$")]
# "09:00-18:00"; an end of 24:00 means midnight at the end of the day.
TimeRange = Annotated[str, StringConstraints(pattern=r"^\d{2}:\d{2}-\d{2}:\d{2}$")]


MAX_SOCKET_PATH = 107  # bytes of a Unix socket's path (sun_path less its terminating NUL)
# The call-record store's URL schemes (ivr.records.database.engine_url).
STORE_SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg", "sqlite", "sqlite+aiosqlite")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- server ---------------------------------------------------------------


class FastAgiSettings(Strict):
    bind: str = "127.0.0.1"
    port: int = Field(4573, ge=0, le=65535)
    # FastAGI has no authentication: only these hosts (addresses or CIDR networks) may connect.
    allow: tuple[str, ...] = ("127.0.0.1", "::1")
    max_sessions: int = Field(2000, ge=1)
    max_line: int = Field(8192, ge=256)
    # Bound on the environment block and on replies to commands that return at once.
    idle_timeout: float = Field(30.0, gt=0)
    # Bound on media commands (prompts, digit collection) whose length the server cannot know.
    media_timeout: float = Field(600.0, gt=0)

    @field_validator("allow")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("empty: every FastAGI connection would be refused (list Asterisk's address, e.g. 127.0.0.1)")
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network: the peer's address is compared, "
                                 "names are not resolved (e.g. 127.0.0.1, ::1, 10.0.0.0/24)") from None
        return value


class AmiSettings(Strict):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(5038, ge=1, le=65535)
    username: str = "ivr"
    secret: str = ""
    reconnect_min: float = Field(0.5, gt=0)
    reconnect_max: float = Field(30.0, gt=0)


class StoreSettings(Strict):
    # Relative paths are resolved against the configuration directory.
    sqlite_path: Path = Path("var/calls.sqlite")
    # A database URL (postgresql://user@host/db) for several controllers writing to one
    # store; when set it replaces sqlite_path.
    url: str | None = None

    @field_validator("url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme, sep, _ = value.partition("://")
        parsed = urlsplit(value)
        shown = parsed._replace(netloc=parsed.hostname or "").geturl() if sep else value.split("@")[-1]  # no password
        if not sep or scheme not in STORE_SCHEMES:
            raise ValueError(f"{shown!r}: expected postgresql://user:password@host[:port]/database (or leave url out "
                             "for the SQLite file of sqlite_path)")
        if scheme.startswith("postgres") and (not parsed.hostname or not parsed.path.strip("/")):
            raise ValueError(f"{shown!r}: a PostgreSQL URL needs a host and a database name")
        return value
    # This controller's name on the calls it starts and the callbacks it dials: at start-up it
    # closes only its own open ones in a shared store. None: the host name.
    controller: str | None = Field(default=None, min_length=1)


class MetricsSettings(Strict):
    """How interval statistics are counted (`ivr export intervals`, `ivr report`)."""

    interval_minutes: Literal[15, 30, 60] = 15  # the base interval; 30 min, hours and days roll up from it
    service_level_seconds: int = Field(20, ge=1)  # T of "answered within T" and "abandoned within T"
    service_level_target: float = Field(0.8, gt=0, lt=1)
    short_abandon_seconds: int = Field(5, ge=0)  # an abandon before this wait is a short abandon
    repeat_hours: int = Field(24, ge=1)  # a call from the same caller within this many hours is a repeat
    wait_percentiles: tuple[int, ...] = (50, 90, 95)


class StaffingSettings(Strict):
    """Defaults of `ivr staffing` (each can be given on its command line)."""

    model: Literal["erlang_c", "erlang_a"] = "erlang_a"
    service_level_target: float = Field(0.8, gt=0, lt=1)
    service_level_seconds: int = Field(20, ge=1)
    asa_target_seconds: float | None = Field(None, gt=0)  # instead of the service level
    max_occupancy: float = Field(0.85, gt=0, le=1)
    shrinkage: float = Field(0.3, ge=0, lt=1)  # share of paid time agents are not available


class DeskSettings(Strict):
    """The agent desktop: a web app served by `ivr serve` (desk/)."""

    enabled: bool = False
    bind: str = "127.0.0.1"
    port: int = Field(8090, ge=0, le=65535)
    # Send the session cookie over HTTPS only: on when a TLS reverse proxy is in front.
    secure_cookies: bool = False
    # Roles that see a caller's whole number on a screen pop (others see it as privacy.caller_number
    # masks it; under `full` everyone sees it).
    full_number_roles: tuple[Literal["agent", "supervisor", "admin"], ...] = ("supervisor", "admin")
    # Connections at once: every open page holds one for its live updates.
    max_connections: int = Field(2048, ge=16)


class PrivacySettings(Strict):
    # full: store as received; mask: keep the last 4 digits; hash: salted SHA-256.
    caller_number: Literal["full", "mask", "hash"] = "mask"
    hash_salt: str = ""


class PromptSettings(Strict):
    # Where `ivr check` looks for prompt files: <local_dir>/<language>/<prompt id>.<ext>
    local_dir: Path = Path("../prompts/sounds")
    # The same tree as Asterisk sees it; STREAM FILE gets <asterisk_dir>/<language>/<prompt id>.
    asterisk_dir: str = "/var/lib/asterisk/sounds/ivr"
    formats: tuple[str, ...] = ("wav", "ulaw", "alaw", "gsm", "sln", "g722")


class LookupSettings(Strict):
    # Lookup URLs that start with "/" are relative to this (e.g. http://crm.internal:8080),
    # so one line moves every self-service branch to another backend.
    base_url: str | None = None
    # Lookups sent to the backends at once; more wait for a slot (within their timeout).
    # httpx's pool slows down quadratically with hundreds of queued requests.
    max_in_flight: int = Field(32, ge=1)


class ServerConfig(Strict):
    lookups: LookupSettings = LookupSettings()
    fastagi: FastAgiSettings = FastAgiSettings()
    ami: AmiSettings = AmiSettings()
    store: StoreSettings = StoreSettings()
    privacy: PrivacySettings = PrivacySettings()
    prompts: PromptSettings = PromptSettings()
    metrics: MetricsSettings = MetricsSettings()
    staffing: StaffingSettings = StaffingSettings()
    desk: DeskSettings = DeskSettings()
    pidfile: Path = Path("var/ivr.pid")
    # The admin interface of `ivr serve` (JSON lines over a Unix-domain socket, mode 0660):
    # `ivr agents` and `ivr queues` talk to it. Relative to the configuration directory.
    admin_socket: Path = Path("var/ivr.sock")


# --- hotlines, languages, schedules, queues ----------------------------------


class Language(Strict):
    # Asterisk's language code for SAY NUMBER/DIGITS/DATE (CHANNEL(language)).
    asterisk: str
    name: str = ""


class RecordingSettings(Strict):
    enabled: bool = True
    # Placeholders: {hotline} {uniqueid} {call_id} {date} (YYYYMMDD) {time} (HHMMSS) {caller}
    filename: str = "{hotline}/{date}/{uniqueid}.wav"
    # MixMonitor options; b = only record while bridged is NOT wanted for a hotline that
    # records the IVR too, so the default records everything.
    options: str = ""


class Hotline(Strict):
    name: str
    language: str
    languages: tuple[str, ...] = ()
    timezone: str = "UTC"
    flow: str
    entry: NodeId | None = None
    recording_notice: PromptId | None = "recording-notice"
    recording: RecordingSettings = RecordingSettings()
    # Where a caller goes when the controller fails mid-call (a queue name), so that an
    # error never drops the call.
    fallback_queue: str | None = None
    error_prompt: PromptId | None = None
    # The agent's CRM pop-up link for calls of this hotline (routing.crm): a URL template with
    # {caller} {call_id} {queue} {hotline} {language}. A queue's crm_url (routing.yaml) wins.
    crm_url: str | None = None


class Holiday(Strict):
    date: dt.date
    until: dt.date | None = None
    name: str = ""
    # Open hours on that day (e.g. a half day); empty means closed all day.
    hours: tuple[TimeRange, ...] = ()


class WorkingDay(Strict):
    """A day that is open although the weekly plan says closed (e.g. a make-up working Saturday)."""

    date: dt.date
    hours: tuple[TimeRange, ...]
    name: str = ""


class Schedule(Strict):
    timezone: str | None = None  # defaults to the hotline's
    # keys: mon tue wed thu fri sat sun, or ranges like mon-fri; values: open ranges
    weekly: dict[str, tuple[TimeRange, ...]]
    holidays: tuple[Holiday, ...] = ()
    working_days: tuple[WorkingDay, ...] = ()


class QueueTarget(Strict):
    """A named routing target. Until the ACD takes over, the call moves to this dialplan place."""

    context: str = "ivr-queue"
    extension: str | None = None  # defaults to the queue name
    timeout: int = Field(300, ge=1)  # max wait in Asterisk's Queue(), seconds


class Directory(Strict):
    languages: dict[str, Language]
    hotlines: dict[str, Hotline]
    schedules: dict[str, Schedule] = {}
    queues: dict[str, QueueTarget] = {}


# --- menu flows ----------------------------------------------------------------


class RetryPolicy(Strict):
    prompt: PromptId | None = None
    retries: int = Field(2, ge=0, le=10)  # re-asks before `then`
    then: NodeId


class PlayNode(Strict):
    type: Literal["play"]
    prompts: tuple[PromptId, ...]
    next: NodeId


class MenuNode(Strict):
    type: Literal["menu"]
    prompts: tuple[PromptId, ...]
    options: dict[Digit, NodeId]
    timeout: float = Field(5.0, gt=0, le=60)
    no_input: RetryPolicy
    invalid: RetryPolicy
    back: bool = False  # "*" returns to the menu the caller came from
    repeat: Literal["#", "9"] | None = None
    operator: NodeId | None = None  # reached with "0"


class LanguageNode(Strict):
    type: Literal["language"]
    prompts: tuple[PromptId, ...]
    options: dict[Digit, str]  # digit -> language key
    timeout: float = Field(5.0, gt=0, le=60)
    retries: int = Field(1, ge=0, le=10)
    next: NodeId  # also taken, in the hotline's language, when the caller chooses nothing


class HoursNode(Strict):
    type: Literal["hours"]
    schedule: str
    open: NodeId
    closed: NodeId


class CollectNode(Strict):
    """Collect digits into a call variable (account number, order id...)."""

    type: Literal["collect"]
    prompts: tuple[PromptId, ...]
    variable: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
    min_digits: int = Field(1, ge=1)
    max_digits: int = Field(20, ge=1, le=64)
    timeout: float = Field(5.0, gt=0, le=60)  # per digit, after the prompt
    invalid: RetryPolicy
    next: NodeId


class HttpRequest(Strict):
    method: Literal["GET", "POST"] = "GET"
    # {name} placeholders take call variables (collected digits, caller, hotline, language).
    url: str
    params: dict[str, str] = {}
    json_body: dict[str, Any] | None = Field(None, alias="json")
    headers: dict[str, str] = {}
    timeout: float = Field(3.0, gt=0, le=30)


class Condition(Strict):
    field: str  # dotted path into the JSON answer
    equals: Any = None
    in_: tuple[Any, ...] | None = Field(None, alias="in")
    exists: bool | None = None
    gt: float | None = None
    lt: float | None = None


class SayItem(Strict):
    """One thing spoken to the caller; exactly one field is set."""

    prompt: PromptId | None = None
    digits: str | None = None  # template, e.g. "{order_id}" or "{answer.tracking}"
    number: str | None = None
    date: str | None = None  # ISO date or epoch seconds
    # choose a prompt by a value of the answer
    prompt_by: str | None = None
    prompts: dict[str, PromptId] = {}
    default_prompt: PromptId | None = None


VariableName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
# Call variables the controller sets itself; a flow cannot overwrite them.
RESERVED_VARIABLES = frozenset({"caller", "hotline", "call_id"})


class LookupBranch(Strict):
    when: Condition | None = None  # None: always matches (put last)
    say: tuple[SayItem, ...] = ()
    # Call variables taken from the answer when this branch matches, e.g. {vip: "{answer.vip}"}:
    # later requests can use them, and the ACD reads `vip` (a VIP caller: "true", "yes" or
    # "1") and `issue` (the issue type).
    set: dict[VariableName, str] = {}
    next: NodeId

    @field_validator("set")
    @classmethod
    def _not_reserved(cls, value: dict[str, str]) -> dict[str, str]:
        clash = sorted(set(value) & RESERVED_VARIABLES)
        if clash:
            raise ValueError(f"{', '.join(clash)} cannot be set: the controller sets it")
        return value


class LookupNode(Strict):
    type: Literal["lookup"]
    request: HttpRequest
    wait_prompt: PromptId | None = None
    branches: tuple[LookupBranch, ...]
    on_failure: NodeId  # timeout, connection error, non-2xx, invalid JSON, no branch matched
    self_service: bool = True  # a matched branch counts as the caller served without an agent


class GotoNode(Strict):
    type: Literal["goto"]
    target: NodeId


class QueueNode(Strict):
    type: Literal["queue"]
    queue: str
    prompts: tuple[PromptId, ...] = ()


class TransferNode(Strict):
    type: Literal["transfer"]
    extension: str
    context: str = "ivr-transfer"
    prompts: tuple[PromptId, ...] = ()


class VoicemailNode(Strict):
    type: Literal["voicemail"]
    mailbox: str
    context: str = "ivr-voicemail"
    prompts: tuple[PromptId, ...] = ()


class HangupNode(Strict):
    type: Literal["hangup"]
    prompts: tuple[PromptId, ...] = ()


class SurveyOptInNode(Strict):
    """Asks whether the caller will answer a short survey after the call: a key of `accept`
    opts in; another key or none declines. The answer travels with the channel
    (IVR_SURVEY_OPTIN=yes|no) to the survey after the agent hangs up, whichever queue
    (the engine's ACD or app_queue) serves the call."""

    type: Literal["survey_opt_in"]
    prompts: tuple[PromptId, ...]
    accept: tuple[Digit, ...] = Field(("1",), min_length=1)
    timeout: float = Field(5.0, gt=0, le=60)
    next: NodeId


Node = Annotated[
    Union[
        PlayNode,
        MenuNode,
        LanguageNode,
        HoursNode,
        CollectNode,
        LookupNode,
        GotoNode,
        QueueNode,
        TransferNode,
        VoicemailNode,
        HangupNode,
        SurveyOptInNode,
    ],
    Field(discriminator="type"),
]


class Flow(Strict):
    version: str | None = None  # label shown in reports; the file hash is used when absent
    start: NodeId
    nodes: dict[NodeId, Node]
