"""Comparing runs (sgdtop.compare): alignment, the report, the tables."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rich.console import Console
from runs_fixtures import SPECTRUM_EVERY, STEPS, low_lr_run, two_runs
from schema_samples import make_record as make_event

from sgdtop.compare import (
    DEFAULT_METRICS,
    Metric,
    align,
    build_report,
    format_rows,
    format_value,
    render_text,
    series_rows,
    series_table,
    summary_rows,
    summary_table,
)
from sgdtop.schema import Record
from sgdtop.stats import RunEvents


def _tiny_run(run_id: str, spe: int, points: dict[int, float]) -> RunEvents:
    """A run with ``steps_per_epoch = spe`` and ``eval.test_loss`` at the given steps."""
    events: list[Record] = [
        make_event(
            "run_start", 0.0, step=0, epoch=0, run_id=run_id, profile={}, model="mlp",
            num_params=10, device="cpu", versions={}, dataset="teacher", train_size=100,
            test_size=10, probe_size=5, lr=0.1, batch_size=spe, momentum=0.0,
            weight_decay=0.0, k=3, epochs=3, steps_per_epoch=spe,
        )
    ]
    for step, value in points.items():
        events.append(make_event("eval", step, step=step, epoch=step // spe, train_loss=1.0,
                                 train_acc=0.5, test_loss=value, test_acc=0.5))
    return RunEvents.from_events(events)


LOSS = Metric("test_loss", "eval", "test_loss", "test loss")


def test_align_on_epochs_keeps_each_runs_measurements() -> None:
    # S=32 vs S=256 in miniature: 10 vs 2 steps per epoch, compared per epoch.
    small = _tiny_run("small-batch", 10, {10: 1.0, 20: 0.5, 25: math.inf})
    large = _tiny_run("large-batch", 2, {2: 2.0, 4: 1.5, 6: 1.0})
    al = align([small, large], LOSS, axis="epoch")
    assert list(al.x) == [1.0, 2.0, 2.5, 3.0]
    assert al.names == ["small-batch", "large-batch"]
    np.testing.assert_array_equal(al.y[0], [1.0, 0.5, math.inf, np.nan])
    np.testing.assert_array_equal(al.y[1], [2.0, 1.5, np.nan, 1.0])
    by_step = align([small, large], LOSS, axis="step")
    assert list(by_step.x) == [2, 4, 6, 10, 20, 25]


def test_align_interpolates_inside_each_runs_range_only() -> None:
    a = _tiny_run("a", 1, {0: 0.0, 10: 10.0})
    b = _tiny_run("b", 1, {5: 1.0, 20: 1.0, 30: math.nan})
    al = align([a, b], LOSS, axis="step", interpolate=True)
    assert list(al.x) == [0, 5, 10, 20, 30]
    np.testing.assert_allclose(al.y[0], [0.0, 5.0, 10.0, np.nan, np.nan])
    np.testing.assert_allclose(al.y[1], [np.nan, 1.0, 1.0, 1.0, np.nan])


def test_align_last_duplicate_wins_and_empty_runs_are_nan() -> None:
    run = _tiny_run("dup", 1, {3: 1.0})
    run.events.append(make_event("eval", 9.0, step=3, epoch=3, train_loss=1.0, train_acc=0.5,
                                 test_loss=7.0, test_acc=0.5))
    empty = RunEvents("empty", [])
    al = align([run, empty], LOSS, axis="step")
    assert list(al.x) == [3] and al.y[0, 0] == 7.0 and np.isnan(al.y[1, 0])
    assert align([], LOSS).x.size == 0


def test_build_report_on_the_two_runs() -> None:
    report = build_report(two_runs())
    assert report.axis == "epoch"
    assert report.names == ["resnet32-lr0.1", "resnet32-lr0.01"]
    assert report.differing == ["lr"]
    assert set(report.series) == {m.name for m in DEFAULT_METRICS}
    rho = report.series["spectral_norm"]
    assert rho.y.shape == (2, STEPS // SPECTRUM_EVERY)
    # The low-η run has the larger ρ(H) at every finite point (Fig. 2).
    ok = np.isfinite(rho.y).all(axis=0)
    assert ok.sum() == rho.x.size - 1 and np.all(rho.y[1, ok] > rho.y[0, ok])
    acc = report.series["test_acc"]
    assert np.nanmax(acc.y) == pytest.approx(85.0)  # shown in %


def test_summary_rows_put_runs_side_by_side() -> None:
    rows = summary_rows(build_report(two_runs()))
    assert rows[0] == ["", "resnet32-lr0.1", "resnet32-lr0.01"]
    table = {r[0]: r[1:] for r in rows[1:]}
    assert all(len(cells) == 2 for cells in table.values())
    assert table["η (lr)"] == ["0.1", "0.01"]
    assert table["batch size S"] == ["128", "128"]
    assert table["momentum β"] == ["0.9", "0.9"]
    assert table["status"] == ["completed", "completed"]
    assert table["spectra (non-finite)"] == ["40 (0)", "40 (1)"]
    assert "κ₃₀ final" in table and "top-10 mean |λ| avg" in table
    assert table["dense κ final"][1] == "—"  # not measured, not "nan"
    assert float(table["top-10 mean |λ| avg"][1]) > float(table["top-10 mean |λ| avg"][0])
    assert table["test acc final (%)"] == ["85", "80"]


def test_no_dense_row_without_dense_spectra() -> None:
    rows = summary_rows(build_report([low_lr_run()]))
    assert all(r[0] != "dense κ final" for r in rows)


def test_rich_tables_render() -> None:
    report = build_report(two_runs())
    console = Console(width=100, record=True, color_system=None)
    console.print(summary_table(report, title="η=0.1 vs η=0.01"))
    console.print(series_table(report.series["spectral_norm"], max_rows=5))
    text = console.export_text()
    assert "η=0.1 vs η=0.01" in text and "resnet32-lr0.01" in text
    assert "ρ(H) avg over training" in text and "epoch" in text
    table = summary_table(report)
    assert len(table.columns) == 3 and table.row_count == len(summary_rows(report)) - 1


def test_series_rows_subsample_keeps_first_and_last() -> None:
    al = build_report(two_runs()).series["spectral_norm"]
    rows = series_rows(al, max_rows=5)
    assert rows[0] == ["epoch", "resnet32-lr0.1", "resnet32-lr0.01"]
    assert len(rows) == 6
    assert rows[1][0] == "0.2" and rows[-1][0] == "8"
    everything = series_rows(al, max_rows=1000)
    assert len(everything) == al.x.size + 1
    assert any(r[2] == "nan" for r in everything[1:])
    assert len(series_rows(al, max_rows=1)) == 2


def test_render_text_has_the_table_and_each_measured_metric() -> None:
    text = render_text(build_report(two_runs()), max_rows=4)
    assert text.startswith(" " * 10)  # header row: empty label column
    for label in ("ρ(H) by epoch", "κ_k by epoch", "test loss by epoch", "dead % by epoch"):
        assert label in text
    report = build_report([RunEvents("empty", [])])
    assert "by epoch" not in render_text(report)


def test_format_value_and_rows() -> None:
    assert format_value(None) == "—"
    assert format_value(math.nan) == "nan"
    assert format_value(-math.inf) == "-inf"
    assert format_value(5e-4) == "0.0005"
    assert format_value(123456.0) == "1.235e+05"
    assert format_value(7) == "7" and format_value(True) == "yes"
    assert format_value(np.float32(0.5)) == "0.5"
    lines = format_rows([["a", "bb"], ["ccc", "d"]]).splitlines()
    assert lines == ["a    bb", "-------", "ccc   d"]
    assert format_rows([]) == ""
