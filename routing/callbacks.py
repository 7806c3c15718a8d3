"""The callback worker: one task per controller (ACD and AMI on) that works off callback requests.

A caller who pressed 1 on a callback offer (`routing.service`, overflow `callback: true`)
left a pending request in the call-record store. The worker, every `poll` seconds or when
poked (a new request), when the dispatcher is not paused (device states trusted):

1. matches the due pending requests, as synthetic callers of their queue (their language,
   in the queue's last, widest step), together with the live waiting callers, with
   `decision.match` and the queue's strategy. Synthetic callers have the lowest priority:
   a caller on the line is always served first; requests among themselves oldest first.
2. for each request matched to an agent: reserves the agent atomically in the live state
   (`LiveState.reserve`, the request id as call id), claims the request (pending ->
   dialing, attempts + 1), and sends AMI `Originate` (Async) to the agent's endpoint with
   `Context: ivr-callback`, `Exten: <the caller's number>`, `Timeout` the queue's ring
   timeout in ms and the variables IVR_CALLBACK_ID, IVR_CALL_ID, IVR_QUEUE, IVR_LANGUAGE.
   The agent's phone rings first; when the agent answers, Asterisk runs the
   `ivr-callback` context, which dials the caller through the trunk.
3. `OriginateResponse` Success: the offer ended ANSWERED (the agent is ON_CALL), the
   request is done. Failure (or no response within the ring timeout plus a margin): the
   offer ended NO_ANSWER (a miss for the agent, who may become not ready), the request is
   pending again after `callbacks.retry_after` seconds, and failed after
   `callbacks.max_attempts` attempts.

The agent's call then ends on AMI: the Hangup of the agent's channel while the agent is
ON_CALL for a request (`Acd.callbacks_talking`) puts the agent in wrap-up
(`routing.ami_agents`); while ringing (`Acd.callbacks_dialing`) that Hangup is left to this
worker, which ends the offer itself when the OriginateResponse arrives.

Whatever happens, a reservation made here is ended (the offer ended) before the attempt is
over, and a request claimed here is finished: nothing stays reserved or dialing. Requests
a crash left dialing are made pending again when the controller that dialed them starts
again (`CallStore.recover_callbacks`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from ivr.ami.client import OriginateResult
from ivr.records.model import CallbackRequest, CallbackStatus
from routing import decision
from routing.config import QueueConfig
from routing.dispatch import ringing_calls
from routing.model import Caller, OfferOutcome
from routing.service import ANSWER_MARGIN, Acd
from routing.state import StateUnavailable

log = logging.getLogger(__name__)

Clock = Callable[[], float]
# Below any caller on the line (priorities are small sums of the queue's Priority fields).
CALLBACK_PRIORITY = -1_000_000
# Beyond the ring timeout, how long an OriginateResponse may take before the attempt is given up.
RESPONSE_MARGIN = 5.0


class Originator(Protocol):
    """Sends an asynchronous Originate and waits for its OriginateResponse (`ivr.ami.client.AmiLink`)."""

    async def originate(self, fields: Mapping[str, str | Sequence[str]], timeout: float) -> OriginateResult: ...


class CallbackStore(Protocol):
    """The callback requests (`ivr.records.store.CallStore`)."""

    async def due_callbacks(self, now: dt.datetime) -> list[CallbackRequest]: ...

    async def claim_callback(self, callback_id: str, now: dt.datetime) -> CallbackRequest | None: ...

    async def finish_callback(
        self, callback_id: str, now: dt.datetime, *, ok: bool, error: str | None = None,
        max_attempts: int = 3, retry_at: dt.datetime | None = None,
    ) -> CallbackStatus | None: ...


def _utc(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc)


def synthetic_caller(request: CallbackRequest, queue: QueueConfig) -> Caller:
    """The request as a waiting caller of its queue: its language, the last (widest) step,
    the lowest priority."""
    steps = sum(step.for_seconds or 0.0 for step in queue.steps)
    return Caller(call_id=request.callback_id, queue=request.queue,
                  enqueued_at=request.requested_at.timestamp() - steps, language=request.language,
                  priority=CALLBACK_PRIORITY, issue=request.queue)


def originate_fields(request: CallbackRequest, endpoint: str, queue: QueueConfig, context: str) -> dict[str, str | list[str]]:
    """The Originate headers of one attempt (Action and Async are the link's)."""
    return {
        "Channel": endpoint,
        "Context": context,
        "Exten": request.caller,
        "Priority": "1",
        "CallerID": f'"Callback {request.queue}" <{request.caller}>',  # what the agent's phone shows
        "Timeout": str(int(queue.ring_timeout * 1000)),
        "Variable": [
            f"IVR_CALLBACK_ID={request.callback_id}",
            f"IVR_CALL_ID={request.call_id}",
            f"IVR_QUEUE={request.queue}",
            f"IVR_LANGUAGE={request.asterisk_language}",
        ],
    }


class CallbackWorker:
    def __init__(
        self,
        acd: Acd,
        store: CallbackStore,
        originator: Originator,
        *,
        clock: Clock,
        rng: random.Random | None = None,
        poll: float = 1.0,
    ) -> None:
        self.acd = acd
        self.store = store
        self.originator = originator
        self.clock = clock
        self.rng = rng or random.Random()
        self.poll = poll
        self._task: asyncio.Task[None] | None = None
        self._attempts: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self.rounds = 0  # matchings run (tests and logs)

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name="acd-callbacks")
            self._task.add_done_callback(self._ended)
        self.acd.on_callback = self.poke

    @staticmethod
    def _ended(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("callback worker stopped on an error", exc_info=task.exception())

    async def stop(self) -> None:
        """Stop matching; attempts under way are cancelled, and each ends its offer and
        finishes its request on the way out (shielded)."""
        if self.acd.on_callback == self.poke:
            self.acd.on_callback = None
        task, self._task = self._task, None
        for running in [t for t in (task,) if t is not None] + list(self._attempts):
            running.cancel()
        await asyncio.gather(*([task] if task is not None else []), *self._attempts, return_exceptions=True)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def poke(self) -> None:
        self._wake.set()

    async def idle(self) -> None:
        """Until no attempt is under way (tests)."""
        while self._attempts:
            await asyncio.gather(*self._attempts, return_exceptions=True)

    # --- matching ----------------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except StateUnavailable as exc:
                log.error("callbacks: live state unreachable, retrying: %s", exc)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug or a store error must not stop callbacks for good
                log.exception("callbacks: matching failed")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll)
            except TimeoutError:
                pass

    async def run_once(self) -> int:
        """One matching; returns the number of attempts started."""
        if self.acd.dispatcher.paused:
            return 0
        now = self.clock()
        config = self.acd.config
        due = [r for r in await self.store.due_callbacks(_utc(now)) if r.callback_id not in self.acd.callbacks_dialing]
        requests = {r.callback_id: r for r in due if r.queue in config.queues}
        if not requests:
            return 0
        self.rounds += 1
        states = await self.acd.state.agents()
        waiting = await self.acd.state.waiting()
        busy = ringing_calls(states)
        callers = [c for c in waiting if c.call_id not in busy]
        callers += [synthetic_caller(r, config.queues[r.queue]) for r in requests.values()]
        last_offered = {name: await self.acd.state.last_offered(name) for name in config.queues}
        if self.acd.dispatcher.paused:  # checked after the last await, as the dispatcher does
            return 0
        started = 0
        for assignment in decision.match(callers, config.agents, decision.AgentSnapshot(states), config.queues,
                                         now, last_offered, self.rng):
            request = requests.get(assignment.caller.call_id)
            if request is None:
                continue  # a caller on the line: the dispatcher's
            self.acd.callbacks_dialing.add(request.callback_id)
            attempt = asyncio.create_task(self._attempt(request, assignment.agent_id),
                                          name=f"callback-{request.callback_id}")
            self._attempts.add(attempt)
            attempt.add_done_callback(self._attempt_done)
            started += 1
        return started

    def _attempt_done(self, task: asyncio.Task[None]) -> None:
        self._attempts.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("callback attempt failed", exc_info=task.exception())
        self.poke()  # another request may be waiting for this agent

    # --- one attempt ------------------------------------------------------------------------------

    async def _attempt(self, request: CallbackRequest, agent_id: str) -> None:
        try:
            await self._reserve_and_ring(request, agent_id)
        finally:
            self.acd.callbacks_dialing.discard(request.callback_id)

    async def _reserve_and_ring(self, request: CallbackRequest, agent_id: str) -> None:
        config = self.acd.config
        agent = config.agents.get(agent_id)
        queue = config.queues.get(request.queue)
        if agent is None or queue is None:
            return
        state = self.acd.state
        if not await state.reserve(agent_id, request.callback_id, self.clock()):
            return  # a caller or another controller got the agent first
        outcome = OfferOutcome.UNREACHABLE  # what ends the offer if nothing better is known
        ok = False
        error: str | None = "not originated"
        claimed: CallbackRequest | None = None
        try:
            claimed = await self.store.claim_callback(request.callback_id, _utc(self.clock()))
            if claimed is None:
                return  # finished or claimed meanwhile: free the agent, no miss
            await state.note_offered(request.queue, agent_id)
            fields = originate_fields(claimed, agent.endpoint, queue, config.callbacks.context)
            log.info("callback %s: ringing agent %s (%s), then %s; attempt %d of %d", claimed.callback_id,
                     agent_id, agent.endpoint, claimed.caller, claimed.attempts, config.callbacks.max_attempts)
            result = await self.originator.originate(fields, queue.ring_timeout + ANSWER_MARGIN + RESPONSE_MARGIN)
            ok, error = result.success, (None if result.success else result.reason)
            outcome = OfferOutcome.ANSWERED if ok else OfferOutcome.NO_ANSWER
            if ok:
                self.acd.callbacks_talking.add(claimed.callback_id)
        finally:
            await self._finish(request, agent_id, queue, outcome, claimed is not None, ok, error)

    async def _finish(self, request: CallbackRequest, agent_id: str, queue: QueueConfig, outcome: OfferOutcome,
                      claimed: bool, ok: bool, error: str | None) -> None:
        """End the offer and the attempt; shielded, so a stopping controller still does it."""
        async def finish() -> None:
            now = self.clock()
            presence = "unknown"
            try:
                after = await self.acd.state.offer_ended(agent_id, request.callback_id, outcome, now,
                                                         misses_before_not_ready=queue.misses_before_not_ready)
                presence = after.presence.value
            except StateUnavailable as exc:  # the reservation expires on its own
                log.error("callback %s: live state unreachable, offer to %s not ended: %s",
                          request.callback_id, agent_id, exc)
            if not claimed:
                return
            settings = self.acd.config.callbacks
            status = await self.store.finish_callback(
                request.callback_id, _utc(now), ok=ok, error=error, max_attempts=settings.max_attempts,
                retry_at=_utc(now + settings.retry_after))
            if ok:
                log.info("callback %s: agent %s answered, dialing %s", request.callback_id, agent_id, request.caller)
            else:
                log.warning("callback %s: agent %s did not take it (%s); request %s, agent %s",
                            request.callback_id, agent_id, error, status, presence)

        task = asyncio.ensure_future(finish())
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            await asyncio.gather(task, return_exceptions=True)
            raise
