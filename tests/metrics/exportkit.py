"""The hand-made calls of handcalls.py written through the real stores, and a configuration
that matches them: what `ivr export`, `ivr report html` and `ivr staffing` read.

Configuration: a copy of the example with 4008005678 moved to Europe/London (H2), wait
percentiles 50 and 90, agents a1-a4 in routing.yaml, and the store at `target`.
Callers: each caller key of handcalls.CALLER_KEYS is one phone number, c01 withheld.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from handcalls import AGENT_EVENTS, CALLER_KEYS, CALLS, H2, RESPONSES
from ivr.records.masking import Policy
from ivr.records.model import CallEnded, CallStarted
from ivr.records.store import CallStore
from servekit import copy_config
from survey_engine.store import SurveyStore

SALT = "export-test-salt"
NUMBERS = {"K1": "+86 138 0000 0001", "K2": "13800000002", "K3": "13800000003", "K4": "13800000004"}
AGENTS = {
    "a1": {"name": "A1", "endpoint": "PJSIP/a1", "skills": {"billing": 5}, "groups": ["tier2"]},
    "a2": {"name": "A2", "endpoint": "PJSIP/a2", "skills": {"billing": 3, "general": 2}, "groups": ["tier1"]},
    "a3": {"name": "A3", "endpoint": "PJSIP/a3", "skills": {"general": 5}, "groups": ["tier1"]},
    # Serves only the example's technical and operator queues, so that they can be served.
    "a4": {"name": "A4", "endpoint": "PJSIP/a4", "skills": {"technical": 5}, "groups": ["operators"]},
}


def caller_of(call_id: str) -> str:
    key = CALLER_KEYS.get(call_id)
    if key is None:
        return "anonymous"
    return NUMBERS.get(key, f"1390000{key.removeprefix('only-'):0>4}")


def make_config(tmp_path: Path, target: Path | str) -> Path:
    config = copy_config(tmp_path)
    hotlines = yaml.safe_load((config / "hotlines.yaml").read_text())
    hotlines["hotlines"][H2]["timezone"] = "Europe/London"
    (config / "hotlines.yaml").write_text(yaml.safe_dump(hotlines, allow_unicode=True))
    server = yaml.safe_load((config / "server.yaml").read_text())
    server["metrics"] = {"wait_percentiles": [50, 90]}
    server["store"] = {"url": target} if isinstance(target, str) else {"sqlite_path": str(target)}
    (config / "server.yaml").write_text(yaml.safe_dump(server, allow_unicode=True))
    routing = yaml.safe_load((config / "routing.yaml").read_text())
    routing["agents"] = AGENTS
    (config / "routing.yaml").write_text(yaml.safe_dump(routing, allow_unicode=True))
    return config


async def write_handcalls(target: Path | str, policy: Policy = "mask") -> None:
    """Every hand-made call, its AMI times and hang-up cause, the agents' presence and the
    survey responses, through CallStore and SurveyStore as the controller writes them."""
    store = await CallStore.open(target, privacy_policy=policy, salt=SALT)
    try:
        for call in CALLS:
            store.call_started(CallStarted(
                call.call_id, call.uniqueid, call.channel, call.dialed, caller_of(call.call_id), call.hotline,
                call.language, call.menu_version, call.config_version, call.started_at))
        for call in CALLS:
            assert call.ended_at is not None and call.disposition is not None
            store.call_ended(CallEnded(
                call.call_id, call.ended_at, call.disposition, call.detail, call.language, None, None, None,
                call.hung_up_by, call.events, call.queue_legs))
            assert call.hangup_cause is not None and call.hangup_cause_txt is not None
            store.set_hangup_cause(call.uniqueid, call.hangup_cause, call.hangup_cause_txt)
            if call.agent_answered_at is not None or call.hold_seconds:
                store.set_ami_times(call.uniqueid, agent_answered_at=call.agent_answered_at,
                                    hold_seconds=call.hold_seconds)
        for event in AGENT_EVENTS:
            store.agent_event(event)
        await store.flush()
        surveys = SurveyStore(store.engine)
        for response in RESPONSES:
            await surveys.save_response(response)
    finally:
        await store.close()
