"""Broken YAML and schema errors: each reported at its file:line:column with what was expected."""

from __future__ import annotations

from configkit import Example

from ivr.config.loader import load_config
from ivr.config.models import MenuNode, VoicemailNode
from ivr.config.yamlsource import parse

FLOW = "flows/main.yaml"
HOTLINES = "hotlines.yaml"


def test_broken_yaml_reports_the_yaml_mark(example: Example) -> None:
    example.edit(FLOW, "    next: choose-language\n", "    next: [choose-language\n")
    # The unclosed "[" swallows the next line; PyYAML stops at the ":" after "choose-language".
    assert example.problems() == [
        f"{example.where(FLOW, 'choose-language:', offset=15)}: invalid YAML: while parsing a flow sequence, "
        "expected ',' or ']', but got ':'"
    ]


def test_tab_indentation_is_reported_where_it_is(example: Example) -> None:
    example.edit(FLOW, "    prompts: [goodbye]\n", "\tprompts: [goodbye]\n")
    [problem] = example.problems()
    assert problem.startswith(example.where(FLOW, "\tprompts: [goodbye]") + ": invalid YAML:")


def test_duplicate_menu_digit_is_reported_at_the_second_occurrence(example: Example) -> None:
    example.edit(FLOW, "      3: leave-message\n", "      3: leave-message\n      1: technical-menu\n")
    first = example.where(FLOW, "      1: billing-menu", offset=6)
    line, column = first.split(":")[1:]
    assert example.problems() == [
        f"{example.where(FLOW, '      1: technical-menu', offset=6)}: nodes.main-menu.options.1: "
        f"duplicate key '1' (first at line {line}, column {column}; expected each key once)"
    ]


def test_duplicate_node_id(example: Example) -> None:
    example.edit(FLOW, "  goodbye:\n", "  operator:\n    type: hangup\n  goodbye:\n")
    node = "\n  operator:"
    first_line = example.where(FLOW, node, offset=3).split(":")[1]
    assert example.problems() == [
        f"{example.where(FLOW, node, nth=2, offset=3)}: nodes.operator: duplicate key 'operator' "
        f"(first at line {first_line}, column 3; expected each key once)"
    ]


def test_unknown_key_lists_the_expected_keys(example: Example) -> None:
    example.edit(FLOW, "    timeout: 5\n    no_input", "    timout: 5\n    no_input")
    assert example.problems() == [
        f"{example.where(FLOW, 'timout')}: nodes.main-menu: unknown key 'timout' (did you mean 'timeout'? "
        "expected one of: back, invalid, no_input, operator, options, prompts, repeat, timeout, type)"
    ]


def test_wrong_type(example: Example) -> None:
    example.edit(FLOW, "    timeout: 4\n", "    timeout: soon\n")
    assert example.problems() == [
        f"{example.where(FLOW, 'soon')}: nodes.choose-language.timeout: "
        "expected a valid number, unable to parse string as a number, got 'soon'"
    ]


def test_out_of_range_number(example: Example) -> None:
    example.edit(FLOW, "    timeout: 4\n", "    timeout: 90\n")
    assert example.problems() == [
        f"{example.where(FLOW, '90')}: nodes.choose-language.timeout: expected less than or equal to 60, got 90"
    ]


def test_unknown_node_type(example: Example) -> None:
    example.edit(FLOW, "    type: hangup\n", "    type: hangpu\n")
    assert example.problems() == [
        f"{example.where(FLOW, 'hangpu')}: nodes.goodbye.type: unknown type 'hangpu' (did you mean 'hangup'? "
        "expected one of: collect, goto, hangup, hours, language, lookup, menu, play, queue, survey_opt_in, transfer, "
            "voicemail)"
    ]


def test_missing_required_key(example: Example) -> None:
    example.edit(FLOW, "    invalid: {prompt: invalid-option, retries: 1, then: goodbye}\n", "")
    assert example.problems() == [
        f"{example.where(FLOW, '    type: menu', nth=4, offset=4)}: nodes.anything-else: missing required key 'invalid'"
    ]


def test_invalid_digit_key(example: Example) -> None:
    example.edit(FLOW, "      3: leave-message\n", "      33: leave-message\n")
    assert example.problems() == [
        f"{example.where(FLOW, '33:')}: nodes.main-menu.options.33: invalid key '33' "
        "(expected a single key: 0-9, * or #)"
    ]


def test_aliased_keys_json_and_in_are_located(example: Example) -> None:
    example.edit(FLOW, '      params: {account: "{account_number}"}\n',
                 '      params: {account: "{account_number}"}\n      json: [1]\n')
    example.edit(FLOW, "{field: status, exists: true}", "{field: status, in: pending}")
    assert example.problems() == [
        f"{example.where(FLOW, '[1]')}: nodes.balance-lookup.request.json: expected a mapping, got a list",
        f"{example.where(FLOW, 'pending}')}: nodes.order-lookup.branches[2].when.in: expected a list, got 'pending'",
    ]


def test_unquoted_yaml_11_scalars_become_the_strings_admins_meant(example: Example) -> None:
    example.edit(HOTLINES, '  "4008005678":', "  4008005678:")
    example.edit(FLOW, '    mailbox: "400"', "    mailbox: 0400")
    example.edit(FLOW, 'version: "2026.1"', "version: 2026.10")
    example.edit(HOTLINES, "    name: English", "    name: yes")
    example.edit(FLOW, '    repeat: "#"\n    timeout: 5', "    repeat: 9\n    timeout: 5")
    assert example.problems() == []
    config = load_config(example.config)
    assert "4008005678" in config.directory.hotlines
    voicemail = config.flows["main"].nodes["leave-message"]
    assert isinstance(voicemail, VoicemailNode) and voicemail.mailbox == "0400"  # not octal 256
    assert config.flows["main"].version == "2026.10"  # not the float 2026.1
    assert config.directory.languages["en-US"].name == "yes"  # not True
    menu = config.flows["main"].nodes["main-menu"]
    assert isinstance(menu, MenuNode) and menu.repeat == "9" and "1" in menu.options


def test_yes_for_a_string_choice_is_not_true(example: Example) -> None:
    (example.config / "server.yaml").write_text("privacy:\n  caller_number: yes\n", encoding="utf-8")
    assert example.problems() == [
        "server.yaml:2:18: privacy.caller_number: invalid value 'yes' (expected 'full', 'mask' or 'hash')"
    ]


def test_empty_value_is_not_turned_into_a_string(example: Example) -> None:
    example.edit(HOTLINES, "    name: English", "    name:")
    assert example.problems() == [f"{example.where(HOTLINES, '    name:', nth=2, offset=9)}: "
                                  "languages.en-US.name: expected a string, got nothing"]


def test_empty_server_yaml_means_defaults(example: Example) -> None:
    (example.config / "server.yaml").write_text("# all defaults\n", encoding="utf-8")
    # With every default there is no lookup backend: the example's relative lookup URLs
    # are then the only problems.
    assert [p.split(": ", 2)[1] for p in example.problems()] == [
        "nodes.balance-lookup.request.url",
        "nodes.order-lookup.request.url",
    ]


def test_parse_keeps_marks_for_keys_and_values() -> None:
    doc = parse("a:\n  - x\n  - {b: 1}\n", "f.yaml")
    assert doc.data == {"a": ["x", {"b": 1}]}
    assert (doc.source.key(("a",)).line, doc.source.key(("a",)).column) == (1, 1)
    assert (doc.source.value(("a", 1, "b")).line, doc.source.value(("a", 1, "b")).column) == (3, 9)
    assert doc.source.plain_text[("a", 1, "b")] == "1"


def test_recursive_alias_is_an_error_not_a_hang() -> None:
    doc = parse("a: &x [*x]\n", "f.yaml")
    assert [e.message for e in doc.errors] == ["an alias refers to a value that contains it"]
