"""What admins write in `config/routing.yaml`: agents, ACD queues, caller classification
and where the live state is kept. Frozen pydantic models, validated at start-up like the
rest of the configuration (every problem with file, line and column)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+$")]
Proficiency = Annotated[int, Field(ge=1, le=5)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class AgentConfig(Strict):
    name: str
    endpoint: str  # what Dial rings, e.g. PJSIP/1001
    skills: dict[Name, Proficiency] = {}
    languages: tuple[str, ...] = ()  # prompt language keys (zh-CN, en-US); () = any
    groups: tuple[Name, ...] = ()
    wrap_up: float = Field(10.0, ge=0)  # seconds after a call before the next offer
    # Calls at once; one is what the ACD supports (an agent reserved or on a call is busy).
    max_calls: Literal[1] = 1


class Step(Strict):
    """One routing step: who may take the call, and for how long before the next step.

    `skills` are minimum proficiencies on top of the queue's; `groups`, if given, limit
    the step to agents in one of them. The last step has no `for` and lasts until the
    queue's max wait."""

    skills: dict[Name, Proficiency] = {}
    groups: tuple[Name, ...] = ()
    for_seconds: float | None = Field(None, alias="for", gt=0)


class Destination(Strict):
    """Where an overflowing caller goes: exactly one of these.

    `callback: true` offers a call back for the same queue: the caller hears
    `callback-offer` and presses 1 to leave a callback request (stored; `routing.callbacks`
    rings a free agent, then the caller) and hears `callback-confirmed`, after which the
    call ends. Any other digit, or none, continues exactly as if the destination were
    `voicemail: <mailbox>`, the mailbox being the queue's own `timeout` or `no_agents`
    overflow voicemail if either is one (in that order), else `DEFAULT_CALLBACK_MAILBOX`.
    A caller whose number is withheld (no dialable number) gets no offer: straight to that
    voicemail."""

    queue: Name | None = None  # another ACD queue
    voicemail: str | None = None  # a mailbox (dialplan ivr-voicemail)
    node: Name | None = None  # a node of the hotline's flow (e.g. a callback offer menu)
    dialplan: str | None = None  # "context,extension": a plain Asterisk place (e.g. app_queue)
    callback: bool | None = None  # true: a callback offer for the same queue (see above)

    @model_validator(mode="after")
    def _exactly_one(self) -> Destination:
        given = [k for k in KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of queue, voicemail, node, dialplan, callback")
        if self.callback is False:
            raise ValueError("callback: only true is meaningful (leave it out otherwise)")
        if self.dialplan is not None and self.dialplan.count(",") != 1:
            raise ValueError("dialplan must be 'context,extension'")
        return self


KINDS = ("queue", "voicemail", "node", "dialplan", "callback")
# The mailbox a declined callback offer goes to when the queue names no voicemail overflow.
DEFAULT_CALLBACK_MAILBOX = "400"


class Overflow(Strict):
    timeout: Destination | None = None
    no_agents: Destination | None = None
    full: Destination | None = None

    def callback_mailbox(self) -> str:
        """Where a declined callback offer goes (see `Destination`)."""
        for destination in (self.timeout, self.no_agents):
            if destination is not None and destination.voicemail is not None:
                return destination.voicemail
        return DEFAULT_CALLBACK_MAILBOX


class Announcements(Strict):
    first_after: float = Field(20.0, ge=0)  # seconds of waiting before the first one
    every: float = Field(45.0, gt=0)
    position: bool = True
    wait_estimate: bool = True


class Priority(Strict):
    """Added up: a returning VIP gets base + vip + returning."""

    base: int = 0
    vip: int = 10
    returning: int = 0
    new: int = 0


class Affinity(Strict):
    """Offer a returning caller to the agent who last served them, for a while."""

    enabled: bool = True
    lookback_days: float = Field(14, gt=0)
    min_talk: float = Field(30, ge=0)  # seconds: a shorter call does not create affinity
    hold: float = Field(20, ge=0)  # seconds only that agent is offered the call


class WrapUpCode(Strict):
    """A node of a queue's wrap-up code tree (routing.wrapup): only leaves are picked, stored
    as their path, e.g. "billing/refund/approved". `ivr check` checks the codes (no "/" or
    spaces, unique among siblings, a leaf under every node, depth)."""

    code: str
    label: dict[str, str] = {}  # language key (zh-CN, en-US) -> what the agent reads; else the code
    children: tuple[WrapUpCode, ...] = ()


class WrapUp(Strict):
    """The code an agent picks after an answered call of the queue (the agent desktop)."""

    required: bool = False  # the agent stays in wrap-up until a code is picked or `limit` passes
    limit: float = 120  # seconds after the call's end during which a code is taken; then "no code"
    codes: tuple[WrapUpCode, ...] = ()


Strategy = Literal["least_busy", "longest_idle", "round_robin", "random", "linear", "skill_weighted"]


class QueueConfig(Strict):
    skills: dict[Name, Proficiency] = {}  # required by every step
    groups: tuple[Name, ...] = ()  # who serves the queue; () = anyone with the skills
    # "caller": the agent must speak the caller's language; a key: that language; None: any.
    language: str | None = "caller"
    strategy: Strategy = "least_busy"
    busy_window: float = Field(3600, gt=0)  # seconds of history for least_busy
    steps: tuple[Step, ...] = (Step(),)
    max_wait: float = Field(300, gt=0)
    max_callers: int = Field(50, ge=1)
    ring_timeout: float = Field(15, gt=0)
    misses_before_not_ready: int = Field(2, ge=1)
    announce: Announcements = Announcements()
    priority: Priority = Priority()
    affinity: Affinity = Affinity()
    overflow: Overflow = Overflow()
    moh_class: str = "default"  # Asterisk music-on-hold class played while waiting
    # The agent's CRM pop-up link (routing.crm): a URL template with {caller} {call_id} {queue}
    # {hotline} {language}; wins over the hotline's crm_url. None: the hotline's, if any.
    crm_url: str | None = None
    wrap_up: WrapUp | None = None  # wrap-up codes after an answered call; None: none asked

    @model_validator(mode="after")
    def _last_step_is_open(self) -> QueueConfig:
        if not self.steps:
            raise ValueError("a queue needs at least one step")
        if any(step.for_seconds is None for step in self.steps[:-1]):
            raise ValueError("every step but the last needs 'for' (seconds)")
        if self.steps[-1].for_seconds is not None:
            raise ValueError("the last step has no 'for': it lasts until max_wait")
        if sum(step.for_seconds or 0 for step in self.steps) >= self.max_wait:
            raise ValueError("the steps' 'for' add up to max_wait or more: the last step is never reached")
        return self


class Classification(Strict):
    returning_within_days: float = Field(30, gt=0)
    vip_numbers: tuple[str, ...] = ()  # compared digits-only, without +86/0086/86/0 prefixes


class StateSettings(Strict):
    backend: Literal["memory", "redis"] = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = "ivr:acd:"
    # A reservation outlives a controller that died mid-offer by at most this long.
    reservation_ttl: float = Field(60, gt=0)
    # Redis unreachable: callers go to each queue target's dialplan place (app_queue).
    on_unreachable: Literal["dialplan"] = "dialplan"


class CallbackSettings(Strict):
    """How callback requests are worked off (`routing.callbacks`; needs AMI)."""

    max_attempts: int = Field(3, ge=1)  # agent legs originated before a request is failed
    retry_after: float = Field(60, ge=0)  # seconds before a failed attempt's request is offered again
    context: str = "ivr-callback"  # where the answered agent leg dials the caller


class PauseReason(Strict):
    """Why an agent pauses, as the agent desktop offers it: a code kept in the live state
    (`AgentState.pause_reason`) and a label per language key (zh-CN, en-US)."""

    code: Name
    label: dict[str, Annotated[str, StringConstraints(min_length=1)]]


# Codes that need no entry in routing.yaml: the phone's *73 (routing.agent_script) and a
# supervisor's `ivr agents pause` with no --reason.
PHONE_PAUSE = "phone"
SUPERVISOR_PAUSE = "supervisor"
BUILTIN_PAUSE_REASONS = (
    PauseReason(code=PHONE_PAUSE, label={"zh-CN": "话机暂停", "en-US": "Paused from the phone"}),
    PauseReason(code=SUPERVISOR_PAUSE, label={"zh-CN": "主管暂停", "en-US": "Paused by a supervisor"}),
)
DEFAULT_PAUSE_REASONS = (
    PauseReason(code="break", label={"zh-CN": "休息", "en-US": "Break"}),
    PauseReason(code="lunch", label={"zh-CN": "午餐", "en-US": "Lunch"}),
    PauseReason(code="training", label={"zh-CN": "培训", "en-US": "Training"}),
    PauseReason(code="meeting", label={"zh-CN": "会议", "en-US": "Meeting"}),
    PauseReason(code="coaching", label={"zh-CN": "辅导", "en-US": "Coaching"}),
)


class RoutingConfig(Strict):
    agents: dict[Name, AgentConfig] = {}
    queues: dict[Name, QueueConfig] = {}
    classification: Classification = Classification()
    state: StateSettings = StateSettings()
    callbacks: CallbackSettings = CallbackSettings()
    # Duplicates and built-in codes are reported by `ivr check` (ivr.config.validate).
    pause_reasons: tuple[PauseReason, ...] = DEFAULT_PAUSE_REASONS

    def pause_reason_codes(self) -> list[str]:
        """Every code a pause may give: the configured ones, then the built-in ones."""
        codes = [reason.code for reason in self.pause_reasons]
        return [*codes, *(r.code for r in BUILTIN_PAUSE_REASONS if r.code not in codes)]
