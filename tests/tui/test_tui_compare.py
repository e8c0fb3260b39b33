"""The compare view (``sgdtop compare`` on a terminal): the multi-run chart renderer and
the pure table/label functions as plain functions, the app with Pilot, its looks with SVG
snapshots at 80×24 and 160×48 over the two fixture runs (η=0.1 and η=0.01).

Update the snapshots after a deliberate change:
``pytest tests/tui/test_tui_compare.py --snapshot-update``.
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from rich.text import Text
from runs_fixtures import make_run, two_runs
from schema_samples import make_record as make_event
from textual.pilot import Pilot
from tui_fixtures import LARGE, SMALL, SnapCompare, drive

from sgdtop.compare import CompareReport, build_report
from sgdtop.stats import RunEvents
from sgdtop.tui.compare import CompareApp
from sgdtop.tui.compare.app import CompareHelpScreen
from sgdtop.tui.compare.widgets import CompareChart, MetricBar, SummaryTableView
from sgdtop.tui.draw.compare import (
    chart_lines,
    metric_bar,
    summary_spec,
    summary_table,
    table_height,
)
from sgdtop.tui.draw.lines_chart import ChartLine, lines_chart, lines_legend
from sgdtop.tui.draw.palette import DIFF_STYLE, RUN_COLORS, run_color
from sgdtop.tui.state.compare import metric_keys, run_labels


def _report() -> CompareReport:
    return build_report(two_runs())


def _plain_rows(text: Text) -> list[str]:
    return text.plain.split("\n")


# -- lines_chart / lines_legend ------------------------------------------------------


def _line(ys: list[float], color: str = "#ff0000", label: str = "a") -> ChartLine:
    return ChartLine(label=label, xs=[float(i) for i in range(len(ys))], ys=ys,
                            color=color)


def test_lines_chart_draws_each_line_in_its_color_at_the_size_asked() -> None:
    a = _line([1.0, 2.0, 3.0, 4.0], "#ff0000")
    b = _line([4.0, 3.0, 2.0, 1.0], "#00ff00", "b")
    text = lines_chart([a, b], 40, 10)
    rows = _plain_rows(text)
    assert len(rows) == 10 and all(len(r) == 40 for r in rows)
    styles = {str(span.style) for span in text.spans}
    assert {"#ff0000", "#00ff00"} <= styles
    assert rows[0].strip().startswith("4") and rows[-2].strip().startswith("1")
    assert rows[-1].split() == ["lin", "0", "1.5", "3"]


def test_lines_chart_bridges_missing_points_and_marks_infinities() -> None:
    # a run measured every other x (NaN between): still one connected line
    sparse = ChartLine("s", xs=[0, 1, 2, 3, 4], ys=[1.0, math.nan, 2.0, math.nan, 3.0],
                              color="#ff0000")
    dots = sum(ch != " " and ch >= "\u2800" for ch in lines_chart([sparse], 30, 6).plain)
    assert dots > 10
    blown = _line([1.0, 2.0, math.inf, 1.5, -math.inf, 1.0])
    text = lines_chart([blown], 30, 6)
    top = _plain_rows(text)[0][7:]
    bottom = _plain_rows(text)[-2][7:]
    assert top.strip() and bottom.strip()  # the ticks at the edges
    legend = lines_legend([blown, _line([math.nan], label="empty")]).plain
    assert "↑inf" in legend and "↓inf" in legend and "empty (none)" in legend


@pytest.mark.parametrize("log", [False, True])
def test_lines_chart_never_breaks_on_bad_values(log: bool) -> None:
    bad = [
        _line([]),
        _line([math.nan, math.nan]),
        _line([math.inf]),
        _line([0.0, -1.0, 0.0]),
        _line([5.0]),
        _line([1e300, -1e300, 1e-300]),
        ChartLine("x", xs=[math.nan, math.inf, 1.0], ys=[1.0, 2.0, 3.0], color="red"),
    ]
    for lines in ([], bad, bad[:2], bad[2:3], bad[3:4], bad[4:5]):
        for w, h in ((0, 0), (11, 2), (12, 3), (20, 5), (200, 60)):
            text = lines_chart(lines, w, h, log=log, empty="nothing")
            if w >= 12 and h >= 3:
                assert len(_plain_rows(text)) == h
    empty = lines_chart([_line([math.nan])], 30, 5, empty="nothing here").plain
    assert "nothing here" in empty
    assert "nothing" in lines_chart([_line([0.0, 0.0])], 30, 5, log=True,
                                           empty="nothing").plain


def test_lines_legend_fits_its_width() -> None:
    lines = [_line([1.0], run_color(i), f"run number {i}") for i in range(10)]
    assert lines_legend(lines, 30).cell_len <= 30
    assert run_color(0) != run_color(1)
    assert run_color(len(RUN_COLORS)) == run_color(0)


# -- pure functions of the compare view ----------------------------------------------


def _run(lr: float, run_id: str, **kw: object) -> RunEvents:
    return RunEvents.from_events(make_run(lr, run_id=run_id, **kw))  # type: ignore[arg-type]


def test_run_labels_say_what_differs() -> None:
    assert run_labels(_report()) == ["η=0.1", "η=0.01"]
    two = build_report([_run(0.1, "a", batch_size=32), _run(0.01, "b", batch_size=256)])
    assert run_labels(two) == ["η=0.1 S=32", "η=0.01 S=256"]
    same = build_report([_run(0.1, "a"), _run(0.1, "b")])
    assert run_labels(same) == ["a", "b"]
    twins = build_report([_run(0.1, "a"), _run(0.1, "b"), _run(0.01, "c")])
    assert run_labels(twins) == ["η=0.1 #1", "η=0.1 #2", "η=0.01"]
    mine = RunEvents.from_events(make_run(0.1, run_id="a"), label="baseline")
    assert run_labels(build_report([mine, _run(0.01, "b")])) == ["baseline", "η=0.01"]


def test_summary_table_runs_as_columns_differences_highlighted() -> None:
    report = _report()
    for full in (False, True):
        table = summary_table(report, full=full)
        console = Console(width=80, record=True, color_system=None)
        console.print(table)
        out = console.export_text().rstrip("\n").split("\n")
        assert len(out) == table_height(report, full=full)
        text = "\n".join(out)
        assert "η=0.1" in out[0] and "η=0.01" in out[0]
        for needle in ("completed", "18.9", "53.6", "10.98", "κ₃₀ final", "dead %", "85"):
            assert needle in text
    labels = [row[0] for row in summary_spec(report, full=False)]
    assert labels[:3] == ["η", "S", "β"] and "ρ(H) final/avg" in labels
    table = summary_table(report)
    eta_cell, s_cell = list(table.columns[1].cells)[:2]
    assert str(eta_cell.style) == DIFF_STYLE  # type: ignore[union-attr]
    assert str(s_cell.style) == ""  # type: ignore[union-attr]


def test_compact_table_lists_other_differing_settings() -> None:
    a = RunEvents.from_events(make_run(0.1, run_id="a"))
    events = make_run(0.1, run_id="b")
    events[0] = dataclasses.replace(events[0], model="vgg11")  # type: ignore[type-var]
    report = build_report([a, RunEvents.from_events(events)])
    assert report.differing == ["model"]
    assert "model" in [row[0] for row in summary_spec(report, full=False)]
    assert run_labels(report) == ["resnet32", "vgg11"]


def test_chart_lines_and_metric_bar() -> None:
    report = _report()
    assert metric_keys(report) == [
        "spectral_norm", "top10_mean", "cond_k", "train_loss", "test_loss", "test_acc",
        "dead_pct"]
    lines = chart_lines(report, "test_loss")
    assert [ln.label for ln in lines] == ["η=0.1", "η=0.01"]
    assert math.inf in lines[1].ys and lines[0].color != lines[1].color
    for width in (200, 80, 60, 20, 0):
        bar = metric_bar(report, "cond_k", width)
        assert bar.cell_len <= max(width, 0)
    assert "3 " in metric_bar(report, "cond_k", 80).plain
    assert "κ₃₀" in metric_bar(report, "cond_k", 80).plain


# -- the app (Pilot) -----------------------------------------------------------------


def test_metric_switching_keys() -> None:
    async def body(app: CompareApp, pilot: Pilot[None]) -> None:
        chart = app.query_one(CompareChart)
        bar = app.query_one(MetricBar)
        assert app.metric == "spectral_norm" and chart.metric == "spectral_norm"
        assert "ρ(H) by epoch" in str(chart.border_title)
        await pilot.press("right")
        assert app.metric == "top10_mean" == chart.metric == bar.selected
        await pilot.press("left", "left")
        assert app.metric == "dead_pct"  # wraps around
        await pilot.press("tab")
        assert app.metric == "spectral_norm"
        await pilot.press("shift+tab")
        assert app.metric == "dead_pct"
        await pilot.press("3")
        assert chart.metric == "cond_k" and "κ₃₀" in str(chart.border_title)
        await pilot.press("9")  # no ninth metric: nothing happens
        assert app.metric == "cond_k"
        await pilot.press("5")
        assert "test loss" in str(chart.border_title) and "↑inf" in str(chart.border_title)
        shown = bar.render()
        selected = [shown.plain[sp.start:sp.end] for sp in shown.spans
                    if str(sp.style) == "bold reverse"]
        assert "5 test loss" in shown.plain and selected == ["test loss"]

    drive(CompareApp(_report()), body)


def test_log_scale_help_and_quit() -> None:
    async def body(app: CompareApp, pilot: Pilot[None]) -> None:
        chart = app.query_one(CompareChart)
        await pilot.press("l")
        assert app.log_scale and chart.log_scale and "· log" in str(chart.border_title)
        await pilot.press("right")
        assert chart.log_scale  # the scale stays with the next metric
        await pilot.press("l")
        assert not chart.log_scale and "· lin" in str(chart.border_title)
        await pilot.press("question_mark")
        assert isinstance(app.screen, CompareHelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, CompareHelpScreen)
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running

    drive(CompareApp(_report()), body)


def test_screenshot_goes_to_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    async def body(app: CompareApp, pilot: Pilot[None]) -> None:
        await pilot.press("s", "s")
        assert [p.name for p in app.screenshots] == [
            "sgdtop-compare-spectral_norm.svg", "sgdtop-compare-spectral_norm-2.svg"]
        assert all(p.parent == tmp_path and p.read_text().startswith("<svg")
                   for p in app.screenshots)

    drive(CompareApp(_report()), body)


def _awkward_report() -> CompareReport:
    """A run with only run_start, one whose every value is NaN/inf, and a normal one."""
    bare = make_run(0.1, run_id="bare")[:1]
    broken = make_run(0.05, run_id="broken")
    nonfinite = []
    for ev in broken:
        data = {k: (math.nan if isinstance(v, float) and k not in ("lr", "momentum",
                                                                   "weight_decay") else v)
                for k, v in ev.to_wire().items() if k not in ("v", "kind", "t", "step", "epoch")}
        if ev.kind == "eval":
            data["test_loss"] = -math.inf
        nonfinite.append(make_event(ev.kind, ev.t, step=ev.step, epoch=ev.epoch, **data))
    return build_report([RunEvents.from_events(bare), RunEvents.from_events(nonfinite),
                         _run(0.01, "ok", nonfinite=True)])


def test_nan_inf_and_empty_runs_at_any_size() -> None:
    async def body(app: CompareApp, pilot: Pilot[None]) -> None:
        chart = app.query_one(CompareChart)
        for size in ((40, 12), (200, 60), (20, 6), (80, 24), (160, 48)):
            await pilot.resize_terminal(*size)
            await pilot.pause()
            for key in ("l", "right", "right", "right", "right", "l", "right"):
                await pilot.press(key)
                w, h = chart.size
                rows = chart.render().split("\n")
                if w >= 12 and h >= 3:  # else the chart is left blank
                    assert len(rows) == h and all(r.cell_len == w for r in rows), (size, key)
            assert app.is_running and app.size == size
        # The run with only run_start has no values, the all-NaN run's -inf test loss and
        # the other's +inf are marked, and the table spells the NaNs out.
        await pilot.press("5")
        title = str(chart.border_title)
        assert "η=0.1[#8b949e][/bold #f87171] (none)" in title
        assert "↓inf" in title and "↑inf" in title
        table = app.query_one(SummaryTableView).render()
        console = Console(width=160, record=True, color_system=None)
        console.print(table)
        broken = [line for line in console.export_text().splitlines() if "nan" in line]
        assert any(line.lstrip().startswith("ρ(H) final") for line in broken)

    drive(CompareApp(_awkward_report()), body)


def test_a_report_without_series() -> None:
    report = build_report([_run(0.1, "a"), _run(0.01, "b")], metrics=())

    async def body(app: CompareApp, pilot: Pilot[None]) -> None:
        await pilot.press("right", "left", "tab", "1", "l")
        assert app.metric == ""
        assert "no&#160;metric" in app.export_screenshot()

    drive(CompareApp(report), body)


def test_the_compare_view_imports_no_torch() -> None:
    code = (
        "import sys\n"
        "import sgdtop.tui.compare\n"
        "assert 'torch' not in sys.modules, 'the compare view imports torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- SVG snapshots -------------------------------------------------------------------


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
def test_snapshot_two_runs(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    assert snap_compare(CompareApp(_report()), terminal_size=size)


def test_snapshot_test_loss_log_scale(snap_compare: SnapCompare) -> None:
    assert snap_compare(CompareApp(_report()), press=["5", "l"], terminal_size=SMALL)
