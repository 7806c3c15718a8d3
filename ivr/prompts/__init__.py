"""The prompt catalog and its audio pipeline.

    catalog.py    prompts/catalog.yaml: prompt id -> text (or a recorded file) per language
    engines.py    speech synthesis behind one interface: edge-tts (online), espeak-ng (offline)
    audio.py      conversion to what Asterisk plays: 8 kHz mono 16-bit WAV (and raw mu-law)
    manifest.py   content hashes of what was built, atomic writes
    build.py      `ivr prompts build`: synthesise what is missing or changed
    check.py      `ivr prompts check` and the catalog part of `ivr check`
    speech.py     numbers, digits, dates, times and amounts as AGI actions per language

Importing this package is cheap: pydub and edge-tts are imported only by the modules
that synthesise (the demo and `ivr check` never do).
"""
