"""The ACD on a call: a caller waits inside its FastAGI session until an agent is free.

`Acd.route(channel, call, queue, issue)` classifies the caller, refuses a full queue or one
nobody logged in could serve (overflow), enqueues the caller in the live state, and waits
on music on hold (`SET MUSIC ON <class>`), with position and wait-estimate announcements,
for whichever comes first: an agent handed over by the dispatcher (`routing.dispatch`), the
next announcement, the next routing step, the queue's max wait, or the caller hanging up
(`AgiSession.until_hangup`). An agent handed over is reserved atomically, then rung with
`EXEC Dial <endpoint>,<ring timeout>,g`; DIALSTATUS says what became of the offer. The
decisions themselves (who serves whom, which step, the estimate) are `routing.decision`'s.

Nothing is ever left behind: whatever ends the wait (answer, overflow, hang-up, a failure,
the controller stopping), the caller is dequeued and any offer still open is ended with
CALLER_GONE, so no agent stays reserved. If the live state cannot be reached, the caller
goes to the queue's plain dialplan place (app_queue, `routing.handoff`): never dropped.

A typical call, as AGI commands:

    SET MUSIC ON default                  waiting
    STREAM FILE .../queue-position ""     an announcement (stops the music)
    SAY NUMBER 2 ""
    SET MUSIC ON default
    SET MUSIC OFF                         an agent was reserved
    EXEC Dial PJSIP/1001,15,gb(ivr-agent-headers^s^1(...))
    GET VARIABLE DIALSTATUS               ANSWER / NOANSWER / BUSY / CONGESTION / CHANUNAVAIL / CANCEL
    GET VARIABLE ANSWEREDTIME             the caller's seconds since its own answer (see below)

Talk time. Asterisk 22's app_dial sets ANSWEREDTIME on the *caller's* channel from the
caller's answer time (end_bridge_callback: ast_channel_get_up_time_ms of the caller), and
the dialplan answered the caller before the IVR, so ANSWEREDTIME counts the whole IVR and
queue time too; DIALEDTIME is the caller's age, no better. Nothing AGI can read tells when
the agent answered. So the controller measures the Dial on its own clock: talk = the time
from sending EXEC Dial to its result, or ANSWEREDTIME if that is shorter (only when the Dial
itself answered the caller is it the talk). Without AMI that is an upper bound that
includes the agent's ring time (at most the ring timeout), and the answer moment is taken
as the end minus it. With the AMI link, the agent channel's BridgeEnter..BridgeLeave
(`ivr.records.ami_times`) replaces it in the call store: the bridge wins.

One file past 600 lines: one caller's way through the ACD (queue, offers, overflow, clean-up)
reads top to bottom over the `_Stay` every step shares.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import random
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal, Protocol, TypeVar

from ivr.agi.commands import Command, GetData, SetMusic
from ivr.agi.errors import AgiError, AgiHangup
from ivr.records.model import CallbackRequest, Disposition, EventKind, PathEvent, QueueLeg
from routing import decision
from routing.agent_leg import agent_dial_arguments, customer_kind
from routing.classify import PastCall, classify
from routing.config import Destination, Overflow, QueueConfig, RoutingConfig
from routing.crm import crm_link
from routing.dispatch import Dispatcher, Signal, Waiter
from routing.handoff import CallInfo, HandoffTarget, hand_off_to_dialplan
from routing.model import AgentState, Caller, OfferOutcome, OverflowCause, Presence
from routing.offers import Offer, OfferWatcher
from routing.repairs import Repairs
from routing.state import LiveState, StateUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

Clock = Callable[[], float]
# (caller number as received, epoch seconds) -> the caller's past calls that ended since then.
HistoryLookup = Callable[[str, float], Awaitable[Sequence[PastCall]]]

# Dial returns at the ring timeout unless the agent answered; this long after it, a Dial
# still running means a conversation: the agent is marked ON_CALL (the reservation would
# expire during a long call otherwise) and the caller leaves the queue.
ANSWER_MARGIN = 2.0
# The AGI timeout of EXEC Dial: ringing plus the longest conversation we wait for.
LONGEST_CALL = 4 * 3600.0
# Overflow to another queue at most this many times per call (a -> b -> a is cut).
MAX_QUEUES_PER_CALL = 5
# Prompts the announcements play (prompts/sounds/<language>/<id>.wav).
POSITION_PROMPT = "queue-position"  # "Your position in the queue is" + SAY NUMBER
WAIT_PROMPT = "queue-wait"  # "Your expected wait is about" + minutes (say/minute(s))
CALLBACK_OFFER_PROMPT = "callback-offer"  # "Press 1 and we will call you back ...; press 2 to leave a message"
CALLBACK_CONFIRMED_PROMPT = "callback-confirmed"
PROMPTS = (POSITION_PROMPT, WAIT_PROMPT, CALLBACK_OFFER_PROMPT, CALLBACK_CONFIRMED_PROMPT)
# GET DATA's wait for the caller's digit after the callback offer, in seconds.
CALLBACK_OFFER_TIMEOUT = 6.0
# A number Asterisk can dial back: digits, maybe a leading +, at least 3 of them.
_CALLABLE = re.compile(r"\+?[0-9]{3,}")


def callback_number(caller_number: str) -> str | None:
    """The caller's number as received if it can be called back; None when withheld
    (empty, `anonymous`, `unknown`, `<unknown>`) or not a plain number."""
    number = caller_number.strip()
    return number if _CALLABLE.fullmatch(number) else None

DIAL_OUTCOMES = {
    "ANSWER": OfferOutcome.ANSWERED,
    "NOANSWER": OfferOutcome.NO_ANSWER,
    "BUSY": OfferOutcome.REJECTED,
    "CONGESTION": OfferOutcome.REJECTED,
    "CHANUNAVAIL": OfferOutcome.UNREACHABLE,
    "CANCEL": OfferOutcome.CALLER_GONE,
}


def dial_outcome(status: str | None, result: int) -> OfferOutcome:
    """DIALSTATUS and Dial's result as what became of the offer. A result of -1 without
    ANSWER means the caller's channel is gone; an unknown status (INVALIDARGS, DONTCALL,
    TORTURE) counts as unreachable."""
    outcome = DIAL_OUTCOMES.get((status or "").upper(), OfferOutcome.UNREACHABLE)
    if result < 0 and outcome is not OfferOutcome.ANSWERED:
        return OfferOutcome.CALLER_GONE
    return outcome


# --- AGI -----------------------------------------------------------------------------------


class AcdChannel(Protocol):
    """What the ACD needs of the AGI session (`ivr.agi.session.AgiSession`)."""

    async def run(self, command: Command[T], *, timeout: float | None = None) -> T: ...

    async def exec(self, application: str, *arguments: str, timeout: float | None = None) -> int: ...

    async def get_variable(self, name: str) -> str | None: ...

    async def set_variable(self, name: str, value: str) -> None: ...

    async def continue_at(self, context: str, extension: str, priority: str = "1") -> None: ...

    async def until_hangup(self, work: Awaitable[T]) -> T: ...


# --- what the call brings and gets back ---------------------------------------------------------


class CallbackBook(Protocol):
    """Where callback requests are kept (`ivr.records.store.CallStore`)."""

    async def add_callback(self, request: CallbackRequest) -> bool: ...


class Journal(Protocol):
    """Where a call's path events and queue legs go (`ivr.flow.context.CallContext`)."""

    queue_legs: list[QueueLeg]

    def record(
        self, kind: EventKind, value: str = "", node: str | None = None, at: dt.datetime | None = None
    ) -> None: ...


Play = Callable[[tuple[str, ...]], Awaitable[str | None]]
Say = Callable[[Literal["number", "minutes"], object], Awaitable[str | None]]


@dataclass(frozen=True)
class AcdCall:
    """One call as the ACD sees it; the flow engine builds it."""

    call_id: str
    hotline: str  # the dialed hotline number
    caller_number: str  # as received
    language: str  # prompt language key (zh-CN): agents' languages and prompts
    asterisk_language: str  # zh, en: for the dialplan variables
    journal: Journal
    play: Play  # plays prompts by id in the caller's language, recording them
    say: Say  # speaks a number or a wait in minutes in the caller's language
    # The plain dialplan place of a queue (hotlines.yaml), for the fallback when the live
    # state is unreachable or an overflow has nowhere else to go.
    dialplan_place: Callable[[str], HandoffTarget]
    vip: bool = False  # flagged by the flow (a lookup set the call variable `vip`)
    # Prompt id -> the file Asterisk plays, in the caller's language (GET DATA of a callback
    # offer); None: no callback offer can be made on this call.
    prompt_path: Callable[[str], str] | None = None
    # The hotline's CRM URL template (hotlines.yaml crm_url); a queue's own crm_url wins.
    crm_url: str | None = None
    # The call's path so far and its variables (the flow's own, read when an agent is
    # offered the call: the agent desktop's screen pop shows them).
    events: Sequence[PathEvent] = ()
    variables: Mapping[str, str] = field(default_factory=dict)

    def info(self) -> CallInfo:
        return CallInfo(self.call_id, self.hotline, self.asterisk_language)


@dataclass(frozen=True)
class AcdResult:
    """How the caller left the ACD. `next_node`: an overflow to a node of the flow, where
    the flow engine continues; otherwise the AGI session ends (the dialplan continues at
    the place set, or the call is over)."""

    disposition: Disposition
    detail: str
    queue: str
    hung_up_by: str | None = None  # "caller" or "agent" (who ended an answered call)
    agent_id: str | None = None
    next_node: str | None = None


def _utc(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc)


@dataclass
class _Stay:
    """One stay in one queue: what its QueueLeg will say."""

    name: str
    queue: QueueConfig
    caller: Caller
    waiter: Waiter | None = None
    enqueued: bool = False  # in the live state's waiting list
    reserved: str | None = None  # an agent reserved for this call whose offer is not ended yet
    offers: int = 0
    first_estimate: float | None = None
    answered_at: float | None = None
    agent_id: str | None = None
    talk: float | None = None
    ended_by: Literal["caller", "agent"] | None = None
    wrap: float | None = None  # the wrap-up the agent was given after the answered call
    step: int = 0

    def leg(self, left_at: float, outcome: Literal["answered", "abandoned", "overflowed"],
            overflow: str | None = None) -> QueueLeg:
        return QueueLeg(
            queue=self.name,
            enqueued_at=_utc(self.caller.enqueued_at),
            left_at=_utc(left_at),
            outcome=outcome,
            answered_at=None if self.answered_at is None else _utc(self.answered_at),
            agent_id=self.agent_id,
            talk_seconds=self.talk,
            offers=self.offers,
            overflow=overflow,
            first_estimate=self.first_estimate,
            priority=self.caller.priority,
            ended_by=self.ended_by,
            wrap_seconds=self.wrap,
        )


@dataclass(frozen=True)
class _Overflow:
    cause: OverflowCause


@dataclass(frozen=True)
class _Answered:
    agent_id: str
    ended_by: Literal["caller", "agent"]


class _CallerGone(Exception):
    """The caller hung up while waiting or ringing."""


# --- the ACD -----------------------------------------------------------------------------------


class Acd:
    """The ACD of one controller: its dispatcher task and the calls waiting on it."""

    def __init__(
        self,
        config: RoutingConfig,
        state: LiveState,
        *,
        clock: Clock,
        rng: random.Random,
        history: HistoryLookup | None = None,
        max_idle: float = 1.0,
        callbacks: CallbackBook | None = None,
    ) -> None:
        self.config = config
        self.callbacks = callbacks
        # Told when a callback request was stored (the callback worker wakes up).
        self.on_callback: Callable[[], None] | None = None
        # Callback requests (ids) whose agent leg this controller is ringing, and those whose
        # agent answered (ON_CALL until AMI reports the agent's channel hung up): see
        # routing.callbacks and routing.ami_agents.
        self.callbacks_dialing: set[str] = set()
        self.callbacks_talking: set[str] = set()
        self.state = state
        self.clock = clock
        self.rng = rng
        self.history = history
        self.dispatcher = Dispatcher(lambda: self.config, state, clock, rng, max_idle=max_idle)
        self.repairs = Repairs()  # clean-ups the live state refused, retried until done
        self.watcher: OfferWatcher | None = None  # the agent desktop, when it runs
        self._longest_window = max((q.busy_window for q in config.queues.values()), default=3600.0)
        self._check(config)

    @staticmethod
    def _check(config: RoutingConfig) -> None:
        for name, queue in config.queues.items():
            if queue.ring_timeout + ANSWER_MARGIN >= config.state.reservation_ttl:
                log.warning("queue %s: ring_timeout %g s is not well below state.reservation_ttl %g s: "
                            "a reservation may expire while the agent's phone rings",
                            name, queue.ring_timeout, config.state.reservation_ttl)

    def reconfigure(self, config: RoutingConfig) -> None:
        """A reloaded routing.yaml: new calls and the dispatcher use it; calls in a queue keep
        the queue settings they entered with."""
        self.config = config
        self._longest_window = max((q.busy_window for q in config.queues.values()), default=3600.0)
        self._check(config)

    def serves(self, queue: str) -> bool:
        return queue in self.config.queues

    async def start(self) -> None:
        self.dispatcher.start()
        self.repairs.start()

    async def stop(self) -> None:
        await self.dispatcher.stop()
        await self.repairs.stop()

    # --- a call -------------------------------------------------------------------------------

    async def route(self, channel: AcdChannel, call: AcdCall, queue_name: str, issue: str | None) -> AcdResult:
        """Serve the caller from `queue_name` (and the queues it overflows to)."""
        visited: list[str] = []
        name = queue_name
        while True:
            visited.append(name)
            result = await self._one_queue(channel, call, name, issue)
            if isinstance(result, AcdResult):
                return result
            cause, destination = result
            target = destination.queue if destination is not None else None
            if target is not None and target in self.config.queues and target not in visited \
                    and len(visited) < MAX_QUEUES_PER_CALL:
                call.journal.record(EventKind.OVERFLOW, f"{cause.value} -> queue {target}", at=_utc(self.clock()))
                name = target
                continue
            return await self._leave(channel, call, name, cause, destination)

    async def _one_queue(
        self, channel: AcdChannel, call: AcdCall, name: str, issue: str | None
    ) -> AcdResult | tuple[OverflowCause, Destination | None]:
        queue = self.config.queues[name]
        now = self.clock()
        stay = _Stay(name, queue, Caller(call.call_id, name, now, language=call.language, issue=issue))
        try:
            try:
                stay.caller = await self._classify(call, name, queue, issue, now)
                waiting = await self.state.waiting()
                if sum(1 for other in waiting if other.queue == name) >= queue.max_callers:
                    return self._overflowed(call, stay, OverflowCause.FULL)
                states = await self.state.agents()
                if not decision.can_ever_be_served(stay.caller, queue, self.config.agents, states, now):
                    return self._overflowed(call, stay, OverflowCause.NO_AGENTS)
                stay.waiter = self.dispatcher.register(call.call_id)
                # Marked before the write: one that times out may still run (a paused Redis
                # resuming), and the clean-up's dequeue is harmless if it did not.
                stay.enqueued = True
                await self.state.enqueue(stay.caller)
                self._record(call, EventKind.ENQUEUED, _enqueued_text(stay.caller))
                self._record(call, EventKind.STEP, f"{name} step 1")
                ended = await self._wait(channel, call, stay)
            except StateUnavailable as exc:
                return await self._state_down(channel, call, stay, exc)
            except (_CallerGone, AgiHangup):
                left = self.clock()
                call.journal.queue_legs.append(stay.leg(left, "abandoned"))
                return AcdResult(Disposition.QUEUE_ABANDONED, f"{name}: hung up after {left - stay.caller.enqueued_at:.0f} s",
                                 name, hung_up_by="caller")
            if isinstance(ended, _Overflow):
                return self._overflowed(call, stay, ended.cause)
            call.journal.queue_legs.append(stay.leg(self.clock(), "answered"))
            return AcdResult(Disposition.ANSWERED, f"{name}: {ended.agent_id}", name,
                             hung_up_by=ended.ended_by, agent_id=ended.agent_id)
        finally:
            await self._clean_up(call, stay)

    async def _classify(self, call: AcdCall, name: str, queue: QueueConfig, issue: str | None, now: float) -> Caller:
        past: Sequence[PastCall] = ()
        days = max(self.config.classification.returning_within_days,
                   queue.affinity.lookback_days if queue.affinity.enabled else 0.0)
        if self.history is not None and call.caller_number:
            try:
                past = await self.history(call.caller_number, now - days * 86400.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # classification is an input, not a reason to drop a call
                log.warning("call %s: caller history unavailable, classified as new: %s", call.call_id, exc)
        return classify(
            call_id=call.call_id, queue_name=name, queue=queue, caller_number=call.caller_number,
            language=call.language, issue=issue, history=past,
            classification=self.config.classification, now=now, flagged_vip=call.vip,
        )

    def _record(self, call: AcdCall, kind: EventKind, value: str, at: float | None = None) -> None:
        call.journal.record(kind, value, at=_utc(self.clock() if at is None else at))

    def _overflowed(self, call: AcdCall, stay: _Stay, cause: OverflowCause) -> tuple[OverflowCause, Destination | None]:
        call.journal.queue_legs.append(stay.leg(self.clock(), "overflowed", cause.value))
        destination: Destination | None = getattr(stay.queue.overflow, cause.value, None)
        return cause, destination

    async def _clean_up(self, call: AcdCall, stay: _Stay) -> None:
        """Leave nothing behind: no open offer, no waiting entry, no local waiter."""
        if stay.waiter is not None:
            self.dispatcher.unregister(call.call_id)
        if stay.reserved is not None:
            agent_id, stay.reserved = stay.reserved, None
            now = self.clock()
            await self._quietly(call, "offer_ended", lambda: self.state.offer_ended(
                agent_id, call.call_id, OfferOutcome.CALLER_GONE, now,
                misses_before_not_ready=stay.queue.misses_before_not_ready))
        if stay.enqueued:
            stay.enqueued = False
            await self._quietly(call, "dequeue", lambda: self.state.dequeue(call.call_id))

    async def _quietly(self, call: AcdCall, what: str, write: Callable[[], Awaitable[object]]) -> None:
        """A live-state write that must not stop the call (clean-up, bookkeeping of a call
        already connected). Shielded: a controller stopping mid-call still frees the agent.
        The live state unreachable: `repairs` retries it until it lands."""
        task = asyncio.ensure_future(write())
        try:
            await asyncio.shield(task)
        except StateUnavailable as exc:
            self.repairs.add(f"{what} of call {call.call_id}", write, exc)
        except asyncio.CancelledError:
            await asyncio.gather(task, return_exceptions=True)
            raise

    # --- waiting --------------------------------------------------------------------------------

    async def _music(self, channel: AcdChannel, stay: _Stay, on: bool) -> None:
        await channel.run(SetMusic(on, stay.queue.moh_class))

    async def _wait(self, channel: AcdChannel, call: AcdCall, stay: _Stay) -> _Overflow | _Answered:
        queue, waiter = stay.queue, stay.waiter
        assert waiter is not None
        announce = queue.announce
        announcing = announce.position or announce.wait_estimate
        next_announcement = stay.caller.enqueued_at + announce.first_after if announcing else math.inf
        deadline = stay.caller.enqueued_at + queue.max_wait
        await self._music(channel, stay, True)
        while True:
            now = self.clock()
            self._note_step(call, stay, now)
            if now >= deadline:
                return _Overflow(OverflowCause.TIMEOUT)
            if now >= next_announcement:
                await self._announce(channel, call, stay)
                next_announcement = self.clock() + announce.every
                await self._music(channel, stay, True)
                continue
            step_at = decision.next_step_at(queue, stay.caller, now)
            wake = min(deadline, next_announcement, step_at if step_at is not None else math.inf)
            try:
                item = await channel.until_hangup(asyncio.wait_for(waiter.inbox.get(), max(wake - now, 0.0)))
            except TimeoutError:
                continue
            if item is Signal.STATE_DOWN:
                raise StateUnavailable("the dispatcher lost the live state")
            if item is Signal.NO_AGENTS:
                return _Overflow(OverflowCause.NO_AGENTS)
            assert isinstance(item, decision.Assignment)
            try:
                answered = await self._offer(channel, call, stay, item.agent_id)
            finally:
                waiter.busy = False
            if answered is not None:
                return answered
            self.dispatcher.poke()

    def _note_step(self, call: AcdCall, stay: _Stay, now: float) -> None:
        step = decision.current_step(stay.queue, now - stay.caller.enqueued_at)
        if step != stay.step:
            stay.step = step
            self._record(call, EventKind.STEP, f"{stay.name} step {step + 1}")

    async def _announce(self, channel: AcdChannel, call: AcdCall, stay: _Stay) -> None:
        announce = stay.queue.announce
        waiting = await self.state.waiting()
        states = await self.state.agents()
        now = self.clock()
        place = decision.position(stay.caller, waiting)
        estimate = decision.estimate_wait(stay.caller, waiting, self.config.agents, states, self.config.queues, now)
        if announce.position:
            await call.play((POSITION_PROMPT,))
            await call.say("number", place)
        told = estimate if announce.wait_estimate else None
        if told is not None:
            await call.play((WAIT_PROMPT,))
            await call.say("minutes", max(1, math.ceil(told / 60.0)))
            if stay.first_estimate is None:
                stay.first_estimate = told
        shown = "none" if told is None else f"{told:.0f}"
        self._record(call, EventKind.ANNOUNCE, f"position={place} estimate={shown}", now)

    # --- an offer --------------------------------------------------------------------------------

    async def _offer(self, channel: AcdChannel, call: AcdCall, stay: _Stay, agent_id: str) -> _Answered | None:
        """Reserve and ring one agent. None: not reserved, or not answered (keep waiting)."""
        agent = self.config.agents.get(agent_id)
        if agent is None:
            return None
        started = self.clock()
        try:
            reserved = await self.state.reserve(agent_id, call.call_id, started)
        except StateUnavailable:
            stay.reserved = agent_id  # as for enqueue: the clean-up's offer_ended undoes it if it ran
            raise
        if not reserved:
            return None  # another caller or controller got the agent first
        stay.reserved = agent_id
        stay.offers += 1
        await self.state.note_offered(stay.name, agent_id)
        pop_url = _pop_url(call, stay)  # the same link on the agent's phone and page
        self._tell("offered", lambda watcher: watcher.offered(Offer(
            call_id=call.call_id, hotline=call.hotline, caller_number=call.caller_number, language=call.language,
            queue=stay.name, agent_id=agent_id, caller=stay.caller, at=started, events=tuple(call.events),
            variables=dict(call.variables), crm_link=pop_url)))
        # Should this controller stop or die during the Dial, the dialplan hangs up when the
        # agent's call is over, instead of queueing the caller again (extensions_ivr.conf).
        await channel.set_variable("IVR_STATUS", "AGENT")
        await self._music(channel, stay, False)
        ring = stay.queue.ring_timeout
        dialed = self.clock()
        dial = asyncio.ensure_future(channel.exec(
            "Dial", *_agent_dial(call, stay, agent.endpoint, ring, pop_url), timeout=ring + LONGEST_CALL))
        marked = False
        waiter = stay.waiter
        if waiter is not None:  # held for the Dial: restored if Redis restarts empty meanwhile
            waiter.agent_id, waiter.answered_at = agent_id, None
        try:
            done, _ = await asyncio.wait((dial,), timeout=ring + ANSWER_MARGIN)
            if not done:
                # Still in Dial well after the ring timeout: the agent answered and talks.
                marked = await self._connected(call, stay, agent_id, self.clock())
            result = await dial
            returned = self.clock()
        finally:
            if waiter is not None:
                waiter.agent_id = waiter.answered_at = None
            if not dial.done():
                dial.cancel()
                await asyncio.gather(dial, return_exceptions=True)
        status = await channel.get_variable("DIALSTATUS")
        answered_time = await channel.get_variable("ANSWEREDTIME")
        ended = self.clock()
        outcome = dial_outcome(status, result)
        if marked and outcome is not OfferOutcome.ANSWERED:
            # Dial ran past the ring timeout without an answer (a slow PBX): undo the early
            # ON_CALL and put the caller back in the queue at its place.
            log.warning("call %s: Dial to %s ended %s after the ring timeout", call.call_id, agent_id, status)
            await self._quietly(call, "call_ended", lambda: self.state.call_ended(
                agent_id, call.call_id, ended, wrap_up=0.0, keep_after=ended - self._longest_window))
            stay.agent_id = None
            if outcome is not OfferOutcome.CALLER_GONE:
                stay.enqueued = True  # before the write, as on arrival
                await self.state.enqueue(stay.caller)
        if outcome is not OfferOutcome.ANSWERED:
            self._record(call, EventKind.OFFER, f"{agent_id}: {outcome.value} after {ended - started:.0f} s", ended)
            self._tell("offer_over", lambda watcher: watcher.offer_over(call.call_id, agent_id, outcome, ended))
            stay.reserved = None
            after = await self.state.offer_ended(agent_id, call.call_id, outcome, ended,
                                                 misses_before_not_ready=stay.queue.misses_before_not_ready)
            self._note_not_ready(call, stay, agent_id, after)
            if outcome is OfferOutcome.CALLER_GONE:
                raise _CallerGone(f"hung up while {agent_id} rang")
            stay.caller = _excluding(stay.caller, agent_id)
            await self.state.update_caller(stay.caller)
            await channel.set_variable("IVR_STATUS", "ACTIVE")
            await self._music(channel, stay, True)
            return None
        talk = _talk(answered_time, max(0.0, returned - dialed))
        answered_at = returned - talk
        if not marked:
            marked = await self._connected(call, stay, agent_id, answered_at)
        stay.answered_at = answered_at
        stay.talk = talk
        stay.ended_by = "agent" if result == 0 else "caller"
        # A queue whose wrap-up code is required keeps the agent in wrap-up until the code is
        # picked (the desk ends it early) or its time limit passes; without a desk nobody
        # could pick one, so the agent's own wrap-up applies.
        wrap_up = stay.queue.wrap_up
        coding = wrap_up is not None and wrap_up.required and self.watcher is not None
        stay.wrap = max(agent.wrap_up, wrap_up.limit) if coding and wrap_up is not None else agent.wrap_up
        self._record(call, EventKind.OFFER, f"{agent_id}: answered after {answered_at - started:.0f} s", answered_at)
        self._record(call, EventKind.CONNECTED, agent_id, answered_at)
        wrap = stay.wrap
        await self._quietly(call, "call_ended", lambda: self.state.call_ended(
            agent_id, call.call_id, ended, wrap_up=wrap, keep_after=ended - self._longest_window))
        self._tell("call_ended", lambda watcher: watcher.call_ended(
            call.call_id, agent_id, stay.name, ended, ended + wrap))
        return _Answered(agent_id, stay.ended_by)

    async def _connected(self, call: AcdCall, stay: _Stay, agent_id: str, at: float) -> bool:
        """The agent answered: ON_CALL (no reservation left to expire), and out of the queue."""
        stay.reserved = None
        stay.agent_id = agent_id
        if stay.waiter is not None and stay.waiter.agent_id == agent_id:
            stay.waiter.answered_at = at
        self._tell("connected", lambda watcher: watcher.connected(call.call_id, agent_id, at))
        await self._quietly(call, "offer_ended", lambda: self.state.offer_ended(
            agent_id, call.call_id, OfferOutcome.ANSWERED, at,
            misses_before_not_ready=stay.queue.misses_before_not_ready))
        if stay.enqueued:
            stay.enqueued = False
            await self._quietly(call, "dequeue", lambda: self.state.dequeue(call.call_id))
        return True

    def _tell(self, what: str, tell: Callable[[OfferWatcher], None]) -> None:
        """Tell the watcher (the agent desktop) of an offer's step; its failure is not the call's."""
        if self.watcher is None:
            return
        try:
            tell(self.watcher)
        except Exception:  # noqa: BLE001 - a page must never cost a caller
            log.exception("offer watcher failed on %s", what)

    def _note_not_ready(self, call: AcdCall, stay: _Stay, agent_id: str, after: AgentState) -> None:
        if after.presence is Presence.NOT_READY and after.missed >= stay.queue.misses_before_not_ready:
            log.info("call %s: agent %s missed %d offers and is now not ready", call.call_id, agent_id, after.missed)

    # --- leaving -----------------------------------------------------------------------------------

    async def _leave(
        self, channel: AcdChannel, call: AcdCall, name: str, cause: OverflowCause, destination: Destination | None
    ) -> AcdResult:
        """Overflow out of the ACD: voicemail, a flow node, a dialplan place; with no usable
        destination, the queue's plain dialplan place (never dropped)."""
        if destination is not None and destination.node is not None:
            self._record(call, EventKind.OVERFLOW, f"{cause.value} -> node {destination.node}")
            return AcdResult(Disposition.OVERFLOWED, f"{cause.value} -> node {destination.node}", name,
                             next_node=destination.node)
        await self._music_off_quietly(channel)
        if destination is not None and destination.callback:
            queue = self.config.queues.get(name)
            mailbox = queue.overflow.callback_mailbox() if queue is not None else Overflow().callback_mailbox()
            if await self._callback_offer(channel, call, name, cause):
                return AcdResult(Disposition.CALLBACK, f"{cause.value} -> callback", name)
            destination = Destination(voicemail=mailbox)
        if destination is not None and destination.voicemail is not None:
            where = ("ivr-voicemail", destination.voicemail)
            await self._set_call_variables(channel, call, name)
            await channel.continue_at(*where)
            text = f"voicemail {destination.voicemail}"
        elif destination is not None and destination.dialplan is not None:
            context, extension = (part.strip() for part in destination.dialplan.split(",", 1))
            await self._set_call_variables(channel, call, name)
            await channel.continue_at(context, extension)
            text = f"dialplan {context},{extension}"
        else:
            target = call.dialplan_place(name)
            await hand_off_to_dialplan(channel, call.info(), target)
            text = f"dialplan {target.context},{target.extension}"
        self._record(call, EventKind.OVERFLOW, f"{cause.value} -> {text}")
        return AcdResult(Disposition.OVERFLOWED, f"{cause.value} -> {text}", name)

    async def _callback_offer(self, channel: AcdChannel, call: AcdCall, name: str, cause: OverflowCause) -> bool:
        """Offer a callback; True if the caller took it (request stored, confirmed), False
        to go on to the voicemail (withheld number, no store, declined, no digit)."""
        number = callback_number(call.caller_number)
        if number is None or self.callbacks is None or call.prompt_path is None:
            why = "no number to call back" if number is None else "callbacks unavailable"
            self._record(call, EventKind.OVERFLOW, f"{cause.value} -> callback not offered: {why}")
            return False
        answer = await channel.run(GetData(call.prompt_path(CALLBACK_OFFER_PROMPT),
                                           int(CALLBACK_OFFER_TIMEOUT * 1000), 1))
        self._record(call, EventKind.PROMPT, CALLBACK_OFFER_PROMPT)
        if not answer.digits:
            self._record(call, EventKind.TIMEOUT, "callback offer")
            return False
        self._record(call, EventKind.DIGIT, answer.digits)
        if answer.digits != "1":
            return False
        now = self.clock()
        request = CallbackRequest(
            callback_id=f"cb-{call.call_id}", call_id=call.call_id, caller=number, queue=name,
            language=call.language, asterisk_language=call.asterisk_language, hotline=call.hotline,
            requested_at=_utc(now),
        )
        try:
            await self.callbacks.add_callback(request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the caller must not be told "we will call you" for nothing
            log.error("call %s: callback request not stored, caller sent to voicemail: %s", call.call_id, exc)
            self._record(call, EventKind.ERROR, f"callback request not stored: {exc}")
            return False
        self._record(call, EventKind.OVERFLOW, f"{cause.value} -> callback {request.callback_id}")
        log.info("call %s: callback request %s for queue %s", call.call_id, request.callback_id, name)
        if self.on_callback is not None:
            self.on_callback()
        await call.play((CALLBACK_CONFIRMED_PROMPT,))
        return True

    async def _set_call_variables(self, channel: AcdChannel, call: AcdCall, queue: str) -> None:
        for name, value in (("IVR_CALL_ID", call.call_id), ("IVR_HOTLINE", call.hotline),
                            ("IVR_LANGUAGE", call.asterisk_language), ("IVR_QUEUE", queue)):
            await channel.set_variable(name, value)

    async def _music_off_quietly(self, channel: AcdChannel) -> None:
        try:
            await channel.run(SetMusic(False))
        except AgiHangup:
            raise
        except AgiError as exc:
            log.debug("SET MUSIC OFF failed: %s", exc)

    async def _state_down(self, channel: AcdChannel, call: AcdCall, stay: _Stay, exc: StateUnavailable) -> AcdResult:
        """The live state is unreachable: the caller goes to the queue's dialplan place."""
        target = call.dialplan_place(stay.name)
        log.error("call %s: ACD live state unreachable (%s); caller sent to %s,%s",
                  call.call_id, exc, target.context, target.extension)
        call.journal.queue_legs.append(stay.leg(self.clock(), "overflowed", OverflowCause.STATE_DOWN.value))
        text = f"{OverflowCause.STATE_DOWN.value} -> dialplan {target.context},{target.extension}"
        self._record(call, EventKind.OVERFLOW, text)
        await self._music_off_quietly(channel)
        await hand_off_to_dialplan(channel, call.info(), target)
        return AcdResult(Disposition.OVERFLOWED, text, stay.name)


def _excluding(caller: Caller, agent_id: str) -> Caller:
    return Caller(
        call_id=caller.call_id, queue=caller.queue, enqueued_at=caller.enqueued_at, language=caller.language,
        priority=caller.priority, issue=caller.issue, returning=caller.returning, vip=caller.vip,
        affinity_agent=caller.affinity_agent, affinity_until=caller.affinity_until,
        excluded=caller.excluded | {agent_id},
    )


def _agent_dial(call: AcdCall, stay: _Stay, endpoint: str, ring: float, pop_url: str | None) -> tuple[str, str, str]:
    """Dial's arguments for ringing an agent: the call's context as SIP headers on the agent's
    leg (routing.agent_leg)."""
    return agent_dial_arguments(endpoint, ring, call_id=call.call_id, queue=stay.name, hotline=call.hotline,
                                language=call.language, customer=customer_kind(stay.caller), pop_url=pop_url)


def _pop_url(call: AcdCall, stay: _Stay) -> str | None:
    """The call's CRM link, for the agent's INVITE (routing.agent_leg) and the desk's pop: the
    queue's template, else the hotline's; a template that cannot be filled in (`ivr check`
    reports it) is left out, never the call."""
    template = stay.queue.crm_url or call.crm_url
    if not template:
        return None
    try:
        return crm_link(template, caller=call.caller_number, call_id=call.call_id, queue=stay.name,
                        hotline=call.hotline, language=call.language)
    except ValueError as exc:
        log.warning("call %s: CRM URL template of queue %s left out: %s", call.call_id, stay.name, exc)
        return None


def _talk(answered_time: str | None, dial_length: float) -> float:
    """The controller's talk time of an answered Dial (module docstring): the Dial's length on
    our clock, or the caller's ANSWEREDTIME when that is shorter (the Dial answered the caller)."""
    try:
        since_answer = float(answered_time or "")
    except ValueError:
        return dial_length
    return max(0.0, min(since_answer, dial_length))


def _enqueued_text(caller: Caller) -> str:
    text = f"{caller.queue} priority={caller.priority}"
    if caller.vip:
        text += " vip"
    if caller.returning:
        text += " returning"
    if caller.affinity_agent is not None:
        text += f" affinity={caller.affinity_agent}"
    return text


@dataclass(frozen=True)
class AcdLink:
    """The ACD bound to one call's AGI session: what the flow engine's queue node uses."""

    acd: Acd
    channel: AcdChannel

    def serves(self, queue: str) -> bool:
        return self.acd.serves(queue)

    async def route(self, call: AcdCall, queue: str, issue: str | None) -> AcdResult:
        return await self.acd.route(self.channel, call, queue, issue)
