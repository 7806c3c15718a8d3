"""Agents' live state from AMI: device states, hang-ups, and resynchronisation after a drop.

The adapter between the AMI link (`ivr.ami.client`) and the ACD's live state. The link
calls three plain methods from the event loop, in the order things happened on the wire:

- `event(headers)` for each `DeviceStateChange` and `Hangup` event;
- `link_down()` when the connection is lost (routing pauses at once);
- `resynced(devices)` when a login's `DeviceStateList` completed, with its
  (Device, State) pairs.

Asterisk 22 sends them like this (res/res_manager_devicestate.c and main/devicestate.c
`devstate_to_ami`; main/manager.c `astman_send_listack` / `astman_send_list_complete_start`):

    Action: DeviceStateList          Response: Success
    ActionID: 42                     ActionID: 42
                                     EventList: start
                                     Message: Device State Changes will follow

                                     Event: DeviceStateChange      (one per cached device)
                                     ActionID: 42
                                     Device: PJSIP/1001
                                     State: NOT_INUSE

                                     Event: DeviceStateListComplete
                                     ActionID: 42
                                     EventList: Complete
                                     ListItems: 4

and, live, `Event: DeviceStateChange` / `Privilege: call,all` / `Device:` / `State:` as in
../shared/asterisk/ami-queue.txt, and `Event: Hangup` with `Channel: PJSIP/1001-0000001a`.

Everything is applied by one task, in arrival order, so a live change that arrives after
the list is never overwritten by it. Until the first resynchronisation, and from a drop
until the next one, the dispatcher's pause gate is closed: no new offers (callers keep
waiting). A `resynced` from a connection that has dropped since does not reopen it.

A callback (`routing.callbacks`) ends the same way: the Hangup of the agent's channel while
the agent is ON_CALL for a callback this controller placed puts the agent in wrap-up; while
its agent leg still rings, the Hangup is the callback worker's business.

The safety net on Hangup: when an agent's channel hangs up while the live state still
shows the agent RESERVED or ON_CALL for a call that no caller of this controller is
waiting on (the controller that owned it died, or another controller's call ended), the
agent is freed (wrap-up from now, or the reservation ended as CALLER_GONE) and it is
logged. Calls of this controller are left to the ACD, which ends its own offers.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from routing.config import RoutingConfig
from routing.model import Activity, Device, OfferOutcome, Presence
from routing.service import Acd
from routing.state import StateUnavailable

log = logging.getLogger(__name__)

Clock = Callable[[], float]

# ast_channel_alloc names a channel "<tech>/<resource>-<8 hex digits>"; Local channels add ";1"/";2".
_CHANNEL_SUFFIX = re.compile(r"-[0-9a-fA-F]{8}(;[12])?$")


def endpoint_key(device: str) -> str:
    """A device or endpoint as compared: the technology case-insensitive (PJSIP = pjsip),
    the resource as written."""
    tech, sep, resource = device.strip().partition("/")
    return f"{tech.upper()}{sep}{resource}"


def endpoint_of_channel(channel: str) -> str:
    """`PJSIP/1001-0000001a` -> `PJSIP/1001`; `Local/a@b-00000004;1` -> `Local/a@b`; a name
    without the channel suffix is returned as it is."""
    return _CHANNEL_SUFFIX.sub("", channel.strip())


def agents_by_endpoint(config: RoutingConfig) -> dict[str, str]:
    """Endpoint key -> agent id, for every configured agent."""
    return {endpoint_key(agent.endpoint): agent_id for agent_id, agent in config.agents.items()}


@dataclass(frozen=True)
class _Event:
    headers: Mapping[str, str]


@dataclass(frozen=True)
class _Resync:
    devices: tuple[tuple[str, str], ...]
    epoch: int


class AmiAgents:
    """Feeds AMI's view of the agents' devices and channels into the ACD's live state."""

    def __init__(self, acd: Acd, *, clock: Clock = time.time) -> None:
        self.acd = acd
        self.clock = clock
        self._queue: asyncio.Queue[_Event | _Resync] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._epoch = 0  # connections lost so far: a resync of an older connection is stale
        self._mapping_of: RoutingConfig | None = None
        self._mapping: dict[str, str] = {}
        self.resyncs = 0  # resynchronisations applied (tests and logs)
        self.freed = 0  # agents freed by the Hangup safety net

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Close the pause gate until the first resynchronisation, and start applying events."""
        self.acd.dispatcher.pause("AMI link not synchronised yet")
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="ami-agents")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def idle(self) -> None:
        """Until everything received so far is applied (tests)."""
        await self._queue.join()

    # --- what the AMI link calls -------------------------------------------------------------------

    def event(self, headers: Mapping[str, str]) -> None:
        self._queue.put_nowait(_Event(headers))

    def link_down(self) -> None:
        self._epoch += 1
        self.acd.dispatcher.pause("AMI link down: device states unknown")

    def resynced(self, devices: Sequence[tuple[str, str]]) -> None:
        self._queue.put_nowait(_Resync(tuple(devices), self._epoch))

    # --- applying ----------------------------------------------------------------------------------

    def _agent_for(self, endpoint: str) -> str | None:
        config = self.acd.config
        if config is not self._mapping_of:
            self._mapping = agents_by_endpoint(config)
            self._mapping_of = config
        return self._mapping.get(endpoint_key(endpoint))

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                if isinstance(item, _Resync):
                    await self._resync(item)
                else:
                    await self._event(item.headers)
            except StateUnavailable as exc:
                log.error("AMI: live state unreachable, %s not applied: %s", _describe(item), exc)
            except Exception:
                log.exception("AMI: applying %s failed", _describe(item))
            finally:
                self._queue.task_done()

    async def _event(self, headers: Mapping[str, str]) -> None:
        name = (headers.get("Event") or "").lower()
        if name == "devicestatechange":
            await self._device(headers.get("Device") or "", headers.get("State") or "")
        elif name == "hangup":
            await self._hangup(headers.get("Channel") or "")
        elif name in ("agentlogin", "agentlogoff"):
            # app_agent_pool's AgentLogin(<id>) / logoff: the same agent ids as routing.yaml.
            pooled = headers.get("Agent") or ""
            if pooled in self.acd.config.agents:
                await self._presence(pooled, Presence.READY if name == "agentlogin" else Presence.LOGGED_OUT, name)
        elif name == "queuememberpause":
            # A pause made on the Asterisk side (PauseQueueMember, QueuePause, a panel) holds here too;
            # it never logs an agent in. One event per queue the member is in: idempotent.
            agent_id = self._agent_for_interface(headers.get("Interface") or "")
            if agent_id is not None:
                state = await self.acd.state.agent(agent_id)
                if headers.get("Paused") == "1" and state.presence in (Presence.READY, Presence.NOT_READY):
                    await self._presence(agent_id, Presence.PAUSED, name)
                elif headers.get("Paused") == "0" and state.presence is Presence.PAUSED:
                    await self._presence(agent_id, Presence.READY, name)

    def _agent_for_interface(self, interface: str) -> str | None:
        """`Agent/1001` (app_agent_pool) or an endpoint such as `PJSIP/1001`."""
        tech, _, resource = interface.partition("/")
        if tech.lower() == "agent":
            return resource if resource in self.acd.config.agents else None
        return self._agent_for(interface)

    async def _presence(self, agent_id: str, presence: Presence, why: str) -> None:
        before = await self.acd.state.agent(agent_id)
        if before.presence is not presence:
            await self.acd.state.set_presence(agent_id, presence, self.clock())
            log.info("AMI %s: agent %s %s -> %s", why, agent_id, before.presence.value, presence.value)

    async def _device(self, device: str, state: str) -> bool:
        agent_id = self._agent_for(device)
        if agent_id is None:
            return False
        await self.acd.state.set_device(agent_id, Device.from_ami(state))
        return True

    async def _resync(self, item: _Resync) -> None:
        applied = 0
        for device, state in item.devices:
            if await self._device(device, state):
                applied += 1
        if item.epoch != self._epoch:
            log.info("AMI: device states of a connection lost since applied; waiting for the next resync")
            return
        self.resyncs += 1
        log.info("AMI: resynchronised %d device states (%d of agents)", len(item.devices), applied)
        self.acd.dispatcher.resume()

    async def _hangup(self, channel: str) -> None:
        agent_id = self._agent_for(endpoint_of_channel(channel))
        if agent_id is None:
            return
        state = await self.acd.state.agent(agent_id)
        call_id = state.call_id
        if state.activity not in (Activity.ON_CALL, Activity.RESERVED) or call_id is None:
            return
        if call_id in self.acd.dispatcher.waiters or call_id in self.acd.callbacks_dialing:
            return  # a call of this controller: the ACD (or the callback worker) ends its own offer and call
        config = self.acd.config
        now = self.clock()
        if call_id in self.acd.callbacks_talking and state.activity is Activity.ON_CALL:
            # The normal end of a callback: its agent leg hung up.
            self.acd.callbacks_talking.discard(call_id)
            agent = config.agents.get(agent_id)
            window = max((q.busy_window for q in config.queues.values()), default=3600.0)
            await self.acd.state.call_ended(agent_id, call_id, now, wrap_up=agent.wrap_up if agent else 0.0,
                                            keep_after=now - window)
            log.info("AMI: %s hung up: agent %s's callback %s is over, wrap-up", channel, agent_id, call_id)
            return
        if state.activity is Activity.ON_CALL:
            agent = config.agents.get(agent_id)
            window = max((q.busy_window for q in config.queues.values()), default=3600.0)
            await self.acd.state.call_ended(agent_id, call_id, now, wrap_up=agent.wrap_up if agent else 0.0,
                                            keep_after=now - window)
        else:
            await self.acd.state.offer_ended(agent_id, call_id, OfferOutcome.CALLER_GONE, now,
                                             misses_before_not_ready=1_000_000)
        self.freed += 1
        log.warning("AMI: %s hung up while agent %s was still %s for call %s, which no caller of this "
                    "controller is waiting on (its controller may have died): agent freed",
                    channel, agent_id, state.activity.value, call_id)


def _describe(item: _Event | _Resync) -> str:
    if isinstance(item, _Resync):
        return f"DeviceStateList ({len(item.devices)} devices)"
    return f"{item.headers.get('Event')} event"
