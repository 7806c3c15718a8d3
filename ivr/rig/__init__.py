"""The SIP test rig (`ivr rig run`): real SIP phones that call the IVR through a PBX,
listen, press keys and check what they hear and where they end up.

* `scenario`: the YAML scenario files (typed, every problem with file:line:col);
* `dtmf`, `audio`: pure signal code (RFC 4733 events, tones and their Goertzel detector,
  prompt recognition by energy envelope, sound and silence);
* `phone`: the only adapter to pyVoIP (registration, calls, RTP capture and injection);
* `agents`: agent phones that answer, identify themselves, hold and hang up;
* `runner`: runs scenarios concurrently, one call each, with per-step time limits;
* `report`: the pass/fail table and JUnit XML.
"""
