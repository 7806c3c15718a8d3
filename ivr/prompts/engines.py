"""Speech synthesis behind one small interface.

* `EdgeEngine`: edge-tts (Microsoft Edge's online voices); needs its service.
* `EspeakEngine`: espeak-ng, offline (Debian: `apt-get install espeak-ng`).

`choose_engine("auto")` takes edge-tts when its service answers a TCP connection within
a short timeout, espeak-ng otherwise.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import tempfile
import threading
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from ivr.prompts.audio import Segment, decode
from ivr.prompts.catalog import Catalog, PromptText

EDGE, ESPEAK = "edge-tts", "espeak-ng"
ENGINES = (EDGE, ESPEAK)
EDGE_VOICES = {"zh": "zh-CN-XiaoxiaoNeural", "en": "en-US-AriaNeural"}
ESPEAK_VOICES = {"zh": "cmn", "en": "en-us"}
# Chinese characters and punctuation, with digits that follow them ("请按1"): one voice.
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]+[0-9\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]*")


class EngineError(Exception):
    """The engine could not synthesise a text (unreachable service, missing program, bad voice)."""


class Engine(Protocol):
    name: str

    def voice(self, catalog: Catalog, language: str, entry: PromptText) -> str:
        """The voice this engine uses for an entry (part of the rebuild hash)."""
        ...

    async def synthesize(self, text: str, language: str, voice: str) -> Segment:
        """The spoken text, as a pydub segment at the engine's own rate."""
        ...


def _base(language: str) -> str:
    return language.split("-")[0].lower()


# --- edge-tts ----------------------------------------------------------------------------


def edge_endpoint() -> tuple[str, int]:
    """Host and port of edge-tts's websocket service, as the installed library has it."""
    from edge_tts import communicate

    # The module's own name, the one Communicate connects to (and a test may point elsewhere).
    url = urlsplit(str(getattr(communicate, "WSS_URL")))
    default = 443 if url.scheme in ("wss", "https") else 80
    return url.hostname or "", url.port or default


def edge_reachable(timeout: float = 2.0) -> bool:
    """Whether edge-tts's service accepts a TCP connection within `timeout` seconds.

    Runs in a daemon thread so that a resolver that hangs cannot hold up the build."""
    host, port = edge_endpoint()
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, name="edge-tts-probe", daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(result and result[0])


class EdgeEngine:
    name = EDGE

    def __init__(self, connect_timeout: int = 5, receive_timeout: int = 30) -> None:
        self.connect_timeout = connect_timeout
        self.receive_timeout = receive_timeout

    def voice(self, catalog: Catalog, language: str, entry: PromptText) -> str:
        if entry.voice:
            return entry.voice
        settings = catalog.languages.get(language)
        if settings is not None and settings.voice:
            return settings.voice
        if _base(language) in EDGE_VOICES:
            return EDGE_VOICES[_base(language)]
        raise EngineError(f"no edge-tts voice for {language} (expected languages.{language}.voice in the catalog)")

    async def synthesize(self, text: str, language: str, voice: str) -> Segment:
        import aiohttp
        import edge_tts

        mp3 = bytearray()
        try:
            communicate = edge_tts.Communicate(
                text, voice, connect_timeout=self.connect_timeout, receive_timeout=self.receive_timeout
            )
            async for chunk in communicate.stream():
                if chunk["type"] == "audio":
                    mp3 += chunk["data"]
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError, edge_tts.exceptions.EdgeTTSException) as exc:
            raise EngineError(f"edge-tts: {type(exc).__name__}: {exc}") from exc
        if not mp3:
            raise EngineError("edge-tts: no audio received")
        return await asyncio.to_thread(decode, bytes(mp3), "mp3")


# --- espeak-ng ---------------------------------------------------------------------------


class EspeakEngine:
    name = ESPEAK

    def __init__(self, program: str = "espeak-ng") -> None:
        self.program = program

    def _voice_for(self, catalog: Catalog, language: str) -> str:
        settings = catalog.languages.get(language)
        if settings is not None and settings.espeak:
            return settings.espeak
        return ESPEAK_VOICES.get(_base(language), language.lower())

    def _speed(self, catalog: Catalog, language: str) -> int:
        settings = catalog.languages.get(language)
        return settings.espeak_speed if settings is not None else 175

    def voice(self, catalog: Catalog, language: str, entry: PromptText) -> str:
        """`<voice>@<wpm>`, plus the other voice used for mixed Chinese/English text."""
        chinese = next((lang for lang in catalog.languages if _base(lang) == "zh"), "zh-CN")
        english = next((lang for lang in catalog.languages if _base(lang) == "en"), "en-US")
        main = f"{self._voice_for(catalog, language)}@{self._speed(catalog, language)}"
        cjk = f"{self._voice_for(catalog, chinese)}@{self._speed(catalog, chinese)}"
        latin = main if _base(language) != "zh" else f"{self._voice_for(catalog, english)}@{self._speed(catalog, english)}"
        return main if cjk == latin == main else f"{main};cjk={cjk};latin={latin}"

    @staticmethod
    def segments(text: str, voice: str) -> list[tuple[str, str]]:
        """Split mixed Chinese/English text into (voice@wpm, part): each part its own voice."""
        main, _, rest = voice.partition(";")
        voices = dict(item.split("=", 1) for item in rest.split(";") if "=" in item)
        if not voices or not CJK.search(text):
            return [(main, text)]
        parts: list[tuple[str, str]] = []
        pos = 0
        for match in CJK.finditer(text):
            before = text[pos: match.start()].strip()
            if before:
                parts.append((voices["latin"], before))
            parts.append((voices["cjk"], match.group()))
            pos = match.end()
        if text[pos:].strip():
            parts.append((voices["latin"], text[pos:].strip()))
        return parts

    async def synthesize(self, text: str, language: str, voice: str) -> Segment:
        if shutil.which(self.program) is None:
            raise EngineError(f"{self.program} not found (install it: apt-get install -y espeak-ng)")
        pieces = []
        with tempfile.TemporaryDirectory(prefix="ivr-espeak-") as tmp:
            for i, (part_voice, part) in enumerate(self.segments(text, voice)):
                name, _, wpm = part_voice.partition("@")
                out = Path(tmp) / f"{i}.wav"
                proc = await asyncio.create_subprocess_exec(
                    self.program, "-v", name, "-s", wpm or "175", "-w", str(out),
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
                )
                _, err = await proc.communicate(part.encode("utf-8"))
                if proc.returncode != 0 or not out.exists():
                    raise EngineError(f"{self.program} -v {name} failed: {err.decode(errors='replace').strip()}")
                pieces.append(decode(out.read_bytes(), "wav"))
        combined = pieces[0]
        for piece in pieces[1:]:
            combined += piece
        return combined


def choose_engine(which: str, *, probe_timeout: float = 2.0) -> tuple[Engine, str]:
    """The engine for `auto`, `edge-tts` or `espeak-ng`, and why it was chosen."""
    if which == EDGE:
        return EdgeEngine(), "asked for"
    if which == ESPEAK:
        return EspeakEngine(), "asked for"
    host, port = edge_endpoint()
    if edge_reachable(probe_timeout):
        return EdgeEngine(), f"{host}:{port} reachable"
    return EspeakEngine(), f"{host}:{port} not reachable within {probe_timeout:g} s: offline"
