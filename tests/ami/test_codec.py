"""Tier 1: the sans-IO AMI codec on the recorded Asterisk 22 streams and on broken input."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from ivr.ami.codec import (
    NEED_DATA, Action, AmiParser, AmiProtocolError, Banner, ConnectionClosed, Event, Response,
    encode_action, encode_message, parse_stream,
)

FILES = ["ami-digits.txt", "ami-hangup.txt", "ami-queue-abandon.txt", "ami-queue.txt", "ami-silent.txt",
         "ami-survey.txt"]
# Messages per file = blank-line terminators in the recording (grep -c '^\r$').
MESSAGES = {"ami-digits.txt": 89, "ami-hangup.txt": 44, "ami-queue-abandon.txt": 81, "ami-queue.txt": 90,
            "ami-silent.txt": 63, "ami-survey.txt": 110}


def stream(transcripts: Path, name: str) -> bytes:
    """The recording without the recorder's two markers: the banner line as Asterisk sent it."""
    data = (transcripts / name).read_bytes()
    assert data.startswith(b"Asterisk banner: ")
    data = data[len(b"Asterisk banner: "):]
    first, rest = data.split(b"\r\n", 1)
    assert rest.startswith(b"--- originate ---\r\n")
    return first + b"\r\n" + rest[len(b"--- originate ---\r\n"):]


def messages(items: list[object]) -> list[Response | Event]:
    return [m for m in items if isinstance(m, (Response, Event))]


def events(items: list[object], name: str) -> list[Event]:
    return [m for m in items if isinstance(m, Event) and m.name == name]


@pytest.mark.parametrize("name", FILES)
def test_recording_parses_whole(transcripts: Path, name: str) -> None:
    items = parse_stream(stream(transcripts, name))
    assert items[0] == Banner("Asterisk Call Manager/11.0.0")
    assert items[0].version == "11.0.0"
    assert items[-1] == ConnectionClosed()
    assert len(messages(items)) == MESSAGES[name]
    originate = items[1]
    assert isinstance(originate, Response) and originate.status == "Success" and originate.success
    assert originate.message == "Originate successfully queued"
    assert originate.action_id == name.removeprefix("ami-").removesuffix(".txt") + "-1"
    # every event has Privilege second, as manager.c writes it
    assert all(m.names[1] == "Privilege" for m in messages(items) if isinstance(m, Event))


@pytest.mark.parametrize("name", FILES)
def test_recording_fed_one_byte_at_a_time_gives_the_same_messages(transcripts: Path, name: str) -> None:
    data = stream(transcripts, name)
    parser = AmiParser()
    got: list[object] = []
    for i in range(len(data)):
        got += parser.feed(data[i:i + 1])
    got += parser.feed(b"")
    assert got == parse_stream(data)


@pytest.mark.parametrize("name", FILES)
def test_recording_split_at_random_points_gives_the_same_messages(transcripts: Path, name: str) -> None:
    data = stream(transcripts, name)
    whole = parse_stream(data)
    rng = random.Random(name)
    for _ in range(40):
        cuts = sorted(rng.sample(range(1, len(data)), rng.randint(1, 30)))
        parser = AmiParser()
        got: list[object] = []
        for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True):
            got += parser.feed(data[a:b])
        got += parser.feed(b"")
        assert got == whole


def test_bare_lf_parses_like_crlf(transcripts: Path) -> None:
    data = stream(transcripts, "ami-queue.txt")
    assert parse_stream(data.replace(b"\r\n", b"\n")) == parse_stream(data)


def test_queue_events(transcripts: Path) -> None:
    items = parse_stream(stream(transcripts, "ami-queue.txt"))
    for name in ("QueueCallerJoin", "AgentCalled", "AgentConnect", "AgentComplete", "QueueCallerLeave"):
        assert len(events(items, name)) == 1, name
    join = events(items, "QueueCallerJoin")[0]
    assert join.privilege == "agent,all"
    assert join["Queue"] == "support"
    complete = events(items, "AgentComplete")[0]
    assert complete["Queue"] == "support" and complete.get("Reason") is not None
    order = [m.name for m in items if isinstance(m, Event)]
    assert order.index("QueueCallerJoin") < order.index("AgentConnect") < order.index("AgentComplete")


def test_queue_abandon(transcripts: Path) -> None:
    items = parse_stream(stream(transcripts, "ami-queue-abandon.txt"))
    (abandon,) = events(items, "QueueCallerAbandon")
    assert abandon["Queue"] == "nobody"
    assert not events(items, "AgentConnect")


def test_hangup_with_cause_16(transcripts: Path) -> None:
    items = parse_stream(stream(transcripts, "ami-survey.txt"))
    hangups = events(items, "Hangup")
    assert len(hangups) == 4
    assert {(h["Cause"], h["Cause-txt"]) for h in hangups} == {("16", "Normal Clearing")}
    caller = [h for h in hangups if h["Channel"].endswith(";2") and h["Context"] == "ivr"]
    assert caller and caller[0]["Uniqueid"] == "1795485499.7"
    assert hangups[0].names[-2:] == ["Cause", "Cause-txt"]


def test_agi_dtmf_mixmonitor_dial(transcripts: Path) -> None:
    items = parse_stream(stream(transcripts, "ami-digits.txt"))
    assert [e["Digit"] for e in events(items, "DTMFEnd")] == ["2", "1", "3", "#"]
    assert len(events(items, "AGIExecStart")) == len(events(items, "AGIExecEnd")) == 21
    assert {e["ResultCode"] for e in events(items, "AGIExecEnd")} == {"200", "510", "511", "520"}
    assert len(events(items, "MixMonitorStart")) == 1
    assert events(items, "DialEnd")[0]["DialStatus"] == "ANSWER"
    # an empty value keeps its key: "AccountCode: " -> ""
    assert events(items, "Newchannel")[0]["AccountCode"] == ""
    assert events(items, "Hangup")[0]["Cause-txt"] == "Unknown"


def test_repeated_keys_are_kept_in_order() -> None:
    data = (b"Asterisk Call Manager/11.0.0\r\n"
            b"Event: Status\r\nPrivilege: Call\r\nChanVariable: A=1\r\nChannel: x\r\nChanVariable: B=2\r\n\r\n")
    (_, status, _closed) = parse_stream(data)
    assert isinstance(status, Event)
    assert status.get_all("ChanVariable") == ["A=1", "B=2"]
    assert status.get("chanvariable") == "A=1"  # case-insensitive like astman_get_header
    assert status.names == ["Event", "Privilege", "ChanVariable", "Channel", "ChanVariable"]


def test_blank_lines_between_messages_are_skipped() -> None:
    data = b"Asterisk Call Manager/11.0.0\r\n\r\n\r\nResponse: Success\r\nPing: Pong\r\n\r\n\r\n"
    assert len(messages(parse_stream(data))) == 1


def test_need_data_until_the_blank_line() -> None:
    parser = AmiParser()
    parser.receive_data(b"Asterisk Call Manager/11.0.0\r\nResponse: Success\r\nMessage: Authentication accepted\r\n")
    assert isinstance(parser.next_event(), Banner)
    assert parser.next_event() is NEED_DATA
    parser.receive_data(b"\r\n")
    response = parser.next_event()
    assert isinstance(response, Response) and response.message == "Authentication accepted"
    assert parser.next_event() is NEED_DATA


# --- broken input ---------------------------------------------------------------------------


@pytest.mark.parametrize("data", [
    b"SSH-2.0-OpenSSH_9.6\r\n",
    b"HTTP/1.1 200 OK\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n",
])
def test_garbage_instead_of_the_banner(data: bytes) -> None:
    with pytest.raises(AmiProtocolError, match="banner"):
        AmiParser().feed(data)


@pytest.mark.parametrize("data", [
    b"this is not a header\r\n",
    b"\x00\x01\x02: binary\r\n",
    b"Key with spaces: x\r\n",
    b"Message: a message must start with Response or Event\r\n",
])
def test_garbage_after_the_banner(data: bytes) -> None:
    parser = AmiParser()
    parser.feed(b"Asterisk Call Manager/11.0.0\r\n")
    with pytest.raises(AmiProtocolError):
        parser.feed(data)
    with pytest.raises(AmiProtocolError):  # the error is sticky
        parser.next_event()


def test_cut_inside_a_message_is_an_error(transcripts: Path) -> None:
    data = stream(transcripts, "ami-hangup.txt")
    cut = data[: len(data) // 2]
    assert not cut.endswith(b"\r\n\r\n")
    parser = AmiParser()
    parser.receive_data(cut)
    parser.receive_data(b"")
    with pytest.raises(AmiProtocolError, match="closed inside a message"):
        list(parser.events())


def test_eof_before_the_banner_is_an_error() -> None:
    with pytest.raises(AmiProtocolError):
        AmiParser().feed(b"")


def test_over_long_line_is_refused_before_its_end_arrives() -> None:
    parser = AmiParser(max_line=1024)
    parser.feed(b"Asterisk Call Manager/11.0.0\r\nEvent: VarSet\r\nValue: ")
    with pytest.raises(AmiProtocolError, match="line longer"):
        for _ in range(10):
            parser.feed(b"x" * 200)


def test_over_large_message_is_refused() -> None:
    parser = AmiParser(max_message=4096)
    parser.feed(b"Asterisk Call Manager/11.0.0\r\nEvent: Status\r\n")
    with pytest.raises(AmiProtocolError, match="message larger"):
        parser.feed(b"ChanVariable: A=1\r\n" * 300)


def test_too_many_headers_are_refused() -> None:
    parser = AmiParser(max_headers=10)
    parser.feed(b"Asterisk Call Manager/11.0.0\r\n")
    with pytest.raises(AmiProtocolError, match="headers"):
        parser.feed(b"Event: Status\r\n" + b"X: y\r\n" * 20)


def test_data_after_eof_is_a_programming_error() -> None:
    parser = AmiParser()
    parser.receive_data(b"")
    with pytest.raises(RuntimeError):
        parser.receive_data(b"x")


# --- encoding -------------------------------------------------------------------------------


def test_encode_action_with_action_id_and_repeated_keys() -> None:
    data = encode_action("Originate", {"Channel": "Local/400@ivr", "Variable": ["A=1", "B=2"]}, action_id="o-1")
    assert data == (b"Action: Originate\r\nActionID: o-1\r\nChannel: Local/400@ivr\r\n"
                    b"Variable: A=1\r\nVariable: B=2\r\n\r\n")
    (action,) = [m for m in AmiParser("server").feed(data)]
    assert isinstance(action, Action) and action.name == "Originate" and action.action_id == "o-1"
    assert action.get_all("Variable") == ["A=1", "B=2"]


def test_encode_action_generates_distinct_action_ids() -> None:
    a = parse_stream(encode_action("Ping"), role="server")[0]
    b = parse_stream(encode_action("Ping"), role="server")[0]
    assert isinstance(a, Action) and isinstance(b, Action)
    assert a.action_id and b.action_id and a.action_id != b.action_id


def test_encode_refuses_header_injection() -> None:
    with pytest.raises(ValueError):
        encode_action("Login", {"Username": "ivr\r\nAction: Originate"})
    with pytest.raises(ValueError):
        encode_message([("Bad Key", "x")])
    with pytest.raises(ValueError):
        encode_action("Ping", {"ActionID": "twice"})


def test_encoded_messages_round_trip(transcripts: Path) -> None:
    items = parse_stream(stream(transcripts, "ami-survey.txt"))
    again = b"Asterisk Call Manager/11.0.0\r\n" + b"".join(m.encode() for m in messages(items))
    assert again == stream(transcripts, "ami-survey.txt")
