"""Post-call surveys: DTMF questions after the agent hangs up, and the follow-up they start.

The dialplan re-enters the controller at the FastAGI script `survey` once the agent
hangs up (see dialplans/extensions.conf, context ivr-survey).
"""
