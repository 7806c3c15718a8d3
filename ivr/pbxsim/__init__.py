"""A faithful stand-in for Asterisk 22's side of FastAGI, for tests and `ivr demo`."""

from ivr.pbxsim.caller import Agent, Busy, CallerScript, HangUp, NoAnswer, Press
from ivr.pbxsim.channel import Heard, SimChannel
from ivr.pbxsim.peer import SURVEY_REENTRY, CallResult, SimCall, place_call, place_calls
from ivr.pbxsim.sounds import SoundLibrary

__all__ = [
    "Agent", "Busy", "CallerScript", "HangUp", "NoAnswer", "Press", "Heard", "SimChannel",
    "CallResult", "SimCall", "place_call", "place_calls", "SoundLibrary", "SURVEY_REENTRY",
]
