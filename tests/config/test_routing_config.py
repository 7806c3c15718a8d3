"""routing.yaml: the example loads; each mistake is reported at its line and column."""

from __future__ import annotations

from configkit import Example

from ivr.config.loader import load_config

ROUTING = "routing.yaml"
FLOW = "flows/main.yaml"
HOTLINES = "hotlines.yaml"
OPERATOR_QUEUE = "operator:\n    groups"  # the key of the operator queue in routing.yaml


def only(problems: list[str], prefix: str) -> None:
    """Exactly one problem, starting with `prefix`."""
    assert len(problems) == 1 and problems[0].startswith(prefix), (prefix, problems)


# --- the example -----------------------------------------------------------------------------


def test_example_routing_loads(example: Example) -> None:
    loaded = load_config(example.config)
    routing = loaded.routing
    assert routing is not None
    assert sorted(routing.queues) == ["billing", "general", "operator", "technical"]
    assert {a: routing.agents[a].endpoint for a in routing.agents} == {
        "1001": "PJSIP/1001", "1002": "PJSIP/1002", "1003": "PJSIP/1003", "1004": "PJSIP/1004"
    }
    billing = routing.queues["billing"]
    assert [(s.skills, s.groups, s.for_seconds) for s in billing.steps] == [
        ({"billing": 4}, (), 20.0), ({"billing": 2}, (), 40.0), ({}, ("tier1", "tier2"), None)
    ]
    assert {q.strategy for q in routing.queues.values()} == {"least_busy", "longest_idle", "skill_weighted"}
    assert routing.queues["billing"].overflow.timeout is not None
    assert routing.queues["billing"].overflow.timeout.queue == "general"
    assert routing.state.backend == "memory"
    # Every ACD queue has its dialplan place (the fallback when the ACD cannot route).
    assert set(routing.queues) <= set(loaded.directory.queues)


def test_without_routing_yaml_there_is_no_acd(example: Example) -> None:
    with_acd = load_config(example.config)
    (example.config / ROUTING).unlink()
    without = load_config(example.config)
    assert without.routing is None
    assert without.version != with_acd.version


def test_routing_yaml_is_part_of_the_version(example: Example) -> None:
    before = load_config(example.config).version
    example.edit(ROUTING, "    max_wait: 180 ", "    max_wait: 200 ")
    assert load_config(example.config).version != before


def test_empty_routing_yaml_is_an_acd_with_no_queues(example: Example) -> None:
    (example.config / ROUTING).write_text("# nothing yet\n", encoding="utf-8")
    routing = load_config(example.config).routing
    assert routing is not None and not routing.queues and not routing.agents


# --- schema: unknown keys, bad values, the models' own rules ------------------------------------


def test_unknown_key(example: Example) -> None:
    example.edit(ROUTING, "    wrap_up: 15 ", "    wrapup: 15 ")
    only(
        example.problems(),
        f"{example.where(ROUTING, 'wrapup')}: agents.1001: unknown key 'wrapup' (did you mean 'wrap_up'? expected one of: ",
    )


def test_bad_values(example: Example) -> None:
    example.edit(ROUTING, "skills: {billing: 5, general: 3}", "skills: {billing: 6, general: 3}")
    example.edit(ROUTING, "    strategy: longest_idle ", "    strategy: longest_waiting ")
    example.edit(ROUTING, "  backend: memory ", "  backend: etcd ")
    problems = example.problems()
    assert problems == [
        f"{example.where(ROUTING, '6, general')}: agents.1001.skills.billing: "
        "expected less than or equal to 5, got 6",
        f"{example.where(ROUTING, 'longest_waiting')}: queues.general.strategy: invalid value 'longest_waiting' "
        "(expected 'least_busy', 'longest_idle', 'round_robin', 'random', 'linear' or 'skill_weighted')",
        f"{example.where(ROUTING, 'etcd')}: state.backend: invalid value 'etcd' (expected 'memory' or 'redis')",
    ]


def test_overflow_destination_needs_exactly_one_target(example: Example) -> None:
    example.edit(ROUTING, "timeout: {queue: general}      #", "timeout: {queue: general, voicemail: '400'}      #")
    only(
        example.problems(),
        f"{example.where(ROUTING, '{queue: general, voicemail')}: queues.billing.overflow.timeout: "
        "give exactly one of queue, voicemail, node, dialplan, callback",
    )


def test_callback_overflow_is_a_fifth_kind_and_still_exactly_one(example: Example) -> None:
    example.edit(ROUTING, "timeout: {queue: general}      #", "timeout: {callback: true, queue: general}      #")
    only(
        example.problems(),
        f"{example.where(ROUTING, '{callback: true')}: queues.billing.overflow.timeout: "
        "give exactly one of queue, voicemail, node, dialplan, callback",
    )


def test_callback_false_is_refused_with_its_place(example: Example) -> None:
    example.edit(ROUTING, "timeout: {queue: general}      #", "timeout: {callback: false}      #")
    only(
        example.problems(),
        f"{example.where(ROUTING, '{callback: false')}: queues.billing.overflow.timeout: "
        "callback: only true is meaningful (leave it out otherwise)",
    )


def test_last_step_has_no_for(example: Example) -> None:
    example.edit(ROUTING, "      - {groups: [tier1, tier2]}  ", "      - {groups: [tier1, tier2], for: 60}  ")
    only(
        example.problems(),
        f"{example.where(ROUTING, 'skills: {}')}: queues.billing: the last step has no 'for': it lasts until max_wait",
    )


def test_a_broken_agent_does_not_hide_other_problems(example: Example) -> None:
    example.edit(ROUTING, "skills: {billing: 5, general: 3}", "skills: {billing: 0, general: 3}")
    example.edit(ROUTING, "      timeout: {voicemail: \"400\"}\n      no_agents: {voicemail: \"400\"}\n      full: {voicemail",
                 "      timeout: {queue: billing}\n      no_agents: {voicemail: \"400\"}\n      full: {voicemail")
    problems = example.problems()
    assert len(problems) == 2, problems
    assert problems[0].startswith(f"{example.where(ROUTING, '0, general')}: agents.1001.skills.billing: expected greater")
    assert problems[1].startswith(
        f"{example.where(ROUTING, 'general}      # waited')}: queues.billing.overflow.timeout.queue: overflow cycle"
    )


# --- semantic checks ---------------------------------------------------------------------------------


def test_menu_queue_that_is_only_in_routing_yaml(example: Example) -> None:
    # The rule: every ACD queue also needs its hotlines.yaml place (the fallback when the ACD cannot route).
    example.edit(HOTLINES, "  operator:\n    context: ivr-queue\n    timeout: 120\n", "")
    problems = example.problems()
    assert problems == [
        f"{example.where(FLOW, 'queue: operator', offset=7)}: nodes.operator.queue: queue 'operator' is in routing.yaml "
        "but not in hotlines.yaml queues (expected a dialplan place there too: callers go to it when the ACD "
        "cannot route)",
        f"{example.where(ROUTING, OPERATOR_QUEUE)}: queues.operator: queue 'operator' has no dialplan place in "
        "hotlines.yaml queues (expected an entry 'operator' there: callers go to it when the ACD cannot route, "
        "e.g. when Redis is unreachable)",
    ]


def test_dialplan_only_queue_stays_valid(example: Example) -> None:
    # A hotlines.yaml queue without a routing.yaml entry is a plain dialplan queue: no problem.
    text = example.text(ROUTING)
    start, end = text.index("  operator:\n"), text.index("# What the router knows")
    (example.config / ROUTING).write_text(text[:start] + text[end:], encoding="utf-8")
    routing = load_config(example.config).routing
    assert routing is not None and "operator" not in routing.queues


def test_overflow_to_an_unknown_acd_queue(example: Example) -> None:
    example.edit(ROUTING, "      full: {queue: general}         #", "      full: {queue: generl}         #")
    only(
        example.problems(),
        f"{example.where(ROUTING, 'generl')}: queues.billing.overflow.full.queue: unknown ACD queue 'generl' "
        "(did you mean 'general'? expected one of: billing, general, operator, technical)",
    )


def test_overflow_cycle(example: Example) -> None:
    # billing -timeout-> general -timeout-> billing
    example.edit(ROUTING, "      timeout: {voicemail: \"400\"}\n      no_agents: {voicemail: \"400\"}\n      full: {voicemail",
                 "      timeout: {queue: billing}\n      no_agents: {voicemail: \"400\"}\n      full: {voicemail")
    only(
        example.problems(),
        f"{example.where(ROUTING, 'general}      # waited')}: queues.billing.overflow.timeout.queue: overflow cycle: "
        "billing -timeout-> general -timeout-> billing (expected overflows to end at voicemail, a flow node or the dialplan)",
    )


def test_overflow_to_itself(example: Example) -> None:
    example.edit(ROUTING, "      full: {queue: general}\n\n  general:", "      full: {queue: technical}\n\n  general:")
    only(
        example.problems(),
        f"{example.where(ROUTING, 'queue: technical}', offset=7)}: queues.technical.overflow.full.queue: overflow cycle: "
        "technical -full-> technical (",
    )


def test_overflow_node_missing_from_a_hotlines_flow(example: Example) -> None:
    example.edit(ROUTING, "no_agents: {node: leave-message}", "no_agents: {node: callback-offer}")
    only(
        example.problems(),
        f"{example.where(ROUTING, 'callback-offer')}: queues.operator.overflow.no_agents.node: unknown node "
        "'callback-offer' in flow 'main' of hotline 4008001234, 4008005678, whose callers can reach queue 'operator' (",
    )


def test_overflow_node_of_a_queue_no_menu_uses(example: Example) -> None:
    example.edit(ROUTING, "  operator:\n    groups: [operators]\n", "  spare:\n    groups: [operators]\n")
    example.edit(HOTLINES, "  operator:\n    context: ivr-queue\n", "  spare:\n    context: ivr-queue\n  operator:\n    context: ivr-queue\n")
    example.edit(ROUTING, "no_agents: {node: leave-message}", "no_agents: {node: leave-mesage}")
    only(
        example.problems(),
        f"{example.where(ROUTING, 'leave-mesage')}: queues.spare.overflow.no_agents.node: unknown node 'leave-mesage': "
        "no flow has it (did you mean 'leave-message'?",
    )


def test_node_reached_only_by_overflow_is_reachable(example: Example) -> None:
    example.edit(FLOW, "  goodbye:\n", "  callback-offer:\n    type: play\n    prompts: [goodbye]\n    next: goodbye\n  goodbye:\n")
    assert any("unreachable node 'callback-offer'" in p for p in example.problems())
    example.edit(ROUTING, "no_agents: {node: leave-message}", "no_agents: {node: callback-offer}")
    assert example.problems() == []


def test_skills_and_groups_nobody_has(example: Example) -> None:
    example.edit(ROUTING, "      - {skills: {billing: 2}, for: 40}", "      - {skills: {billng: 2}, for: 40}")
    example.edit(ROUTING, "    groups: [operators]\n    steps: [{}]", "    groups: [operator]\n    steps: [{}]")
    example.edit(ROUTING, "    skills: {technical: 2}\n", "    skills: {technical: 2, network: 1}\n")
    assert example.problems() == [
        f"{example.where(ROUTING, 'billng')}: queues.billing.steps[1].skills.billng: no agent has skill 'billng' "
        "(did you mean 'billing'? expected one of: billing, general, technical); the queue could never be served",
        f"{example.where(ROUTING, 'network')}: queues.technical.skills.network: no agent has skill 'network' "
        "(expected one of: billing, general, technical); the queue could never be served",
        f"{example.where(ROUTING, '[operator]', offset=1)}: queues.operator.groups[0]: no agent has group 'operator' "
        "(did you mean 'operators'? expected one of: operators, tier1, tier2); the queue could never be served",
    ]


def test_step_that_no_agent_meets(example: Example) -> None:
    example.edit(ROUTING, "      - {skills: {billing: 4}, for: 20}", "      - {skills: {billing: 5}, groups: [tier1], for: 20}")
    only(
        example.problems(),
        f"{example.where(ROUTING, '{skills: {billing: 5}')}: queues.billing.steps[0]: no agent meets step 1 "
        "(billing >= 5, in group tier1 or tier2, in group tier1); expected at least one such agent",
    )


def test_agent_language_that_is_not_a_language_key(example: Example) -> None:
    example.edit(ROUTING, "    languages: [zh-CN]\n    groups: [tier1, operators]", "    languages: [zh-TW]\n    groups: [tier1, operators]")
    only(
        example.problems(),
        f"{example.where(ROUTING, 'zh-TW')}: agents.1002.languages[0]: unknown language 'zh-TW' "
        "(did you mean 'zh-CN'? expected one of: en-US, zh-CN; languages are defined in hotlines.yaml)",
    )


def test_duplicate_endpoint(example: Example) -> None:
    example.edit(ROUTING, "    endpoint: PJSIP/1003\n", "    endpoint: pjsip/1001\n")
    only(
        example.problems(),
        f"{example.where(ROUTING, 'pjsip/1001')}: agents.1003.endpoint: endpoint 'pjsip/1001' is also agent 1001's "
        "(expected each agent its own endpoint",
    )


def test_endpoint_not_tech_slash_resource(example: Example) -> None:
    example.edit(ROUTING, "    endpoint: PJSIP/1002\n", "    endpoint: \"1002\"\n")
    example.edit(ROUTING, "    endpoint: PJSIP/1004\n", "    endpoint: PJSIP/1004&PJSIP/1005\n")
    quoted = example.where(ROUTING, 'endpoint: "1002"', offset=10)
    assert example.problems() == [
        f"{quoted}: agents.1002.endpoint: invalid endpoint '1002' "
        "(expected TECH/resource, e.g. PJSIP/1001)",
        f"{example.where(ROUTING, 'PJSIP/1004&')}: agents.1004.endpoint: invalid endpoint 'PJSIP/1004&PJSIP/1005' "
        "(expected TECH/resource, e.g. PJSIP/1001)",
    ]


def test_steps_longer_than_max_wait(example: Example) -> None:
    example.edit(ROUTING, "    max_wait: 180 ", "    max_wait: 60 ")
    only(
        example.problems(),
        f"{example.where(ROUTING, 'skills: {}')}: queues.billing: the steps' 'for' add up to max_wait or more: "
        "the last step is never reached",
    )


def test_queue_language_key_vip_numbers_and_redis_url(example: Example) -> None:
    example.edit(ROUTING, "    language: caller\n", "    language: fr-FR\n")
    example.edit(ROUTING, '    - "13912345678"', '    - "139-1234-567O"')
    example.edit(ROUTING, "  backend: memory ", "  backend: memory\n  redis_url: 127.0.0.1:6379 ")
    assert example.problems() == [
        f"{example.where(ROUTING, 'fr-FR')}: queues.billing.language: unknown language 'fr-FR' "
        "(expected 'caller', null or a language key: expected one of: en-US, zh-CN)",
        f"{example.where(ROUTING, '139-', offset=-1)}: classification.vip_numbers[1]: invalid caller number '139-1234-567O' "
        "(expected digits, optionally with a leading +, spaces or -, e.g. '13800138000')",
        f"{example.where(ROUTING, '127.0.0.1:6379')}: state.redis_url: invalid Redis URL '127.0.0.1:6379' "
        "(expected redis://host:port/db, rediss://... or unix://path)",
    ]


def test_ivr_check_lists_routing_problems_with_the_rest(example: Example) -> None:
    from click.testing import CliRunner

    from ivr.cli.main import main

    example.edit(ROUTING, "    endpoint: PJSIP/1003\n", "    endpoint: PJSIP/1001\n")
    example.edit(FLOW, "      1: billing-menu\n", "      1: billng\n")
    result = CliRunner().invoke(main, ["check", str(example.config)])
    assert result.exit_code == 1
    # Each file named from where the command ran: an editor started there opens it at the line.
    assert f"{example.config}/{example.where(ROUTING, 'PJSIP/1001', 2)}: agents.1003.endpoint: endpoint 'PJSIP/1001' is also" in result.output
    assert f"{example.config}/{example.where(FLOW, 'billng')}: nodes.main-menu.options.1: unknown node 'billng'" in result.output


def test_a_lookup_cannot_set_the_variables_the_controller_sets(example: Example) -> None:
    flow = "flows/main.yaml"
    example.edit(flow, "        say: [{prompt: account-not-found}]\n",
                 "        say: [{prompt: account-not-found}]\n        set: {caller: \"{answer.number}\", vip: \"yes\"}\n")
    problems = example.problems()
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{example.where(flow, '{caller')}:")
    assert "caller cannot be set: the controller sets it" in problems[0]


def test_pause_reasons_of_the_example_and_the_default_list(example: Example) -> None:
    routing = load_config(example.config).routing
    assert routing is not None
    assert [(r.code, r.label["zh-CN"], r.label["en-US"]) for r in routing.pause_reasons] == [
        ("break", "休息", "Break"), ("lunch", "午餐", "Lunch"), ("training", "培训", "Training"),
        ("meeting", "会议", "Meeting"), ("coaching", "辅导", "Coaching"),
    ]
    assert routing.pause_reason_codes()[-2:] == ["phone", "supervisor"]
    text = example.text(ROUTING)
    (example.config / ROUTING).write_text(text[: text.index("pause_reasons:")], encoding="utf-8")
    without = load_config(example.config).routing
    assert without is not None and without.pause_reasons == routing.pause_reasons


def test_duplicate_and_built_in_pause_reasons(example: Example) -> None:
    example.edit(ROUTING, "  - {code: meeting,", "  - {code: lunch,")
    example.edit(ROUTING, "  - {code: coaching,", "  - {code: phone,")
    assert example.problems() == [
        f"{example.where(ROUTING, 'lunch', 3)}: pause_reasons[3].code: duplicate pause reason 'lunch' "
        "(also pause_reasons[1]; expected each code once)",
        f"{example.where(ROUTING, 'phone, label')}: pause_reasons[4].code: pause reason 'phone' is built in "
        "(paused from the phone): expected another code; the built-in one needs no entry",
    ]


def test_pause_reason_problems_are_reported_with_the_files_other_problems(example: Example) -> None:
    example.edit(ROUTING, "  - {code: training,", "  - {code: break,")
    example.edit(ROUTING, "    max_calls: 1 ", "    max_calls: 2 ")
    problems = example.problems()
    assert any("agents.1001.max_calls" in p for p in problems), problems
    assert any("pause_reasons[2].code: duplicate pause reason 'break'" in p for p in problems), problems

    example.edit(ROUTING, "  - {code: meeting, label: {zh-CN: 会议, en-US: Meeting}}", "  - {code: meeting}")
    assert any("pause_reasons[3]: missing required key 'label'" in p for p in example.problems())
