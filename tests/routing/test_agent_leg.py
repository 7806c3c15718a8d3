"""The agent leg's Dial arguments (routing.agent_leg) and the CRM link (routing.crm): pure
functions, and the arguments taken apart again the way Asterisk 22 does (the AGI codec's
quoting, res_agi's command line, Dial's argument split, its option parser, Gosub's split:
ivr.pbxsim.channel follows app.c and app_stack.c)."""

from __future__ import annotations

import random
from urllib.parse import unquote

import pytest

from ivr.agi.commands import Exec
from ivr.pbxsim.channel import gosub_target, parse_args, parse_options, separate_args
from routing import service
from routing.agent_leg import HEADERS, MAX_OPTIONS, PREDIAL_CONTEXT, agent_dial_arguments, customer_kind, dial_safe
from routing.config import QueueConfig
from routing.crm import FIELDS, crm_link, template_problems
from routing.model import Caller

NASTY = 'a,b(c)^d|e"f\\g$h[i]j{k}l m\'n%o;p=q&r#s/t?u:v@w*x+y!z~汉字\tend'


def as_asterisk_sees_it(arguments: tuple[str, str, str]) -> tuple[str, str, dict[str, str | None], tuple[str, str, str, list[str]]]:
    """Endpoint, ring timeout, Dial's options and the b() handler's target and ARG1..n, as
    Asterisk gets them from the controller's `EXEC Dial` line."""
    line = Exec("Dial", arguments).line().encode().decode().rstrip("\n")
    argv = parse_args(line)
    assert argv[:2] == ["EXEC", "Dial"] and len(argv) == 3, argv
    endpoint, ring, options = separate_args(argv[2])
    parsed = parse_options(options)
    return endpoint, ring, parsed, gosub_target(parsed["b"] or "")


def test_the_dial_keeps_endpoint_ring_timeout_and_g_and_adds_the_handler() -> None:
    arguments = agent_dial_arguments("PJSIP/1001", 15, call_id="3f2a9c", queue="billing", hotline="4008001234",
                                     language="zh-CN", customer="vip")
    assert arguments == ("PJSIP/1001", "15", "gb(ivr-agent-headers^s^1(3f2a9c^billing^4008001234^zh-CN^vip))")
    assert agent_dial_arguments("PJSIP/1001", 0.5, call_id="c", queue="q", hotline="400", language="en-US",
                                customer="new")[1] == "0.5"
    endpoint, ring, options, handler = as_asterisk_sees_it(arguments)
    assert (endpoint, ring, set(options)) == ("PJSIP/1001", "15", {"g", "b"})
    assert handler == (PREDIAL_CONTEXT, "s", "1", ["3f2a9c", "billing", "4008001234", "zh-CN", "vip"])


def test_every_value_reaches_the_handler_intact_whatever_it_holds() -> None:
    url = "https://crm.example/c?phone=%2B86138&x=a,b(c)&y=[1]&z=$HOME&q=\"x\"\\"
    arguments = agent_dial_arguments("PJSIP/1001", 15, call_id=NASTY, queue="q^1", hotline="4008001234,9",
                                     language="zh(CN)", customer="returning", pop_url=url)
    _, _, options, (context, exten, priority, args) = as_asterisk_sees_it(arguments)
    assert (context, exten, priority, set(options)) == (PREDIAL_CONTEXT, "s", "1", {"g", "b"})
    assert len(args) == len(HEADERS)
    assert [unquote(a) for a in args[:5]] == [NASTY, "q^1", "4008001234,9", "zh(CN)", "returning"]
    # The URL keeps its own escapes and is the same URL once decoded.
    assert unquote(args[5]) == unquote(url) and "%2B86138" in args[5]
    assert not set(args[5]) & set(',()^|"\\$[]{} ')


def test_random_values_never_break_the_split() -> None:
    rng = random.Random(7)
    alphabet = ',()^|"\\$[]{} \'%;:=&?#/@!*+~-._aZ9汉\t'
    for _ in range(300):
        values = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(4)]
        arguments = agent_dial_arguments("PJSIP/1002", 20, call_id=values[0], queue=values[1], hotline=values[2],
                                         language=values[3], customer="new", pop_url="https://x.example/?" + values[0])
        endpoint, ring, options, (_, _, _, args) = as_asterisk_sees_it(arguments)
        assert (endpoint, ring, "g" in options) == ("PJSIP/1002", "20", True)
        assert [unquote(a) for a in args[:4]] == values
        assert unquote(args[5]) == unquote("https://x.example/?" + dial_safe(values[0], url=True))


def test_dial_safe_leaves_ids_and_urls_alone() -> None:
    for value in ("3f2a9c0e1d", "billing", "tier-1.queue_x", "4008001234", "zh-CN", "+8613800138000"):
        assert dial_safe(value) == value
    url = "https://crm.example/customer?phone=%2B86138&call=abc#top"
    assert dial_safe(url, url=True) == url
    assert dial_safe("50%") == "50%25" and dial_safe("50%", url=True) == "50%"


def test_an_empty_or_missing_crm_link_adds_no_sixth_argument() -> None:
    for pop_url in (None, ""):
        options = agent_dial_arguments("PJSIP/1", 5, call_id="c", queue="q", hotline="h", language="l",
                                       customer="new", pop_url=pop_url)[2]
        assert options == "gb(ivr-agent-headers^s^1(c^q^h^l^new))"


def test_a_crm_link_too_long_for_an_agi_line_is_left_out_not_the_call(caplog: pytest.LogCaptureFixture) -> None:
    options = agent_dial_arguments("PJSIP/1", 5, call_id="c", queue="q", hotline="h", language="l", customer="new",
                                   pop_url="https://crm.example/?" + "x" * MAX_OPTIONS)[2]
    assert options == "gb(ivr-agent-headers^s^1(c^q^h^l^new))"
    assert "left out of the agent's INVITE" in caplog.text


def test_customer_kind_vip_wins_over_returning() -> None:
    base = Caller("c", "q", 0.0)
    assert customer_kind(base) == "new"
    assert customer_kind(Caller("c", "q", 0.0, returning=True)) == "returning"
    assert customer_kind(Caller("c", "q", 0.0, returning=True, vip=True)) == "vip"
    assert customer_kind(Caller("c", "q", 0.0, vip=True)) == "vip"


# --- the CRM link --------------------------------------------------------------------------------


def link(template: str, caller: str = "+86 138/00") -> str:
    return crm_link(template, caller=caller, call_id="abc123", queue="billing", hotline="4008001234", language="zh-CN")


def test_crm_link_fills_in_every_field_url_encoded() -> None:
    assert link("https://crm.example/customer?phone={caller}&call={call_id}") == \
        "https://crm.example/customer?phone=%2B86%20138%2F00&call=abc123"
    assert link("https://crm.example/{queue}/{hotline}?lang={language}") == \
        "https://crm.example/billing/4008001234?lang=zh-CN"
    assert link("https://crm.example/x?a={caller}&b={caller}", caller="a&b=c") == \
        "https://crm.example/x?a=a%26b%3Dc&b=a%26b%3Dc"
    assert link("https://crm.example/{{literal}}") == "https://crm.example/{literal}"
    assert set(FIELDS) == {"caller", "call_id", "queue", "hotline", "language"}


@pytest.mark.parametrize("template", ["https://x/{agent}", "https://x/{caller!r}", "https://x/{caller:>5}",
                                      "https://x/{caller.real}", "https://x/{0}", "https://x/{}", "https://x/{caller",
                                      "https://x/caller}"])
def test_crm_link_refuses_what_ivr_check_reports(template: str) -> None:
    with pytest.raises(ValueError):
        link(template)
    (problem,) = template_problems(template)
    assert problem.startswith("invalid CRM URL template: ")


def test_template_problems_names_the_unknown_field_and_wants_http() -> None:
    assert template_problems("https://crm.example/customer?phone={caller}&call={call_id}") == []
    assert template_problems("http://10.0.0.5:8080/pop?c={caller}") == []
    assert template_problems("https://crm.example/?id={agent}") == [
        "invalid CRM URL template: unknown field {agent} (expected one of: caller, call_id, queue, hotline, language)"]
    for template in ("crm.example/?phone={caller}", "ftp://crm.example/{caller}", "https:///path", "javascript:alert(1)"):
        (problem,) = template_problems(template)
        assert "expected an http:// or https:// URL with a host" in problem, template
    assert "spaces" in template_problems("https://crm.example/a b")[0]
    assert "Single '}'" in template_problems("https://crm.example/}")[0]


# --- which template the ACD uses ---------------------------------------------------------------


def acd_call(crm_url: str | None) -> service.AcdCall:
    async def play(prompts: tuple[str, ...]) -> str | None:
        return None

    async def say(kind: str, value: object) -> str | None:
        return None

    return service.AcdCall("call-9", "4008001234", "+8613700000001", "en-US", "en", None, play, say,  # type: ignore[arg-type]
                           lambda queue: None, crm_url=crm_url)  # type: ignore[arg-type,return-value]


def stay(crm_url: str | None, *, vip: bool = False, returning: bool = False) -> service._Stay:
    caller = Caller("call-9", "billing", 0.0, language="en-US", vip=vip, returning=returning)
    return service._Stay("billing", QueueConfig(crm_url=crm_url), caller)


def agent_dial(call: service.AcdCall, stay: service._Stay) -> tuple[str, str, str]:
    """The Dial the ACD sends for this offer (its CRM link worked out once, as in `_offer`)."""
    return service._agent_dial(call, stay, "PJSIP/1001", 15, service._pop_url(call, stay))


def test_the_queue_crm_url_wins_over_the_hotline_one() -> None:
    options = agent_dial(acd_call("https://hotline.example/?c={call_id}"),
                         stay("https://queue.example/?p={caller}&q={queue}"))[2]
    assert options.endswith("^en-US^new^https://queue.example/?p=%2B8613700000001&q=billing))")
    options = agent_dial(acd_call("https://hotline.example/?c={call_id}"), stay(None, returning=True))[2]
    assert options == "gb(ivr-agent-headers^s^1(call-9^billing^4008001234^en-US^returning^https://hotline.example/?c=call-9))"
    assert agent_dial(acd_call(None), stay(None, vip=True, returning=True)) == (
        "PJSIP/1001", "15", "gb(ivr-agent-headers^s^1(call-9^billing^4008001234^en-US^vip))")


def test_a_broken_template_costs_the_link_not_the_call(caplog: pytest.LogCaptureFixture) -> None:
    options = agent_dial(acd_call("https://x.example/{agent}"), stay(None))[2]
    assert options == "gb(ivr-agent-headers^s^1(call-9^billing^4008001234^en-US^new))"
    assert "CRM URL template" in caplog.text
