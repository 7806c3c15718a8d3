"""The Dial that rings an agent, with the call's context as SIP headers on the agent's leg.

The ACD rings an agent with one `EXEC Dial <endpoint>,<ring>,gb(ivr-agent-headers^s^1(<args>))`.
Dial's `b()` option runs a pre-dial handler (a Gosub) on the agent's channel before its
INVITE goes out; `[ivr-agent-headers]` (dialplans/extensions_ivr.conf) adds one header
per argument with `PJSIP_HEADER(add,...)`, in the order of `HEADERS` (X-IVR-Pop-Url only
when given). Headers cost no extra AGI command: they travel in the one Dial.

Escaping. On its way to the handler an argument passes res_agi's command-line parsing
(the AGI codec quotes), Dial's argument split (`,`, with `(`/`)` and `[`/`]` nesting, `"`
quoting and `\\` escapes, the quotes and backslashes removed), its option parser (`(`/`)`
nesting, `\\` removed), `^` turned into `,`, and Gosub's split (`,`, `(`, `)`, `[`, `]`,
`"`, `\\`). EXEC does not expand `${...}`, and the handler's `${ARGn}` is expanded once,
never re-parsed; `$` and `{`/`}` are encoded too, so that the same string is safe in a
dialplan line. So every character outside a small safe set is percent-encoded (UTF-8,
like a URL): call ids, queue names, hotline numbers and language keys pass unchanged; a
URL stays the same URL (its `%` escapes are kept, and percent-encoding `,` `(` `)` `'`...
does not change what a web server reads for them in a query).
"""

from __future__ import annotations

import logging
from typing import Literal
from urllib.parse import quote

from routing.model import Caller

log = logging.getLogger(__name__)

PREDIAL_CONTEXT = "ivr-agent-headers"  # exten s, priority 1
# The headers [ivr-agent-headers] adds, ARG1 first.
HEADERS = ("X-IVR-Call-Id", "X-IVR-Queue", "X-IVR-Hotline", "X-IVR-Language", "X-IVR-Customer", "X-IVR-Pop-Url")
# Characters passed as they are: URL-safe and meaningless to Asterisk's argument parsers.
_SAFE = "-._~!*+;=&:/?#@"
# res_agi reads a command line into a 2048-byte buffer: a longer EXEC would be cut in two.
# Past this many characters of options the pop-up URL is left out (the call still rings).
MAX_OPTIONS = 1500

Customer = Literal["vip", "returning", "new"]


def customer_kind(caller: Caller) -> Customer:
    """X-IVR-Customer of a classified caller: vip wins over returning."""
    if caller.vip:
        return "vip"
    return "returning" if caller.returning else "new"


def dial_safe(value: str, *, url: bool = False) -> str:
    """`value` as a pre-dial handler argument no Asterisk parser splits or alters: every
    character outside the safe set percent-encoded. `url`: `%` is kept (the value is a URL
    whose escapes are already there); otherwise `%` is encoded too, so that decoding the
    header gives the value back."""
    return quote(value, safe=_SAFE + ("%" if url else ""))


def agent_dial_arguments(
    endpoint: str,
    ring_timeout: float,
    *,
    call_id: str,
    queue: str,
    hotline: str,
    language: str,
    customer: Customer,
    pop_url: str | None = None,
) -> tuple[str, str, str]:
    """Dial's three arguments: the agent's endpoint, the ring timeout in seconds, and the
    options `g` (the caller continues in the dialplan after the agent hangs up, here: the
    AGI gets Dial's result) plus the `b()` pre-dial handler that adds the headers."""
    values = [dial_safe(call_id), dial_safe(queue), dial_safe(hotline), dial_safe(language), dial_safe(customer)]
    options = _options(values)
    if pop_url:
        with_url = _options([*values, dial_safe(pop_url, url=True)])
        if len(with_url) <= MAX_OPTIONS:
            options = with_url
        else:
            log.warning("call %s: CRM URL of %d characters left out of the agent's INVITE (too long for AGI)",
                        call_id, len(pop_url))
    return endpoint, f"{ring_timeout:g}", options


def _options(values: list[str]) -> str:
    return f"gb({PREDIAL_CONTEXT}^s^1({'^'.join(values)}))"
