"""The staffing section of `ivr report html`: per queue and interval, what `ivr staffing` prints
from the history (offered, AHT, the agents Erlang C/A says were needed, the agents logged in),
with the occupancy of the agents who serve the queue beside it.

Made from the same pieces as `ivr staffing` (ivr.metrics.history and ivr.metrics.staffing):
the queues' pooled history (`pooled`), the interval rows, the agents' intervals
(`agent_intervals`, `staffed_intervals`), `interval_loads` and `plan`, with the policy of
server.yaml (`policy_of`). The report feeds them from its one pass over the legs instead of
reading the legs again, so the figures are those `ivr staffing` prints for the same days and
clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from ivr.metrics.agents import queue_occupancy, staffed_intervals
from ivr.metrics.buckets import utc
from ivr.metrics.history import QueueHistory, interval_loads
from ivr.metrics.model import AgentInterval, QueueInterval
from ivr.metrics.staffing import StaffingPolicy, StaffingRow, plan
from ivr.records.model import AgentEvent


@dataclass(frozen=True)
class Presence:
    """The agents' presence for their intervals: the events (the last of each agent before
    `since` included), the grid [since, until) on `zone`'s clock, and the queues each agent
    serves (history.queues_of)."""

    events: Sequence[AgentEvent]
    zone: ZoneInfo
    since: dt.datetime
    until: dt.datetime
    serves: Mapping[str, frozenset[str]]


@dataclass(frozen=True)
class StaffingFigures:
    policy: StaffingPolicy
    rows: list[StaffingRow]  # by queue, then time, as `ivr staffing` lists them
    occupancy: dict[tuple[str, dt.datetime], float | None]  # (queue, UTC start) -> measured
    unplanned: list[str]  # queues with calls but none answered: no AHT to plan with
    presence_known: bool  # False without routing.yaml: nobody's presence is recorded

    def occupancy_of(self, row: StaffingRow) -> float | None:
        return self.occupancy.get((row.queue, utc(row.start)))


def staffing_figures(
    rows: Sequence[QueueInterval],
    queues: Mapping[str, QueueHistory],
    agents: Sequence[AgentInterval] | None,
    presence: Presence | None,
    policy: StaffingPolicy,
) -> StaffingFigures:
    """The plan of `rows` (one zone and width) with the queues' pooled history and, given the
    agents' intervals and who serves what, the agents logged in and their occupancy."""
    serves = presence.serves if presence is not None else None
    staffed = None if agents is None or serves is None else staffed_intervals(agents, serves)
    history = interval_loads(rows, queues, staffed)
    occupancy = {} if agents is None or serves is None else queue_occupancy(agents, serves)
    return StaffingFigures(policy, plan(history.loads, policy), occupancy, history.unplanned, staffed is not None)
