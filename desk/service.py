"""The agent desktop's service: screen pops, presence, wrap-up codes and frontline feedback.

It watches the ACD's offers (`routing.offers.OfferWatcher`), builds each pop and pushes it to
the agent's open pages through the `Hub`; it changes presence through the same
`AdminService` that `ivr agents` uses; it stores wrap-up codes and frontline feedback. The
web handlers (desk.web) are thin over it. No sockets here.

What a page needs after a reconnect (the current pop, pending wrap-ups) is kept per agent:
in memory for the pop (a pop lives seconds), in the database for wrap-ups (they outlive a
controller restart).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

from desk.accounts import Account, Role
from desk.history import CallerHistory
from desk.hub import Event, Hub
from desk.pop import Pop, build_pop
from ivr.admin import (
    AdminService,
    AgentsRequest,
    AgentsResponse,
    AgentView,
    ErrorResponse,
    PauseRequest,
    PresenceRequest,
    PresenceResponse,
)
from ivr.records.masking import Policy
from ivr.records.schema import frontline_feedback
from ivr.records.wrapups import WrapUp, WrapUpOutcome, WrapUpStore
from routing.config import QueueConfig, RoutingConfig
from routing.model import OfferOutcome
from routing.offers import Offer
from routing.state import LiveState, StateUnavailable
from routing.wrapup import is_leaf
from survey_engine.config import FollowUps, SurveysConfig
from survey_engine.contacts import ContactSeal
from survey_engine.model import FollowUp, Urgency
from survey_engine.store import SurveyStore

log = logging.getLogger(__name__)

FeedbackKind = Literal["complaint", "suggestion", "praise", "defect", "process"]
FEEDBACK_KINDS: tuple[str, ...] = get_args(FeedbackKind)
URGENCIES: tuple[str, ...] = get_args(Urgency)
MAX_NOTE = 2000  # characters of a wrap-up note or a feedback text
HISTORY_BUDGET = 0.2  # seconds the pop waits for the caller's history before it goes without
PRESENCE_EVERY = 0.1  # seconds: presence pushes are coalesced to at most this often
RECENT_CALLS = 50  # calls per agent remembered as theirs (feedback on them is accepted)
NUMBERS_KEPT = 10_000  # recent calls whose number as received is kept for a follow-up's contact


@dataclass(frozen=True)
class Refused:
    """An action the desk does not take, with the i18n key of why."""

    reason: str
    status: int = 400
    detail: str = ""


@dataclass(frozen=True)
class FeedbackFiled:
    feedback_id: str
    item: FollowUp


@dataclass
class _AgentDesk:
    """What a page of this agent gets on (re)connect."""

    pop: Pop | None = None
    current: str | None = None  # the call offered last, until its offer is over or its wrap-up done
    phase: str = "idle"  # idle | ringing | on_call | wrap_up
    recent: deque[str] = dataclasses.field(default_factory=lambda: deque(maxlen=RECENT_CALLS))


class DeskService:
    def __init__(
        self,
        *,
        admin: AdminService,
        routing: Callable[[], RoutingConfig | None],
        surveys_config: Callable[[], SurveysConfig | None],
        state: Callable[[], LiveState | None],
        history: CallerHistory,
        wrapups: WrapUpStore,
        surveys: SurveyStore,
        contacts: ContactSeal,
        policy: Policy,
        full_number_roles: tuple[Role, ...],
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str],
    ) -> None:
        self.admin = admin
        self.routing = routing
        self.surveys_config = surveys_config
        self.state = state
        self.history = history
        self.wrapups = wrapups
        self.surveys = surveys
        self.contacts = contacts
        self.policy = policy
        self.full_number_roles = full_number_roles
        self.clock = clock
        self.new_id = new_id
        self.hub = Hub()
        self._desks: dict[str, _AgentDesk] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._presence: dict[str, dict[str, Any]] = {}  # agent id -> last pushed view
        self._watch: asyncio.Task[None] | None = None
        self._numbers: OrderedDict[str, str] = OrderedDict()  # call id -> caller number, recent calls

    # --- life --------------------------------------------------------------------------------

    def start(self) -> None:
        self._watch = asyncio.create_task(self._watch_presence(), name="desk-presence")

    async def stop(self) -> None:
        tasks = [*self._tasks, *((self._watch,) if self._watch is not None else ())]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, work: Any, name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _desk(self, agent_id: str) -> _AgentDesk:
        return self._desks.setdefault(agent_id, _AgentDesk())

    # --- the ACD's offers (routing.offers.OfferWatcher) -----------------------------------------

    def offered(self, offer: Offer) -> None:
        desk = self._desk(offer.agent_id)
        desk.phase = "ringing"
        desk.current = offer.call_id
        desk.recent.append(offer.call_id)
        self._numbers[offer.call_id] = offer.caller_number
        while len(self._numbers) > NUMBERS_KEPT:
            self._numbers.popitem(last=False)
        self._spawn(self._pop(offer), f"pop-{offer.call_id}")

    def offer_over(self, call_id: str, agent_id: str, outcome: OfferOutcome, at: float) -> None:
        desk = self._desk(agent_id)
        if desk.current == call_id:
            desk.pop, desk.current, desk.phase = None, None, "idle"
        self.hub.publish(agent_id, Event("offer_over", {"call_id": call_id, "outcome": outcome.value}))

    def connected(self, call_id: str, agent_id: str, at: float) -> None:
        self._desk(agent_id).phase = "on_call"
        self.hub.publish(agent_id, Event("connected", {"call_id": call_id, "at": at}))

    def call_ended(self, call_id: str, agent_id: str, queue: str, at: float, wrap_until: float) -> None:
        desk = self._desk(agent_id)
        desk.phase = "wrap_up"
        config = self._queue(queue)
        if config is None or config.wrap_up is None:
            self.hub.publish(agent_id, Event("ended", {"call_id": call_id, "wrap_until": wrap_until}))
            return
        deadline = at + config.wrap_up.limit
        self._spawn(self._open_wrap_up(call_id, agent_id, queue, at, deadline, wrap_until), f"wrap-{call_id}")

    async def _pop(self, offer: Offer) -> None:
        routing = self.routing()
        now = dt.datetime.fromtimestamp(self.clock(), dt.timezone.utc)
        try:
            history, items = await asyncio.wait_for(self.history.of_number(offer.caller_number, now), HISTORY_BUDGET)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a pop without history beats no pop
            log.warning("call %s: the pop goes without the caller's history: %s", offer.call_id,
                        exc.__class__.__name__ if isinstance(exc, TimeoutError) else exc)
            history, items = [], []
        classification = routing.classification if routing is not None else None
        pop = build_pop(
            offer, history=[h for h in history if h.call_id != offer.call_id], open_items=items, policy=self.policy,
            may_see_number=Role.AGENT in self.full_number_roles,
            vip_numbers=classification.vip_numbers if classification is not None else (),
            returning_days=classification.returning_within_days if classification is not None else 0.0,
        )
        desk = self._desk(offer.agent_id)
        if desk.current == offer.call_id:  # not missed meanwhile: a page that reconnects gets it
            desk.pop = pop
        self.hub.publish(offer.agent_id, Event("pop", pop.to_json()))

    async def _open_wrap_up(self, call_id: str, agent_id: str, queue: str, at: float, deadline: float,
                            wrap_until: float) -> None:
        utc = dt.timezone.utc
        try:
            await self.wrapups.open(call_id, agent_id, queue, dt.datetime.fromtimestamp(at, utc),
                                    dt.datetime.fromtimestamp(deadline, utc))
        except Exception:  # noqa: BLE001 - the call is over; its code is then "no code"
            log.exception("call %s: the wrap-up of agent %s could not be stored", call_id, agent_id)
            return
        self.hub.publish(agent_id, Event("wrapup", self._wrapup_json(call_id, queue, deadline, wrap_until)))

    def _wrapup_json(self, call_id: str, queue: str, deadline: float, wrap_until: float) -> dict[str, Any]:
        config = self._queue(queue)
        wrap = config.wrap_up if config is not None else None
        return {
            "call_id": call_id, "queue": queue, "deadline": deadline, "wrap_until": wrap_until,
            "required": bool(wrap is not None and wrap.required),
            "codes": [] if wrap is None else [node.model_dump(mode="json") for node in wrap.codes],
        }

    def _queue(self, name: str) -> QueueConfig | None:
        routing = self.routing()
        return None if routing is None else routing.queues.get(name)

    # --- what a page gets on (re)connect ---------------------------------------------------------

    async def snapshot(self, agent_id: str) -> dict[str, Any]:
        """Everything the agent's page shows, at once: sent first on every (re)connect."""
        desk = self._desk(agent_id)
        routing = self.routing()
        pending: list[WrapUp] = []
        try:
            pending = await self.wrapups.pending(agent_id, dt.datetime.fromtimestamp(self.clock(), dt.timezone.utc))
        except Exception as exc:  # noqa: BLE001 - the page still shows presence and the pop
            log.warning("agent %s: pending wrap-ups unavailable: %s", agent_id, exc)
        view = await self._agent_view(agent_id)
        return {
            "agent_id": agent_id,
            "presence": view,
            "phase": desk.phase,
            "pop": None if desk.pop is None else desk.pop.to_json(),
            "wrapups": [self._wrapup_json(w.call_id, w.queue, w.deadline.timestamp(), w.deadline.timestamp())
                        for w in pending],
            "pause_reasons": [] if routing is None else [r.model_dump(mode="json") for r in routing.pause_reasons],
            "now": self.clock(),
        }

    async def _agent_view(self, agent_id: str) -> dict[str, Any] | None:
        answer = await self.admin.handle(AgentsRequest(op="agents"))
        if not isinstance(answer, AgentsResponse):
            return None
        for view in answer.agents:
            if view.id == agent_id:
                return _presence_json(view)
        return None

    # --- presence -------------------------------------------------------------------------------

    async def set_presence(self, account: Account, op: Literal["login", "logout", "pause", "unpause"],
                           reason: str | None) -> Refused | dict[str, Any]:
        assert account.agent_id is not None
        request = (PauseRequest(op="pause", agent=account.agent_id, reason=reason) if op == "pause"
                   else PresenceRequest(op=op, agent=account.agent_id))
        answer = await self.admin.handle(request)
        if isinstance(answer, ErrorResponse):
            return Refused("presence", 409, answer.error)
        assert isinstance(answer, PresenceResponse)  # the answer to a presence op
        view = _presence_json(answer.agent)
        self._presence[account.agent_id] = view
        self.hub.publish(account.agent_id, Event("presence", view))
        return view

    async def _watch_presence(self) -> None:
        """Push every change of a watched agent's presence, whoever made it (the phone's
        `*73`, `ivr agents`, a supervisor, another controller over Redis)."""
        while True:
            state = self.state()
            if state is None:
                await asyncio.sleep(1.0)
                continue
            try:
                await state.wait_for_change(5.0)
                await self._push_presence()
            except StateUnavailable:
                await asyncio.sleep(1.0)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the watcher outlives any one failure
                log.exception("desk: presence watch failed")
                await asyncio.sleep(1.0)
            await asyncio.sleep(PRESENCE_EVERY)

    async def _push_presence(self) -> None:
        watched = self.hub.keys()
        if not watched:
            return
        answer = await self.admin.handle(AgentsRequest(op="agents"))
        if not isinstance(answer, AgentsResponse):
            return
        for view in answer.agents:
            if view.id not in watched:
                continue
            shown = _presence_json(view)
            if self._presence.get(view.id, {}).get("key") != shown["key"]:
                self._presence[view.id] = shown
                self.hub.publish(view.id, Event("presence", shown))

    # --- wrap-up codes ----------------------------------------------------------------------------

    async def wrap_up(self, account: Account, call_id: str, code: str, note: str) -> Refused | WrapUpOutcome:
        assert account.agent_id is not None
        if len(note) > MAX_NOTE:
            return Refused("note_too_long")
        existing = await self.wrapups.get(call_id, account.agent_id)
        if existing is None:
            return Refused("not_yours", 403)
        config = self._queue(existing.queue)
        if config is None or config.wrap_up is None or not is_leaf(config.wrap_up.codes, code):
            return Refused("unknown_code", 400, code)
        now = self.clock()
        outcome = await self.wrapups.set_code(call_id, account.agent_id, code, note.strip() or None,
                                              at=dt.datetime.fromtimestamp(now, dt.timezone.utc),
                                              by=account.username)
        if outcome is WrapUpOutcome.STORED:
            state = self.state()
            if state is not None:
                try:  # the agent is free for the next call now, not when the wrap-up time is over
                    await state.end_wrap_up(account.agent_id, call_id, now)
                except StateUnavailable as exc:
                    log.warning("agent %s: wrap-up coded, but the live state is down: %s", account.agent_id, exc)
            desk = self._desk(account.agent_id)
            if desk.current == call_id:
                desk.pop, desk.current = None, None
                desk.phase = "idle"
            self.hub.publish(account.agent_id, Event("wrapup_done", {"call_id": call_id, "code": code}))
        return outcome

    # --- frontline feedback -------------------------------------------------------------------------

    async def file_feedback(self, account: Account, call_id: str, kind: str, urgency: str, text: str
                            ) -> Refused | FeedbackFiled:
        assert account.agent_id is not None
        text = text.strip()
        if kind not in FEEDBACK_KINDS:
            return Refused("unknown_kind", 400, kind)
        if urgency not in URGENCIES:
            return Refused("unknown_urgency", 400, urgency)
        if not text or len(text) > MAX_NOTE:
            return Refused("text_needed")
        agent_id = account.agent_id
        if call_id not in self._desk(agent_id).recent and not await self.history.handled(call_id, agent_id):
            return Refused("not_yours", 403)
        surveys = self.surveys_config()
        # Without surveys.yaml, the follow-up rules' defaults (owner, deadlines), as for a survey.
        settings = surveys.followups if surveys is not None else FollowUps()
        level = cast(Urgency, urgency)
        pop = self._desk(agent_id).pop
        queue = pop.queue if pop is not None and pop.call_id == call_id else await self._queue_of(call_id, agent_id)
        now = dt.datetime.fromtimestamp(self.clock(), dt.timezone.utc)
        feedback_id = self.new_id()
        owner = settings.owners.owner(kind, queue)
        # The number as received (the store keeps it masked): known for calls offered since this
        # controller started; after a restart the item is opened without a contact.
        contact = self._numbers.get(call_id)
        keep = settings.keep_contact
        item = FollowUp(
            item_id=self.new_id(), response_id=f"frontline:{feedback_id}", call_id=call_id, category=kind,
            urgency=level, owner=owner, created_at=now,
            deadline=now + dt.timedelta(hours=settings.deadlines.hours(level)),
            reasons=(f"frontline {kind} from agent {agent_id}: {text}",), queue=queue, agent=agent_id,
            contact=self.contacts.shown(contact) if keep else None,
        )
        await self.surveys.save_followup(item, sealed=self.contacts.seal(contact).sealed if keep else None)
        async with self.surveys.engine.begin() as conn:
            await conn.execute(frontline_feedback.insert().values(
                feedback_id=feedback_id, call_id=call_id, agent_id=agent_id, username=account.username, kind=kind,
                urgency=urgency, text=text, created_at=now, item_id=item.item_id))
        log.info("call %s: frontline %s from %s: follow-up %s for %s", call_id, kind, agent_id, item.item_id, owner)
        return FeedbackFiled(feedback_id, item)

    async def _queue_of(self, call_id: str, agent_id: str) -> str:
        found = await self.wrapups.get(call_id, agent_id)
        return found.queue if found is not None else ""

    # --- pops asked for by id -----------------------------------------------------------------------

    def pop_for(self, account: Account, call_id: str) -> Refused | Pop:
        """The current pop of `call_id`, only to the agent it was offered to."""
        assert account.agent_id is not None
        pop = self._desk(account.agent_id).pop
        if pop is None or pop.call_id != call_id:
            return Refused("not_yours", 403)
        return pop


def _presence_json(view: AgentView) -> dict[str, Any]:
    shown = {
        "presence": view.presence.value, "activity": view.activity.value, "device": view.device.value,
        "call_id": view.call_id, "pause_reason": view.pause_reason, "presence_for": view.presence_for,
    }
    shown["key"] = f"{view.presence.value}|{view.activity.value}|{view.pause_reason}|{view.call_id}"
    return shown
