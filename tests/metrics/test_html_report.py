"""`ivr report html` on the hand-made calls (handcalls.py) written through the store: the page
and its PNG plots are written, reference each other, and a real browser (Debian's headless
Chromium driven by Playwright) shows every plot.

Playwright's own browser download is never used; without /usr/bin/chromium the browser test
skips, except under CI=true, where it fails."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import os
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from matplotlib.dates import num2date
from matplotlib.figure import Figure
from playwright.async_api import Page as PlaywrightPage
from playwright.async_api import async_playwright

from exportkit import make_config, write_handcalls
from handcalls import H1, SETTINGS, SHANGHAI
from ivr.cli.main import main
from ivr.config.loader import load_config
from ivr.metrics.html_report import ReportInput, leg_figures, render_report
from ivr.metrics import report_plots as plots
from ivr.metrics.buckets import interval_end
from ivr.metrics.ivr_funnel import Funnel, flow_order
from ivr.metrics.model import Width

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PLOTS = {"offered_answered.png", "wait_distribution.png", "service_level.png", "abandon_curve.png"}
DAYS = ["--since", "2026-11-25", "--until", "2026-11-26"]
# One funnel per hotline and menu version: H1 2026.1, H1 2026.2, H2 2026.1.
FUNNELS = {"funnel_1.png", "funnel_2.png", "funnel_3.png"}


class Page(HTMLParser):
    """The page's images, its text, and each table's body rows by the table's id."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.cells: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.extend(value for name, value in attrs if name == "src" and value)
        elif tag == "table":
            self._table = dict(attrs).get("id") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._row is not None and self._cell is not None:
            self._row.append(" ".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._table is not None and self._row is not None:
            if self._row:
                self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.cells.append(data.strip())
            if self._cell is not None:
                self._cell.append(data.strip())


def read_page(report: Path) -> Page:
    page = Page()
    page.feed((report / "index.html").read_text(encoding="utf-8"))
    return page


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", f"{path.name} is no PNG"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


@dataclass(frozen=True)
class Made:
    """The report of the hand-made calls, and the configuration it was made with."""

    out: Path
    config: Path


@pytest.fixture
def made(tmp_path: Path) -> Made:
    db = tmp_path / "calls.sqlite"
    asyncio.run(write_handcalls(db))
    config = make_config(tmp_path, db)
    out = tmp_path / "report"
    result = CliRunner().invoke(main, ["report", "html", "--config", str(config), *DAYS, "--output", str(out)])
    assert result.exit_code == 0, result.output + result.stderr
    assert f"{out / 'index.html'} (17 queue legs)" in result.stdout
    return Made(out, config)


@pytest.fixture
def report(made: Made) -> Path:
    return made.out


def test_report_writes_the_page_and_every_plot_it_shows(report: Path) -> None:
    pngs = {path.name for path in report.glob("*.png")}
    assert pngs == PLOTS | FUNNELS
    for name in PLOTS:
        assert png_size(report / name) == (1080, 540), name
    for name in FUNNELS:
        width, height = png_size(report / name)
        assert width == 1080 and 300 <= height <= 1500, name
    page = read_page(report)
    assert sorted(page.images) == sorted(pngs)
    # billing on the 25th in Shanghai: the billing legs of c01-c12, c14 and c16 (H2, dialed in
    # London at 02:10, 10:10 in Shanghai). Answered c01 c02 c07 c10 c12 c14 c16, 6 of them within
    # 20 s: 6 / (14 - 1 short abandon); ASA (88 + 12) / 7; p90 of [8 10 10 12 15 20 25] the 7th;
    # AHT (150 + 220 + 100 + 700 + 360 + 600 + 50) / 7.
    billing = [row for row in page.tables["per-day"] if row[:2] == ["billing", "Wed 2026-11-25"]]
    assert billing == [["billing", "Wed 2026-11-25", "14", "7", "3 (1)", "4", "46.2%", "14.3", "25.0", "311.4", "2", "2",
                        "60.0%"]]
    assert "Asia/Shanghai" in " ".join(page.cells)


def test_two_zones_feeding_one_queue_give_one_row_per_day_on_the_stated_clock(report: Path) -> None:
    """c16 dialed H2 (Europe/London) at 02:10 London time, 10:10 on the page's clock
    (Asia/Shanghai): it is counted in Shanghai's 25th with H1's billing calls, not in a second
    billing row for London's 25th."""
    page = read_page(report)
    days = [tuple(row[:2]) for row in page.tables["per-day"]]
    assert days == [("billing", "Wed 2026-11-25"), ("billing", "Thu 2026-11-26"), ("general", "Wed 2026-11-25")]
    text = (report / "index.html").read_text(encoding="utf-8")
    assert "All times on the clock of <strong>Asia/Shanghai</strong>" in text
    # c16's interval is 10:00 in Shanghai (not 02:00 in London): 10 billing legs entered then.
    intervals = {tuple(row[:2]): row[2] for row in page.tables["per-queue-interval"]}
    assert intervals[("billing", "Wed 2026-11-25 10:00")] == "10"
    assert not any(start.endswith("02:00") for _, start in intervals)


def test_summary_is_at_the_top_with_the_period_and_the_clock(report: Path) -> None:
    text = (report / "index.html").read_text(encoding="utf-8")
    assert "<h1>Queue and menu report: 2026-11-25 to 2026-11-26</h1>" in text
    assert text.index('id="summary"') < text.index('id="plots"') < text.index('id="day"')
    page = read_page(report)
    cells = page.cells
    summary = cells[cells.index("Summary"):cells.index("Calls and service level")]
    # 17 legs: 8 answered, 7 of them within 20 s (c16 and c05's general leg count) / (17 - 2
    # short abandons); 5 abandoned; AHT (2180 + 60) / 8.
    for name, value in (("Offered", "17"), ("Answered", "8"), ("Service level", "46.7%"),
                        ("Abandon rate", "29.4%"), ("AHT", "280 s")):
        assert summary[summary.index(name) + 1] == value, name


def test_funnel_lists_the_nodes_in_the_flow_order(made: Made) -> None:
    flow = load_config(made.config).flows["main"]
    rows = [row for row in read_page(made.out).tables["funnel"] if row[:2] == [H1, "2026.1"]]
    nodes = [row[2] for row in rows]
    assert nodes == [node for node in flow_order(flow, flow.start) if node in nodes] + ["transfer-sales"]  # not in the flow
    assert nodes[:4] == ["welcome", "choose-language", "main-menu", "billing-menu"]  # not by count


def test_staffing_section_shows_what_ivr_staffing_prints(made: Made) -> None:
    result = CliRunner().invoke(main, ["staffing", "--config", str(made.config), *DAYS, "--format", "csv"])
    assert result.exit_code == 0, result.output + result.stderr
    printed = list(csv.DictReader(io.StringIO(result.stdout)))
    assert printed, "ivr staffing planned nothing"
    expected = [
        [row["queue"], dt.datetime.fromisoformat(row["interval_start"]).strftime("%a %Y-%m-%d %H:%M"), row["offered"],
         f"{float(row['aht_seconds']):.0f}", f"{float(row['load_erlangs']):.2f}",
         {"erlang_a": "Erlang A", "erlang_c": "Erlang C"}[row["model"]], row["agents"], row["scheduled"],
         f"{float(row['staffed_agents']):.1f}", f"{float(row['difference']):+.1f}"]
        for row in printed
    ]
    shown = read_page(made.out).tables["staffing"]
    assert [row[:-1] for row in shown] == expected
    # Occupancy of the agents who serve billing (a1, a2) from 10:00: their busy time over busy
    # or ready time; a1 ready from 09:55 without a call at 09:45: 0 %.
    occupancy = {tuple(row[:2]): row[-1] for row in shown}
    assert occupancy[("billing", "Wed 2026-11-25 09:45")] == "0.0%"
    assert all(value == "-" or value.endswith("%") for value in occupancy.values())


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


SECTIONS = ["Summary", "Calls and service level", "Per queue and day", "Staffing per queue and interval",
            "Per queue and interval", "Per interval, all queues", "Menu funnel"]


def chromium() -> Path:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: CI must run the browser tests (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is not installed")
    return CHROMIUM


async def look(report: Path, tmp_path: Path, width: int, height: int,
               check: Callable[[PlaywrightPage], Awaitable[None]]) -> None:
    """Open the report in Chromium with a window of width x height and run `check` on it."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(chromium()), headless=True, args=ARGS,
            viewport={"width": width, "height": height})
        try:
            page = await browser.new_page()
            await page.goto((report / "index.html").as_uri())
            await page.wait_for_load_state("load")
            await check(page)
        finally:
            await browser.close()


@pytest.mark.parametrize(("width", "height"), [(1920, 1080), (1280, 800), (1024, 768)])
async def test_browser_shows_every_section_and_plot_without_sideways_scrolling(
        report: Path, tmp_path: Path, width: int, height: int) -> None:
    async def check(page: PlaywrightPage) -> None:
        assert await page.title() == "Queue and menu report: 2026-11-25 to 2026-11-26 (Asia/Shanghai)"
        for name in SECTIONS:
            heading = page.get_by_role("heading", name=name, exact=True)
            await heading.scroll_into_view_if_needed()
            assert await heading.is_visible(), name
        images = await page.eval_on_selector_all(
            "img", "images => images.map(i => [i.getAttribute('src'), i.complete, i.naturalWidth, i.clientWidth])")
        assert sorted(src for src, _, _, _ in images) == sorted(PLOTS | FUNNELS)
        for src, complete, natural, shown in images:
            assert complete and natural == 1080, src
            assert shown >= 440, f"{src} is shown {shown} px wide"  # two side by side stay readable
        scroll, inner = await page.evaluate("[document.scrollingElement.scrollWidth, innerWidth]")
        assert scroll <= inner, f"the page scrolls sideways at {width} px: {scroll} > {inner}"
        # A table wider than the window scrolls in its own box, not the page.
        widths = await page.eval_on_selector_all(".scroll", "boxes => boxes.map(b => b.getBoundingClientRect().right)")
        assert widths and max(widths) <= inner

    await look(report, tmp_path, width, height, check)


async def test_plots_sit_side_by_side_on_a_wide_screen(report: Path, tmp_path: Path) -> None:
    async def check(page: PlaywrightPage) -> None:
        tops = await page.eval_on_selector_all("#plots figure", "figures => figures.map(f => f.offsetTop)")
        assert len(tops) == 4 and tops[0] == tops[1] and tops[2] == tops[3] and tops[2] > tops[0]

    await look(report, tmp_path, 1920, 1080, check)


# --- the plots, read from their figures ---------------------------------------------------------


def starts(first: dt.datetime, count: int, minutes: int) -> list[dt.datetime]:
    return [first + dt.timedelta(minutes=minutes * n) for n in range(count)]


def ticks_of(figure: Figure) -> tuple[list[float], list[str], tuple[float, float]]:
    axes = figure.axes[0]
    return [float(x) for x in axes.get_xticks()], [label.get_text() for label in axes.get_xticklabels()], axes.get_xlim()


@pytest.mark.parametrize(("count", "minutes"), [(1, 15), (2, 15), (40, 15), (96 * 3, 15), (1, 1440), (2, 1440),
                                                (14, 1440), (24 * 20, 60)])
def test_service_level_ticks_are_distinct_and_inside_the_data(count: int, minutes: Width) -> None:
    """Regression: one interval let matplotlib widen the axis to years, and every label read
    `01-01 00:00`."""
    at = starts(dt.datetime(2026, 11, 25, 0 if minutes == 1440 else 9, 0, tzinfo=SHANGHAI), count, minutes)
    levels: list[float | None] = [0.5 + 0.01 * n for n in range(count)]
    figure = plots.service_level_figure(("all queues", at, levels), [], SETTINGS, SHANGHAI, minutes)
    positions, labels, (low, high) = ticks_of(figure)
    assert low == plots.x_of(at[0])
    assert high == plots.x_of(interval_end(at[-1], minutes))
    assert min(count, 2) <= len(labels) <= 10 and len(set(labels)) == len(labels), labels
    assert all(low <= x <= high for x in positions)
    assert "01-01 00:00" not in labels
    for x, label in zip(positions, labels):
        shown = num2date(x, tz=SHANGHAI)  # type: ignore[no-untyped-call]
        assert at[0] - dt.timedelta(days=1) < shown <= interval_end(at[-1], minutes)
        assert shown.strftime("%H:%M") in label or shown.strftime("%d") in label, (label, shown)


def test_answered_bars_are_as_wide_as_offered_bars() -> None:
    """Regression: answered bars were 60 % as wide as offered ones, so answering seemed to stop."""
    at = starts(dt.datetime(2026, 11, 25, 9, 0, tzinfo=SHANGHAI), 8, 15)
    figure = plots.offered_figure(at, [10] * 8, [6] * 8, [2] * 8, SHANGHAI, 15)
    offered, answered = figure.axes[0].containers
    assert [bar.get_width() for bar in answered] == [bar.get_width() for bar in offered]
    assert [bar.get_x() for bar in answered] == [bar.get_x() for bar in offered]
    assert offered[0].get_width() == pytest.approx(15 / 1440)
