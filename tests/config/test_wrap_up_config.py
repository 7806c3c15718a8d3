"""routing.yaml wrap-up codes: the example's tree as the agent desktop shows it, and every
mistake `ivr check` reports at its line and column."""

from __future__ import annotations

from click.testing import CliRunner
from configkit import Example

from ivr.cli.main import main
from ivr.config.loader import load_config
from routing.config import WrapUpCode
from routing.wrapup import is_leaf, label_path, leaves

ROUTING = "routing.yaml"
CODES = "queues.billing.wrap_up.codes"
INVOICE = "{code: invoice, label: {zh-CN: 发票, en-US: Invoice}}"


def test_example_tree_gives_the_leaves_with_their_paths_and_labels(example: Example) -> None:
    routing = load_config(example.config).routing
    assert routing is not None
    wrap_up = routing.queues["billing"].wrap_up
    assert wrap_up is not None and wrap_up.required and wrap_up.limit == 120
    tree = wrap_up.codes
    assert [(leaf.path, leaf.label) for leaf in leaves(tree, "en-US")] == [
        ("billing/refund/approved", "Billing › Refund › Approved"),
        ("billing/refund/refused", "Billing › Refund › Refused"),
        ("billing/invoice", "Billing › Invoice"),
        ("other", "Other"),
    ]
    assert [leaf.label for leaf in leaves(tree, "zh-CN")][0] == "账单 › 退款 › 已批准"
    assert is_leaf(tree, "billing/refund/approved") and is_leaf(tree, "other")
    assert not is_leaf(tree, "billing/refund")  # a branch is not picked
    assert not is_leaf(tree, "billing/refund/lost") and not is_leaf(tree, "")
    assert label_path(tree, "billing/invoice", "zh-CN") == "账单 › 发票"
    assert label_path(tree, "billing/gone", "en-US") == "billing/gone"  # a code since removed: as stored
    technical = routing.queues["technical"].wrap_up
    assert technical is not None and not technical.required
    assert routing.queues["general"].wrap_up is None  # no code asked


def test_a_language_without_a_label_shows_the_code() -> None:
    tree = (WrapUpCode(code="sales", children=(WrapUpCode(code="won", label={"en-US": "Won"}),)),)
    assert [leaf.label for leaf in leaves(tree, "en-US")] == ["sales › Won"]
    assert label_path(tree, "sales/won", "zh-CN") == "sales › won"


def test_duplicate_codes_among_siblings(example: Example) -> None:
    example.edit(ROUTING, INVOICE, "{code: refund, label: {zh-CN: 发票, en-US: Invoice}}")
    assert example.problems() == [
        f"{example.where(ROUTING, 'refund, label: {zh-CN: 发票')}: {CODES}[0].children[1].code: duplicate code "
        "'refund' (also entry 1 of this list; expected each code once among its siblings: a stored code would be "
        "ambiguous)"
    ]


def test_a_code_with_a_slash_a_space_or_nothing(example: Example) -> None:
    example.edit(ROUTING, "{code: approved,", "{code: ok/yes,")
    example.edit(ROUTING, "{code: refused,", "{code: 'no way',")
    example.edit(ROUTING, "{code: other, label: {zh-CN: 其他, en-US: Other}}\n\n  technical",
                 "{code: '', label: {zh-CN: 其他, en-US: Other}}\n\n  technical")
    invalid = ("(expected no '/' and no spaces: '/' separates the levels of a stored code, e.g. billing/refund)")
    assert example.problems() == [
        f"{example.where(ROUTING, 'ok/yes')}: {CODES}[0].children[0].children[0].code: invalid code 'ok/yes' {invalid}",
        f"{example.where(ROUTING, chr(39) + 'no way')}: {CODES}[0].children[0].children[1].code: "
        f"invalid code 'no way' {invalid}",
        f"{example.where(ROUTING, chr(39) * 2)}: {CODES}[1].code: empty code (expected a word, e.g. refund)",
    ]


def test_a_node_with_no_leaf_under_it(example: Example) -> None:
    example.edit(ROUTING, INVOICE, "{code: invoice, label: {en-US: Invoice}, children: []}")
    assert example.problems() == [
        f"{example.where(ROUTING, '[]}')}: {CODES}[0].children[1].children: code 'invoice' has no leaf under it "
        "(expected children to pick from, or no `children` at all: then the code itself is picked)"
    ]


def test_no_codes_at_all(example: Example) -> None:
    technical = example.text(ROUTING).split("      limit: 300\n")[1].split("\n\n")[0]
    example.edit(ROUTING, technical, "      codes: []")
    assert example.problems() == [
        f"{example.where(ROUTING, 'codes: []', offset=7)}: queues.technical.wrap_up.codes: no codes "
        "(expected at least one code to pick)"
    ]


def test_deeper_than_four_levels(example: Example) -> None:
    example.edit(ROUTING, "{code: approved, label: {zh-CN: 已批准, en-US: Approved}}",
                 "{code: approved, children: [{code: partly, children: [{code: half}]}]}")
    assert example.problems() == [
        f"{example.where(ROUTING, 'half')}: {CODES}[0].children[0].children[0].children[0].children[0].code: "
        "code 'half' is at depth 5 (expected at most 4 levels)"
    ]


def test_limit_must_leave_time_to_pick_a_code(example: Example) -> None:
    example.edit(ROUTING, "      limit: 300\n", "      limit: 0\n")
    example.edit(ROUTING, "      limit: 120 ", "      limit: -5 ")
    assert example.problems() == [
        f"{example.where(ROUTING, '-5')}: queues.billing.wrap_up.limit: limit -5 is not a time to pick a code in "
        "(expected seconds after the call's end, more than 0, e.g. 120)",
        f"{example.where(ROUTING, 'limit: 0', offset=7)}: queues.technical.wrap_up.limit: limit 0 is not a time to "
        "pick a code in (expected seconds after the call's end, more than 0, e.g. 120)",
    ]


def test_a_label_in_a_language_no_hotline_offers_is_a_warning_only(example: Example) -> None:
    example.edit(ROUTING, INVOICE, "{code: invoice, label: {zh-CN: 发票, fr-FR: Facture}}")
    warning = (f"{example.where(ROUTING, 'fr-FR')}: warning: {CODES}[0].children[1].label.fr-FR: label in 'fr-FR', "
               "a language no hotline offers (expected one of: en-US, zh-CN): no agent will read it")
    assert example.problems() == [warning]
    assert load_config(example.config).routing is not None  # it loads: `ivr serve` starts
    result = CliRunner().invoke(main, ["check", str(example.config)])
    assert result.exit_code == 0, result.output
    assert f"{example.config.parent.name}/config/{warning}"[-len(warning):] in result.output
    assert "OK" in result.output
