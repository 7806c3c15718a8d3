"""Semantic checks: references, reachability, clashes, hours, languages, flow files."""

from __future__ import annotations

from configkit import Example

FLOW = "flows/main.yaml"
HOTLINES = "hotlines.yaml"
ALL_NODES = (
    "anything-else, balance-account, balance-failed, balance-lookup, billing-menu, billing-queue, "
    "choose-language, closed-message, general-queue, general-survey-opt-in, goodbye, hours-check, leave-message, "
    "main-menu, operator, order-failed, order-lookup, order-number, technical-menu, technical-queue, "
    "... (2 more)"
)


def unknown_node(name: str) -> str:
    return f"unknown node {name!r} (expected one of: {ALL_NODES})"


def test_dangling_menu_option(example: Example) -> None:
    example.edit(FLOW, "      1: billing-menu\n", "      1: billng\n")
    assert example.problems() == [
        f"{example.where(FLOW, 'billng')}: nodes.main-menu.options.1: unknown node 'billng' "
        f"(did you mean 'billing-menu'? expected one of: {ALL_NODES})"
    ]


def test_dangling_references_of_every_kind(example: Example) -> None:
    example.edit(FLOW, "start: welcome", "start: welcme")
    example.edit(FLOW, "    next: choose-language", "    next: choose-lang")
    example.edit(FLOW, "    closed: closed-message", "    closed: closed-msg")
    example.edit(FLOW, "    on_failure: order-failed", "    on_failure: order-fail")
    example.edit(FLOW, "        next: billing-queue\n      - when", "        next: billing-q\n      - when")
    example.edit(FLOW, "    invalid: {prompt: order-invalid, retries: 2, then: technical-queue}",
                 "    invalid: {prompt: order-invalid, retries: 2, then: tech-queue}")
    example.edit(HOTLINES, "    entry: welcome-english", "    entry: welcome-en")
    problems = example.problems()
    expected = {
        (FLOW, "welcme", "start", "welcme"),
        (FLOW, "choose-lang\n", "nodes.welcome.next", "choose-lang"),
        (FLOW, "closed-msg", "nodes.hours-check.closed", "closed-msg"),
        (FLOW, "order-fail\n", "nodes.order-lookup.on_failure", "order-fail"),
        (FLOW, "billing-q\n", "nodes.balance-lookup.branches[0].next", "billing-q"),
        (FLOW, "tech-queue", "nodes.order-number.invalid.then", "tech-queue"),
    }
    for file, needle, path, name in expected:
        prefix = f"{example.where(file, needle)}: {path}: unknown node {name!r} ("
        assert any(p.startswith(prefix) for p in problems), (prefix, problems)
    entry = f"{example.where(HOTLINES, 'welcome-en')}: hotlines.4008005678.entry: unknown node 'welcome-en' in flow 'main' ("
    assert any(p.startswith(entry) for p in problems), problems


def test_dangling_goto_target_and_operator(example: Example) -> None:
    example.edit(FLOW, "    operator: operator               # 0", "    operator: operater")
    example.edit(FLOW, "  goodbye:\n", "  bye:\n    type: goto\n    target: goodby\n  goodbye:\n")
    example.edit(FLOW, "    no_input: {retries: 0, then: goodbye}", "    no_input: {retries: 0, then: bye}")
    problems = example.problems()
    assert f"{example.where(FLOW, 'operater')}: nodes.main-menu.operator: unknown node 'operater' (" in "\n".join(problems)
    goodby = example.where(FLOW, "goodby\n")
    assert f"{goodby}: nodes.bye.target: unknown node 'goodby' (" in "\n".join(problems)


def test_unreachable_node(example: Example) -> None:
    example.edit(FLOW, "  goodbye:\n", "  old-promo:\n    type: play\n    prompts: [welcome]\n    next: goodbye\n  goodbye:\n")
    assert example.problems() == [
        f"{example.where(FLOW, 'old-promo')}: nodes.old-promo: unreachable node 'old-promo': no path leads to it "
        "from start 'welcome' or a hotline entry (welcome-english) (expected it to be used, or remove it)"
    ]


def test_node_reached_only_from_a_hotline_entry_is_reachable(example: Example) -> None:
    # welcome-english is only the entry of 4008005678: no problem in the example.
    example.edit(HOTLINES, "    entry: welcome-english       # skips the language choice\n", "")
    problems = example.problems()
    assert any(p.startswith(f"{example.where(FLOW, 'welcome-english')}: nodes.welcome-english: unreachable") for p in problems)


def test_digit_clashes_with_the_menus_special_keys(example: Example) -> None:
    example.edit(FLOW, "      3: leave-message\n", "      3: leave-message\n      0: general-queue\n      '#': goodbye\n")
    example.edit(FLOW, "      1: order-number\n", "      1: order-number\n      '*': goodbye\n")
    hint = "the option would hide it (expected another digit, or remove the special key)"
    assert example.problems() == [
        f"{example.where(FLOW, '      0: general-queue', offset=6)}: nodes.main-menu.options.0: "
        f"digit '0' is also the operator key (operator is set); {hint}",
        f"{example.where(FLOW, chr(39) + '#' + chr(39) + ': goodbye')}: nodes.main-menu.options.#: "
        f"digit '#' is also the repeat key (repeat: '#'); {hint}",
        f"{example.where(FLOW, chr(39) + '*' + chr(39) + ': goodbye')}: nodes.technical-menu.options.*: "
        f"digit '*' is also the back key (back: true); {hint}",
    ]


def test_node_with_no_way_out(example: Example) -> None:
    example.edit(FLOW, "      3: leave-message\n", "      3: leave-message\n      4: loop-a\n")
    example.edit(FLOW, "  goodbye:\n", "  loop-a:\n    type: play\n    prompts: [welcome]\n    next: loop-b\n"
                 "  loop-b:\n    type: goto\n    target: loop-a\n  goodbye:\n")
    tail = "reaches a queue, transfer, voicemail or hangup node (expected every node to lead to one)"
    assert example.problems() == [
        f"{example.where(FLOW, 'loop-a:')}: nodes.loop-a: no way out: no path from play node 'loop-a' {tail}",
        f"{example.where(FLOW, 'loop-b:')}: nodes.loop-b: no way out: no path from goto node 'loop-b' {tail}",
    ]


def test_menu_whose_every_choice_loops_has_no_way_out(example: Example) -> None:
    example.edit(FLOW, "    no_input: {retries: 0, then: goodbye}\n    invalid: {prompt: invalid-option, retries: 1, then: goodbye}",
                 "    no_input: {retries: 0, then: anything-else}\n    invalid: {prompt: invalid-option, retries: 1, then: anything-else}")
    example.edit(FLOW, "      1: main-menu\n      2: general-survey-opt-in\n", "      1: anything-else\n")
    assert example.problems() == [
        f"{example.where(FLOW, 'anything-else:')}: nodes.anything-else: no way out: no path from menu node "
        "'anything-else' reaches a queue, transfer, voicemail or hangup node (expected every node to lead to one)",
        f"{example.where(FLOW, 'general-survey-opt-in:')}: nodes.general-survey-opt-in: unreachable node "
        "'general-survey-opt-in': no path leads to it from start 'welcome' or a hotline entry (welcome-english) "
        "(expected it to be used, or remove it)",
        f"{example.where(FLOW, 'general-queue:')}: nodes.general-queue: unreachable node 'general-queue': no path "
        "leads to it from start 'welcome' or a hotline entry (welcome-english) (expected it to be used, or remove it)",
    ]


def test_unknown_schedule_queue_and_language(example: Example) -> None:
    example.edit(FLOW, "    schedule: standard", "    schedule: standrd")
    example.edit(FLOW, "    queue: technical", "    queue: tech")
    example.edit(FLOW, "      2: en-US", "      2: en-GB")
    example.edit(HOTLINES, "    fallback_queue: general      #", "    fallback_queue: generl      #")
    assert example.problems() == [
        f"{example.where(FLOW, 'en-GB')}: nodes.choose-language.options.2: unknown language 'en-GB' "
        "(did you mean 'en-US'? expected one of: en-US, zh-CN)",
        f"{example.where(FLOW, 'standrd')}: nodes.hours-check.schedule: unknown schedule 'standrd' "
        "(did you mean 'standard'? expected one of: standard)",
        f"{example.where(FLOW, 'queue: tech', offset=7)}: nodes.technical-queue.queue: unknown queue 'tech' "
        "(did you mean 'technical'? expected one of: billing, general, operator, technical)",
        f"{example.where(HOTLINES, 'generl')}: hotlines.4008001234.fallback_queue: unknown queue 'generl' "
        "(did you mean 'general'? expected one of: billing, general, operator, technical)",
    ]


def test_hotline_language_must_be_known_and_offered(example: Example) -> None:
    example.edit(HOTLINES, "    language: en-US\n    languages: [en-US]", "    language: zh-CN\n    languages: [en-US, fr-FR]")
    assert example.problems() == [
        f"{example.where(HOTLINES, 'zh-CN', nth=4)}: hotlines.4008005678.language: default language 'zh-CN' is not "
        "one of the hotline's languages (expected one of: en-US, fr-FR)",
        f"{example.where(HOTLINES, 'fr-FR')}: hotlines.4008005678.languages[1]: unknown language 'fr-FR' "
        "(expected one of: en-US, zh-CN; languages are defined under languages:)",
    ]


def test_language_choice_the_hotline_does_not_offer(example: Example) -> None:
    example.edit(HOTLINES, "    entry: welcome-english       # skips the language choice\n", "")
    problems = example.problems()
    expected = (
        f"{example.where(FLOW, 'zh-CN')}: nodes.choose-language.options.1: language 'zh-CN' is not offered by "
        "hotline 4008005678 (expected one of its languages: en-US)"
    )
    assert expected in problems


def test_invalid_time_zones(example: Example) -> None:
    example.edit(HOTLINES, "    timezone: Asia/Shanghai\n    flow: main                   #",
                 "    timezone: Asia/Shangai\n    flow: main                   #")
    example.edit(HOTLINES, "    timezone: Asia/Shanghai\n    weekly", "    timezone: Mars/Olympus\n    weekly")
    assert example.problems() == [
        f"{example.where(HOTLINES, 'Asia/Shangai')}: hotlines.4008001234.timezone: unknown time zone 'Asia/Shangai' "
        "(did you mean 'Asia/Shanghai'? expected an IANA name such as Asia/Shanghai or America/New_York)",
        f"{example.where(HOTLINES, 'Mars/Olympus')}: schedules.standard.timezone: unknown time zone 'Mars/Olympus' "
        "(expected an IANA name such as Asia/Shanghai or America/New_York)",
    ]


def test_bad_time_ranges(example: Example) -> None:
    example.edit(HOTLINES, 'mon-fri: ["09:00-21:00"]', 'mon-fri: ["09:00-25:00", "21:00-09:00"]')
    example.edit(HOTLINES, 'sat-sun: ["10:00-18:00"]', 'sat-sun: ["10:00-18:00", "20:00-24:00"]')  # 24:00 is fine
    assert example.problems() == [
        f"{example.where(HOTLINES, '09:00-25:00', offset=-1)}: schedules.standard.weekly.mon-fri[0]: "
        "25:00 in '09:00-25:00' is not a time of day (expected 00:00 to 23:59, or 24:00 as an end)",
        f"{example.where(HOTLINES, '21:00-09:00', offset=-1)}: schedules.standard.weekly.mon-fri[1]: "
        "time range '21:00-09:00' ends before it starts (expected start < end; a range cannot cross midnight: "
        "split it into ..-24:00 and 00:00-..)",
    ]


def test_time_range_that_is_not_hh_mm(example: Example) -> None:
    example.edit(HOTLINES, '(company half day), hours: ["09:00-12:00"]', '(company half day), hours: ["9:00-12:00"]')
    assert example.problems() == [
        f"{example.where(HOTLINES, '9:00-12:00', offset=-1)}: schedules.standard.holidays[7].hours[0]: "
        "invalid value '9:00-12:00' (expected HH:MM-HH:MM, e.g. 09:00-18:00)",
    ]


def test_holiday_that_ends_before_it_starts(example: Example) -> None:
    example.edit(HOTLINES, "{date: 2026-10-01, until: 2026-10-07", "{date: 2026-10-01, until: 2026-09-07")
    assert example.problems() == [
        f"{example.where(HOTLINES, '2026-09-07')}: schedules.standard.holidays[6].until: until 2026-09-07 is before "
        "date 2026-10-01 (expected a date on or after it)"
    ]


def test_working_day_inside_a_holiday(example: Example) -> None:
    example.edit(HOTLINES, "{date: 2026-10-10, hours", "{date: 2026-10-05, hours")
    assert example.problems() == [
        f"{example.where(HOTLINES, '2026-10-05')}: schedules.standard.working_days[5].date: 2026-10-05 is also a "
        "holiday (holidays[6]); expected a working day outside every holiday"
    ]


def test_invalid_weekday_specs(example: Example) -> None:
    example.edit(HOTLINES, 'mon-fri: ["09:00-21:00"]', 'mon-fry: ["09:00-21:00"]')
    example.edit(HOTLINES, 'sat-sun: ["10:00-18:00"]', 'sun-sat: ["10:00-18:00"]\n      fri: ["09:00-12:00"]\n      thu,fri: []')
    assert example.problems() == [
        f"{example.where(HOTLINES, 'mon-fry')}: schedules.standard.weekly: invalid weekday 'fry' in 'mon-fry' "
        "(expected mon, tue, wed, thu, fri, sat, sun, a range like mon-fri, or a comma list like sat,sun)",
        f"{example.where(HOTLINES, 'sun-sat')}: schedules.standard.weekly: weekday range 'sun-sat' runs backwards "
        "(expected the first day before the last, Monday to Sunday, e.g. mon-fri; write sat-sun,mon for a range "
        "over the weekend)",
        f"{example.where(HOTLINES, 'thu,fri')}: schedules.standard.weekly: fri is in both 'fri' and 'thu,fri' "
        "(expected each weekday in one entry)",
    ]


def test_hotline_flow_file_that_does_not_exist(example: Example) -> None:
    example.edit(HOTLINES, "    flow: main\n    entry", "    flow: international\n    entry")
    assert example.problems() == [
        # the node only that hotline entered by is now unused
        f"{example.where(FLOW, 'welcome-english:')}: nodes.welcome-english: unreachable node 'welcome-english': "
        "no path leads to it from start 'welcome' (expected it to be used, or remove it)",
        f"{example.where(HOTLINES, 'flow: international', offset=6)}: hotlines.4008005678.flow: flow 'international' "
        "not found: no file flows/international.yaml (expected one of: main)",
    ]


def test_several_errors_in_one_run_are_all_reported(example: Example) -> None:
    example.edit(HOTLINES, "    timezone: Asia/Shanghai\n    flow: main                   #",
                 "    timezone: Asia/Shangai\n    flow: main                   #")
    example.edit(HOTLINES, "    flow: main\n    entry", "    flow: mian\n    entry")
    example.edit(FLOW, "      1: billing-menu\n", "      1: billng\n")
    example.edit(FLOW, "    timeout: 4\n", "    timeout: soon\n")
    example.edit(FLOW, "      1: order-number\n", "      1: order-number\n      '*': goodbye\n")
    (example.config / "server.yaml").write_text("fastagi:\n  prot: 4573\n", encoding="utf-8")
    problems = example.problems()
    assert [p.split(": ")[1] for p in problems] == [
        # a schema error in choose-language hides nothing else: the other nodes are still checked
        "nodes.choose-language.timeout",
        "nodes.main-menu.options.1",
        "nodes.technical-menu.options.*",
        "hotlines.4008001234.timezone",
        "hotlines.4008005678.flow",
        "fastagi",
    ]
    assert problems[-1] == "server.yaml:2:3: fastagi: unknown key 'prot' (did you mean 'port'? expected one of: " \
        "allow, bind, idle_timeout, max_line, max_sessions, media_timeout, port)"


def test_relative_lookup_url_needs_a_base_url(example: Example) -> None:
    example.edit("server.yaml", "  base_url: http://127.0.0.1:8089\n", "  base_url: null\n")
    where = example.where(FLOW, "/billing/balance")
    problems = example.problems()
    assert (
        f"{where}: nodes.balance-lookup.request.url: relative URL '/billing/balance' but no "
        "lookups.base_url in server.yaml (expected an absolute http(s) URL, or a base_url)"
    ) in problems
    assert len(problems) == 2  # the order lookup too


def test_lookup_url_that_is_no_url(example: Example) -> None:
    example.edit(FLOW, "url: /billing/balance", "url: billing.example/balance")
    assert example.problems() == [
        f"{example.where(FLOW, 'billing.example/balance')}: nodes.balance-lookup.request.url: "
        "invalid URL 'billing.example/balance' (expected http://..., https://... or /path)"
    ]
