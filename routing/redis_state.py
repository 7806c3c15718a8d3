"""Live state in Redis, shared by several controllers behind one or more Asterisk servers.

What is atomic, and why
-----------------------
Every method that reads and then writes runs as one Lua script (`register_script`, sent as
EVALSHA). Redis runs a script to completion before any other command of any client, so
the check and the write cannot interleave with another controller's:

- `reserve`: reads the agent hash, undoes an expired reservation, checks availability
  exactly as `AgentState.available` does (the blocking devices are generated from
  `routing.model.DEVICE_BLOCKS`), then writes `activity=reserved`, `call_id` and
  `reserved_until = now + reservation_ttl`. Two controllers racing for the last free
  agent: the second script sees RESERVED and returns 0. No agent is handed two calls.
- `offer_ended` / `call_ended`: compare-and-set. They act only if the agent is still
  RESERVED for (resp. ON_CALL with) that `call_id` and the reservation has not expired;
  a late or duplicate report from a controller that lost the agent changes nothing.
- `end_wrap_up`: compare-and-set too: it acts only if the agent is in WRAP_UP after that
  call (`wrap_up_call`) and the wrap-up is not over, so a stale or repeated request is
  refused, and it writes `wrap_up_until` alone, so it cannot undo a concurrent write.
- `set_presence`, `set_device`, `enqueue`, `update_caller`, `dequeue`, `waiting` and the
  `agents()` snapshot are scripts too, so a snapshot is one consistent instant and a
  caller is never half-enqueued.

Reservation expiry is a timestamp field, `reserved_until`, checked by every script and by
every read (epoch seconds, like `wrap_up_until`; controllers' clocks must agree, which
the model already needs for wrap-up). A controller that dies mid-offer leaves the agent
RESERVED in the hash, but every controller treats it as IDLE once `reserved_until` has
passed, and the next write undoes it. No timer, no key expiry: the same rule as
`routing.memory_state`, and reproducible with a fake clock in tests.

Waiting callers belong to the controller that enqueued them (its FastAGI sessions hold
them). Each `RedisState` is one controller with a lease (`reservation_ttl` long, renewed by
a background task every third of it, ended by `close`). `waiting` drops, in the same
script, the callers of a controller whose lease has ended, so a controller that dies
leaves no phantom callers for the others to match.

Agents are held by a controller too: `reserve` writes the controller's id as the agent's
`owner` (and the controller's lease), and the call it answers keeps it. An agent ON_CALL
whose owner's lease has ended is IDLE for every script and read (`undo_orphaned`): the
controller that would have written the call's end died, or was cut off from Redis for
longer than its lease, so no agent stays on a call nobody will end. If the agent is in
fact still talking, the device state (AMI) keeps the ACD from offering them a call.

Key layout (P = `StateSettings.key_prefix`, e.g. `ivr:acd:`)
-----------------------------------------------------------
- `P agents`            set: every agent id that has ever had state
- `P agent:<id>`        hash: presence, activity, device, call_id ("" = none),
                        presence_since, idle_since, wrap_up_until, reserved_until,
                        missed, handled (answer times, comma-separated, oldest first),
                        owner (id of the controller holding its offer or call),
                        pause_reason and wrap_up_call ("" or missing = none; hashes
                        written before these fields existed read as "")
- `P callers`           hash: call_id -> Caller as JSON
- `P queue`             sorted set: call_id scored by enqueued_at (arrival order)
- `P arrival`           hash: call_id -> arrival sequence (breaks ties of enqueued_at)
- `P seq`               counter for `P arrival`
- `P last_offered`      hash: queue -> agent id (round-robin memory)
- `P owners`            hash: call_id -> id of the controller that enqueued it
- `P controllers`       hash: controller id -> end of its lease (epoch seconds)
- `P changes`           pub/sub channel: every script that changes an agent or a caller
                        publishes `agent <id>` or `caller <call_id>` on it

Times are written as Python's `repr` of the float, never formatted by Lua, so they come
back bit-for-bit.

Failures
--------
Every Redis or socket error is raised as `StateUnavailable` naming the operation and the
server. Sockets time out after `socket_timeout` (1 s by default) and a command is retried
once (a pooled connection may be stale after a Redis restart), so a dead Redis is reported
within about 1-2 s and a restarted one is used again by the same object. Scripts are
reloaded automatically after a restart (redis-py retries EVALSHA with the script on
NOSCRIPT).

`wait_for_change` listens on `P changes` from one background task per object (a
reference is kept; `close` cancels it). It wakes on a change made by any controller; a
change made since the same asyncio task last returned makes it return at once (see
`routing.memory_state`). While the subscription is down it pings Redis: if Redis is
unreachable it raises `StateUnavailable`, otherwise it returns (a change may have been
missed) and the listener resubscribes.

One file past 600 lines: each Lua script sits next to the method that calls it, so KEYS and
ARGV change in one place.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from routing.config import StateSettings
from routing.memory_state import ChangeSignal, undo_expired
from routing.model import DEVICE_BLOCKS, Activity, AgentState, Caller, Device, OfferOutcome, Presence
from routing.state import StateUnavailable

Clock = Callable[[], float]
T = TypeVar("T")
log = logging.getLogger(__name__)
CLOSE_WAIT = 2.0  # seconds close() waits for the listener and the heartbeat to stop

# --- Lua -----------------------------------------------------------------------------------

_PRELUDE = """
local BLOCKS = {%(blocks)s}
local function num(v) return tonumber(v) or 0 end
local function load(key)
  local flat = redis.call('HGETALL', key)
  local h = {}
  for i = 1, #flat, 2 do h[flat[i]] = flat[i + 1] end
  h.presence = h.presence or 'logged_out'
  h.activity = h.activity or 'idle'
  h.device = h.device or 'unknown'
  h.call_id = h.call_id or ''
  return h
end
local function undo_expired(h, now)
  if h.activity == 'reserved' and num(h.reserved_until) <= now then
    h.activity = 'idle'; h.call_id = ''; h.reserved_until = '0'
  end
end
-- An agent on a call of a controller whose lease ended (it died, or was cut off from Redis
-- for longer than its lease) is no longer held: the call's end would never be written.
-- `me`, the controller running the script, is alive by definition.
local function undo_orphaned(h, now, controllers, me)
  if h.activity ~= 'on_call' or (h.owner or '') == '' or h.owner == me then return end
  local lease = redis.call('HGET', controllers, h.owner)
  if not lease or tonumber(lease) < now then
    h.activity = 'idle'; h.call_id = ''; h.owner = ''
  end
end
local function available(h, now)
  if h.presence ~= 'ready' or BLOCKS[h.device] then return false end
  if h.activity == 'idle' then return true end
  return h.activity == 'wrap_up' and num(h.wrap_up_until) <= now
end
local FIELDS = {'presence', 'activity', 'device', 'call_id', 'presence_since', 'idle_since',
                'wrap_up_until', 'reserved_until', 'missed', 'handled', 'owner', 'pause_reason',
                'wrap_up_call'}
local function save(key, h)
  local args = {}
  for _, f in ipairs(FIELDS) do
    if h[f] ~= nil then args[#args + 1] = f; args[#args + 1] = h[f] end
  end
  redis.call('HSET', key, unpack(args))
end
-- One JSON string per agent: a single bulk reply parses much faster than 20 elements.
local function encode(h)
  local out = {}
  for _, f in ipairs(FIELDS) do
    if h[f] ~= nil then out[f] = tostring(h[f]) end
  end
  return cjson.encode(out)
end
""" % {"blocks": ", ".join(f"{device.value}=true" for device in sorted(DEVICE_BLOCKS))}

# KEYS: agent hash, agents set, controllers.
# ARGV: agent id, call id, now, reserved_until, channel, controller id, its lease's end.
_RESERVE = (
    _PRELUDE
    + """
local h = load(KEYS[1])
local now = tonumber(ARGV[3])
undo_expired(h, now)
undo_orphaned(h, now, KEYS[3], ARGV[6])
if not available(h, now) then return 0 end
redis.call('HSET', KEYS[1], 'activity', 'reserved', 'call_id', ARGV[2], 'reserved_until', ARGV[4], 'owner', ARGV[6],
           'wrap_up_call', '')
redis.call('HSET', KEYS[3], ARGV[6], ARGV[7])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('PUBLISH', ARGV[5], 'agent ' .. ARGV[1])
return 1
"""
)

# KEYS: agent hash, controllers.
# ARGV: agent id, call id, outcome, now, misses before not ready, channel, controller id.
# Returns the agent after the call (JSON), changed or not.
_OFFER_ENDED = (
    _PRELUDE
    + """
local h = load(KEYS[1])
local now = tonumber(ARGV[4])
undo_expired(h, now)
undo_orphaned(h, now, KEYS[2], ARGV[7])
if h.activity ~= 'reserved' or h.call_id ~= ARGV[2] then return encode(h) end
local outcome = ARGV[3]
h.reserved_until = '0'
if outcome == 'answered' then
  h.activity = 'on_call'
  if h.handled and h.handled ~= '' then h.handled = h.handled .. ',' .. ARGV[4] else h.handled = ARGV[4] end
  h.missed = '0'
else
  h.activity = 'idle'; h.call_id = ''; h.owner = ''
  if outcome == 'no_answer' or outcome == 'rejected' then
    local missed = num(h.missed) + 1
    h.missed = tostring(missed)
    if missed >= tonumber(ARGV[5]) and h.presence == 'ready' then
      h.presence = 'not_ready'; h.presence_since = ARGV[4]
    end
  end
end
save(KEYS[1], h)
redis.call('PUBLISH', ARGV[6], 'agent ' .. ARGV[1])
return encode(h)
"""
)

# KEYS: agent hash, controllers.
# ARGV: agent id, call id, now, wrap_up_until, keep_after, channel, controller id.
_CALL_ENDED = (
    _PRELUDE
    + """
local h = load(KEYS[1])
local now = tonumber(ARGV[3])
undo_expired(h, now)
undo_orphaned(h, now, KEYS[2], ARGV[7])
if h.activity ~= 'on_call' or h.call_id ~= ARGV[2] then return 0 end
local keep_after = tonumber(ARGV[5])
local kept = {}
for at in string.gmatch(h.handled or '', '[^,]+') do
  if tonumber(at) >= keep_after then kept[#kept + 1] = at end
end
h.activity = 'wrap_up'; h.call_id = ''; h.owner = ''; h.wrap_up_until = ARGV[4]; h.idle_since = ARGV[3]
h.wrap_up_call = ARGV[2]
h.handled = table.concat(kept, ',')
save(KEYS[1], h)
redis.call('PUBLISH', ARGV[6], 'agent ' .. ARGV[1])
return 1
"""
)

# KEYS: agent hash. ARGV: agent id, call id, now, channel. Returns 1 if the wrap-up was ended.
# Only `wrap_up_until` is written: idle_since stays the call's end, so free_since() is now.
_END_WRAP_UP = (
    _PRELUDE
    + """
local h = load(KEYS[1])
if ARGV[2] == '' or h.activity ~= 'wrap_up' or (h.wrap_up_call or '') ~= ARGV[2] then return 0 end
if num(h.wrap_up_until) <= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], 'wrap_up_until', ARGV[3])
redis.call('PUBLISH', ARGV[4], 'agent ' .. ARGV[1])
return 1
"""
)

# KEYS: agent hash, agents set, controllers.
# ARGV: agent id, presence, now, channel, controller id, pause reason (kept only when pausing).
# Returns the agent.
_SET_PRESENCE = (
    _PRELUDE
    + """
local h = load(KEYS[1])
local now = tonumber(ARGV[3])
undo_expired(h, now)
undo_orphaned(h, now, KEYS[3], ARGV[5])
local added = redis.call('SADD', KEYS[2], ARGV[1])
local reason = ''
if ARGV[2] == 'paused' then reason = ARGV[6] end
if h.presence ~= ARGV[2] or (h.pause_reason or '') ~= reason then
  if ARGV[2] == 'ready' and (h.presence == 'not_ready' or h.presence == 'logged_out') then h.missed = '0' end
  h.presence = ARGV[2]; h.presence_since = ARGV[3]; h.pause_reason = reason
elseif added == 0 then
  return encode(h)
end
save(KEYS[1], h)
redis.call('PUBLISH', ARGV[4], 'agent ' .. ARGV[1])
return encode(h)
"""
)

# KEYS: agent hash, agents set. ARGV: agent id, device, channel.
_SET_DEVICE = """
local added = redis.call('SADD', KEYS[2], ARGV[1])
if redis.call('HGET', KEYS[1], 'device') ~= ARGV[2] or added == 1 then
  redis.call('HSET', KEYS[1], 'device', ARGV[2])
  redis.call('PUBLISH', ARGV[3], 'agent ' .. ARGV[1])
end
return 0
"""

# KEYS: agents set, controllers. ARGV: agent key prefix, now, controller id. Returns JSON {id: {field: value}}.
# Read-only: an orphaned call is shown as over, and the next write to the agent undoes it.
_SNAPSHOT = (
    _PRELUDE
    + """
local out = {}
local now = tonumber(ARGV[2])
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local h = load(ARGV[1] .. id)
  undo_orphaned(h, now, KEYS[2], ARGV[3])
  out[id] = h
end
if next(out) == nil then return '{}' end
return cjson.encode(out)
"""
)

# KEYS: agent hash, controllers. ARGV: now, controller id. Returns JSON {field: value}.
_AGENT = (
    _PRELUDE
    + """
local h = load(KEYS[1])
undo_orphaned(h, tonumber(ARGV[1]), KEYS[2], ARGV[2])
return encode(h)
"""
)

# KEYS: callers, queue, arrival, seq, owners, controllers.
# ARGV: call id, JSON, enqueued_at, channel, controller id, its lease's end.
_ENQUEUE = """
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 0 then
  redis.call('HSET', KEYS[3], ARGV[1], redis.call('INCR', KEYS[4]))
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[5], ARGV[1], ARGV[5])
redis.call('HSET', KEYS[6], ARGV[5], ARGV[6])
redis.call('PUBLISH', ARGV[4], 'caller ' .. ARGV[1])
return 1
"""

# KEYS: callers, queue. ARGV: call id, JSON, enqueued_at, channel.
_UPDATE_CALLER = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('PUBLISH', ARGV[4], 'caller ' .. ARGV[1])
return 1
"""

# KEYS: callers, queue, arrival, owners. ARGV: call id, channel.
_DEQUEUE = """
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('PUBLISH', ARGV[2], 'caller ' .. ARGV[1])
return 1
"""

# KEYS: callers, queue, arrival, owners, controllers. ARGV: now, channel.
# Returns {JSON, sequence, ...} by enqueued_at. Callers of a controller whose lease ended
# (it died, or closed) are removed, and so is the controller.
_WAITING = """
local now = tonumber(ARGV[1])
local out = {}
local alive = {}
local purged = false
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local owner = redis.call('HGET', KEYS[4], id)
  local keep = true
  if owner then
    if alive[owner] == nil then
      local lease = redis.call('HGET', KEYS[5], owner)
      alive[owner] = (lease and tonumber(lease) >= now) or false
    end
    keep = alive[owner]
  end
  if keep then
    local record = redis.call('HGET', KEYS[1], id)
    if record then
      out[#out + 1] = record
      out[#out + 1] = redis.call('HGET', KEYS[3], id) or '0'
    end
  else
    redis.call('HDEL', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
    redis.call('HDEL', KEYS[3], id)
    redis.call('HDEL', KEYS[4], id)
    purged = true
  end
end
for owner, ok in pairs(alive) do
  if not ok then redis.call('HDEL', KEYS[5], owner) end
end
if purged then redis.call('PUBLISH', ARGV[2], 'caller purged') end
return out
"""


# --- (de)serialisation ---------------------------------------------------------------------


def _fields(reply: Any) -> dict[str, str]:
    """An agent hash encoded as JSON by a script."""
    data = json.loads(reply)
    return {str(k): str(v) for k, v in data.items()}


def agent_from_fields(agent_id: str, fields: dict[str, str]) -> tuple[AgentState, float]:
    """The agent stored in a hash, and when its reservation expires (0: none)."""
    handled = fields.get("handled", "")
    state = AgentState(
        agent_id,
        presence=Presence(fields.get("presence", Presence.LOGGED_OUT.value)),
        activity=Activity(fields.get("activity", Activity.IDLE.value)),
        device=Device(fields.get("device", Device.UNKNOWN.value)),
        call_id=fields.get("call_id") or None,
        presence_since=float(fields.get("presence_since", 0.0)),
        pause_reason=fields.get("pause_reason", ""),
        idle_since=float(fields.get("idle_since", 0.0)),
        wrap_up_until=float(fields.get("wrap_up_until", 0.0)),
        wrap_up_call=fields.get("wrap_up_call") or None,
        handled=tuple(float(at) for at in handled.split(",") if at),
        missed=int(fields.get("missed", 0)),
    )
    return state, float(fields.get("reserved_until", 0.0))


def caller_to_json(caller: Caller) -> str:
    return json.dumps(
        {
            "call_id": caller.call_id,
            "queue": caller.queue,
            "enqueued_at": caller.enqueued_at,
            "language": caller.language,
            "priority": caller.priority,
            "issue": caller.issue,
            "returning": caller.returning,
            "vip": caller.vip,
            "affinity_agent": caller.affinity_agent,
            "affinity_until": caller.affinity_until,
            "excluded": sorted(caller.excluded),
        },
        separators=(",", ":"),
    )


def caller_from_json(text: str) -> Caller:
    data = json.loads(text)
    return Caller(
        call_id=str(data["call_id"]),
        queue=str(data["queue"]),
        enqueued_at=float(data["enqueued_at"]),
        language=str(data.get("language", "")),
        priority=int(data.get("priority", 0)),
        issue=data.get("issue"),
        returning=bool(data.get("returning", False)),
        vip=bool(data.get("vip", False)),
        affinity_agent=data.get("affinity_agent"),
        affinity_until=float(data.get("affinity_until", 0.0)),
        excluded=frozenset(data.get("excluded", ())),
    )


def _server_name(url: str) -> str:
    """The URL without credentials, for error messages."""
    parts = urlsplit(url)
    host = parts.hostname or parts.path or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"redis {host}{port}{parts.path if parts.hostname else ''}"


# --- the state ---------------------------------------------------------------------------


def _client(settings: StateSettings, socket_timeout: float) -> Redis:
    # Short timeouts: a dead Redis must surface as StateUnavailable within a second or so.
    return Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
        retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), 1),
    )


class RedisState:
    """`routing.state.LiveState` in Redis. Create with `await RedisState.connect(settings)`."""

    def __init__(
        self, client: Redis, settings: StateSettings, *, clock: Clock, pubsub: PubSub, listening: bool = True
    ) -> None:
        self._client = client
        self._clock = clock
        self.reservation_ttl = settings.reservation_ttl
        self._server = _server_name(settings.redis_url)
        prefix = settings.key_prefix
        self._prefix = prefix
        self._agent_prefix = prefix + "agent:"
        self._agents_key = prefix + "agents"
        self._callers_key = prefix + "callers"
        self._queue_key = prefix + "queue"
        self._arrival_key = prefix + "arrival"
        self._seq_key = prefix + "seq"
        self._last_offered_key = prefix + "last_offered"
        self._owners_key = prefix + "owners"
        self._controllers_key = prefix + "controllers"
        # This controller, owner of the callers it enqueues, alive while its lease lasts.
        self.controller_id = uuid.uuid4().hex
        self.lease = settings.reservation_ttl
        self.channel = prefix + "changes"
        self._reserve = client.register_script(_RESERVE)
        self._offer_ended = client.register_script(_OFFER_ENDED)
        self._call_ended = client.register_script(_CALL_ENDED)
        self._end_wrap_up = client.register_script(_END_WRAP_UP)
        self._set_presence = client.register_script(_SET_PRESENCE)
        self._set_device = client.register_script(_SET_DEVICE)
        self._snapshot = client.register_script(_SNAPSHOT)
        self._agent = client.register_script(_AGENT)
        self._enqueue = client.register_script(_ENQUEUE)
        self._update_caller = client.register_script(_UPDATE_CALLER)
        self._dequeue = client.register_script(_DEQUEUE)
        self._waiting = client.register_script(_WAITING)
        self._signal = ChangeSignal()
        self._closing = False
        self._pubsub = pubsub
        self._listening = listening  # False: the listener subscribes once Redis answers
        self._listener = asyncio.create_task(self._listen(), name=f"redis-state-listener {self.channel}")
        self._heartbeat_task = asyncio.create_task(self._heartbeat(), name=f"redis-state-heartbeat {self.channel}")

    @classmethod
    async def connect(
        cls, settings: StateSettings, *, clock: Clock = time.time, socket_timeout: float = 1.0
    ) -> RedisState:
        """Connect, check that Redis answers and subscribe to the change channel.

        Raises `StateUnavailable` if Redis cannot be reached."""
        client = _client(settings, socket_timeout)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await client.ping()
            await pubsub.subscribe(settings.key_prefix + "changes")
        except (RedisError, OSError) as exc:
            await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]  # typed since redis 8.2
            await client.aclose()
            raise StateUnavailable(f"{_server_name(settings.redis_url)}: cannot connect: {exc}") from exc
        return cls(client, settings, clock=clock, pubsub=pubsub)

    @classmethod
    def offline(cls, settings: StateSettings, *, clock: Clock = time.time, socket_timeout: float = 1.0) -> RedisState:
        """A state whose Redis does not answer yet (a controller started during an outage):
        every method raises `StateUnavailable` until Redis answers, then all works, change
        notification included, with nothing to restart."""
        client = _client(settings, socket_timeout)
        return cls(client, settings, clock=clock, pubsub=client.pubsub(ignore_subscribe_messages=True),
                   listening=False)

    async def _run(self, what: str, call: Awaitable[T]) -> T:
        try:
            return await call
        except (RedisError, OSError) as exc:
            raise StateUnavailable(f"{self._server}: {what} failed: {type(exc).__name__}: {exc}") from exc

    def _key(self, agent_id: str) -> str:
        return self._agent_prefix + agent_id

    # --- agents -----------------------------------------------------------------------

    async def agents(self) -> dict[str, AgentState]:
        now = self._clock()
        reply = await self._run(
            "agents", self._snapshot(keys=[self._agents_key, self._controllers_key], args=[self._agent_prefix, repr(now), self.controller_id])
        )
        result: dict[str, AgentState] = {}
        for agent_id, fields in json.loads(reply).items():
            state, reserved_until = agent_from_fields(agent_id, {str(k): str(v) for k, v in fields.items()})
            result[agent_id] = undo_expired(state, reserved_until, now)
        return result

    async def agent(self, agent_id: str) -> AgentState:
        now = self._clock()
        reply = await self._run(
            "agent", self._agent(keys=[self._key(agent_id), self._controllers_key], args=[repr(now), self.controller_id])
        )
        state, reserved_until = agent_from_fields(agent_id, _fields(reply))
        return undo_expired(state, reserved_until, now)

    async def set_presence(self, agent_id: str, presence: Presence, now: float, *, reason: str = "") -> AgentState:
        reply = await self._run(
            "set_presence",
            self._set_presence(
                keys=[self._key(agent_id), self._agents_key, self._controllers_key],
                args=[agent_id, presence.value, repr(now), self.channel, self.controller_id, reason],
            ),
        )
        state, reserved_until = agent_from_fields(agent_id, _fields(reply))
        return undo_expired(state, reserved_until, now)

    async def set_device(self, agent_id: str, device: Device) -> None:
        await self._run(
            "set_device",
            self._set_device(keys=[self._key(agent_id), self._agents_key], args=[agent_id, device.value, self.channel]),
        )

    # --- the offer cycle ------------------------------------------------------------------

    async def reserve(self, agent_id: str, call_id: str, now: float) -> bool:
        done = await self._run(
            "reserve",
            self._reserve(
                keys=[self._key(agent_id), self._agents_key, self._controllers_key],
                args=[agent_id, call_id, repr(now), repr(now + self.reservation_ttl), self.channel,
                      self.controller_id, repr(self._clock() + self.lease)],
            ),
        )
        return int(done) == 1

    async def offer_ended(
        self, agent_id: str, call_id: str, outcome: OfferOutcome, now: float, *, misses_before_not_ready: int
    ) -> AgentState:
        reply = await self._run(
            "offer_ended",
            self._offer_ended(
                keys=[self._key(agent_id), self._controllers_key],
                args=[agent_id, call_id, outcome.value, repr(now), misses_before_not_ready, self.channel,
                      self.controller_id],
            ),
        )
        state, reserved_until = agent_from_fields(agent_id, _fields(reply))
        return undo_expired(state, reserved_until, now)

    async def call_ended(self, agent_id: str, call_id: str, now: float, *, wrap_up: float, keep_after: float) -> None:
        await self._run(
            "call_ended",
            self._call_ended(
                keys=[self._key(agent_id), self._controllers_key],
                args=[agent_id, call_id, repr(now), repr(now + wrap_up), repr(keep_after), self.channel,
                      self.controller_id],
            ),
        )

    async def end_wrap_up(self, agent_id: str, call_id: str, now: float) -> bool:
        done = await self._run(
            "end_wrap_up",
            self._end_wrap_up(keys=[self._key(agent_id)], args=[agent_id, call_id, repr(now), self.channel]),
        )
        return int(done) == 1

    # --- waiting callers --------------------------------------------------------------------

    async def enqueue(self, caller: Caller) -> None:
        await self._run(
            "enqueue",
            self._enqueue(
                keys=[
                    self._callers_key,
                    self._queue_key,
                    self._arrival_key,
                    self._seq_key,
                    self._owners_key,
                    self._controllers_key,
                ],
                args=[
                    caller.call_id,
                    caller_to_json(caller),
                    repr(caller.enqueued_at),
                    self.channel,
                    self.controller_id,
                    repr(self._clock() + self.lease),
                ],
            ),
        )

    async def update_caller(self, caller: Caller) -> None:
        await self._run(
            "update_caller",
            self._update_caller(
                keys=[self._callers_key, self._queue_key],
                args=[caller.call_id, caller_to_json(caller), repr(caller.enqueued_at), self.channel],
            ),
        )

    async def dequeue(self, call_id: str) -> None:
        await self._run(
            "dequeue",
            self._dequeue(
                keys=[self._callers_key, self._queue_key, self._arrival_key, self._owners_key],
                args=[call_id, self.channel],
            ),
        )

    async def waiting(self) -> list[Caller]:
        flat = await self._run(
            "waiting",
            self._waiting(
                keys=[self._callers_key, self._queue_key, self._arrival_key, self._owners_key, self._controllers_key],
                args=[repr(self._clock()), self.channel],
            ),
        )
        ranked = [(caller_from_json(str(flat[i])), int(flat[i + 1])) for i in range(0, len(flat) - 1, 2)]
        ranked.sort(key=lambda pair: (pair[0].enqueued_at, pair[1]))
        return [caller for caller, _ in ranked]

    # --- round-robin memory ---------------------------------------------------------------

    async def last_offered(self, queue: str) -> str | None:
        agent_id = await self._run("last_offered", self._client.hget(self._last_offered_key, queue))
        return None if agent_id is None else str(agent_id)

    async def note_offered(self, queue: str, agent_id: str) -> None:
        await self._run("note_offered", self._client.hset(self._last_offered_key, queue, agent_id))

    # --- change notification ----------------------------------------------------------------

    async def _listen(self) -> None:
        """Bump the change signal on every message; resubscribe with back-off after errors.
        Ends when `close()` says so, even if a cancellation got lost in the client library."""
        backoff = 0.05
        while not self._closing:
            pubsub = self._pubsub
            try:
                if not self._listening:
                    await pubsub.subscribe(self.channel)
                    self._listening = True
                    backoff = 0.05
                    self._signal.changed()  # changes may have been missed while unsubscribed
                while not self._closing:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None:
                        self._signal.changed()
            except Exception as exc:  # noqa: BLE001 - the listener must outlive any failure
                if not isinstance(exc, (RedisError, OSError)):
                    log.exception("%s: change listener failed; resubscribing", self._server)
                self._listening = False
                self._signal.changed()  # waiters check whether Redis is still there
                await self._close_pubsub()
                self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)

    async def _check_reachable(self) -> None:
        await self._run("wait_for_change", self._client.ping())

    async def wait_for_change(self, timeout: float) -> None:
        if not self._listening:
            await self._check_reachable()
            await asyncio.sleep(min(max(timeout, 0.0), 0.05))
            return
        await self._signal.wait(timeout)
        if not self._listening:
            await self._check_reachable()

    async def _close_pubsub(self) -> None:
        try:
            await self._pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]  # typed since redis 8.2
        except (RedisError, OSError):
            pass  # the connection is dropped either way

    # --- this controller's lease ------------------------------------------------------------

    async def _heartbeat(self) -> None:
        """Extend this controller's lease every third of it, so that its waiting callers
        stay listed; a controller that dies stops, and its callers go after `lease`."""
        while not self._closing:
            await asyncio.sleep(self.lease / 3)
            try:
                await self._client.hset(self._controllers_key, self.controller_id, repr(self._clock() + self.lease))
            except (RedisError, OSError):
                pass  # Redis is down: the methods report it; the next beat tries again

    async def close(self) -> None:
        """Stop listening; this controller's waiting callers are dropped (its lease ends)."""
        self._closing = True
        tasks = (self._listener, self._heartbeat_task)
        for task in tasks:
            task.cancel()
        # Bounded: a cancellation swallowed inside the client library must not hang a stop
        # (seen under load: the listener kept reading); `_closing` ends its loops anyway.
        _, stuck = await asyncio.wait(tasks, timeout=CLOSE_WAIT)
        if stuck:
            log.warning("%s: %d background task(s) did not stop within %g s", self._server, len(stuck), CLOSE_WAIT)
        try:
            await self._client.hdel(self._controllers_key, self.controller_id)
        except (RedisError, OSError):
            pass  # unreachable: the lease runs out by itself
        await self._close_pubsub()
        await self._client.aclose()
