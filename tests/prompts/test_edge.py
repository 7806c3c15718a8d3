"""The edge-tts path against a local stand-in for its websocket service.

The stand-in speaks the service's protocol (speech.config and SSML in, `turn.start`, binary
`Path:audio` frames of MP3, `turn.end` out) and answers with real MP3: the SSML's text
read by espeak-ng, encoded by ffmpeg. The only override is the one the library reads its
address from, `edge_tts.communicate.WSS_URL`; our code path is the production one.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import tempfile
import threading
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import unescape

import pytest
from aiohttp import WSMsgType, web
from click.testing import CliRunner

from ivr.cli.main import main
from ivr.prompts.audio import ffmpeg
from ivr.prompts.engines import EdgeEngine, choose_engine


def mp3_of(text: str) -> bytes:
    """Real MP3 (24 kHz mono 48 kbit/s, like the service) of espeak-ng reading `text`."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(wav), text], check=True)
        return subprocess.run(
            [ffmpeg(), "-loglevel", "error", "-i", str(wav), "-ar", "24000", "-ac", "1", "-b:a", "48k", "-f", "mp3", "-"],
            check=True, capture_output=True,
        ).stdout


@dataclass
class StandIn:
    url: str = ""
    requests: list[str] = field(default_factory=list)  # SSML received


STAND_IN = web.AppKey("stand_in", StandIn)


async def _handler(request: web.Request) -> web.WebSocketResponse:
    stand_in = request.app[STAND_IN]
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for msg in ws:
        if msg.type != WSMsgType.TEXT or "Path:ssml" not in msg.data:
            continue
        ssml = msg.data.split("\r\n\r\n", 1)[1]
        stand_in.requests.append(ssml)
        request_id = re.search(r"X-RequestId:(\w+)", msg.data)
        rid = request_id.group(1) if request_id else "0"
        text = unescape(re.sub(r"<[^>]+>", "", ssml)).strip()
        await ws.send_str(f"X-RequestId:{rid}\r\nContent-Type:application/json; charset=utf-8\r\nPath:turn.start\r\n\r\n{{}}")
        audio = await asyncio.to_thread(mp3_of, text)
        header = f"X-RequestId:{rid}\r\nContent-Type:audio/mpeg\r\nPath:audio\r\n".encode()
        for i in range(0, len(audio), 4096):
            await ws.send_bytes(len(header).to_bytes(2, "big") + header + audio[i: i + 4096])
        await ws.send_str(f"X-RequestId:{rid}\r\nContent-Type:application/json; charset=utf-8\r\nPath:turn.end\r\n\r\n{{}}")
    return ws


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> Iterator[StandIn]:
    """The stand-in on a loopback port, in its own thread and event loop."""
    from edge_tts import communicate

    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    state = StandIn()
    loop = asyncio.new_event_loop()
    app = web.Application()
    app[STAND_IN] = state
    app.router.add_get("/consumer/speech/synthesize/readaloud/edge/v1", _handler)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    real = communicate.WSS_URL
    state.url = real.replace("wss://speech.platform.bing.com", f"ws://127.0.0.1:{port}")
    assert state.url != real
    monkeypatch.setattr(communicate, "WSS_URL", state.url)
    try:
        yield state
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


async def test_edge_engine_decodes_the_services_mp3(stand_in: StandIn) -> None:
    segment = await EdgeEngine().synthesize("Welcome to Example Company.", "en-US", "en-US-AriaNeural")
    assert segment.frame_rate == 24000 and segment.channels == 1
    assert 1.0 < len(segment) / 1000 < 4.0
    assert "(en-US, AriaNeural)" in stand_in.requests[0] and "Welcome to Example Company." in stand_in.requests[0]


def test_build_uses_edge_tts_when_its_service_is_reachable(stand_in: StandIn, small_catalog: Path) -> None:
    result = CliRunner().invoke(main, ["prompts", "build", "--catalog", str(small_catalog), "--language", "en-US"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("engine: edge-tts (127.0.0.1:")
    assert "en-US/goodbye: built (edge-tts en-US-GuyNeural" in result.output  # the prompt's own voice
    assert "en-US/welcome: built (edge-tts en-US-AriaNeural" in result.output  # the language's voice
    assert len(stand_in.requests) == 2
    assert sorted(re.findall(r"\(en-US, (\w+)\)", " ".join(stand_in.requests))) == ["AriaNeural", "GuyNeural"]
    with wave.open(str(small_catalog.parent / "sounds" / "en-US" / "welcome.wav")) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        assert 1.0 < w.getnframes() / 8000 < 4.0
    # nothing changed: nothing is asked of the service again
    again = CliRunner().invoke(main, ["prompts", "build", "--catalog", str(small_catalog), "--language", "en-US"])
    assert "0 built, 2 unchanged, 0 failed" in again.output
    assert len(stand_in.requests) == 2


def test_auto_probes_the_address_the_library_connects_to(stand_in: StandIn) -> None:
    engine, why = choose_engine("auto")
    assert engine.name == "edge-tts" and why.endswith("reachable")
