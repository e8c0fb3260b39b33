"""The TUI's drawing code as plain functions of state snapshots (no terminal, no Textual):
the number spellings it draws with (``sgdtop.format``, locked by the snapshots), colors,
sparklines, the header, the top-k table, the braille canvas, the eigenvalue chart and the
log line."""

from __future__ import annotations

import math

import pytest
from rich.text import Text
from tui_fixtures import K, cut_off_run, diverging_run, normal_run

from sgdtop.format import clock, count, number, signed
from sgdtop.tui.draw.canvas import BrailleCanvas
from sgdtop.tui.draw.eigen_chart import chart_legend, chart_text
from sgdtop.tui.draw.header import header_text
from sgdtop.tui.draw.log import log_text
from sgdtop.tui.draw.palette import LIMIT_COLOR, LOSS_COLOR, rank_color
from sgdtop.tui.draw.sparkline import metric_row, sparkline
from sgdtop.tui.draw.table import eigen_table, spectrum_status
from sgdtop.tui.state import RunState, fold


@pytest.mark.parametrize(
    ("x", "expected"),
    [(None, "–"), (math.nan, "nan"), (math.inf, "+inf"), (-math.inf, "-inf"), (0.0, "0"),
     (12.3456, "12.35"), (1.5e-5, "1.5e-5"), (123456.0, "1.235e5"), (-2.0, "-2")],
)
def test_fmt_num(x: float | None, expected: str) -> None:
    assert number(x) == expected


def test_small_formatters() -> None:
    assert signed(1.5) == "+1.5" and signed(-1.5) == "-1.5"
    assert signed(math.nan) == "nan" and signed(math.inf) == "+inf"
    assert count(40_301) == "40.3k" and count(950) == "950"
    assert count(2.5e6) == "2.5M" and count(math.nan) == "nan"
    assert clock(3725.2) == "1:02:05" and clock(65) == "1:05"
    assert clock(math.inf) == "?" and clock(None) == "?"
    assert rank_color(0, 30) == "#ef4444" and rank_color(29, 30) == "#3b82f6"
    assert rank_color(0, 1) == "#ef4444"


def test_sparkline_is_right_aligned_one_column_per_value() -> None:
    line = sparkline([1.0, 2.0, 3.0], 10, "red")
    assert line.plain == "       ▁▅█"
    assert sparkline([5.0, 5.0], 3, "red").plain == " ▄▄"
    assert sparkline(list(range(100)), 5, "red").plain == "▁▃▅▆█"
    odd = sparkline([1.0, math.nan, math.inf, -math.inf, 2.0], 5, "red")
    assert odd.plain == "▁×↑↓█"
    assert sparkline([math.nan], 0, "red").plain == ""
    assert sparkline([], 4, "red").plain == "    "


@pytest.mark.parametrize("width", [20, 32, 44, 60, 120])
def test_metric_rows_fill_their_width(width: int) -> None:
    s = fold(normal_run())
    for view in s.metric_views():
        row = metric_row(view, width)
        assert row.cell_len == width, (view.key, row.plain)


def test_header_fits_every_width() -> None:
    s = fold(normal_run())
    mode = Text("replay ▶ 4× λ 21/21")
    for width in (30, 60, 80, 120, 160, 250):
        lines = header_text(s.header_view(), width, mode=mode.copy()).split("\n")
        assert len(lines) == 2
        assert all(line.cell_len <= width for line in lines), width
    wide = header_text(s.header_view(), 160, mode=mode.copy()).plain
    for needle in ("mlp", "cifar10", "η 0.1", "S 128", "β 0.9", "epoch 10/10",
                   "step 500", "0:16", "ex/s", "completed", "cpu"):
        assert needle in wide
    waiting = header_text(RunState().header_view(), 80).plain
    assert "waiting" in waiting


def test_eigen_table_columns_depend_on_width() -> None:
    view = fold(normal_run()).spectrum_view()
    narrow = eigen_table(view, 30).plain.split("\n")
    assert len(narrow) == K + 1
    assert "resid" not in narrow[0] and "✓" in narrow[1] and "✗" in narrow[-1]
    wide = eigen_table(view, 52).plain.split("\n")
    assert "resid" in wide[0] and "█" in wide[1]
    assert "-" in wide[25]  # rank 25 is negative in the fixture
    assert eigen_table(RunState().spectrum_view(), 30).plain == "no spectrum yet"


def test_spectrum_status_line() -> None:
    s = fold(cut_off_run())
    assert spectrum_status(s.spectrum_view()).plain.startswith("⟳ measuring: 20 HVPs")
    s = fold(normal_run())
    assert spectrum_status(s.spectrum_view(), 60).plain == (
        "step 500 · 60 HVPs · 0.3 s · 27/30 ✓")
    assert spectrum_status(s.spectrum_view(), 30).plain == "@500 · 60 HVP · 0.3s · 27/30✓"
    assert "no measurement" in spectrum_status(RunState().spectrum_view()).plain


@pytest.mark.parametrize(("width", "height"), [(12, 3), (30, 6), (44, 8), (100, 30)])
@pytest.mark.parametrize("log", [False, True])
def test_chart_has_exactly_its_size(width: int, height: int, log: bool) -> None:
    view = fold(normal_run()).chart_view()
    lines = chart_text(view, width, height, log=log).split("\n")
    assert len(lines) == height
    assert all(line.cell_len == width for line in lines), [line.cell_len for line in lines]


def test_chart_draws_traces_axes_and_limit() -> None:
    view = fold(normal_run()).chart_view()
    text = chart_text(view, 80, 16)
    plain = text.plain
    assert any(0x2800 < ord(ch) <= 0x28FF for ch in plain)
    assert "epoch" in plain.split("\n")[-1]
    styles = {str(span.style) for span in text.spans}
    assert rank_color(0, K) in styles  # the largest is drawn on top
    assert len(styles & {rank_color(r, K) for r in range(K)}) >= 10
    assert LOSS_COLOR in styles and LIMIT_COLOR in styles
    assert chart_text(None, 40, 5).plain.strip() == "waiting for the first spectrum"
    assert chart_text(view, 5, 5).plain == ""
    legend = chart_legend(view, log=True, width=200)
    assert "log" in legend and "train loss" in legend
    short = chart_legend(view, log=False, width=30)
    assert Text.from_markup(short).cell_len <= 30


def test_braille_canvas() -> None:
    c = BrailleCanvas(2, 2)
    red = c.color_index("red")
    c.dot(0, 0, red)
    c.dot(1, 3, red)
    c.dot(99, 99, red)  # ignored
    c.line(2, 0, 3, 7, c.color_index("blue"))
    rows = c.rows()
    assert rows[0].plain[0] == chr(0x2800 | 0x01 | 0x80)
    assert len(rows) == 2 and all(r.cell_len == 2 for r in rows)
    assert rows[1].plain[1] != " "


def test_log_text() -> None:
    s = fold(diverging_run())
    texts = [log_text(line).plain for line in s.log_lines()]
    assert any(t.strip().startswith("0:02 ✖ loss is nan") for t in texts)
