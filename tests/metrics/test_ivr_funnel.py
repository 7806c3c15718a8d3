"""The IVR funnel of the hand-made calls (paths in handcalls.py), counted by hand.

H1, menu 2026.1: 18 calls. 14 go welcome > choose-language 1 > main-menu 1 > billing-menu 2 >
billing-queue (c04 times out once in main-menu, c09 presses 7 in billing-menu first; c06 ends
in leave-message, c08 in transfer-sales; c03 c04 c09 c15 hang up waiting). c13 chooses
English (2) and self-serves its balance; c17 times out in choose-language and hangs up in
main-menu; c18 presses 9 8 7 in main-menu and the IVR hangs up at goodbye; c20 goes 2 to
general-queue and hangs up waiting.
H1, menu 2026.2: c19 goes main-menu 1, billing-menu (timeout, * back), main-menu 3, voicemail.
H2, menu 2026.1: c16 goes main-menu 1, billing-menu 2, billing-queue.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from handcalls import CALLS, H1, H2
from ivr.config.loader import load_config
from ivr.metrics.ivr_funnel import flow_order, in_flow_order, ivr_funnel
from ivr.records.model import call_path

REPO = Path(__file__).resolve().parents[2]


def test_funnel_nodes_per_hotline_and_menu_version() -> None:
    funnel = ivr_funnel(map(call_path, CALLS))
    got = [(n.hotline, n.menu_version, n.node, n.node_type, n.calls, n.reached, n.timed_out, n.invalid, n.gave_up,
            n.ended_by_ivr, n.contained) for n in funnel.nodes]
    assert got == [
        # Most reached first, then by name.
        (H1, "2026.1", "choose-language", "language", 18, 18, 1, 0, 0, 0, 1),  # c17 timed out (twice: once)
        (H1, "2026.1", "main-menu", "menu", 18, 18, 1, 1, 1, 0, 1),  # c04; c18; c17 hung up here
        (H1, "2026.1", "welcome", "play", 18, 18, 0, 0, 0, 0, 1),
        (H1, "2026.1", "billing-menu", "menu", 18, 15, 0, 1, 0, 0, 1),  # c09 pressed 7
        (H1, "2026.1", "billing-queue", "queue", 18, 14, 0, 0, 4, 0, 0),  # c03 c04 c09 c15 hung up waiting
        (H1, "2026.1", "balance-account", "collect", 18, 1, 0, 0, 0, 0, 1),
        (H1, "2026.1", "balance-lookup", "lookup", 18, 1, 0, 0, 0, 0, 1),
        (H1, "2026.1", "general-queue", "queue", 18, 1, 0, 0, 1, 0, 0),  # c20
        (H1, "2026.1", "goodbye", "hangup", 18, 1, 0, 0, 0, 1, 0),  # c18
        (H1, "2026.1", "leave-message", "voicemail", 18, 1, 0, 0, 0, 0, 0),  # c06
        (H1, "2026.1", "transfer-sales", "transfer", 18, 1, 0, 0, 0, 0, 0),  # c08
        # Visited main-menu twice: one caller.
        (H1, "2026.2", "billing-menu", "menu", 1, 1, 1, 0, 0, 0, 0),
        (H1, "2026.2", "choose-language", "language", 1, 1, 0, 0, 0, 0, 0),
        (H1, "2026.2", "leave-message", "voicemail", 1, 1, 0, 0, 0, 0, 0),
        (H1, "2026.2", "main-menu", "menu", 1, 1, 0, 0, 0, 0, 0),
        (H1, "2026.2", "welcome", "play", 1, 1, 0, 0, 0, 0, 0),
        (H2, "2026.1", "billing-menu", "menu", 1, 1, 0, 0, 0, 0, 0),
        (H2, "2026.1", "billing-queue", "queue", 1, 1, 0, 0, 0, 0, 0),
        (H2, "2026.1", "main-menu", "menu", 1, 1, 0, 0, 0, 0, 0),
        (H2, "2026.1", "welcome", "play", 1, 1, 0, 0, 0, 0, 0),
    ]


def test_funnel_options_count_callers_per_choice() -> None:
    funnel = ivr_funnel(map(call_path, CALLS))
    got = [(o.hotline, o.menu_version, o.node, o.option, o.callers) for o in funnel.options]
    assert got == [
        (H1, "2026.1", "balance-account", "account_number: 8 digits", 1),
        (H1, "2026.1", "billing-menu", "2", 14),
        (H1, "2026.1", "billing-menu", "1", 1),
        (H1, "2026.1", "choose-language", "1", 16),  # all but c13 (2) and c17 (nothing)
        (H1, "2026.1", "choose-language", "2", 1),
        (H1, "2026.1", "main-menu", "1", 15),  # 14 to billing + c13
        (H1, "2026.1", "main-menu", "2", 1),  # c20
        (H1, "2026.2", "billing-menu", "* (back)", 1),
        (H1, "2026.2", "choose-language", "1", 1),
        (H1, "2026.2", "main-menu", "1", 1),
        (H1, "2026.2", "main-menu", "3", 1),
        (H2, "2026.1", "billing-menu", "2", 1),
        (H2, "2026.1", "main-menu", "1", 1),
    ]


def test_before_and_after_a_menu_change_are_separate_funnels() -> None:
    funnel = ivr_funnel(map(call_path, CALLS))
    versions = {(n.hotline, n.menu_version): n.calls for n in funnel.nodes}
    assert versions == {(H1, "2026.1"): 18, (H1, "2026.2"): 1, (H2, "2026.1"): 1}


def test_in_flow_order_follows_the_flow_not_the_counts() -> None:
    """The report draws a funnel in the flow's order; the nodes an older menu had and the flow
    no longer has come last, most reached first."""
    funnel = ivr_funnel(map(call_path, CALLS))
    nodes = [n for n in funnel.nodes if (n.hotline, n.menu_version) == (H1, "2026.1")]
    order = ["welcome", "choose-language", "main-menu", "billing-menu", "billing-queue", "leave-message"]
    got = [n.node for n in in_flow_order(nodes, order)]
    assert got[:6] == order
    rest = [n for n in nodes if n.node not in order]
    assert got[6:] == [n.node for n in sorted(rest, key=lambda n: (-n.reached, n.node))]


def test_flow_order_is_the_order_callers_meet_the_nodes() -> None:
    """Breadth first from the hotline's entry, a menu's ways out by key: the example flow's
    main menu comes before the voicemail it can lead to, and its sub-menus right after it."""
    loaded = load_config(REPO / "config")
    _, hotline = loaded.hotline_for("4008001234") or pytest.fail("the example hotline is gone")
    order = flow_order(loaded.flow_for(hotline), loaded.entry_for(hotline))
    assert order[:7] == ["welcome", "choose-language", "hours-check", "main-menu", "closed-message",
                         "billing-menu", "technical-menu"]  # fmt: skip
    assert order.index("main-menu") < order.index("leave-message") < order.index("billing-queue")
    assert order[-1] == "welcome-english"  # another hotline's entry, not reached from this one
    assert sorted(order) == sorted(loaded.flow_for(hotline).nodes)
