"""crm_url of a queue (routing.yaml) and of a hotline (hotlines.yaml): loaded, and `ivr check`
reports a template it could not fill in, at its line and column."""

from __future__ import annotations

from configkit import Example

from ivr.config.loader import load_config

ROUTING = "routing.yaml"
HOTLINES = "hotlines.yaml"
GOOD = "https://crm.example/customer?phone={caller}&call={call_id}"
MOH = "    moh_class: default               # Asterisk music-on-hold class while waiting\n"
FLOW = "    flow: main                   # flows/main.yaml\n"


def test_the_example_has_no_crm_url_and_one_set_loads(example: Example) -> None:
    loaded = load_config(example.config)
    assert loaded.routing is not None and loaded.routing.queues["billing"].crm_url is None
    assert loaded.directory.hotlines["4008001234"].crm_url is None
    example.edit(ROUTING, MOH, f'{MOH}    crm_url: "{GOOD}&queue={{queue}}"\n')
    example.edit(HOTLINES, FLOW, f'{FLOW}    crm_url: "{GOOD}&lang={{language}}&to={{hotline}}"\n')
    assert example.problems() == []
    loaded = load_config(example.config)
    assert loaded.routing is not None and loaded.routing.queues["billing"].crm_url == f"{GOOD}&queue={{queue}}"
    assert loaded.directory.hotlines["4008001234"].crm_url == f"{GOOD}&lang={{language}}&to={{hotline}}"


def test_an_unknown_field_broken_braces_and_a_url_that_is_not_http_are_reported(example: Example) -> None:
    example.edit(ROUTING, MOH, f'{MOH}    crm_url: "https://crm.example/?agent={{agent}}"\n')
    example.edit(HOTLINES, FLOW, f'{FLOW}    crm_url: "crm.example/?phone={{caller}}"\n')
    example.edit(HOTLINES, "    entry: welcome-english       # skips the language choice\n",
                 '    entry: welcome-english       # skips the language choice\n'
                 '    crm_url: "https://crm.example/?phone={caller"\n')
    assert sorted(example.problems()) == sorted([
        f"{example.where(ROUTING, 'https://crm.example/?agent', offset=-1)}: queues.billing.crm_url: invalid CRM URL "
        "template: unknown field {agent} (expected one of: caller, call_id, queue, hotline, language)",
        f"{example.where(HOTLINES, 'crm.example/?phone={caller}', offset=-1)}: hotlines.4008001234.crm_url: invalid CRM "
        "URL template: expected an http:// or https:// URL with a host, e.g. "
        "https://crm.example/customer?phone={caller}&call={call_id}",
        f"{example.where(HOTLINES, 'https://crm.example/?phone={caller', offset=-1)}: hotlines.4008005678.crm_url: "
        "invalid CRM URL template: expected '}' before end of string",
    ])
