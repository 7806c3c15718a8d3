"""Tier 1: the sans-IO codec on bytes recorded from a real Asterisk 22, and on broken input."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.agi.codec import (
    NEED_DATA,
    AgiParser,
    CommandLine,
    ConnectionClosed,
    Environment,
    HangupLine,
    Quoted,
    Reply,
    Word,
    quote,
)
from ivr.agi import commands as c
from ivr.pbxsim.channel import parse_args  # res_agi.c parse_args, ported
from ivr.agi.errors import (
    AgiAppNotFound,
    AgiHangup,
    AgiInvalidCommand,
    AgiProtocolError,
    AgiRecordNotWritten,
    AgiUsageError,
)


def asterisk_bytes(path: Path) -> bytes:
    return b"".join(line[3:].encode() for line in path.read_text().splitlines(True) if line.startswith("A> "))


def server_lines(path: Path) -> list[str]:
    return [line[3:].rstrip("\n") for line in path.read_text().splitlines(True) if line.startswith("S> ")]


def events(parser: AgiParser) -> list[object]:
    out: list[object] = []
    while True:
        event = parser.next_event()
        if event is NEED_DATA:
            return out
        out.append(event)
        if isinstance(event, ConnectionClosed):
            return out


def parse_all(data: bytes, chunk: int | None = None) -> list[object]:
    parser = AgiParser()
    out: list[object] = []
    step = chunk or len(data) or 1
    for start in range(0, len(data), step):
        parser.receive_data(data[start : start + step])
        out += events(parser)
    parser.receive_data(b"")
    return out + events(parser)


def test_environment_block_of_a_local_channel(transcripts: Path) -> None:
    env = parse_all(asterisk_bytes(transcripts / "agi-digits.txt"))[0]
    assert isinstance(env, Environment)
    assert env.script_path == "ivr"
    assert env.query == {"hotline": "400", "scn": "digits"}
    assert env.args == ("arg1", "arg two")
    assert env.extension == "400"
    assert env.dnid == ""  # Asterisk says "unknown" on Local channels
    assert env.callerid == "13800138000"
    assert env.uniqueid == "1795485396.1"
    assert env.get("accountcode") == ""


def test_environment_of_a_sip_caller_has_dnid(transcripts: Path) -> None:
    env = parse_all(asterisk_bytes(transcripts / "agi-sip-caller.txt"))[0]
    assert isinstance(env, Environment)
    assert env.dnid == "400"
    assert env.query == {"hotline": "400", "scn": ""}
    assert env.channel.startswith("PJSIP/caller1-")


@pytest.mark.parametrize("name", ["digits", "silent", "hangup", "survey", "sip-caller"])
def test_split_anywhere_gives_the_same_events(transcripts: Path, name: str) -> None:
    data = asterisk_bytes(transcripts / f"agi-{name}.txt")
    whole = parse_all(data)
    for chunk in (1, 2, 3, 7, 64):
        assert parse_all(data, chunk) == whole
    assert isinstance(whole[-1], ConnectionClosed)


def replies_by_command(path: Path) -> list[tuple[str, list[object]]]:
    """Pair each server command of a transcript with the events Asterisk sent for it."""
    evs = parse_all(asterisk_bytes(path))[1:-1]
    pairs: list[tuple[str, list[object]]] = []
    for command in server_lines(path):
        got: list[object] = []
        while evs:
            event = evs.pop(0)
            got.append(event)
            if isinstance(event, Reply):
                break
        pairs.append((command, got))
    return pairs


def test_digits_transcript_reply_forms(transcripts: Path) -> None:
    pairs = dict(replies_by_command(transcripts / "agi-digits.txt"))
    stream = pairs['STREAM FILE tt-monkeys "12"'][-1]
    assert isinstance(stream, Reply)
    assert c.StreamFile("tt-monkeys", "12").decode(stream) == c.Playback("2", 9600)
    getdata = pairs["GET DATA beep 6000 3"][-1]
    assert isinstance(getdata, Reply)
    assert c.GetData("beep", 6000, 3).decode(getdata) == c.DigitInput("13", timed_out=False)
    timeout = pairs["GET DATA beep 1000"][-1]
    assert isinstance(timeout, Reply)
    assert c.GetData("beep", 1000, 1).decode(timeout) == c.DigitInput("", timed_out=True)
    var = pairs["GET VARIABLE MYVAR"][-1]
    assert isinstance(var, Reply) and c.GetVariable("MYVAR").decode(var) == "hello world"
    unset = pairs["GET VARIABLE NO_SUCH_VAR"][-1]
    assert isinstance(unset, Reply) and c.GetVariable("NO_SUCH_VAR").decode(unset) is None
    full = pairs['GET FULL VARIABLE "${CALLERID(num)}-${EXTEN}"'][-1]
    assert isinstance(full, Reply) and c.GetFullVariable("x").decode(full) == "13800138000-400"
    status = pairs["CHANNEL STATUS"][-1]
    assert isinstance(status, Reply) and c.ChannelStatus().decode(status) == 6

    with pytest.raises(AgiInvalidCommand):
        c.check_reply(pairs["FOO BAR"][-1])  # type: ignore[arg-type]
    usage_reply = pairs["STREAM FILE"][-1]
    assert isinstance(usage_reply, Reply)
    with pytest.raises(AgiUsageError) as usage:
        c.check_reply(usage_reply)
    assert usage.value.usage[0].startswith("Send the given file")
    assert usage.value.usage[-1] == "    <value>FAILED</value>"
    unknown_app = pairs["EXEC NoSuchApplication x"][-1]
    assert isinstance(unknown_app, Reply)
    with pytest.raises(AgiAppNotFound):
        c.Exec("NoSuchApplication", ("x",)).decode(c.check_reply(unknown_app))
    # After the AGI HANGUP command the asynchronous HANGUP line precedes the next reply,
    # GET VARIABLE still answers and media commands get 511.
    after = pairs["GET VARIABLE MYVAR"]
    assert isinstance(after[0], HangupLine)
    dead = pairs['STREAM FILE beep ""'][-1]
    assert isinstance(dead, Reply) and dead.code == 511
    with pytest.raises(AgiHangup):
        c.check_reply(dead)


def test_hangup_mid_prompt_forms(transcripts: Path) -> None:
    pairs = replies_by_command(transcripts / "agi-hangup.txt")
    first = pairs[0][1][-1]
    assert isinstance(first, Reply)
    assert c.StreamFile("tt-weasels").decode(first) == c.Playback(None, 5600, failed=True)
    assert isinstance(pairs[1][1][0], HangupLine)
    state = pairs[3][1][-1]
    assert isinstance(state, Reply) and c.GetVariable("CHANNEL(state)").decode(state) == "Up"


def test_getdata_minus_one_is_a_hangup(transcripts: Path) -> None:
    pairs = dict(replies_by_command(transcripts / "agi-sip-caller.txt"))
    reply = pairs["GET DATA beep 1000"][-1]
    assert isinstance(reply, Reply)
    with pytest.raises(AgiHangup):
        c.GetData("beep", 1000, 1).decode(reply)


def test_dial_on_a_dead_channel_and_its_status(transcripts: Path) -> None:
    pairs = dict(replies_by_command(transcripts / "agi-silent.txt"))
    dial = pairs["EXEC Dial Local/agent1@agents,10"][-1]
    assert isinstance(dial, Reply) and c.Exec("Dial").decode(dial) == -1
    status = pairs["GET VARIABLE DIALSTATUS"][-1]
    assert isinstance(status, Reply) and c.GetVariable("DIALSTATUS").decode(status) == "CANCEL"
    answered = pairs["GET VARIABLE ANSWEREDTIME"][-1]
    assert isinstance(answered, Reply) and c.GetVariable("ANSWEREDTIME").decode(answered) == ""


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("200 result=0 (timeout) endpos=16000", c.Recording("timeout", None, 16000)),
        ("200 result=35 (dtmf) endpos=8000", c.Recording("dtmf", "#", 8000)),
        ("200 result=-1 (hangup) endpos=4000", c.Recording("hangup", None, 4000)),
        # What a real Asterisk 22 answered when # was pressed during the beep (res_agi.c
        # handle_recordfile: the beep's ast_waitstream result, the digit's ASCII code).
        ("200 result=35 (randomerror) endpos=0", c.Recording("dtmf", "#", 0, during_beep=True)),
        ("200 result=-1 (randomerror) endpos=0", c.Recording("hangup", None, 0, during_beep=True)),
        ("200 result=-1 (waitfor) endpos=800", c.Recording("hangup", None, 800)),
    ],
)
def test_record_file_reply_forms(line: str, expected: c.Recording) -> None:
    (reply,) = parse_all(b"agi_x: 1\n\n" + line.encode() + b"\n")[1:-1]
    assert isinstance(reply, Reply)
    assert c.RecordFile("comment").decode(reply) == expected


def test_record_file_into_a_missing_directory_is_its_own_failure() -> None:
    (reply,) = parse_all(b"agi_x: 1\n\n200 result=-1 (writefile)\n")[1:-1]
    assert isinstance(reply, Reply)
    with pytest.raises(AgiRecordNotWritten) as raised:
        c.RecordFile("/var/spool/asterisk/ivr-survey/c1").decode(reply)
    assert raised.value.filename == "/var/spool/asterisk/ivr-survey/c1"
    assert "ivr-survey/c1.wav" in str(raised.value)


def test_trying_then_gosub_complete_and_values_with_parentheses() -> None:
    evs = parse_all(
        b"agi_x: 1\n\n100 result=0 Trying...\n200 result=0 Gosub complete\n200 result=1 (a (b) c)\n"
    )[1:-1]
    assert [e.code for e in evs if isinstance(e, Reply)] == [100, 200, 200]
    assert isinstance(evs[1], Reply) and evs[1].extra == "Gosub complete"
    assert isinstance(evs[2], Reply) and evs[2].data == "a (b) c"


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"agi_network: yes\nnot an env line\n\n",
        b"\x00\xff\xfe\n",
        b"\n",
    ],
)
def test_garbage_is_a_protocol_error(garbage: bytes) -> None:
    parser = AgiParser()
    parser.receive_data(garbage)
    with pytest.raises(AgiProtocolError):
        events(parser)


def test_garbage_reply_after_environment() -> None:
    parser = AgiParser()
    parser.receive_data(b"agi_x: 1\n\nhello there\n")
    assert isinstance(parser.next_event(), Environment)
    with pytest.raises(AgiProtocolError):
        parser.next_event()


def test_overlong_line_is_refused_before_it_ends() -> None:
    parser = AgiParser(max_line=256)
    with pytest.raises(AgiProtocolError):
        parser.receive_data(b"agi_x: " + b"a" * 1000)


def test_half_sent_environment_then_eof() -> None:
    parser = AgiParser()
    parser.receive_data(b"agi_network: yes\nagi_chan")
    assert parser.next_event() is NEED_DATA
    parser.receive_data(b"")
    closed = parser.next_event()
    assert closed == ConnectionClosed(b"agi_chan")


@pytest.mark.parametrize(
    "value",
    ["hello world", "", 'say "hi"', "back\\slash", "tab\there", "中文 提示", "a,b|c", "${EXTEN}"],
)
def test_quoted_arguments_read_back_as_sent(value: str) -> None:
    line = CommandLine((Word("SET VARIABLE"), "X", value)).encode().decode().rstrip("\n")
    assert parse_args(line) == ["SET", "VARIABLE", "X", value]
    assert parse_args("X " + quote(value)) == ["X", value]


def test_commands_encode_like_the_transcripts(transcripts: Path) -> None:
    sent = server_lines(transcripts / "agi-digits.txt")
    ours = [
        c.Answer(),
        c.GetVariable("CHANNEL(language)"),
        c.SetVariable("MYVAR", "hello world"),
        c.GetVariable("MYVAR"),
        c.GetVariable("NO_SUCH_VAR"),
        c.GetFullVariable("${CALLERID(num)}-${EXTEN}"),
        c.StreamFile("tt-monkeys", "12"),
        c.GetData("beep", 6000, 3),
        c.WaitForDigit(1000),
        c.SayDigits("123"),
        c.SayNumber("42"),
        c.Exec("Playback", ("silence/1",)),
        c.Exec("MixMonitor", ("rec-${UNIQUEID}.wav", "b")),
        c.ChannelStatus(),
    ]
    assert [cmd.line().encode().decode().rstrip("\n") for cmd in ours] == sent[: len(ours)]
    assert c.RecordFile("survey-comment", "wav", "#", 1500, silence_s=1).line().encode() == (
        b'RECORD FILE survey-comment wav "#" 1500 0 s=1\n'
    )


def test_line_breaks_cannot_be_smuggled_into_a_command() -> None:
    with pytest.raises(ValueError):
        c.SetVariable("X", "a\nHANGUP").line().encode()
    with pytest.raises(ValueError):
        CommandLine((Word("VERBOSE"), Quoted("x\ry"))).encode()
