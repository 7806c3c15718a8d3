"""`ivr report html` on the hand-made calls (handcalls.py) written through the store: the page
and its PNG plots are written, reference each other, and a real browser (Debian's headless
Chromium driven by Playwright) shows every plot.

Playwright's own browser download is never used; without /usr/bin/chromium the browser test
skips, except under CI=true, where it fails."""

from __future__ import annotations

import asyncio
import os
import struct
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from playwright.async_api import async_playwright

from exportkit import make_config, write_handcalls
from handcalls import SETTINGS
from ivr.cli.main import main
from ivr.metrics.html_report import ReportInput, leg_figures, render_report
from ivr.metrics.ivr_funnel import Funnel

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PLOTS = {"offered_answered.png", "wait_distribution.png", "service_level.png", "abandon_curve.png"}
# One funnel per hotline and menu version: H1 2026.1, H1 2026.2, H2 2026.1.
FUNNELS = {"funnel_1.png", "funnel_2.png", "funnel_3.png"}


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.cells: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.extend(value for name, value in attrs if name == "src" and value)

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.cells.append(data.strip())


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", f"{path.name} is no PNG"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


@pytest.fixture
def report(tmp_path: Path) -> Path:
    db = tmp_path / "calls.sqlite"
    asyncio.run(write_handcalls(db))
    config = make_config(tmp_path, db)
    out = tmp_path / "report"
    result = CliRunner().invoke(main, ["report", "html", "--config", str(config), "--since", "2026-11-25",
                                       "--until", "2026-11-26", "--output", str(out)])
    assert result.exit_code == 0, result.output + result.stderr
    assert f"{out / 'index.html'} (17 queue legs)" in result.stdout
    return out


def test_report_writes_the_page_and_every_plot_it_shows(report: Path) -> None:
    pngs = {path.name for path in report.glob("*.png")}
    assert pngs == PLOTS | FUNNELS
    for name in PLOTS:
        assert png_size(report / name) == (1000, 400), name
    for name in FUNNELS:
        width, height = png_size(report / name)
        assert width == 1000 and 300 <= height <= 1000, name
    page = Page()
    page.feed((report / "index.html").read_text(encoding="utf-8"))
    assert sorted(page.images) == sorted(pngs)
    cells = page.cells
    # billing on the 25th in Shanghai: the billing legs of c01-c12 and c14. Answered c01 c02 c07
    # c10 c12 c14, 5 of them within 20 s: 5 / (13 - 1 short abandon); ASA 88 / 6; p90 of
    # [8 10 10 15 20 25] the 6th; AHT (150 + 220 + 100 + 700 + 360 + 600) / 6.
    day = cells.index("2026-11-25")
    assert cells[day - 1:day + 9] == ["billing", "2026-11-25", "13", "6", "3 (1)", "4", "41.7%", "14.7", "25.0",
                                      "355.0"]
    assert "Asia/Shanghai" in " ".join(cells)


def test_report_of_no_calls_still_draws_every_plot(tmp_path: Path) -> None:
    data = ReportInput("Nothing", "2026-01-01", ZoneInfo("Asia/Shanghai"), SETTINGS, 15, leg_figures([], SETTINGS, 15), Funnel([], []))
    index = render_report(data, tmp_path)
    assert {path.name for path in tmp_path.glob("*.png")} == PLOTS
    text = index.read_text(encoding="utf-8")
    assert "No menu paths recorded." in text and "no calls entered a queue" in text


def test_report_escapes_what_it_did_not_write(tmp_path: Path) -> None:
    data = ReportInput("<script>alert(1)</script>", "x", ZoneInfo("UTC"), SETTINGS, 15, leg_figures([], SETTINGS, 15), Funnel([], []),
                       notes=["<b>bold</b>"])
    text = render_report(data, tmp_path).read_text(encoding="utf-8")
    assert "<script>alert" not in text and "&lt;script&gt;" in text and "&lt;b&gt;bold" in text


async def test_browser_shows_every_plot(report: Path, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: CI must run the browser tests (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is not installed")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            page = await browser.new_page()
            await page.goto((report / "index.html").as_uri())
            await page.wait_for_load_state("load")
            images = await page.eval_on_selector_all(
                "img", "images => images.map(i => [i.getAttribute('src'), i.complete, i.naturalWidth, i.naturalHeight])")
            assert await page.title() == "Queue and menu report"
        finally:
            await browser.close()
    assert sorted(src for src, _, _, _ in images) == sorted(PLOTS | FUNNELS)
    for src, complete, width, height in images:
        assert complete and width == 1000 and height >= 300, src
