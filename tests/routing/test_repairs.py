"""Clean-ups the live state refused are retried in their order until it takes them."""

from __future__ import annotations

import asyncio

from callkit import eventually
from routing.repairs import Repairs
from routing.state import StateUnavailable


class Store:
    def __init__(self) -> None:
        self.down = True
        self.done: list[str] = []

    def write(self, name: str):  # type: ignore[no-untyped-def]
        async def run() -> None:
            if self.down:
                raise StateUnavailable("redis://127.0.0.1:6379: connection refused")
            self.done.append(name)

        return run


async def test_writes_land_in_their_order_once_the_state_answers() -> None:
    store = Store()
    repairs = Repairs(retry_every=0.01, retry_max=0.02)
    repairs.start()
    try:
        for name in ("offer_ended a1", "dequeue c1", "call_ended a2"):
            repairs.add(name, store.write(name), StateUnavailable("down"))
        await asyncio.sleep(0.1)
        assert store.done == [] and repairs.pending == 3
        store.down = False
        await eventually(lambda: repairs.pending == 0)
    finally:
        await repairs.stop()
    assert store.done == ["offer_ended a1", "dequeue c1", "call_ended a2"] and repairs.done == 3


async def test_a_write_refused_for_longer_than_the_limit_is_given_up_and_the_rest_go_on() -> None:
    store = Store()
    now = [0.0]
    repairs = Repairs(retry_every=0.01, retry_max=0.01, give_up_after=60, clock=lambda: now[0])
    repairs.add("dequeue old", store.write("dequeue old"), StateUnavailable("down"))
    now[0] = 61.0
    repairs.add("dequeue new", store.write("dequeue new"), StateUnavailable("down"))
    repairs.start()
    try:
        await eventually(lambda: repairs.dropped == 1)
        store.down = False
        await eventually(lambda: repairs.pending == 0)
    finally:
        await repairs.stop()
    assert store.done == ["dequeue new"]
