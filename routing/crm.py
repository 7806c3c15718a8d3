"""The CRM link of a call: a URL template of routing.yaml (per queue) or hotlines.yaml (per
hotline), filled in with the call's values. The agent's phone gets it in the INVITE
(`X-IVR-Pop-Url`, routing.agent_leg) and the agent desktop shows the same link.

A template is a URL with `{field}`s, e.g. `https://crm.example/customer?phone={caller}&call={call_id}`;
`{{` and `}}` are a literal brace. Each value is URL-encoded whole (`urllib.parse.quote`,
safe=""): `+8613800138000` becomes `%2B8613800138000`.
"""

from __future__ import annotations

import string
from urllib.parse import quote, urlsplit

# The fields a template may use: the caller's number as received, the controller's call id,
# the queue, the dialed hotline number and the caller's language key (zh-CN).
FIELDS = ("caller", "call_id", "queue", "hotline", "language")


def _parts(template: str) -> list[tuple[str, str | None]]:
    """(literal text, field name or None); ValueError for broken braces or a field that is
    not a plain name of FIELDS (no format spec, conversion, index or attribute)."""
    parts: list[tuple[str, str | None]] = []
    for literal, name, spec, conversion in string.Formatter().parse(template):
        if name is not None:
            if spec or conversion or name not in FIELDS:
                shown = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
                raise ValueError(f"unknown field {{{shown}}} (expected one of: {', '.join(FIELDS)})")
        parts.append((literal, name))
    return parts


def crm_link(template: str, *, caller: str, call_id: str, queue: str, hotline: str, language: str) -> str:
    """The template with its fields filled in, each value URL-encoded. ValueError for a
    template `template_problems` would report (broken braces, an unknown field)."""
    values = {"caller": caller, "call_id": call_id, "queue": queue, "hotline": hotline, "language": language}
    return "".join(literal + ("" if name is None else quote(values[name], safe="")) for literal, name in _parts(template))


def template_problems(template: str) -> list[str]:
    """What is wrong with a CRM URL template (empty: nothing), for `ivr check`."""
    try:
        _parts(template)
    except ValueError as exc:
        return [f"invalid CRM URL template: {exc}"]
    sample = crm_link(template, caller="13800138000", call_id="c1", queue="q", hotline="4000000000", language="en-US")
    try:
        url = urlsplit(sample)
    except ValueError as exc:
        return [f"invalid CRM URL template: not a URL ({exc})"]
    if url.scheme not in ("http", "https") or not url.netloc:
        return ["invalid CRM URL template: expected an http:// or https:// URL with a host, "
                "e.g. https://crm.example/customer?phone={caller}&call={call_id}"]
    if any(ch.isspace() or ord(ch) < 0x20 for ch in sample):
        return ["invalid CRM URL template: spaces and control characters are not allowed in a URL (write %20)"]
    return []
