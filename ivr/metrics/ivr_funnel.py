"""The IVR funnel: per hotline, menu version and node, how many callers got there, what they
pressed, and where they gave up or were served without an agent.

From the path events the flow engine writes (ivr/flow/engine.py): a NODE event on entering
each node (its value is the node's type), then DIGIT / TIMEOUT / INVALID events recorded at
that node. Counts are distinct calls ("callers"), so a caller who goes round a menu twice
counts once at each node; grouping by menu version lets a change be compared with before.

- reached: calls with a NODE event at the node.
- pressed: calls with a DIGIT event of that value at the node.
- timed out / invalid: calls with a TIMEOUT / INVALID event at the node.
- gave up: calls the caller ended before any service (disposition ABANDONED, hung up in
  the IVR, or QUEUE_ABANDONED, hung up waiting for an agent) whose last node it was.
- ended by the IVR: calls ended without service by the flow (IVR_HANGUP, e.g. retries
  exhausted) whose last node it was.
- contained: SELF_SERVED calls (a self-service lookup answered them, no agent) that went
  through the node; contained / reached is the node's containment rate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ivr.config.models import Flow
from ivr.config.validate import walk
from ivr.metrics.model import FunnelNode, FunnelOption
from ivr.records.model import CallPath, Disposition, EventKind

GAVE_UP = frozenset({Disposition.ABANDONED, Disposition.QUEUE_ABANDONED})


@dataclass(frozen=True)
class Funnel:
    nodes: list[FunnelNode]  # by hotline, menu version, then most reached first
    options: list[FunnelOption]  # by hotline, menu version, node, then most pressed first


@dataclass
class NodeCounts:
    node_type: str
    reached: int = 0
    timed_out: int = 0
    invalid: int = 0
    gave_up: int = 0
    ended_by_ivr: int = 0
    contained: int = 0
    pressed: dict[str, int] = field(default_factory=lambda: defaultdict(int))


@dataclass
class FunnelCounts:
    """The funnel's counts so far: plain sums, so that the counts of disjoint sets of calls
    (an export's parts, counted in several processes) add up to those of all of them."""

    versions: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))  # calls
    nodes: dict[tuple[str, str, str], NodeCounts] = field(default_factory=dict)  # (hotline, version, node)

    def add(self, other: FunnelCounts) -> None:
        for version, calls in other.versions.items():
            self.versions[version] += calls
        for key, theirs in other.nodes.items():
            ours = self.nodes.setdefault(key, NodeCounts(theirs.node_type))
            ours.reached += theirs.reached
            ours.timed_out += theirs.timed_out
            ours.invalid += theirs.invalid
            ours.gave_up += theirs.gave_up
            ours.ended_by_ivr += theirs.ended_by_ivr
            ours.contained += theirs.contained
            for option, callers in theirs.pressed.items():
                ours.pressed[option] += callers


def ivr_funnel(calls: Iterable[CallPath]) -> Funnel:
    return funnel_of(count_funnel(calls))


def count_funnel(calls: Iterable[CallPath]) -> FunnelCounts:
    counts = FunnelCounts()
    versions, nodes = counts.versions, counts.nodes
    for call in calls:
        version = (call.dialed, call.menu_version)
        versions[version] += 1
        reached: dict[str, NodeCounts] = {}
        timed_out: set[str] = set()
        invalid: set[str] = set()
        pressed: set[tuple[str, str]] = set()
        last = ""
        for kind, node_id, value in call.steps:
            if kind is EventKind.NODE:
                last = node_id
                if node_id not in reached:
                    reached[node_id] = nodes.setdefault((*version, node_id), NodeCounts(value))
            elif kind is EventKind.DIGIT:
                pressed.add((node_id, value))
            elif kind is EventKind.TIMEOUT:
                timed_out.add(node_id)
            elif kind is EventKind.INVALID:
                invalid.add(node_id)
        for node_id, node in reached.items():
            node.reached += 1
            node.timed_out += node_id in timed_out
            node.invalid += node_id in invalid
            node.contained += call.disposition is Disposition.SELF_SERVED
        for node_id, value in pressed:
            if node_id in reached:
                reached[node_id].pressed[value] += 1
        if last:
            reached[last].gave_up += call.disposition in GAVE_UP
            reached[last].ended_by_ivr += call.disposition is Disposition.IVR_HANGUP
    return counts


def funnel_of(counts: FunnelCounts) -> Funnel:
    """The rows of the counts, in report order."""
    node_rows = [
        FunnelNode(
            hotline=hotline, menu_version=menu_version, node=node_id, node_type=node.node_type,
            calls=counts.versions[hotline, menu_version], reached=node.reached, timed_out=node.timed_out,
            invalid=node.invalid, gave_up=node.gave_up, ended_by_ivr=node.ended_by_ivr, contained=node.contained,
        )
        for (hotline, menu_version, node_id), node in counts.nodes.items()
    ]
    node_rows.sort(key=lambda row: (row.hotline, row.menu_version, -row.reached, row.node))
    option_rows = [
        FunnelOption(hotline, menu_version, node_id, option, callers)
        for (hotline, menu_version, node_id), node in counts.nodes.items()
        for option, callers in node.pressed.items()
    ]
    option_rows.sort(key=lambda row: (row.hotline, row.menu_version, row.node, -row.callers, row.option))
    return Funnel(node_rows, option_rows)


def flow_order(flow: Flow, start: str) -> list[str]:
    """The flow's node ids in the order callers meet them from `start` (validate.walk); nodes
    not reachable from `start` last, in file order."""
    order = walk(flow, start)
    return order + [node_id for node_id in flow.nodes if node_id not in order]


def in_flow_order(nodes: Iterable[FunnelNode], order: Sequence[str]) -> list[FunnelNode]:
    """One menu version's funnel rows in `order` (flow_order); nodes the flow no longer has (an
    older menu version) come last, most reached first."""
    place = {node_id: index for index, node_id in enumerate(order)}
    return sorted(nodes, key=lambda row: (place.get(row.node, len(place)), -row.reached, row.node))
