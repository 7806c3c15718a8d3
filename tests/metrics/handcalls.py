"""Twenty scripted call records with known outcomes, whose figures the metrics tests check
against hand computations.

Hotline H1 (Asia/Shanghai, UTC+8) feeds the billing and general queues; H2 (Europe/London,
UTC+0 in November) one billing call. Times below are local to the hotline, on Wednesday
2026-11-25 unless said otherwise. T = 20 s, short abandons under 5 s, repeats within 24 h.

  call queue(s)         enqueued  outcome                          wait  agent talk hold wrap
  c01  billing          10:01:00  answered                           10  a1    120    0   30
  c02  billing          10:02:00  answered, AMI 10:02:15 (ctl :40)  15  a2    200   30   20
  c03  billing          10:03:00  abandoned (short)                   3
  c04  billing          10:05:00  abandoned                          50
  c05  billing>general  10:06:00  overflow timeout, then general     60
                        10:07:00  answered in general                 5  a3     60    0    0
  c06  billing          10:08:00  overflow no_agents -> voicemail     0
  c07  billing          10:09:00  answered, agent hangs up: survey   25  a1     90    0   10
  c08  billing          10:10:00  overflow timeout -> transfer node  60
  c09  billing          10:12:00  abandoned                          18
  c10  billing          10:20:00  answered                           20  a2    700   70    0
  c11  billing          10:25:00  overflow full -> dialplan           0
  c12  billing          10:29:55  answered 10:30:05                  10  a1    300    0   60
  c13  -                          self-served (balance lookup)
  c14  billing          23:50:00  answered                            8  a2    600    0    0
  c15  billing    11-26 00:05:00  abandoned                          30
  c16  billing (H2)     02:10:00  answered (London; 10:10 Shanghai)  12  a3     45    0    5
  c17  -                          caller hangs up in the main menu
  c18  -                          invalid x3, the IVR hangs up
  c19  -                          menu version 2026.2: back, then voicemail
  c20  general          10:14:00  abandoned (short)                   2

"talk" is the stored talk_seconds (the bridge, hold included). Caller keys: K1 = c07, c10 (H1) and c16 (H2);
K2 = c12 and c13, 24 h 1.5 min apart; K3 = c14 and c15; K4 = c18 and c19; c01 withheld.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from ivr.config.models import MetricsSettings
from ivr.records.model import AgentEvent, CallRow, Disposition, EventKind, PathEvent, QueueLeg
from survey_engine.model import Answer, QuestionKind, SurveyResponse

H1, H2 = "4008001234", "4008005678"
SHANGHAI, LONDON = ZoneInfo("Asia/Shanghai"), ZoneInfo("Europe/London")
ZONES = {H1: SHANGHAI, H2: LONDON}
SETTINGS = MetricsSettings(
    interval_minutes=15, service_level_seconds=20, short_abandon_seconds=5, repeat_hours=24,
    wait_percentiles=(50, 90),
)


def zone_of(hotline: str) -> ZoneInfo:
    return ZONES[hotline]


def sh(hh: int, mm: int, ss: int = 0, day: int = 25) -> dt.datetime:
    """A Shanghai wall-clock time on 2026-11-<day>."""
    return dt.datetime(2026, 11, day, hh, mm, ss, tzinfo=SHANGHAI)


def after(at: dt.datetime, seconds: float) -> dt.datetime:
    return at + dt.timedelta(seconds=seconds)


# --- menu paths: (node id, node type, [(event kind, value), ...]) ---------------------------------

Step = tuple[str, str, list[tuple[EventKind, str]]]
D, T, I, X = EventKind.DIGIT, EventKind.TIMEOUT, EventKind.INVALID, EventKind.TRANSFER


def to_billing(*, main: list[tuple[EventKind, str]] | None = None,
               billing: list[tuple[EventKind, str]] | None = None) -> list[Step]:
    return [
        ("welcome", "play", []),
        ("choose-language", "language", [(D, "1")]),
        ("main-menu", "menu", main or [(D, "1")]),
        ("billing-menu", "menu", billing or [(D, "2")]),
        ("billing-queue", "queue", [(EventKind.QUEUE, "billing (acd)")]),
    ]


def events(steps: list[Step], at: dt.datetime) -> tuple[PathEvent, ...]:
    out: list[PathEvent] = []
    for node, node_type, happened in steps:
        out.append(PathEvent(at, EventKind.NODE, node, node_type))
        out.extend(PathEvent(at, kind, node, value) for kind, value in happened)
    return tuple(out)


def call(
    call_id: str, started: dt.datetime, disposition: Disposition, steps: list[Step],
    legs: tuple[QueueLeg, ...] = (), *, dialed: str = H1, menu_version: str = "2026.1",
    hung_up_by: str | None = "caller", agent_answered_at: dt.datetime | None = None, hold: float = 0.0,
) -> CallRow:
    ended = max([started, *(leg.left_at for leg in legs)]) + dt.timedelta(seconds=5)
    return CallRow(
        call_id=call_id, uniqueid=f"u-{call_id}", channel=f"PJSIP/trunk-{call_id}", dialed=dialed,
        caller="****0000", hotline="Example Co.", language="zh-CN", menu_version=menu_version,
        config_version="v1", started_at=started, ended_at=ended,
        duration_ms=int((ended - started).total_seconds() * 1000), disposition=disposition, detail="",
        notice_played_at=None, recording_started_at=None, recording_file=None, hung_up_by=hung_up_by,
        hangup_cause=16, hangup_cause_txt="Normal Clearing", events=events(steps, started), queue_legs=legs,
        agent_answered_at=agent_answered_at, hold_seconds=hold,
    )


def answered(queue: str, enqueued: dt.datetime, wait: float, agent: str, talk: float, wrap: float = 0.0,
             ended_by: str = "caller") -> QueueLeg:
    answer = after(enqueued, wait)
    return QueueLeg(queue, enqueued, after(answer, talk), "answered", answered_at=answer, agent_id=agent,
                    talk_seconds=talk, offers=1, ended_by="agent" if ended_by == "agent" else "caller",
                    wrap_seconds=wrap)


def abandoned(queue: str, enqueued: dt.datetime, wait: float) -> QueueLeg:
    return QueueLeg(queue, enqueued, after(enqueued, wait), "abandoned")


def overflowed(queue: str, enqueued: dt.datetime, wait: float, cause: str) -> QueueLeg:
    return QueueLeg(queue, enqueued, after(enqueued, wait), "overflowed", overflow=cause)


A, QA = Disposition.ANSWERED, Disposition.QUEUE_ABANDONED
GENERAL = [("welcome", "play", []), ("choose-language", "language", [(D, "1")]),
           ("main-menu", "menu", [(D, "2")]), ("general-queue", "queue", [(EventKind.QUEUE, "general (acd)")])]

CALLS: tuple[CallRow, ...] = (
    call("c01", sh(10, 0, 30), A, to_billing(), (answered("billing", sh(10, 1), 10, "a1", 120, 30),)),
    # The controller inferred the answer at 10:02:40; AMI's DialEnd says 10:02:15.
    call("c02", sh(10, 1, 30), A, to_billing(), (answered("billing", sh(10, 2), 40, "a2", 200, 20),),
         agent_answered_at=sh(10, 2, 15), hold=30),
    call("c03", sh(10, 2, 30), QA, to_billing(), (abandoned("billing", sh(10, 3), 3),)),
    call("c04", sh(10, 4, 30), QA, to_billing(main=[(T, "1"), (D, "1")]), (abandoned("billing", sh(10, 5), 50),)),
    call("c05", sh(10, 5, 30), A, to_billing(), (
        overflowed("billing", sh(10, 6), 60, "timeout"), answered("general", sh(10, 7), 5, "a3", 60))),
    call("c06", sh(10, 7, 30), Disposition.VOICEMAIL,
         to_billing() + [("leave-message", "voicemail", [(X, "ivr-voicemail,400")])],
         (overflowed("billing", sh(10, 8), 0, "no_agents"),), hung_up_by=None),
    # The agent hung up first: the survey re-entry is a TRANSFER event at the queue node.
    call("c07", sh(10, 8, 30), A, [*to_billing()[:-1], ("billing-queue", "queue", [(X, "ivr-survey,billing,1")])],
         (answered("billing", sh(10, 9), 25, "a1", 90, 10, ended_by="agent"),), hung_up_by="agent"),
    call("c08", sh(10, 9, 30), Disposition.TRANSFERRED,
         to_billing() + [("transfer-sales", "transfer", [(X, "from-internal,8000")])],
         (overflowed("billing", sh(10, 10), 60, "timeout"),), hung_up_by=None),
    call("c09", sh(10, 11, 30), QA, to_billing(billing=[(I, "7"), (D, "2")]), (abandoned("billing", sh(10, 12), 18),)),
    call("c10", sh(10, 19, 30), A, to_billing(), (answered("billing", sh(10, 20), 20, "a2", 700),), hold=70),
    call("c11", sh(10, 24, 30), Disposition.OVERFLOWED, to_billing(), (overflowed("billing", sh(10, 25), 0, "full"),),
         hung_up_by=None),
    call("c12", sh(10, 28, 30), A, to_billing(), (answered("billing", sh(10, 29, 55), 10, "a1", 300, 60),)),
    call("c13", sh(10, 30, 0, day=26), Disposition.SELF_SERVED, [
        ("welcome", "play", []), ("choose-language", "language", [(D, "2")]), ("main-menu", "menu", [(D, "1")]),
        ("billing-menu", "menu", [(D, "1")]), ("balance-account", "collect", [(D, "account_number: 8 digits")]),
        ("balance-lookup", "lookup", [(EventKind.LOOKUP, "ok: branch 2")])]),
    call("c14", sh(23, 49), A, to_billing(), (answered("billing", sh(23, 50), 8, "a2", 600),)),
    call("c15", sh(0, 4, day=26), QA, to_billing(), (abandoned("billing", sh(0, 5, day=26), 30),)),
    call("c16", dt.datetime(2026, 11, 25, 2, 9, 30, tzinfo=LONDON), A,
         [("welcome", "play", []), ("main-menu", "menu", [(D, "1")]), ("billing-menu", "menu", [(D, "2")]),
          ("billing-queue", "queue", [])],
         (answered("billing", dt.datetime(2026, 11, 25, 2, 10, tzinfo=LONDON), 12, "a3", 45, 5),), dialed=H2),
    call("c17", sh(10, 40), Disposition.ABANDONED, [
        ("welcome", "play", []), ("choose-language", "language", [(T, ""), (T, "")]),
        ("main-menu", "menu", [(EventKind.HANGUP, "caller")])]),
    call("c18", sh(11, 0), Disposition.IVR_HANGUP, [
        ("welcome", "play", []), ("choose-language", "language", [(D, "1")]),
        ("main-menu", "menu", [(I, "9"), (I, "8"), (I, "7")]), ("goodbye", "hangup", [(EventKind.HANGUP, "ivr")])],
         hung_up_by="ivr"),
    call("c19", sh(11, 10), Disposition.VOICEMAIL, [
        ("welcome", "play", []), ("choose-language", "language", [(D, "1")]), ("main-menu", "menu", [(D, "1")]),
        ("billing-menu", "menu", [(T, "1"), (D, "* (back)")]), ("main-menu", "menu", [(D, "3")]),
        ("leave-message", "voicemail", [(X, "ivr-voicemail,400")])], menu_version="2026.2", hung_up_by=None),
    call("c20", sh(10, 13, 30), QA, GENERAL, (abandoned("general", sh(10, 14), 2),)),
)

# By hand, repeats within 24 h, counted on the earlier call of the same caller and hotline:
# K1: c07 then c10 on H1 (11 min apart): c07; c16 is K1 on H2, another hotline. K2: c12 then
# c13 24 h 1.5 min later: none (with 25 h: c12). K3: c14 23:50 then c15 00:04: c14. K4: c18
# then c19 (another menu version, the same hotline): c18. c01 withheld: never.
REPEATED = frozenset({"c07", "c14", "c18"})
CALLER_KEYS: dict[str, str | None] = {
    "c01": None, "c07": "K1", "c10": "K1", "c16": "K1", "c12": "K2", "c13": "K2", "c14": "K3", "c15": "K3",
    "c18": "K4", "c19": "K4",
} | {f"c{n:02d}": f"only-{n}" for n in (2, 3, 4, 5, 6, 8, 9, 11, 17, 20)}


def response(call_id: str, queue: str, *answers: tuple[QuestionKind, int | None]) -> SurveyResponse:
    return SurveyResponse(
        response_id=f"r-{call_id}-{queue}", call_id=call_id, channel="voice", survey="after-call", status="completed",
        hotline=H1, queue=queue, agent="", language="zh-CN", menu_version="2026.1", menu_path="", hung_up_by="agent",
        caller_key=None, offered_at=sh(12, 0),
        answers=tuple(Answer(f"q{n}", kind, value, 1) for n, (kind, value) in enumerate(answers)),
    )


RESPONSES = (
    response("c01", "billing", ("scale", 5), ("scale", 4), ("yes_no", 1)),  # 2 answers, 2 satisfied
    response("c02", "billing", ("scale", 2), ("scale", None)),  # 1 answer, 0 satisfied
    response("c07", "billing", ("nps", 9), ("scale", 3)),  # nps is no CSAT answer: 1, 0
    response("c10", "billing", ("scale", 4)),  # 10:15 interval: 1, 1
    response("c05", "general", ("scale", 5)),  # general: 1, 1
    response("c99", "billing", ("scale", 1)),  # a call not among the legs: left out
)

# Presence (Shanghai): a1 ready before the range, paused 10:20-10:25, logged out 10:40; a2 ready
# 10:00, not ready from 10:30 (still on c10 until 10:32); a3 ready 10:05, logged out 10:35.
AGENT_EVENTS = (
    AgentEvent("a1", sh(9, 55), "ready"), AgentEvent("a1", sh(10, 20), "paused"),
    AgentEvent("a1", sh(10, 25), "ready"), AgentEvent("a1", sh(10, 40), "logged_out"),
    AgentEvent("a2", sh(10, 30), "not_ready"), AgentEvent("a2", sh(10, 0), "ready"),  # out of order on purpose
    AgentEvent("a3", sh(10, 5), "ready"), AgentEvent("a3", sh(10, 35), "logged_out"),
)
