"""The Redis live state against a real `redis-server` (started by the fixtures on a free
loopback port): several controllers in separate processes racing for agents, a controller
that dies mid-offer, and Redis dying, hanging and coming back.

Without `redis-server` these tests skip, or fail when CI=true (see conftest).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import random
import signal
import socket
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from redis.asyncio import Redis

from routing.config import StateSettings
from routing.model import Activity, Caller, Device, OfferOutcome, Presence
from routing.redis_state import RedisState
from routing.state import StateUnavailable

if TYPE_CHECKING:
    from redisserver import RedisServer

FORK = multiprocessing.get_context("fork")


def dead_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def settings(url: str, prefix: str, ttl: float = 30.0) -> StateSettings:
    return StateSettings(backend="redis", redis_url=url, key_prefix=prefix, reservation_ttl=ttl)


async def log_in(state: RedisState, agent_ids: list[str]) -> None:
    now = time.time()
    for agent_id in agent_ids:
        await state.set_presence(agent_id, Presence.READY, now)
        await state.set_device(agent_id, Device.NOT_INUSE)


# --- several controllers in several processes ------------------------------------------------------


def _controller(url: str, prefix: str, index: int, calls: list[str], out: str) -> None:
    """One controller (its own process and connection): serve `calls` one after another,
    each time taking an available agent from a fresh snapshot, as the ACD does. Most of the
    time it takes the first free agent by id, which makes every controller go for the same
    agent: the worst case for races."""

    async def main() -> None:
        state = await RedisState.connect(settings(url, prefix, ttl=30.0))
        rng = random.Random(index)
        held: list[tuple[str, str, float, float]] = []
        lost = 0
        try:
            for call_id in calls:
                while True:
                    now = time.time()
                    free = sorted(a.agent_id for a in (await state.agents()).values() if a.available(now))
                    if not free:
                        await state.wait_for_change(0.05)
                        continue
                    agent_id = free[0] if rng.random() < 0.7 else rng.choice(free)
                    if not await state.reserve(agent_id, call_id, time.time()):
                        lost += 1
                        continue
                    # The reservation began before `start` and ends after `end`: if two of these
                    # intervals overlap for one agent, two reservations did.
                    start = time.monotonic()
                    await asyncio.sleep(rng.uniform(0, 0.002))  # ringing
                    await state.offer_ended(
                        agent_id, call_id, OfferOutcome.ANSWERED, time.time(), misses_before_not_ready=3
                    )
                    await asyncio.sleep(rng.uniform(0, 0.002))  # talking
                    end = time.monotonic()
                    await state.call_ended(agent_id, call_id, time.time(), wrap_up=0, keep_after=0)
                    held.append((agent_id, call_id, start, end))
                    break
        finally:
            await state.close()
        Path(out).write_text(json.dumps({"held": held, "lost": lost}))

    asyncio.run(main())


def test_no_double_assignment_with_four_controllers_contending(redis_server: RedisServer, key_prefix: str, tmp_path: Path) -> None:
    agents = [f"a{i:02d}" for i in range(10)]
    calls = [f"call-{i:03d}" for i in range(200)]

    async def setup() -> None:
        state = await RedisState.connect(settings(redis_server.url, key_prefix))
        try:
            await log_in(state, agents)
        finally:
            await state.close()

    asyncio.run(setup())
    outs = [tmp_path / f"controller-{i}.json" for i in range(4)]
    processes = [
        FORK.Process(target=_controller, args=(redis_server.url, key_prefix, i, calls[i::4], str(outs[i])))
        for i in range(4)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert all(p.exitcode == 0 for p in processes), [p.exitcode for p in processes]

    held: list[tuple[str, str, float, float]] = []
    lost = 0
    for out in outs:
        data = json.loads(out.read_text())
        held += [tuple(h) for h in data["held"]]  # type: ignore[misc]
        lost += data["lost"]

    reserved_calls = [call for _, call, _, _ in held]
    assert sorted(reserved_calls) == calls, "every call reserved exactly once"
    by_agent: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for agent_id, call_id, start, end in held:
        by_agent[agent_id].append((start, end, call_id))
    for agent_id, spans in by_agent.items():
        spans.sort()
        for (s1, e1, c1), (s2, e2, c2) in zip(spans, spans[1:]):
            assert s2 >= e1, f"{agent_id} held {c1} [{s1}, {e1}] and {c2} [{s2}, {e2}] at once"
    assert lost > 0, "the controllers never raced: the test proves nothing"

    async def check() -> None:
        state = await RedisState.connect(settings(redis_server.url, key_prefix))
        try:
            snapshot = await state.agents()
        finally:
            await state.close()
        assert sorted(snapshot) == agents
        assert all(a.activity is Activity.WRAP_UP and a.call_id is None for a in snapshot.values())
        assert sum(len(a.handled) for a in snapshot.values()) == len(calls)

    asyncio.run(check())


def _dying_controller(url: str, prefix: str, ttl: float) -> None:
    """Enqueue a caller, reserve a1 for it, then crash (SIGKILL) mid-offer: nothing is cleaned up."""

    async def main() -> None:
        state = await RedisState.connect(settings(url, prefix, ttl=ttl))
        await state.enqueue(Caller("doomed", "billing", time.time()))
        assert await state.reserve("a1", "doomed", time.time())
        os.kill(os.getpid(), signal.SIGKILL)

    asyncio.run(main())


def test_controller_dying_mid_offer_leaves_agent_reserved_only_until_ttl(redis_server: RedisServer, key_prefix: str) -> None:
    """... and its waiting caller listed only until its lease (the same ttl) runs out."""
    ttl = 2.0  # long enough that the checks right after the crash come well within it on a busy machine

    async def setup() -> None:
        state = await RedisState.connect(settings(redis_server.url, key_prefix, ttl=ttl))
        try:
            await log_in(state, ["a1"])
        finally:
            await state.close()

    asyncio.run(setup())
    dying = FORK.Process(target=_dying_controller, args=(redis_server.url, key_prefix, ttl))
    dying.start()
    dying.join(timeout=30)
    died = time.time()  # the reservation and the dead one's last lease renewal came before this
    assert dying.exitcode == -signal.SIGKILL

    async def after_the_crash() -> None:
        state = await RedisState.connect(settings(redis_server.url, key_prefix, ttl=ttl))
        try:
            await state.enqueue(Caller("mine", "billing", time.time()))
            agent = await state.agent("a1")
            assert agent.activity is Activity.RESERVED and agent.call_id == "doomed"
            assert [c.call_id for c in await state.waiting()] == ["doomed", "mine"]
            assert not await state.reserve("a1", "next", time.time())
            await asyncio.sleep(max(0.0, died + ttl + 0.05 - time.time()))
            agent = (await state.agents())["a1"]
            assert agent.activity is Activity.IDLE and agent.available(time.time())
            assert await state.reserve("a1", "next", time.time())
            # This controller's lease was renewed (every ttl/3), the dead one's was not.
            assert [c.call_id for c in await state.waiting()] == ["mine"]
        finally:
            await state.close()

    asyncio.run(after_the_crash())


async def test_agent_on_a_call_of_a_dead_controller_is_free_once_its_lease_ends(
    redis_server: RedisServer, key_prefix: str
) -> None:
    """A controller that dies while its agent talks never writes the call's end: the agent
    is held only until that controller's lease runs out, then offered again."""
    clock = [time.time()]
    dead = await RedisState.connect(settings(redis_server.url, key_prefix, ttl=30.0), clock=lambda: clock[0])
    alive = await RedisState.connect(settings(redis_server.url, key_prefix, ttl=30.0), clock=lambda: clock[0])
    try:
        await log_in(alive, ["a1"])
        answered = clock[0]
        assert await dead.reserve("a1", "c1", answered)
        await dead.offer_ended("a1", "c1", OfferOutcome.ANSWERED, answered, misses_before_not_ready=3)
        clock[0] = answered + 29.0  # the dead controller's heartbeat (every 10 s) never runs here
        assert (await alive.agent("a1")).activity is Activity.ON_CALL
        assert not await alive.reserve("a1", "c2", clock[0])
        clock[0] = answered + 31.0
        agent = (await alive.agents())["a1"]
        assert agent.activity is Activity.IDLE and agent.call_id is None and agent.available(clock[0])
        assert await alive.reserve("a1", "c2", clock[0])
        # A late report from the controller that lost the agent changes nothing.
        await dead.call_ended("a1", "c1", clock[0], wrap_up=5.0, keep_after=0.0)
        agent = await alive.agent("a1")
        assert agent.activity is Activity.RESERVED and agent.call_id == "c2"
    finally:
        await dead.close()
        await alive.close()


async def test_agent_on_a_call_of_a_live_controller_stays_on_call_past_its_lease(
    redis_server: RedisServer, key_prefix: str
) -> None:
    ttl = 3.0  # renewed every second: a loaded machine would have to stall it for 2 s to fail
    holder = await RedisState.connect(settings(redis_server.url, key_prefix, ttl=ttl))
    other = await RedisState.connect(settings(redis_server.url, key_prefix, ttl=ttl))
    try:
        await log_in(holder, ["a1"])
        assert await holder.reserve("a1", "c1", time.time())
        await holder.offer_ended("a1", "c1", OfferOutcome.ANSWERED, time.time(), misses_before_not_ready=3)
        await asyncio.sleep(ttl + 1.0)
        agent = (await other.agents())["a1"]
        assert agent.activity is Activity.ON_CALL and agent.call_id == "c1"
        await holder.call_ended("a1", "c1", time.time(), wrap_up=0.0, keep_after=0.0)
        assert (await other.agent("a1")).activity is Activity.WRAP_UP
    finally:
        await holder.close()
        await other.close()


async def test_racing_wrap_up_ends_and_a_pause_leave_one_consistent_agent(
    redis_server: RedisServer, key_prefix: str
) -> None:
    """The agent desktop's submit is sent twice (two tabs, two controllers) while a supervisor
    pauses the agent: one end wins, and neither write undoes the other."""
    clock = [time.time()]
    views = [await RedisState.connect(settings(redis_server.url, key_prefix), clock=lambda: clock[0])
             for _ in range(4)]
    try:
        await log_in(views[0], ["a1"])
        start = clock[0]
        assert await views[0].reserve("a1", "c1", start)
        await views[0].offer_ended("a1", "c1", OfferOutcome.ANSWERED, start, misses_before_not_ready=3)
        await views[0].call_ended("a1", "c1", start + 60, wrap_up=120.0, keep_after=0.0)
        ends = [views[i % 4].end_wrap_up("a1", "c1", start + 70 + i / 100) for i in range(20)]
        *done, paused = await asyncio.gather(*ends, views[3].set_presence("a1", Presence.PAUSED, start + 70,
                                                                            reason="coaching"))
        assert done.count(True) == 1
        winner = start + 70 + done.index(True) / 100
        agent = await views[1].agent("a1")
        assert (agent.activity, agent.wrap_up_until, agent.wrap_up_call) == (Activity.WRAP_UP, winner, "c1")
        assert (agent.presence, agent.pause_reason, agent.handled) == (Presence.PAUSED, "coaching", (start,))
        assert paused.pause_reason == "coaching"
        # Free of the wrap-up, held back only by the pause.
        assert not agent.available(winner)
        await views[2].set_presence("a1", Presence.READY, winner)
        assert await views[2].reserve("a1", "c2", winner)
    finally:
        for view in views:
            await view.close()


async def test_an_agent_hash_written_before_pause_reasons_and_early_wrap_up_ends_is_read(
    redis_server: RedisServer, key_prefix: str
) -> None:
    state = await RedisState.connect(settings(redis_server.url, key_prefix))
    raw = Redis.from_url(redis_server.url, decode_responses=True)
    try:
        now = time.time()
        await raw.sadd(f"{key_prefix}agents", "a1")
        await raw.hset(f"{key_prefix}agent:a1", mapping={  # the fields of the previous release
            "presence": "paused", "activity": "wrap_up", "device": "not_inuse", "call_id": "",
            "presence_since": repr(now - 50), "idle_since": repr(now - 10), "wrap_up_until": repr(now + 20),
            "reserved_until": "0", "missed": "0", "handled": repr(now - 100), "owner": ""})
        agent = await state.agent("a1")
        assert (agent.presence, agent.pause_reason, agent.wrap_up_call) == (Presence.PAUSED, "", None)
        assert (await state.agents())["a1"] == agent
        # Paused with no reason already: nothing changes; a reason is a change.
        assert await state.set_presence("a1", Presence.PAUSED, now) == agent
        assert (await state.set_presence("a1", Presence.PAUSED, now, reason="lunch")).pause_reason == "lunch"
        # Which call that wrap-up follows was not kept: it cannot be ended early, and runs out.
        assert not await state.end_wrap_up("a1", "", now)
        assert (await state.agent("a1")).wrap_up_until == now + 20
    finally:
        await raw.aclose()
        await state.close()


# --- the key layout ---------------------------------------------------------------------------


async def test_every_key_is_under_the_prefix(own_redis_server: RedisServer, key_prefix: str) -> None:
    state = await RedisState.connect(settings(own_redis_server.url, key_prefix))
    raw = Redis.from_url(own_redis_server.url, decode_responses=True)
    try:
        now = time.time()
        await log_in(state, ["a1"])
        assert await state.reserve("a1", "c1", now)
        await state.enqueue(Caller("c1", "billing", now))
        await state.note_offered("billing", "a1")
        keys = set(await raw.keys("*"))
        assert keys == {
            f"{key_prefix}{name}"
            for name in ("agents", "agent:a1", "callers", "queue", "arrival", "seq", "last_offered", "owners", "controllers")
        }
        fields = await raw.hgetall(f"{key_prefix}agent:a1")
        assert fields["activity"] == "reserved" and fields["call_id"] == "c1"
        assert float(fields["reserved_until"]) == now + 30.0
    finally:
        await raw.aclose()
        await state.close()


# --- Redis failing ---------------------------------------------------------------------------


def every_method(state: RedisState) -> dict[str, Callable[[], Awaitable[Any]]]:
    now = time.time()
    caller = Caller("c1", "billing", now)
    return {
        "agents": lambda: state.agents(),
        "agent": lambda: state.agent("a1"),
        "set_presence": lambda: state.set_presence("a1", Presence.PAUSED, now),
        "set_device": lambda: state.set_device("a1", Device.INUSE),
        "reserve": lambda: state.reserve("a1", "c1", now),
        "offer_ended": lambda: state.offer_ended("a1", "c1", OfferOutcome.NO_ANSWER, now, misses_before_not_ready=2),
        "call_ended": lambda: state.call_ended("a1", "c1", now, wrap_up=0, keep_after=0),
        "end_wrap_up": lambda: state.end_wrap_up("a1", "c1", now),
        "enqueue": lambda: state.enqueue(caller),
        "update_caller": lambda: state.update_caller(caller),
        "dequeue": lambda: state.dequeue("c1"),
        "waiting": lambda: state.waiting(),
        "last_offered": lambda: state.last_offered("billing"),
        "note_offered": lambda: state.note_offered("billing", "a1"),
        "wait_for_change": lambda: state.wait_for_change(10.0),
    }


async def assert_all_unavailable(state: RedisState, within: float) -> None:
    for name, call in every_method(state).items():
        started = time.monotonic()
        with pytest.raises(StateUnavailable) as raised:
            await asyncio.wait_for(call(), timeout=within + 5)  # a hang fails, not blocks, the test
        took = time.monotonic() - started
        assert took < within, f"{name} took {took:.2f} s to report Redis gone"
        assert "redis 127.0.0.1" in str(raised.value) and name in str(raised.value)


async def assert_works_again(state: RedisState, other: RedisState) -> None:
    now = time.time()
    await log_in(state, ["a1"])
    assert await state.reserve("a1", "c1", now)
    assert (await other.agent("a1")).call_id == "c1"
    await state.enqueue(Caller("c1", "billing", now))
    assert [c.call_id for c in await other.waiting()] == ["c1"]
    # Change notification resumes once the listener has resubscribed (back-off under 1 s).
    deadline = time.monotonic() + 5
    while True:
        waiter = asyncio.create_task(state.wait_for_change(0.5))
        await asyncio.sleep(0.05)
        await other.note_offered("x", "y")  # not a change
        await other.set_device("a1", random.choice([Device.NOT_INUSE, Device.UNKNOWN]))
        started = time.monotonic()
        await waiter
        if time.monotonic() - started < 0.3:
            break
        assert time.monotonic() < deadline, "wait_for_change never woke up again"


async def test_redis_killed_then_restarted(own_redis_server: RedisServer, key_prefix: str) -> None:
    state = await RedisState.connect(settings(own_redis_server.url, key_prefix))
    other = await RedisState.connect(settings(own_redis_server.url, key_prefix))
    try:
        await log_in(state, ["a1"])
        own_redis_server.stop()
        await assert_all_unavailable(state, within=2.0)
        own_redis_server.start()  # same port, empty (no persistence)
        await assert_works_again(state, other)
    finally:
        await state.close()
        await other.close()


async def test_redis_hung_then_resumed(own_redis_server: RedisServer, key_prefix: str) -> None:
    """A Redis that stops answering (no RST, no EOF) is caught by the socket timeout: every
    method with a short timeout, and `reserve` with the default one (1 s, one retry)."""
    quick = await RedisState.connect(settings(own_redis_server.url, key_prefix), socket_timeout=0.2)
    default = await RedisState.connect(settings(own_redis_server.url, key_prefix))
    assert own_redis_server.process is not None
    pid = own_redis_server.process.pid
    try:
        await log_in(quick, ["a1"])
        os.kill(pid, signal.SIGSTOP)
        try:
            for name, call in every_method(quick).items():
                if name == "wait_for_change":
                    continue  # a silent subscription looks like no change: it returns on its timeout
                started = time.monotonic()
                with pytest.raises(StateUnavailable):
                    await asyncio.wait_for(call(), timeout=10)
                assert time.monotonic() - started < 1.0, name
            started = time.monotonic()
            with pytest.raises(StateUnavailable, match="reserve failed: TimeoutError"):
                await asyncio.wait_for(default.reserve("a1", "c1", time.time()), timeout=10)
            assert time.monotonic() - started < 3.0
        finally:
            os.kill(pid, signal.SIGCONT)
        await assert_works_again(quick, default)
    finally:
        await quick.close()
        await default.close()


async def test_closing_a_controller_drops_its_waiting_callers(redis_server: RedisServer, key_prefix: str) -> None:
    first = await RedisState.connect(settings(redis_server.url, key_prefix))
    second = await RedisState.connect(settings(redis_server.url, key_prefix))
    try:
        now = time.time()
        await first.enqueue(Caller("c1", "billing", now))
        await second.enqueue(Caller("c2", "billing", now + 1))
        assert [c.call_id for c in await second.waiting()] == ["c1", "c2"]
        await first.close()
        assert [c.call_id for c in await second.waiting()] == ["c2"]
    finally:
        await first.close()  # closing twice is harmless
        await second.close()


async def test_connect_to_a_dead_redis_raises_state_unavailable(key_prefix: str) -> None:
    started = time.monotonic()
    with pytest.raises(StateUnavailable, match="cannot connect"):
        await RedisState.connect(settings(f"redis://127.0.0.1:{dead_port()}/0", key_prefix))
    assert time.monotonic() - started < 2.0


async def test_error_message_hides_the_password(key_prefix: str) -> None:
    with pytest.raises(StateUnavailable) as raised:
        await RedisState.connect(settings(f"redis://user:s3cret@127.0.0.1:{dead_port()}/0", key_prefix))
    assert "s3cret" not in str(raised.value)


async def test_controller_started_while_redis_is_down_recovers_by_itself(
    own_redis_server: RedisServer, key_prefix: str
) -> None:
    """A controller started during an outage routes to the dialplan meanwhile (every method
    raises StateUnavailable) and needs no restart once Redis answers."""
    own_redis_server.stop()
    state = RedisState.offline(settings(own_redis_server.url, key_prefix))
    try:
        await assert_all_unavailable(state, within=2.0)
        own_redis_server.start()
        other = await RedisState.connect(settings(own_redis_server.url, key_prefix))
        try:
            await assert_works_again(state, other)  # change notification included
        finally:
            await other.close()
    finally:
        await state.close()
