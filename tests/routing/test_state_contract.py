"""The `LiveState` contract, run against both backends (in-process and a real Redis).

Every test gets `controllers` (see conftest): a fake clock shared by every controller and a
way to open another controller's view of the same state (Redis: another connection on the
same key prefix; memory: the same object, since it serves one controller). Times come from
the fake clock, so expiry and wrap-up are tested without sleeping.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import pytest

from routing.model import Activity, Caller, Device, OfferOutcome, Presence
from routing.state import LiveState

if TYPE_CHECKING:
    from conftest import Controllers

MISSES = 2  # misses_before_not_ready used throughout


async def ready(state: LiveState, agent_id: str, now: float, device: Device = Device.NOT_INUSE) -> None:
    await state.set_presence(agent_id, Presence.READY, now)
    await state.set_device(agent_id, device)


async def answered(state: LiveState, agent_id: str, call_id: str, now: float) -> None:
    assert await state.reserve(agent_id, call_id, now)
    after = await state.offer_ended(agent_id, call_id, OfferOutcome.ANSWERED, now, misses_before_not_ready=MISSES)
    assert after.activity is Activity.ON_CALL


# --- agents -------------------------------------------------------------------------------


async def test_unknown_agent_is_logged_out_and_not_listed(state: LiveState) -> None:
    agent = await state.agent("nobody")
    assert agent.agent_id == "nobody"
    assert agent.presence is Presence.LOGGED_OUT and agent.activity is Activity.IDLE
    assert await state.agents() == {}
    assert not await state.reserve("nobody", "c1", 1.0)


async def test_login_pause_unpause_logout(controllers: Controllers, state: LiveState) -> None:
    t0 = controllers.clock.now
    agent = await state.set_presence("a1", Presence.READY, t0)
    assert agent.presence is Presence.READY and agent.presence_since == t0

    # Same presence again: nothing moves.
    again = await state.set_presence("a1", Presence.READY, t0 + 5)
    assert again.presence_since == t0

    paused = await state.set_presence("a1", Presence.PAUSED, t0 + 10)
    assert paused.presence is Presence.PAUSED and paused.presence_since == t0 + 10
    assert (await state.agent("a1")).presence is Presence.PAUSED

    await state.set_presence("a1", Presence.READY, t0 + 20)
    out = await state.set_presence("a1", Presence.LOGGED_OUT, t0 + 30)
    assert out.presence is Presence.LOGGED_OUT
    snapshot = await state.agents()
    assert set(snapshot) == {"a1"}
    assert snapshot["a1"] == out


async def test_pause_reason_is_kept_changed_and_cleared(controllers: Controllers, state: LiveState) -> None:
    t0 = controllers.clock.now
    await state.set_presence("a1", Presence.READY, t0, reason="lunch")
    assert (await state.agent("a1")).pause_reason == ""  # only a pause has a reason

    lunch = await state.set_presence("a1", Presence.PAUSED, t0 + 10, reason="lunch")
    assert (lunch.presence, lunch.pause_reason, lunch.presence_since) == (Presence.PAUSED, "lunch", t0 + 10)
    same = await state.set_presence("a1", Presence.PAUSED, t0 + 15, reason="lunch")
    assert same == lunch

    # Another reason while paused: a new pause, seen by every controller.
    other = await controllers.new()
    changed = await other.set_presence("a1", Presence.PAUSED, t0 + 20, reason="break")
    assert (changed.pause_reason, changed.presence_since) == ("break", t0 + 20)
    assert (await state.agents())["a1"] == changed == await state.agent("a1")

    back = await state.set_presence("a1", Presence.READY, t0 + 30)
    assert (back.presence, back.pause_reason) == (Presence.READY, "")
    no_reason = await state.set_presence("a1", Presence.PAUSED, t0 + 40)
    assert (no_reason.presence, no_reason.pause_reason) == (Presence.PAUSED, "")
    await state.set_presence("a1", Presence.PAUSED, t0 + 50, reason="training")
    out = await state.set_presence("a1", Presence.LOGGED_OUT, t0 + 60)
    assert (out.presence, out.pause_reason) == (Presence.LOGGED_OUT, "")


async def test_set_device_is_kept_and_lists_the_agent(state: LiveState) -> None:
    await state.set_device("a1", Device.RINGING)
    assert (await state.agent("a1")).device is Device.RINGING
    assert set(await state.agents()) == {"a1"}
    await state.set_device("a1", Device.NOT_INUSE)
    assert (await state.agent("a1")).device is Device.NOT_INUSE


# --- reserve --------------------------------------------------------------------------------


async def test_reserve_an_available_agent(controllers: Controllers, state: LiveState) -> None:
    now = controllers.clock.now
    await ready(state, "a1", now)
    assert await state.reserve("a1", "c1", now)
    agent = await state.agent("a1")
    assert agent.activity is Activity.RESERVED and agent.call_id == "c1"
    assert not agent.available(now)


async def test_reserve_with_unknown_device_state(controllers: Controllers, state: LiveState) -> None:
    """No AMI device state yet (UNKNOWN) does not block: the ring itself will tell."""
    now = controllers.clock.now
    await state.set_presence("a1", Presence.READY, now)
    assert await state.reserve("a1", "c1", now)


@pytest.mark.parametrize("presence", [Presence.LOGGED_OUT, Presence.PAUSED, Presence.NOT_READY])
async def test_reserve_refused_when_not_ready(controllers: Controllers, state: LiveState, presence: Presence) -> None:
    now = controllers.clock.now
    await ready(state, "a1", now)
    await state.set_presence("a1", presence, now)
    before = await state.agent("a1")
    assert not await state.reserve("a1", "c1", now)
    assert await state.agent("a1") == before


@pytest.mark.parametrize("device", [Device.INUSE, Device.BUSY, Device.UNAVAILABLE, Device.RINGING])
async def test_reserve_refused_when_device_cannot_ring(controllers: Controllers, state: LiveState, device: Device) -> None:
    now = controllers.clock.now
    await ready(state, "a1", now, device)
    assert not await state.reserve("a1", "c1", now)
    assert (await state.agent("a1")).activity is Activity.IDLE


async def test_second_reserve_of_the_same_agent_fails(controllers: Controllers, state: LiveState) -> None:
    now = controllers.clock.now
    await ready(state, "a1", now)
    other = await controllers.new()
    assert await state.reserve("a1", "c1", now)
    assert not await other.reserve("a1", "c2", now + 1)
    assert not await state.reserve("a1", "c1", now + 1)  # not even for the same call
    agent = await other.agent("a1")
    assert agent.activity is Activity.RESERVED and agent.call_id == "c1"


async def test_racing_reserves_hand_the_agent_to_exactly_one_call(controllers: Controllers) -> None:
    views = [await controllers.new() for _ in range(4)]
    now = controllers.clock.now
    await ready(views[0], "a1", now)
    results = await asyncio.gather(*(views[i % 4].reserve("a1", f"c{i}", now) for i in range(40)))
    assert results.count(True) == 1
    winner = f"c{results.index(True)}"
    assert (await views[3].agent("a1")).call_id == winner


async def test_reserve_refused_while_on_call_and_during_wrap_up(controllers: Controllers, state: LiveState) -> None:
    now = controllers.clock.now
    await ready(state, "a1", now)
    await answered(state, "a1", "c1", now)
    assert not await state.reserve("a1", "c2", now + 1)
    await state.call_ended("a1", "c1", now + 60, wrap_up=10, keep_after=0)
    assert not await state.reserve("a1", "c2", now + 65)
    assert await state.reserve("a1", "c2", now + 70)


# --- offer outcomes -----------------------------------------------------------------------------


async def test_answered_offer_puts_agent_on_call_and_counts_it(controllers: Controllers, state: LiveState) -> None:
    now = controllers.clock.now
    await ready(state, "a1", now)
    assert await state.reserve("a1", "c1", now)
    after = await state.offer_ended("a1", "c1", OfferOutcome.ANSWERED, now + 3, misses_before_not_ready=MISSES)
    assert after.activity is Activity.ON_CALL and after.call_id == "c1"
    assert after.handled == (now + 3,) and after.missed == 0
    assert await state.agent("a1") == after


@pytest.mark.parametrize("outcome", [OfferOutcome.NO_ANSWER, OfferOutcome.REJECTED])
async def test_missed_offers_then_not_ready(controllers: Controllers, state: LiveState, outcome: OfferOutcome) -> None:
    now = controllers.clock.now
    await ready(state, "a1", now)
    assert await state.reserve("a1", "c1", now)
    first = await state.offer_ended("a1", "c1", outcome, now + 15, misses_before_not_ready=MISSES)
    assert first.activity is Activity.IDLE and first.call_id is None
    assert first.missed == 1 and first.presence is Presence.READY
    assert first.handled == ()

    assert await state.reserve("a1", "c2", now + 20)
    second = await state.offer_ended("a1", "c2", outcome, now + 35, misses_before_not_ready=MISSES)
    assert second.missed == 2
    assert second.presence is Presence.NOT_READY and second.presence_since == now + 35
    assert not await state.reserve("a1", "c3", now + 40)

    # The supervisor makes the agent ready again: a fresh count.
    back = await state.set_presence("a1", Presence.READY, now + 50)
    assert back.missed == 0 and await state.reserve("a1", "c3", now + 51)


@pytest.mark.parametrize("outcome", [OfferOutcome.CALLER_GONE, OfferOutcome.UNREACHABLE])
async def test_offer_ended_without_miss(controllers: Controllers, state: LiveState, outcome: OfferOutcome) -> None:
    now = controllers.clock.now
    await ready(state, "a1", now)
    for i in range(MISSES + 1):
        assert await state.reserve("a1", f"c{i}", now + i)
        after = await state.offer_ended("a1", f"c{i}", outcome, now + i, misses_before_not_ready=MISSES)
        assert after.activity is Activity.IDLE and after.missed == 0 and after.presence is Presence.READY


async def test_answered_call_resets_misses(controllers: Controllers, state: LiveState) -> None:
    now = controllers.clock.now
    await ready(state, "a1", now)
    assert await state.reserve("a1", "c1", now)
    await state.offer_ended("a1", "c1", OfferOutcome.NO_ANSWER, now, misses_before_not_ready=3)
    assert await state.reserve("a1", "c2", now + 1)
    after = await state.offer_ended("a1", "c2", OfferOutcome.ANSWERED, now + 1, misses_before_not_ready=3)
    assert after.missed == 0


async def test_offer_ended_for_another_call_changes_nothing(controllers: Controllers, state: LiveState) -> None:
    now = controllers.clock.now
    await ready(state, "a1", now)
    assert await state.reserve("a1", "c1", now)
    before = await state.agent("a1")
    after = await state.offer_ended("a1", "other", OfferOutcome.NO_ANSWER, now + 1, misses_before_not_ready=1)
    assert after == before and await state.agent("a1") == before
    # ... nor does a duplicate report once the offer is over.
    await state.offer_ended("a1", "c1", OfferOutcome.ANSWERED, now + 2, misses_before_not_ready=MISSES)
    dup = await state.offer_ended("a1", "c1", OfferOutcome.NO_ANSWER, now + 3, misses_before_not_ready=1)
    assert dup.activity is Activity.ON_CALL and dup.missed == 0 and dup.handled == (now + 2,)


async def test_paused_while_ringing_stays_paused_after_misses(controllers: Controllers, state: LiveState) -> None:
    now = controllers.clock.now
    await ready(state, "a1", now)
    assert await state.reserve("a1", "c1", now)
    await state.set_presence("a1", Presence.PAUSED, now + 1)
    after = await state.offer_ended("a1", "c1", OfferOutcome.NO_ANSWER, now + 15, misses_before_not_ready=1)
    assert after.presence is Presence.PAUSED and after.missed == 1


# --- call end and wrap-up -------------------------------------------------------------------------


async def test_call_ended_wrap_up_then_available(controllers: Controllers, state: LiveState) -> None:
    now = controllers.clock.now
    await ready(state, "a1", now)
    await answered(state, "a1", "c1", now)
    await state.call_ended("a1", "c1", now + 100, wrap_up=10, keep_after=0)
    agent = await state.agent("a1")
    assert agent.activity is Activity.WRAP_UP and agent.call_id is None
    assert agent.wrap_up_until == now + 110 and agent.idle_since == now + 100
    assert not agent.available(now + 109.9)
    assert agent.available(now + 110)
    assert agent.free_since() == now + 110


async def test_end_wrap_up_frees_the_agent_for_the_next_call_at_once(controllers: Controllers, state: LiveState) -> None:
    now = controllers.clock.now
    await ready(state, "a1", now)
    await ready(state, "a2", now)
    await answered(state, "a1", "c1", now)
    await state.call_ended("a1", "c1", now + 100, wrap_up=60, keep_after=0)
    agent = await state.agent("a1")
    assert agent.wrap_up_call == "c1" and agent.call_id is None and not agent.available(now + 110)

    other = await controllers.new()
    assert await other.end_wrap_up("a1", "c1", now + 110)
    freed = await state.agent("a1")
    assert freed.available(now + 110) and freed.wrap_up_until == now + 110
    # Free since the wrap-up ended: ranked after a2, free since the start, by longest idle.
    assert freed.free_since() == now + 110 > (await state.agent("a2")).free_since()
    # Done once: a second submission changes nothing.
    assert not await state.end_wrap_up("a1", "c1", now + 111)
    assert await state.agent("a1") == freed
    assert await state.reserve("a1", "c2", now + 110)
    assert (await state.agent("a1")).call_id == "c2"


async def test_end_wrap_up_is_refused_for_another_call_or_outside_wrap_up(
        controllers: Controllers, state: LiveState) -> None:
    now = controllers.clock.now
    assert not await state.end_wrap_up("nobody", "c1", now)
    await ready(state, "a1", now)
    assert not await state.end_wrap_up("a1", "c1", now)  # idle
    await answered(state, "a1", "c1", now)
    assert not await state.end_wrap_up("a1", "c1", now + 5)  # still talking
    await state.call_ended("a1", "c1", now + 100, wrap_up=60, keep_after=0)
    in_wrap_up = await state.agent("a1")
    for call_id in ("c0", "", "c1 "):
        assert not await state.end_wrap_up("a1", call_id, now + 110)
    assert await state.agent("a1") == in_wrap_up
    assert not await state.end_wrap_up("a1", "c1", now + 160)  # over by itself
    assert await state.agent("a1") == in_wrap_up

    # The next call's wrap-up cannot be ended with the previous call's id.
    assert await state.reserve("a1", "c2", now + 160)
    await state.offer_ended("a1", "c2", OfferOutcome.ANSWERED, now + 165, misses_before_not_ready=MISSES)
    await state.call_ended("a1", "c2", now + 200, wrap_up=60, keep_after=0)
    assert not await state.end_wrap_up("a1", "c1", now + 210)
    assert await state.end_wrap_up("a1", "c2", now + 210)


async def test_call_ended_prunes_handled(controllers: Controllers, state: LiveState) -> None:
    t = controllers.clock.now
    await ready(state, "a1", t)
    for i, at in enumerate([t, t + 100, t + 200]):
        await answered(state, "a1", f"c{i}", at)
        await state.call_ended("a1", f"c{i}", at + 10, wrap_up=0, keep_after=t - 1000)
    assert (await state.agent("a1")).handled == (t, t + 100, t + 200)
    await answered(state, "a1", "c3", t + 300)
    await state.call_ended("a1", "c3", t + 310, wrap_up=0, keep_after=t + 100)
    agent = await state.agent("a1")
    assert agent.handled == (t + 100, t + 200, t + 300)
    assert agent.calls_since(t + 150) == 2


async def test_call_ended_for_another_call_is_a_no_op(controllers: Controllers, state: LiveState) -> None:
    now = controllers.clock.now
    await ready(state, "a1", now)
    assert await state.reserve("a1", "c1", now)
    await state.call_ended("a1", "c1", now + 1, wrap_up=10, keep_after=0)  # reserved, not on the call yet
    assert (await state.agent("a1")).activity is Activity.RESERVED
    await state.offer_ended("a1", "c1", OfferOutcome.ANSWERED, now + 2, misses_before_not_ready=MISSES)
    await state.call_ended("a1", "c9", now + 3, wrap_up=10, keep_after=0)
    assert (await state.agent("a1")).activity is Activity.ON_CALL


# --- reservation expiry -------------------------------------------------------------------------------


async def test_reservation_expires_after_ttl(controllers: Controllers, state: LiveState) -> None:
    """A controller that died mid-offer: its reservation frees the agent after the ttl."""
    clock = controllers.clock
    t0 = clock.now
    await ready(state, "a1", t0)
    other = await controllers.new()
    assert await state.reserve("a1", "dead-call", t0)
    # `state` dies here: it never reports the end of the offer.

    clock.advance(controllers.reservation_ttl - 0.1)
    assert (await other.agent("a1")).activity is Activity.RESERVED
    assert not await other.reserve("a1", "c2", clock.now)

    clock.advance(0.1)
    seen = (await other.agents())["a1"]
    assert seen.activity is Activity.IDLE and seen.call_id is None and seen.available(clock.now)
    assert seen.missed == 0
    assert await other.reserve("a1", "c2", clock.now)
    # The dead controller's late report changes nothing.
    late = await state.offer_ended("a1", "dead-call", OfferOutcome.ANSWERED, clock.now, misses_before_not_ready=MISSES)
    assert late.activity is Activity.RESERVED and late.call_id == "c2"


async def test_expired_reservation_cannot_be_answered(controllers: Controllers, state: LiveState) -> None:
    clock = controllers.clock
    await ready(state, "a1", clock.now)
    assert await state.reserve("a1", "c1", clock.now)
    later = clock.advance(controllers.reservation_ttl + 1)
    after = await state.offer_ended("a1", "c1", OfferOutcome.ANSWERED, later, misses_before_not_ready=MISSES)
    assert after.activity is Activity.IDLE and after.handled == ()


async def test_reservation_expiry_in_real_time(controllers: Controllers) -> None:
    """The same with the wall clock and a short ttl (what a production controller sees)."""
    controllers.reservation_ttl = 0.3
    controllers.clock.now = time.time()
    state = await controllers.new()
    await ready(state, "a1", time.time())
    assert await state.reserve("a1", "c1", time.time())
    assert not await state.reserve("a1", "c2", time.time())
    await asyncio.sleep(0.35)
    controllers.clock.now = time.time()
    assert (await state.agent("a1")).activity is Activity.IDLE
    assert await state.reserve("a1", "c2", time.time())


# --- waiting callers ---------------------------------------------------------------------------------


def caller(call_id: str, at: float, **kw: object) -> Caller:
    return Caller(call_id=call_id, queue=str(kw.pop("queue", "billing")), enqueued_at=at, **kw)  # type: ignore[arg-type]


async def test_waiting_in_arrival_order_across_controllers(controllers: Controllers, state: LiveState) -> None:
    t = controllers.clock.now
    other = await controllers.new()
    await state.enqueue(caller("c2", t + 2))
    await other.enqueue(caller("c1", t + 1, queue="sales"))
    await state.enqueue(caller("c3", t + 3))
    await other.enqueue(caller("c4", t + 3))  # same instant: arrival decides
    assert [c.call_id for c in await state.waiting()] == ["c1", "c2", "c3", "c4"]
    assert [c.call_id for c in await other.waiting()] == ["c1", "c2", "c3", "c4"]


async def test_caller_record_round_trips(controllers: Controllers, state: LiveState) -> None:
    t = controllers.clock.now
    full = Caller(
        call_id="c1",
        queue="billing",
        enqueued_at=t + 0.123456789,
        language="zh-CN",
        priority=10,
        issue="refund",
        returning=True,
        vip=True,
        affinity_agent="a7",
        affinity_until=t + 20.5,
        excluded=frozenset({"a1", "a2"}),
    )
    await state.enqueue(full)
    assert await state.waiting() == [full]


async def test_update_caller_keeps_position(controllers: Controllers, state: LiveState) -> None:
    t = controllers.clock.now
    for i in range(3):
        await state.enqueue(caller(f"c{i}", t + i))
    updated = caller("c1", t + 1, excluded=frozenset({"a1"}))
    await state.update_caller(updated)
    waiting = await state.waiting()
    assert [c.call_id for c in waiting] == ["c0", "c1", "c2"]
    assert waiting[1] == updated


async def test_update_of_a_caller_no_longer_waiting_is_ignored(controllers: Controllers, state: LiveState) -> None:
    t = controllers.clock.now
    await state.enqueue(caller("c1", t))
    await state.dequeue("c1")
    await state.update_caller(caller("c1", t, excluded=frozenset({"a1"})))
    assert await state.waiting() == []


async def test_dequeue(controllers: Controllers, state: LiveState) -> None:
    t = controllers.clock.now
    other = await controllers.new()
    for i in range(3):
        await state.enqueue(caller(f"c{i}", t + i))
    await other.dequeue("c1")
    await other.dequeue("c1")  # no-op
    await other.dequeue("never")  # no-op
    assert [c.call_id for c in await state.waiting()] == ["c0", "c2"]
    # Enqueued again later: at the back.
    await state.enqueue(caller("c1", t + 10))
    assert [c.call_id for c in await state.waiting()] == ["c0", "c2", "c1"]


# --- round-robin memory -----------------------------------------------------------------------------


async def test_last_offered(controllers: Controllers, state: LiveState) -> None:
    other = await controllers.new()
    assert await state.last_offered("billing") is None
    await state.note_offered("billing", "a3")
    await state.note_offered("sales", "a1")
    assert await other.last_offered("billing") == "a3"
    await other.note_offered("billing", "a4")
    assert await state.last_offered("billing") == "a4"
    assert await state.last_offered("sales") == "a1"


# --- change notification ------------------------------------------------------------------------------


async def _wakes_on(controllers: Controllers, change: str) -> float:
    """How long a controller waiting for a change waits when another one makes `change`."""
    waiter = await controllers.new()
    other = await controllers.new()
    now = controllers.clock.now
    await ready(other, "a1", now)
    if change == "pause_reason":
        await other.set_presence("a1", Presence.PAUSED, now, reason="break")
    elif change == "end_wrap_up":
        await answered(other, "a1", "c1", now)
        await other.call_ended("a1", "c1", now, wrap_up=60, keep_after=0)
    await asyncio.sleep(0.05)
    task = asyncio.create_task(waiter.wait_for_change(5.0))
    await asyncio.sleep(0.05)
    assert not task.done()
    started = time.monotonic()
    if change == "agent":
        assert await other.reserve("a1", "c1", now)
    elif change == "device":
        await other.set_device("a1", Device.INUSE)
    elif change == "enqueue":
        await other.enqueue(caller("c1", now))
    elif change == "pause_reason":
        await other.set_presence("a1", Presence.PAUSED, now + 1, reason="lunch")
    elif change == "end_wrap_up":
        assert await other.end_wrap_up("a1", "c1", now + 1)
    await asyncio.wait_for(task, 2.0)
    return time.monotonic() - started


@pytest.mark.parametrize("change", ["agent", "device", "enqueue", "pause_reason", "end_wrap_up"])
async def test_wait_for_change_wakes_on_another_controllers_change(controllers: Controllers, change: str) -> None:
    assert await _wakes_on(controllers, change) < 1.0


async def test_wait_for_change_times_out(state: LiveState) -> None:
    started = time.monotonic()
    await state.wait_for_change(0.2)
    assert 0.15 <= time.monotonic() - started < 1.0


async def test_wait_for_change_sees_a_change_made_while_not_waiting(controllers: Controllers) -> None:
    """The ACD's loop: wait, match (others change things meanwhile), wait -> returns at once."""
    waiter = await controllers.new()
    other = await controllers.new()
    now = controllers.clock.now
    first = asyncio.create_task(waiter.wait_for_change(5.0))
    await asyncio.sleep(0.05)
    await other.set_presence("a1", Presence.READY, now)
    await asyncio.wait_for(first, 2.0)

    async def loop_once() -> float:
        await waiter.wait_for_change(0.01)  # this task's first wait
        await other.enqueue(caller("c1", now))  # a change while "matching"
        await asyncio.sleep(0.1)  # (Redis: lets the message arrive)
        started = time.monotonic()
        await waiter.wait_for_change(5.0)
        return time.monotonic() - started

    assert await asyncio.wait_for(loop_once(), 3.0) < 0.5
