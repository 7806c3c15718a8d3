"""The CSV writer's own join for rows with nothing to quote writes the very bytes csv.writer
does, and hands every other row to it: a spreadsheet opens the same file either way."""

from __future__ import annotations

import csv
import io
import random

from ivr.metrics.export import Cell, CsvWriter

# Cells an export has, and the characters that make csv quote.
PIECES = ["", "a", "billing", "Example Co.", "2026-03-01T23:06:14.318+00:00", " ", ",", '"', "\n", "\r", "a,b",
          'say "hi"', "line\nbreak", "中文", "welcome > main-menu", "tab\there", ";"]


def random_cell(rng: random.Random) -> Cell:
    kind = rng.randrange(6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.randrange(-5, 10**7)
    if kind == 3:
        return rng.choice([0.0, 374.318, 1e-05, 12345678901.5, -0.25, float(rng.randrange(1000)) / 7])
    return "".join(rng.choice(PIECES) for _ in range(rng.randrange(4)))


def reference(rows: list[list[Cell]], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["true" if cell is True else "false" if cell is False else cell for cell in row])
    return out.getvalue()


def test_every_row_comes_out_as_csv_writer_writes_it() -> None:
    rng = random.Random(400)
    columns = [f"c{n}" for n in range(6)]
    rows = [[random_cell(rng) for _ in columns] for _ in range(5000)]
    out = io.StringIO()
    writer = CsvWriter(out, columns)
    for row in rows:
        writer.write(row)
    assert out.getvalue() == reference(rows, columns)
    # Both paths were taken: rows with quoted cells and rows without.
    lines = out.getvalue().splitlines()
    assert any('"' in line for line in lines) and sum('"' not in line for line in lines) > 1000


def test_without_header_only_the_rows_are_written() -> None:
    out = io.StringIO()
    CsvWriter(out, ["a", "b"], header=False).write(["x,y", None])
    assert out.getvalue() == '"x,y",\n'
