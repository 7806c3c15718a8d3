"""The example configuration is what a newcomer sees first: it must load cleanly."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ivr.config.loader import ConfigError, check_config, load_config
from ivr.config.models import LanguageNode, LookupNode, MenuNode
from ivr.config.validate import reachable

from configkit import EXAMPLE_CONFIG, Example


def test_example_config_has_no_problems() -> None:
    assert [str(p) for p in check_config(EXAMPLE_CONFIG)] == []


def test_example_config_loads_with_its_two_hotlines() -> None:
    config = load_config(EXAMPLE_CONFIG)
    assert set(config.directory.hotlines) == {"4008001234", "4008005678"}
    assert set(config.directory.queues) == {"billing", "technical", "general", "operator"}
    zh = config.directory.hotlines["4008001234"]
    assert (zh.language, zh.languages, zh.timezone, zh.flow) == ("zh-CN", ("zh-CN", "en-US"), "Asia/Shanghai", "main")
    assert config.entry_for(zh) == "welcome"
    en = config.directory.hotlines["4008005678"]
    assert en.languages == ("en-US",)
    assert config.entry_for(en) == "welcome-english"
    assert config.flow_versions == {"main": "2026.1"}
    assert config.version.startswith("cfg-") and len(config.version) == 16
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.version = "x"  # type: ignore[misc]


def test_example_flow_shape() -> None:
    flow = load_config(EXAMPLE_CONFIG).flows["main"]
    language = flow.nodes["choose-language"]
    assert isinstance(language, LanguageNode) and language.options == {"1": "zh-CN", "2": "en-US"}
    main = flow.nodes["main-menu"]
    assert isinstance(main, MenuNode)
    assert main.options == {"1": "billing-menu", "2": "technical-menu", "3": "leave-message"}
    assert (main.operator, main.repeat) == ("operator", "#")
    technical = flow.nodes["technical-menu"]
    assert isinstance(technical, MenuNode) and technical.back
    lookup = flow.nodes["balance-lookup"]
    assert isinstance(lookup, LookupNode) and lookup.request.url == "/billing/balance"
    assert load_config(EXAMPLE_CONFIG).server.lookups.base_url == "http://127.0.0.1:8089"
    assert reachable(flow, "welcome") >= {"main-menu", "balance-lookup", "order-lookup", "goodbye", "operator"}


def test_hotline_for_accepts_trunk_prefixes() -> None:
    config = load_config(EXAMPLE_CONFIG)
    for dialed in ("4008001234", "400-800-1234", "+864008001234", "00864008001234", "04008001234"):
        found = config.hotline_for(dialed)
        assert found is not None and found[0] == "4008001234", dialed
    assert config.hotline_for("4008009999") is None


def test_prompt_path_is_the_asterisk_path_without_extension() -> None:
    config = load_config(EXAMPLE_CONFIG)
    assert config.prompt_path("zh-CN", "welcome") == "/var/lib/asterisk/sounds/ivr/zh-CN/welcome"
    assert config.prompt_dir.resolve() == (EXAMPLE_CONFIG / "../prompts/sounds").resolve()


def test_flow_version_falls_back_to_the_file_hash(example: Example) -> None:
    example.edit("flows/main.yaml", 'version: "2026.1"\n', "")
    config = load_config(example.config)
    assert config.flow_versions["main"].startswith("sha-") and len(config.flow_versions["main"]) == 16


def test_config_version_changes_with_any_file(example: Example) -> None:
    before = load_config(example.config).version
    example.edit("flows/main.yaml", "timeout: 4", "timeout: 3")
    assert load_config(example.config).version != before


def test_server_yaml_is_optional(example: Example) -> None:
    (example.config / "server.yaml").unlink()
    # With every default there is no lookup backend: the example's relative lookup URLs
    # are then the only problems.
    assert [p.split(": ", 2)[1] for p in example.problems()] == [
        "nodes.balance-lookup.request.url",
        "nodes.order-lookup.request.url",
    ]


def test_load_config_raises_with_every_problem(example: Example) -> None:
    example.edit("hotlines.yaml", "timezone: Asia/Shanghai\n    flow: main                   # flows",
                 "timezone: Asia/Shangai\n    flow: main                   # flows")
    with pytest.raises(ConfigError) as caught:
        load_config(example.config)
    assert [str(p) for p in caught.value.problems] == example.problems()
    assert "Asia/Shangai" in str(caught.value)


def test_missing_directory_file(tmp_path: Path) -> None:
    assert [str(p) for p in check_config(tmp_path)] == [
        f"hotlines.yaml: not found in {tmp_path} (expected languages, hotlines, schedules and queues)"
    ]
