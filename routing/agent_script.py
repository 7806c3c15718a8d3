"""The `agent` FastAGI script: agents log in, log out and pause from their own phone.

The dialplan's `agents` context sends the feature codes here (`*71` login, `*72` logout,
`*73` pause toggle, a pause with the built-in reason `phone`):

    exten => *71,1,Answer()
     same => n,AGI(agi://127.0.0.1:4573/agent?action=login)
     same => n,Hangup()

`action` is one of login, logout, pause, unpause, toggle (READY <-> PAUSED; NOT_READY, set
by the ACD after missed offers, becomes READY). The agent is the one whose configured
endpoint placed the call: `agi_channel` `PJSIP/1001-00000003` -> endpoint `PJSIP/1001`
-> agent `1001` (routing.yaml). The new presence goes to the live state (every controller
sees it), and the agent hears a confirmation in their first language (routing.yaml
`languages`, else the first language of hotlines.yaml); an endpoint that is no agent's
hears `agent-unknown`. `toggle` from logged out changes nothing: the agent hears
`agent-logged-out` (log in with `*71` first).
"""

from __future__ import annotations

import logging

from ivr.agi.errors import AgiHangup
from ivr.agi.session import AgiSession
from ivr.reload import ConfigHolder
from routing.ami_agents import agents_by_endpoint, endpoint_key, endpoint_of_channel
from routing.config import PHONE_PAUSE
from routing.model import Presence
from routing.service import Acd
from routing.state import StateUnavailable

log = logging.getLogger(__name__)

ACTIONS = ("login", "logout", "pause", "unpause", "toggle")
# What the agent hears once the presence is set (prompts/catalog.yaml).
CONFIRMATION = {
    Presence.READY: "agent-ready",
    Presence.PAUSED: "agent-paused",
    Presence.LOGGED_OUT: "agent-logged-out",
    Presence.NOT_READY: "agent-paused",
}
LOGGED_IN = "agent-logged-in"
UNKNOWN = "agent-unknown"
FAILED = "agent-error"
PROMPTS = ("agent-logged-in", "agent-logged-out", "agent-paused", "agent-ready", UNKNOWN, FAILED)


def new_presence(action: str, current: Presence) -> Presence:
    """The presence an action asks for, given the agent's current one."""
    if action == "login" or action == "unpause":
        return Presence.READY
    if action == "logout":
        return Presence.LOGGED_OUT
    if action == "pause":
        return Presence.PAUSED
    # toggle
    if current is Presence.LOGGED_OUT:
        return Presence.LOGGED_OUT
    return Presence.PAUSED if current is Presence.READY else Presence.READY


class AgentScript:
    """`agi://…/agent?action=…` (see the module docstring)."""

    def __init__(self, acd: Acd, configs: ConfigHolder) -> None:
        self.acd = acd
        self.configs = configs

    def _default_language(self) -> str:
        return next(iter(self.configs.current.directory.languages))

    async def _play(self, session: AgiSession, language: str, prompt: str) -> None:
        result = await session.stream_file(self.configs.current.prompt_path(language, prompt))
        if result.failed:
            log.warning("agent script: prompt %s/%s did not play", language, prompt)

    async def __call__(self, session: AgiSession) -> None:
        channel = session.env.channel
        action = (session.env.query.get("action") or "").lower()
        try:
            await self._serve(session, channel, action)
        except AgiHangup:
            log.info("agent script: %s hung up", channel)

    async def _serve(self, session: AgiSession, channel: str, action: str) -> None:
        config = self.acd.config
        endpoint = endpoint_of_channel(channel)
        agent_id = agents_by_endpoint(config).get(endpoint_key(endpoint))
        if agent_id is None:
            log.warning("agent script: %s (endpoint %s) is no agent's endpoint", channel, endpoint)
            await self._play(session, self._default_language(), UNKNOWN)
            return
        agent = config.agents[agent_id]
        language = agent.languages[0] if agent.languages else self._default_language()
        if action not in ACTIONS:
            log.error("agent script: unknown action %r from agent %s (%s); expected one of %s",
                      action, agent_id, channel, ", ".join(ACTIONS))
            await self._play(session, language, FAILED)
            return
        try:
            before = await self.acd.state.agent(agent_id)
            wanted = new_presence(action, before.presence)
            after = await self.acd.state.set_presence(agent_id, wanted, self.acd.clock(), reason=PHONE_PAUSE)
        except StateUnavailable as exc:
            log.error("agent script: %s for agent %s (%s) failed, live state unreachable: %s",
                      action, agent_id, channel, exc)
            await self._play(session, language, FAILED)
            return
        except Exception:  # a bug: logged, and the agent hears that it did not work
            log.exception("agent script: %s for agent %s (%s) failed", action, agent_id, channel)
            await self._play(session, language, FAILED)
            return
        if after.presence is not before.presence:
            log.info("agent %s (%s): %s -> %s (%s)", agent_id, channel, before.presence.value,
                     after.presence.value, action)
            self.acd.dispatcher.poke()
        prompt = LOGGED_IN if action == "login" else CONFIRMATION[after.presence]
        await self._play(session, language, prompt)
