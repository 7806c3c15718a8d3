"""The config.c reader and the checkers, on small files written to tmp_path (most of them broken on purpose)."""

from __future__ import annotations

from pathlib import Path

import pytest

from asterisk_conf import (
    Config,
    Problem,
    check_dialplan,
    check_manager,
    check_pjsip,
    check_queues,
    dialplan,
    extension_matches,
    read,
)


def write(tmp_path: Path, text: str, name: str = "test.conf") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def messages(problems: list[Problem]) -> list[str]:
    return [str(p) for p in problems]


def has(problems: list[Problem], path: Path, line: int, fragment: str) -> None:
    """Some problem at path:line whose message contains fragment (others may follow from it)."""
    assert any(str(p).startswith(f"{path}:{line}: ") and fragment in p.message for p in problems), messages(problems)


def only(problems: list[Problem], path: Path, line: int, fragment: str) -> None:
    """Exactly one problem, at path:line, whose message contains fragment."""
    assert len(problems) == 1, messages(problems)
    assert str(problems[0]).startswith(f"{path}:{line}: "), messages(problems)
    assert fragment in problems[0].message, messages(problems)


def plan_problems(tmp_path: Path, text: str) -> tuple[Path, list[Problem]]:
    path = write(tmp_path, text, "extensions.conf")
    return path, check_dialplan(dialplan(read(path)))


# --- config.c syntax -----------------------------------------------------------------------


def test_comments_escapes_and_block_comments(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[a] ; a comment after the header\n"
        "x = 1 ; gone\n"
        "y = semi\\;colon ; the escaped one stays\n"
        ";-- a block comment\n"
        "z = hidden\n"
        "  ;-- nested --;\n"
        "still = hidden\n"
        "--; w = visible\n"
        "v = before ;-- inline block --; after\n"
        ";--- three dashes: an ordinary comment, not a block\n"
        "u = 2\n",
    )
    config = read(path)
    assert config.problems == []
    (cat,) = config.sections("a")
    assert [(v.name, v.value) for v in cat.variables] == [
        ("x", "1"),
        ("y", "semi;colon"),
        ("w", "visible"),
        ("v", "before  after"),
        ("u", "2"),
    ]


def test_a_stray_block_end_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "[a]\nx = 1 --; oops\ny = 2\n")
    only(read(path).problems, path, 2, "'--;' closes no ';--' block comment")


def test_unterminated_block_comment(tmp_path: Path) -> None:
    path = write(tmp_path, "[a]\nx = 1\n;-- never closed\ny = 2\n")
    only(read(path).problems, path, 3, "unterminated ';--' block comment")


def test_templates_inheritance_objects_and_append(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[tpl](!)\ntype = endpoint\ncontext = one\n"
        "[other](!)\nallow = ulaw\n"
        "[ep](tpl,other)\ncontext = two\nmember => PJSIP/1\nallow +=,alaw\n"
        "[ep]\ntype = aor\n"
        "[ep](+)\nmax_contacts = 1\n",
    )
    config = read(path)
    assert config.problems == []
    assert [c.name for c in config.sections()] == ["ep", "ep"]  # templates skipped, repeats kept
    endpoint, aor = config.sections("ep")
    assert endpoint.bases == ["tpl", "other"]
    assert endpoint.get("type") == "endpoint" and endpoint.get("context") == "two"
    assert endpoint.get("allow") == "ulaw,alaw"
    assert [v.object for v in endpoint.variables if v.name == "member"] == [True]
    assert [v.inherited for v in endpoint.variables][:3] == [True, True, True]
    # (+) appends to the first [ep], as ast_category_get finds it
    assert endpoint.get("max_contacts") == "1" and aor.get("max_contacts") is None


def test_include_is_relative_to_the_top_file_and_continues_the_category(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    write(tmp_path, "b = 2\n[second]\nc = 3\n", "conf.d/part.conf")
    top = write(tmp_path, '[first]\na = 1\n#include "conf.d/part.conf"\nd = 4\n#tryinclude missing.conf\n')
    config = read(top)
    assert config.problems == []
    first, second = config.sections()
    assert [v.name for v in first.variables] == ["a", "b", "d"]
    assert [v.name for v in second.variables] == ["c"]
    assert first.variables[1].file == tmp_path / "conf.d/part.conf"


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("[a\nx = 1\n", 1, "no closing ']'"),
        ("[a](tpl\nx = 1\n", 1, "no closing ')'"),
        ("[a](nosuch)\n", 1, "category 'nosuch' does not exist"),
        ("[a](+)\n", 1, "category addition requested"),
        ("x = 1\n[a]\n", 1, "no category context"),
        ("[a]\njust words\n", 2, "no '=' (equal sign)"),
        ("[a]\n = value\n", 2, "no variable name"),
        ("[a]\n#include nowhere.conf\n", 2, "listed as a #include but it does not exist"),
        ("[a]\n#inclde x.conf\n", 2, "unknown directive '#inclde'"),
        ("[a]\n#include\n", 2, "needs an argument"),
        ("[a] junk\n", 1, "text after ']' is ignored"),
        ("[a]\n\\ x = 1\n", 2, "invalid escape"),
    ],
)
def test_malformed_lines(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    path = write(tmp_path, text)
    only(read(path).problems, path, line, fragment)


def test_a_fatal_error_stops_the_file_like_asterisk(tmp_path: Path) -> None:
    path = write(tmp_path, "[a]\nx = 1\n[b\n[c]\ny = 2\n")
    config = read(path)
    assert [c.name for c in config.categories] == ["a"]
    only(config.problems, path, 3, "no closing ']'")


# --- extensions.conf -----------------------------------------------------------------------

GOOD_PLAN = """\
[general]
static = yes
[globals]
TARGET = 100
[a]
exten => ${TARGET},1,Answer()
 same => n(top),Set(X=${IF($["${Y}" = "1"]?a:b)})
 same => n,GotoIf($["${X}" = "a"]?top:b,250,1)
 same => n,Gosub(b,200,1(arg1,arg2))
 same => n,Queue(q,cF(b^200^1),,,30)
 same => n,ExecIf($[1]?Set(Z=1):NoOp())
 same => n,Hangup()
exten => 100,hint,PJSIP/100
[b]
exten => _2XX,1,Goto(a,100,top)
 same => 5,Return()
 same => n,Dial(PJSIP/1,20,G(a^100^1))
include => a
"""


def test_a_good_dialplan_has_no_problems(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD_PLAN, "extensions.conf")
    plan = dialplan(read(path))
    assert check_dialplan(plan) == []
    assert plan.globals == {"TARGET": "100"}
    steps = plan.contexts["a"].extensions["100"]
    assert sorted(steps) == [-1, 1, 2, 3, 4, 5, 6, 7]  # ${TARGET} substituted from [globals]
    assert steps[2].label == "top" and steps[2].app == "Set"
    assert sorted(plan.contexts["b"].extensions["_2XX"]) == [1, 5, 6]
    assert plan.has_place("b", "250") and not plan.has_place("b", "300")
    assert plan.has_place("b", "100")  # via include => a


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("exten => 1,0,NoOp()", "invalid priority '0'"),
        ("exten => 1,x,NoOp()", "invalid priority/label 'x'"),
        ("exten => 1,n,NoOp()", "can't use 'n' priority on the first entry"),
        ("same => n,NoOp()", "'same' before any 'exten'"),
        ("exten => 1,1(top,NoOp()", "label missing trailing ')'"),
        ("exten => 1,1,Macro(old)", "unknown application 'Macro'"),
        ("exten => 1,1,Answr()", "unknown application 'Answr'"),
        ("exten => 1,1,Set(A=${B)", "'${' at offset 2 is never closed with '}'"),
        ("exten => 1,1,Set(A=${B)C})", "unbalanced ')' at offset 5 (expected '}')"),
        ("exten => 1,1,Set(A=$[1 + 2)", "'$[' at offset 2 is never closed with ']'"),
        ("exten => 1,1,Set(A=$[1 + (2])", "unbalanced ']' at offset 10 (expected ')')"),
        ("exten => 1,1,Set(A=${LEN(${B}})", "unbalanced '}'"),
        ("exten => 1,1,NoOp(${B}", "no closing parenthesis"),
        ("exten => 1,1,NoOp(x) trailing", "text after the closing ')' is ignored"),
        ("exten => 1,1,Goto(nowhere,1,1)", "context 'nowhere' does not exist"),
        ("exten => 1,1,GotoIf($[1]?b,1,1:nowhere,1,1)", "context 'nowhere' does not exist"),
        ("exten => 1,1,Gosub(nowhere,s,1(x))", "context 'nowhere' does not exist"),
        ("exten => 1,1,Queue(q,F(nowhere^s^1))", "context 'nowhere' does not exist"),
        ("exten => 1,1,Dial(PJSIP/1,20,F(nowhere^s^1))", "context 'nowhere' does not exist"),
        ("exten => 1,1,Goto(b,9,1)", "no extension '9' in context 'b'"),
        ("exten => 1,1,Goto(b,1,nolabel)", "no label 'nolabel' in b,1"),
        ("exten => 1,1,GotoIf($[1]?nolabel)", "no label 'nolabel' in a,1"),
        ("exten => 1,1,ExecIf($[1]?Nope(x))", "unknown application 'Nope'"),
        ("include => nowhere", "context 'nowhere' does not exist"),
        ("exten => _.,1,NoOp()", "strongly discouraged"),
        ("bogus => 1", "unknown directive 'bogus'"),
    ],
)
def test_broken_dialplan_lines_are_reported(tmp_path: Path, body: str, fragment: str) -> None:
    path, problems = plan_problems(tmp_path, f"[b]\nexten => 1,1,NoOp()\n[a]\n{body}\n")
    only(problems, path, 4, fragment)


def test_a_duplicate_priority_is_reported(tmp_path: Path) -> None:
    path, problems = plan_problems(tmp_path, "[a]\nexten => 1,1,NoOp()\n same => 1,Hangup()\n")
    only(problems, path, 3, "priority 1 of extension '1' in context 'a' is already in use")


def test_problems_in_an_included_file_name_that_file(tmp_path: Path) -> None:
    inner = write(tmp_path, "[a]\nexten => 1,1,Playbak(x)\n", "inner.conf")
    top = write(tmp_path, "[general]\n#include inner.conf\n", "extensions.conf")
    only(check_dialplan(dialplan(read(top))), inner, 2, "unknown application 'Playbak'")


@pytest.mark.parametrize(
    ("pattern", "exten", "matches"),
    [
        ("_400XXXXXXX", "4008001234", True),
        ("_400XXXXXXX", "400800123", False),
        ("_X.", "400", True),
        ("_X.", "4", False),
        ("_X!", "4", True),
        ("_[a-z].", "billing", True),
        ("_[a-z].", "Billing", False),
        ("_NXX", "199", False),
        ("_Z", "0", False),
        ("400", "400", True),
    ],
)
def test_extension_patterns(pattern: str, exten: str, matches: bool) -> None:
    assert extension_matches(pattern, exten) is matches


# --- pjsip.conf, queues.conf, manager.conf -------------------------------------------------

PJSIP = """\
[udp]
type = transport
protocol = udp
bind = 127.0.0.1:5060
[ep-tpl](!)
type = endpoint
transport = udp
[1001](ep-tpl)
auth = 1001
aors = 1001
[1001]
type = auth
username = 1001
[1001]
type = aor
"""


def test_pjsip_types_come_from_templates_and_references_resolve(tmp_path: Path) -> None:
    assert check_pjsip(read(write(tmp_path, PJSIP))) == []


@pytest.mark.parametrize(
    ("old", "new", "line", "fragment"),
    [
        ("[1001]\ntype = aor\n", "[1001]\n", 14, "[1001] has no type="),
        ("type = aor\n", "type = aorr\n", 14, "type=aorr, not one of"),
        ("auth = 1001\n", "auth = 1002\n", 9, "auth=1002: no type=auth section named '1002'"),
        ("aors = 1001\n", "aors = 1001,1009\n", 10, "aors=1009: no type=aor section"),
        ("transport = udp\n", "transport = tcp\n", 7, "transport=tcp: no type=transport section"),
    ],
)
def test_broken_pjsip(tmp_path: Path, old: str, new: str, line: int, fragment: str) -> None:
    assert PJSIP.count(old) == 1
    path = write(tmp_path, PJSIP.replace(old, new))
    has(check_pjsip(read(path)), path, line, fragment)


QUEUES = "[general]\npersistentmembers = no\n[q]\nstrategy = rrmemory\njoinempty = unavailable,invalid\nmember => PJSIP/1001\n"


def test_good_queues(tmp_path: Path) -> None:
    assert check_queues(read(write(tmp_path, QUEUES))) == []


@pytest.mark.parametrize(
    ("old", "new", "line", "fragment"),
    [
        ("strategy = rrmemory", "strategy = roundrobin", 4, "strategy 'roundrobin' is not one of"),
        ("strategy = rrmemory", "strategey = rrmemory", 4, "'strategey' is not a queues.conf option"),
        ("strategy = rrmemory", "membermacro = old", 4, "'membermacro' is not a queues.conf option"),
        ("joinempty = unavailable,invalid", "joinempty = unavailable,nobody", 5, "unknown condition(s) ['nobody']"),
        ("persistentmembers = no", "strategy = ringall", 2, "'strategy' is not a queues.conf option"),
    ],
)
def test_broken_queues(tmp_path: Path, old: str, new: str, line: int, fragment: str) -> None:
    path = write(tmp_path, QUEUES.replace(old, new))
    only(check_queues(read(path)), path, line, fragment)


def test_manager_classes_and_enabled(tmp_path: Path) -> None:
    good = "[general]\nenabled = yes\n[ivr]\nsecret = s\nread = call,agent,dialplan\nwrite = originate\n"
    assert check_manager(read(write(tmp_path, good))) == []
    path = write(tmp_path, good.replace("dialplan", "dialplans"))
    only(check_manager(read(path)), path, 5, "'dialplans' is not an AMI class")
    path = write(tmp_path, good.replace("enabled = yes", "enabled = no"))
    only(check_manager(read(path)), path, 1, "enabled = yes is missing")


# --- the files a real Asterisk 22 loaded ---------------------------------------------------


def test_files_a_real_asterisk_loaded_pass_the_checker(transcripts: Path) -> None:
    extensions = read(transcripts / "recording-extensions.conf")
    assert messages(check_dialplan(dialplan(extensions))) == []
    assert messages(check_pjsip(read(transcripts / "recording-pjsip.conf"))) == []
    assert messages(check_queues(read(transcripts / "recording-queues.conf"))) == []
    pjsip: Config = read(transcripts / "recording-pjsip.conf")
    assert [c.get("type") for c in pjsip.sections("caller1")] == ["endpoint", "auth", "aor"]
