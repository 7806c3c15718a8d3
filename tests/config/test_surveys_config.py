"""config/surveys.yaml and the survey_opt_in node: loaded, and every problem reported with its
file, line and column like the other files."""

from __future__ import annotations

import shutil

from configkit import REPO, Example

from ivr.config.loader import load_config
from ivr.config.models import SurveyOptInNode

SURVEYS = "surveys.yaml"
FLOW = "flows/main.yaml"


def test_example_surveys_load() -> None:
    config = load_config(REPO / "config")
    surveys = config.surveys
    assert surveys is not None
    standard = surveys.surveys["standard"]
    assert [(q.id, q.kind) for q in standard.questions] == [
        ("speed", "scale"), ("attitude", "scale"), ("resolved", "yes_no"), ("nps", "nps")]
    assert standard.comment is not None and standard.comment.max_seconds == 60
    billing = surveys.selection.for_queue("billing")
    assert billing is not None and (billing.survey, billing.mode, billing.cooldown_days) == ("standard", "all", 30)
    technical = surveys.selection.for_queue("technical")
    assert technical is not None and (technical.mode, technical.share) == ("sample", 0.5)
    general = surveys.selection.for_queue("general")
    assert general is not None and general.mode == "opt_in"
    assert surveys.followups.deadlines.hours("urgent") == 24
    opt_ins = {node_id: node for node_id, node in config.flows["main"].nodes.items() if isinstance(node, SurveyOptInNode)}
    assert list(opt_ins) == ["general-survey-opt-in"]
    assert opt_ins["general-survey-opt-in"].accept == ("1",) and opt_ins["general-survey-opt-in"].next == "general-queue"


def test_without_surveys_yaml_nobody_is_surveyed(example: Example) -> None:
    (example.config / SURVEYS).unlink()
    assert example.problems() == []
    assert load_config(example.config).surveys is None


def test_surveys_yaml_is_part_of_the_config_version(example: Example) -> None:
    before = load_config(example.config).version
    example.edit(SURVEYS, "    cooldown_days: 30\n", "    cooldown_days: 14\n")
    assert load_config(example.config).version != before


def test_schema_problems_have_their_line_and_column(example: Example) -> None:
    example.edit(SURVEYS, "{id: speed, kind: scale,", "{id: speed, kind: stars,")
    example.edit(SURVEYS, "      share: 0.5\n", "      share: 1.5\n")
    problems = example.problems()
    assert len(problems) == 2, problems
    assert problems[0].startswith(f"{example.where(SURVEYS, 'stars')}: surveys.standard.questions[0].kind: ")
    assert "'scale'" in problems[0] and "'nps'" in problems[0]
    assert problems[1].startswith(f"{example.where(SURVEYS, '1.5')}: selection.queues.technical.share: ")


def test_unknown_surveys_and_queues(example: Example) -> None:
    example.edit(SURVEYS, "    survey: standard\n", "    survey: standart\n")
    example.edit(SURVEYS, "    technical:\n      mode: sample", "    technical:\n      survey: short\n      mode: sample")
    example.edit(SURVEYS, "    general:\n", "    genral:\n")
    example.edit(SURVEYS, "      technical: technical-lead\n", "      tech: technical-lead\n")
    assert example.problems() == [
        f"{example.where(SURVEYS, 'standart')}: selection.default.survey: unknown survey 'standart' "
        "(did you mean 'standard'? expected one of: standard)",
        f"{example.where(SURVEYS, 'genral')}: selection.queues.genral: unknown queue 'genral' (did you mean 'general'? "
        "expected one of: billing, general, operator, technical; queues are defined in hotlines.yaml and routing.yaml)",
        f"{example.where(SURVEYS, 'short')}: selection.queues.technical.survey: unknown survey 'short' "
        "(expected one of: standard)",
        f"{example.where(SURVEYS, 'tech:')}: followups.owners.queues.tech: unknown queue 'tech' "
        "(did you mean 'technical'? expected one of: billing, general, operator, technical)",
    ]


def test_follow_up_rules_name_questions_that_exist_with_values_their_kind_can_have(example: Example) -> None:
    example.edit(SURVEYS, "{question: resolved, equals: 0}", "{question: solved, equals: 0}")
    example.edit(SURVEYS, "{kind: scale, at_most: 1}", "{kind: scale, at_most: 0}")
    example.edit(SURVEYS, "{question: nps, at_most: 6}", "{question: nps, at_most: 10}")
    example.edit(SURVEYS, "    - when: {kind: scale, at_most: 2}",
                 "    - when: {question: resolved, equals: 2}")
    assert example.problems() == [
        f"{example.where(SURVEYS, 'question: solved', offset=10)}: followups.rules[0].when.question: unknown question 'solved' "
        "(did you mean 'resolved'? expected one of: attitude, nps, resolved, speed)",
        f"{example.where(SURVEYS, 'at_most: 0', offset=9)}: followups.rules[1].when.at_most: "
        "at_most 0 never matches a scale answer (expected 1 to 4)",
        f"{example.where(SURVEYS, 'equals: 2', offset=8)}: followups.rules[2].when.equals: "
        "question 'resolved' is yes_no: equals 2 never matches a yes_no answer (expected 0 to 1)",
        f"{example.where(SURVEYS, 'at_most: 10', offset=9)}: followups.rules[3].when.at_most: "
        "question 'nps' is nps: at_most 10 matches every nps answer (expected 0 to 9)",
    ]


def test_a_rule_for_a_kind_no_survey_asks_never_matches(example: Example) -> None:
    example.edit(SURVEYS, "      - {id: resolved, kind: yes_no, prompt: survey-resolved, timeout: 5}\n", "")
    example.edit(SURVEYS, "{question: resolved, equals: 0}", "{kind: yes_no, equals: 0}")
    assert example.problems() == [
        f"{example.where(SURVEYS, 'kind: yes_no, equals', offset=6)}: followups.rules[0].when.kind: no survey asks "
        "a yes_no question: the rule never matches (expected one of: nps, scale)",
    ]


def test_every_survey_prompt_needs_a_file_and_a_text_in_every_hotline_language(example: Example) -> None:
    shutil.copy(REPO / "prompts" / "catalog.yaml", example.root / "prompts" / "catalog.yaml")
    example.edit(SURVEYS, "thanks: survey-thanks", "thanks: survey-bye")
    where = example.where(SURVEYS, "survey-bye")
    expected = "../prompts/sounds/{0}/survey-bye.{{wav,ulaw,alaw,gsm,sln,g722}}"
    assert example.problems() == [
        f"{where}: surveys.standard.thanks: prompt 'survey-bye' has no file for language en-US (expected "
        f"{expected.format('en-US')}; needed by hotline 4008001234, 4008005678)",
        f"{where}: surveys.standard.thanks: prompt 'survey-bye' has no file for language zh-CN (expected "
        f"{expected.format('zh-CN')}; needed by hotline 4008001234)",
        f"{where}: surveys.standard.thanks: prompt 'survey-bye' is not in ../prompts/catalog.yaml (expected "
        "prompts.survey-bye with a text per language; needed by hotline 4008001234)",
        f"{where}: surveys.standard.thanks: prompt 'survey-bye' is not in ../prompts/catalog.yaml (expected "
        "prompts.survey-bye with a text per language; needed by hotline 4008001234, 4008005678)",
    ]


def test_opt_in_mode_needs_a_survey_opt_in_node(example: Example) -> None:
    example.edit(FLOW, "      2: general-survey-opt-in\n", "      2: general-queue\n")
    text = example.text(FLOW)
    start = text.index("  # General-queue callers are surveyed only if they agree")
    (example.config / FLOW).write_text(text[:start] + text[text.index("  general-queue:\n"):], encoding="utf-8")
    assert example.problems() == [
        f"{example.where(SURVEYS, 'mode: opt_in', offset=6)}: selection.queues.general.mode: mode opt_in, but no flow has "
        "a survey_opt_in node: nobody could opt in (expected one before the queue node, or another mode)",
    ]


def test_survey_opt_in_node_is_checked_like_other_nodes(example: Example) -> None:
    example.edit(FLOW, "    timeout: 3\n    next: general-queue\n", "    timeout: 3\n    next: general-q\n")
    (problem,) = [p for p in example.problems() if "nodes.general-survey-opt-in.next" in p]
    assert problem.startswith(f"{example.where(FLOW, 'next: general-q', offset=6)}: nodes.general-survey-opt-in.next: "
                              "unknown node 'general-q' (did you mean 'general-queue'?")
    example.edit(FLOW, "    next: general-q\n", "    next: general-queue\n")
    example.edit(FLOW, "    accept: [1]\n", "    accept: [1, x]\n")
    assert example.problems() == [
        f"{example.where(FLOW, 'x]')}: nodes.general-survey-opt-in.accept[1]: invalid value 'x' "
        "(expected a single key: 0-9, * or #)",
    ]
