"""The menu interpreter: walks a flow's nodes for one caller.

Business logic only: it speaks to the caller through the `Channel` protocol (the AGI
session's typed API) and never touches a socket. Every step lands in the call's path
events; the result says how the call left the IVR.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo

import httpx

from ivr.agi.commands import ALL_DIGITS, Playback
from ivr.agi.errors import AgiError, AgiHangup
from ivr.config import hours
from ivr.config.loader import LoadedConfig
from ivr.config.models import (
    CollectNode,
    GotoNode,
    HangupNode,
    HoursNode,
    LanguageNode,
    LookupNode,
    MenuNode,
    Node,
    PlayNode,
    QueueNode,
    SayItem,
    SurveyOptInNode,
    TransferNode,
    VoicemailNode,
)
from ivr import selfservice
from ivr.prompts import speech
from ivr.flow.context import CallContext
from ivr.records.model import Disposition, EventKind
from routing.handoff import CallInfo, HandoffTarget, hand_off_to_dialplan
from routing.service import AcdCall, AcdLink

log = logging.getLogger(__name__)
T = TypeVar("T")

# A flow that visits this many nodes without the caller leaving is looping: stop it.
MAX_STEPS = 500


class Channel(Protocol):
    async def stream_file(self, filename: str, escape_digits: str = "") -> Playback: ...

    async def wait_for_digit(self, timeout_ms: int) -> str | None: ...

    async def say_digits(self, digits: str, escape_digits: str = "") -> str | None: ...

    async def say_number(self, number: int, escape_digits: str = "") -> str | None: ...

    async def say_date(self, epoch_seconds: int, escape_digits: str = "") -> str | None: ...

    async def set_variable(self, name: str, value: str) -> None: ...

    async def continue_at(self, context: str, extension: str, priority: str = "1") -> None: ...

    async def hangup(self) -> None: ...

    async def until_hangup(self, work: Awaitable[T]) -> T: ...


@dataclass(frozen=True)
class Exit:
    """How the caller left the IVR."""

    disposition: Disposition
    detail: str = ""
    hung_up_by: str | None = None


class FlowError(Exception):
    """The flow cannot go on (a loop, a value a node cannot use)."""


class FlowRunner:
    def __init__(
        self,
        config: LoadedConfig,
        channel: Channel,
        call: CallContext,
        http: httpx.AsyncClient,
        *,
        lookup_base_url: str | None = None,
        acd: AcdLink | None = None,
    ) -> None:
        self.lookup_base_url = lookup_base_url or config.server.lookups.base_url
        self.config = config
        self.channel = channel
        self.call = call
        self.http = http
        self.acd = acd  # the engine's ACD for this call; None: every queue is a dialplan place

    # --- driving ---------------------------------------------------------------------

    async def run(self, start: str) -> Exit:
        node_id = start
        for _ in range(MAX_STEPS):
            node = self.call.flow.nodes[node_id]
            self.call.node = node_id
            self.call.record(EventKind.NODE, node.type)
            step = await self._step(node_id, node)
            if isinstance(step, Exit):
                return step
            node_id = step
        raise FlowError(f"flow visited {MAX_STEPS} nodes without ending (loop at {node_id!r})")

    async def _step(self, node_id: str, node: Node) -> str | Exit:
        if isinstance(node, PlayNode):
            await self.play(node.prompts)
            return node.next
        if isinstance(node, MenuNode):
            return await self._menu(node_id, node)
        if isinstance(node, LanguageNode):
            return await self._language(node)
        if isinstance(node, HoursNode):
            return self._hours(node)
        if isinstance(node, CollectNode):
            return await self._collect(node)
        if isinstance(node, LookupNode):
            return await self._lookup(node)
        if isinstance(node, GotoNode):
            return node.target
        if isinstance(node, SurveyOptInNode):
            return await self._survey_opt_in(node)
        if isinstance(node, QueueNode):
            await self.play(node.prompts)
            if self.acd is not None and self.acd.serves(node.queue):
                return await self._acd_queue(self.acd, node.queue)
            return await self._queue(node.queue)
        if isinstance(node, TransferNode):
            await self.play(node.prompts)
            return await self._move(node.context, node.extension, Disposition.TRANSFERRED, EventKind.TRANSFER)
        if isinstance(node, VoicemailNode):
            await self.play(node.prompts)
            return await self._move(node.context, node.mailbox, Disposition.VOICEMAIL, EventKind.TRANSFER)
        if isinstance(node, HangupNode):
            await self.play(node.prompts)
            self.call.record(EventKind.HANGUP, "ivr")
            await self.channel.hangup()
            return Exit(self.ended_in_ivr(), hung_up_by="ivr")
        raise FlowError(f"node type {node.type!r} has no handler")  # pragma: no cover

    def ended_in_ivr(self) -> Disposition:
        """Disposition when the call ends inside the IVR (by us or by the caller)."""
        if self.call.self_served:
            return Disposition.SELF_SERVED
        if self.call.closed_hours:
            return Disposition.CLOSED_HOURS
        return Disposition.IVR_HANGUP

    # --- prompts ---------------------------------------------------------------------

    def prompt_path(self, prompt_id: str) -> str:
        return self.config.prompt_path(self.call.language, prompt_id)

    async def play(self, prompts: tuple[str, ...] | list[str], escape_digits: str = "") -> str | None:
        """Play prompts in order; return the digit that interrupted them, if any."""
        for prompt_id in prompts:
            result = await self.channel.stream_file(self.prompt_path(prompt_id), escape_digits)
            if result.failed:
                self.call.record(EventKind.ERROR, f"prompt {prompt_id} did not play")
                continue
            self.call.record(EventKind.PROMPT, prompt_id if result.digit is None else f"{prompt_id} (interrupted)")
            if result.digit is not None:
                return result.digit
        return None

    async def ask(self, prompts: tuple[str, ...], timeout: float) -> str | None:
        """Play prompts that any digit interrupts, then wait `timeout` seconds for one."""
        digit = await self.play(prompts, ALL_DIGITS)
        if digit is None:
            digit = await self.channel.wait_for_digit(int(timeout * 1000))
        return digit

    # --- nodes -----------------------------------------------------------------------

    async def _menu(self, node_id: str, node: MenuNode) -> str:
        came_from = self.call.menu_stack[-1] if self.call.menu_stack else None
        if came_from != node_id:
            self.call.menu_stack.append(node_id)
        no_input = invalid = 0
        while True:
            digit = await self.ask(node.prompts, node.timeout)
            if digit is None:
                no_input += 1
                self.call.record(EventKind.TIMEOUT, str(no_input))
                if no_input > node.no_input.retries:
                    return node.no_input.then
                if node.no_input.prompt:
                    await self.play((node.no_input.prompt,))
                continue
            if digit in node.options:
                self.call.record(EventKind.DIGIT, digit)
                return node.options[digit]
            if digit == "*" and node.back and len(self.call.menu_stack) > 1:
                self.call.record(EventKind.DIGIT, "* (back)")
                self.call.menu_stack.pop()
                return self.call.menu_stack[-1]
            if node.repeat is not None and digit == node.repeat:
                self.call.record(EventKind.DIGIT, f"{digit} (repeat)")
                continue
            if digit == "0" and node.operator is not None:
                self.call.record(EventKind.DIGIT, "0 (operator)")
                return node.operator
            invalid += 1
            self.call.record(EventKind.INVALID, digit)
            if invalid > node.invalid.retries:
                return node.invalid.then
            if node.invalid.prompt:
                await self.play((node.invalid.prompt,))

    async def _language(self, node: LanguageNode) -> str:
        for _attempt in range(node.retries + 1):
            digit = await self.ask(node.prompts, node.timeout)
            if digit is None:
                self.call.record(EventKind.TIMEOUT)
                continue
            choice = node.options.get(digit)
            if choice is None:
                self.call.record(EventKind.INVALID, digit)
                continue
            self.call.record(EventKind.DIGIT, digit)
            await self.set_language(choice)
            return node.next
        self.call.record(EventKind.LANGUAGE, f"{self.call.language} (kept)")
        return node.next

    async def set_language(self, language: str) -> None:
        self.call.language = language
        self.call.variables["language"] = language
        await self.channel.set_variable(
            "CHANNEL(language)", self.config.directory.languages[language].asterisk
        )
        self.call.record(EventKind.LANGUAGE, language)

    async def _survey_opt_in(self, node: SurveyOptInNode) -> str:
        """One question, no re-ask: a caller who does not press an accept key declines."""
        digit = await self.ask(node.prompts, node.timeout)
        opted_in = digit is not None and digit in node.accept
        self.call.record(EventKind.TIMEOUT if digit is None else EventKind.DIGIT, digit or "")
        self.call.record(EventKind.SURVEY, "opted_in" if opted_in else "declined")
        # A channel variable, not a call variable: the survey runs in another AGI session.
        await self.channel.set_variable("IVR_SURVEY_OPTIN", "yes" if opted_in else "no")
        return node.next

    def _hours(self, node: HoursNode) -> str:
        schedule = self.config.directory.schedules[node.schedule]
        is_open = hours.is_open(schedule, self.call.clock(), self.call.hotline.timezone)
        self.call.record(EventKind.HOURS, "open" if is_open else "closed")
        if not is_open:
            self.call.closed_hours = True
        return node.open if is_open else node.closed

    async def _collect(self, node: CollectNode) -> str:
        for attempt in range(node.invalid.retries + 1):
            digits = await self._read_digits(node)
            if digits.isdigit() and len(digits) >= node.min_digits:
                self.call.variables[node.variable] = digits
                # The path keeps how much was entered, not the account number itself.
                self.call.record(EventKind.DIGIT, f"{node.variable}: {len(digits)} digits")
                return node.next
            if digits:
                self.call.record(EventKind.INVALID, f"{len(digits)} keys")
            else:
                self.call.record(EventKind.TIMEOUT)
            if attempt < node.invalid.retries and node.invalid.prompt:
                await self.play((node.invalid.prompt,))
        return node.invalid.then

    async def _read_digits(self, node: CollectNode) -> str:
        """Keys up to `#`, max_digits, or a silence of `timeout` seconds (`#` not included)."""
        first = await self.play(node.prompts, ALL_DIGITS)
        keys = "" if first is None else first
        while len(keys) < node.max_digits and not keys.endswith("#"):
            digit = await self.channel.wait_for_digit(int(node.timeout * 1000))
            if digit is None:
                break
            keys += digit
        return keys.removesuffix("#")

    async def _lookup(self, node: LookupNode) -> str:
        variables = dict(self.call.variables)
        request = asyncio.create_task(
            selfservice.lookup(self.http, node.request, variables, base_url=self.lookup_base_url)
        )
        try:
            if node.wait_prompt:
                await self.play((node.wait_prompt,))
            result = await self.channel.until_hangup(request)
        finally:
            if not request.done():
                request.cancel()
                await asyncio.gather(request, return_exceptions=True)
        if not result.ok:
            self.call.record(EventKind.LOOKUP, f"failed: {result.error}")
            return node.on_failure
        branch = selfservice.choose_branch(node.branches, result.answer)
        if branch is None:
            self.call.record(EventKind.LOOKUP, "failed: no branch matched the answer")
            return node.on_failure
        index = node.branches.index(branch)
        try:
            taken = {name: selfservice.render(value, variables, result.answer) for name, value in branch.set.items()}
        except selfservice.TemplateError as exc:
            self.call.record(EventKind.LOOKUP, f"failed: branch {index + 1} set: {exc}")
            return node.on_failure
        self.call.variables.update(taken)
        self.call.record(EventKind.LOOKUP, f"ok: branch {index + 1}")
        if node.self_service:
            self.call.self_served = True
        for item in branch.say:
            await self.say(item, variables, result.answer)
        return branch.next

    async def say(self, item: SayItem, variables: dict[str, str], answer: object) -> None:
        if item.prompt is not None:
            await self.play((item.prompt,))
        elif item.digits is not None:
            value = selfservice.render(item.digits, variables, answer)
            if any(ch.isdigit() for ch in value):
                await self.say_value("digits", value)
        elif item.number is not None:
            await self.say_value("number", selfservice.render(item.number, variables, answer))
        elif item.date is not None:
            value = selfservice.render(item.date, variables, answer)
            await self.say_value("date", self._moment(value).date())
        elif item.prompt_by is not None:
            value = selfservice.render("{" + item.prompt_by + "}", variables, answer)
            prompt = item.prompts.get(value, item.default_prompt)
            if prompt is not None:
                await self.play((prompt,))

    async def say_value(self, kind: speech.Kind, value: object, escape_digits: str = "") -> str | None:
        """Speak a number, digits, amount, date, time or wait time in the caller's language
        (SAY commands where Asterisk has them, catalog prompts such as say/yuan otherwise)."""
        try:
            actions = speech.speak(kind, value, self.call.language)
        except speech.SpeechError as exc:
            raise FlowError(f"cannot say {value!r} as a {kind}: {exc}") from None

        async def play(prompt: str) -> str | None:
            return await self.play((prompt,), escape_digits)

        async def play_core(name: str) -> str | None:
            result = await self.channel.stream_file(name, escape_digits)
            return result.digit

        return await speech.perform(actions, self.channel, play, play_core, escape_digits)

    def _moment(self, value: str) -> dt.datetime:
        """An ISO date/time or epoch seconds, in the hotline's time zone."""
        zone = ZoneInfo(self.call.hotline.timezone)
        if value.isdigit():
            return dt.datetime.fromtimestamp(int(value), zone)
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            raise FlowError(f"cannot say {value!r} as a date") from None
        return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment.astimezone(zone)

    async def _queue(self, queue: str) -> Exit:
        target = self.config.directory.queues[queue]
        self.call.record(EventKind.QUEUE, queue)
        await hand_off_to_dialplan(
            self.channel,
            CallInfo(self.call.call_id, self.call.dialed, self.asterisk_language),
            HandoffTarget(queue, target.context, target.extension or queue, target.timeout),
        )
        return Exit(Disposition.QUEUED, queue)

    def dialplan_place(self, queue: str) -> HandoffTarget:
        """A queue's plain dialplan place (hotlines.yaml): the ACD's fallback."""
        queues = self.config.directory.queues
        target = queues.get(queue)
        if target is None and self.call.hotline.fallback_queue:
            queue = self.call.hotline.fallback_queue
            target = queues.get(queue)
        if target is None:
            return HandoffTarget(queue, "ivr-queue", queue, 300)
        return HandoffTarget(queue, target.context, target.extension or queue, target.timeout)

    async def _acd_queue(self, acd: AcdLink, queue: str) -> str | Exit:
        """The engine's ACD serves the queue: the caller waits in this AGI session."""
        self.call.record(EventKind.QUEUE, f"{queue} (acd)")
        call = AcdCall(
            call_id=self.call.call_id,
            hotline=self.call.dialed,
            caller_number=self.call.variables.get("caller", ""),
            language=self.call.language,
            asterisk_language=self.asterisk_language,
            journal=self.call,
            play=self.play,
            say=self.say_value,
            dialplan_place=self.dialplan_place,
            vip=self.call.variables.get("vip", "").strip().lower() in ("1", "true", "yes"),
            prompt_path=self.prompt_path,
            crm_url=self.call.hotline.crm_url,
            events=self.call.events,
            variables=self.call.variables,
        )
        issue = self.call.variables.get("issue") or queue
        result = await acd.route(call, queue, issue)
        if result.next_node is not None:
            if result.next_node not in self.call.flow.nodes:
                raise FlowError(f"queue {queue} overflows to node {result.next_node!r}, not in the flow")
            return result.next_node
        return Exit(result.disposition, result.detail, hung_up_by=result.hung_up_by)

    async def _move(self, context: str, extension: str, disposition: Disposition, kind: EventKind) -> Exit:
        self.call.record(kind, f"{context},{extension}")
        for name, value in (
            ("IVR_CALL_ID", self.call.call_id),
            ("IVR_HOTLINE", self.call.dialed),
            ("IVR_LANGUAGE", self.asterisk_language),
        ):
            await self.channel.set_variable(name, value)
        await self.channel.continue_at(context, extension)
        return Exit(disposition, f"{context},{extension}")

    @property
    def asterisk_language(self) -> str:
        return self.config.directory.languages[self.call.language].asterisk

    async def fall_back(self) -> Exit | None:
        """After a failure: apologise and send the caller to the hotline's fallback queue."""
        hotline = self.call.hotline
        if hotline.error_prompt:
            try:
                await self.play((hotline.error_prompt,))
            except AgiHangup:
                raise
            except AgiError as exc:  # the apology is not worth losing the caller over
                log.warning("call %s: the apology %s did not play: %s", self.call.call_id, hotline.error_prompt, exc)
        if hotline.fallback_queue and hotline.fallback_queue in self.config.directory.queues:
            return await self._queue(hotline.fallback_queue)
        return None
