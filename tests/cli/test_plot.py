"""The paper's figures (sgdtop.plot): files are written, non-blank, in each format."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from runs_fixtures import high_lr_run, low_lr_run, make_run, two_runs
from schema_samples import make_record as make_event

from sgdtop.plot import (
    INSTALL_HINT,
    PLOT_KINDS,
    PlotDataError,
    PlotUnavailableError,
    make_figure,
    plot_runs,
    run_colors,
    run_labels,
)
from sgdtop.stats import RunEvents, summarize

mpl_image = pytest.importorskip("matplotlib.image")


def _assert_nontrivial_png(path: Path, min_bytes: int = 15_000) -> np.ndarray:
    """The PNG exists, is not tiny, and is not one flat color."""
    assert path.is_file() and path.stat().st_size > min_bytes
    img = mpl_image.imread(path)
    assert img.ndim == 3 and img.shape[0] > 300 and img.shape[1] > 300
    rgb = img[..., :3]
    assert float(rgb.var()) > 1e-3  # not blank
    # Some colored (non-gray) ink: the data, not only axes and text.
    chroma = rgb.max(axis=2) - rgb.min(axis=2)
    assert float((chroma > 0.2).mean()) > 1e-3
    return img


@pytest.mark.parametrize("kind", PLOT_KINDS)
def test_each_kind_writes_a_nontrivial_png(kind: str, tmp_path: Path) -> None:
    out = plot_runs(two_runs(), tmp_path / "fig" / f"{kind}.png", kind)
    assert out == tmp_path / "fig" / f"{kind}.png"
    _assert_nontrivial_png(out)


def test_svg_and_pdf_by_suffix(tmp_path: Path) -> None:
    svg = plot_runs(two_runs(), tmp_path / "cond.svg", "cond")
    pdf = plot_runs(two_runs(), tmp_path / "dead.PDF", "dead")
    assert svg.read_text(encoding="utf-8").lstrip().startswith("<?xml")
    assert "<svg" in svg.read_text(encoding="utf-8")
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 5_000


def test_bad_suffix_or_kind_is_refused_before_drawing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.png, \.svg, \.pdf"):
        plot_runs(two_runs(), tmp_path / "fig.jpg")
    with pytest.raises(ValueError, match="unknown plot kind"):
        plot_runs(two_runs(), tmp_path / "fig.png", "histogram")
    assert not list(tmp_path.iterdir())


def test_missing_data_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PlotDataError, match="dense_spectrum"):
        plot_runs([low_lr_run()], tmp_path / "d.png", "dense")
    no_spectrum = RunEvents.from_events(
        [ev for ev in high_lr_run().events if ev.kind not in ("spectrum", "dense_spectrum")]
    )
    with pytest.raises(PlotDataError, match="spectrum"):
        plot_runs([no_spectrum], tmp_path / "e.png", "eigenvalues")
    with pytest.raises(PlotDataError, match="condition number"):
        plot_runs([no_spectrum], tmp_path / "c.png", "cond")
    with pytest.raises(PlotDataError):
        plot_runs([], tmp_path / "none.png")
    with pytest.raises(PlotDataError, match="no measurements"):
        plot_runs([RunEvents("empty", [])], tmp_path / "a.png")
    assert not list(tmp_path.iterdir())


def test_without_matplotlib_the_error_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(PlotUnavailableError) as info:
        plot_runs(two_runs(), tmp_path / "x.png")
    assert str(info.value) == INSTALL_HINT == (
        "matplotlib is not installed: pip install 'sgdtop[plot]'"
    )


def test_runs_are_colored_red_for_high_lr_blue_for_low() -> None:
    mid = RunEvents.from_events(make_run(0.03, run_id="mid"))
    summaries = [summarize(r) for r in [*two_runs(), mid]]
    high, low, middle = run_colors(summaries)
    assert high[0] > high[2] and low[2] > low[0]  # red vs blue
    assert middle not in (high, low)
    same = [summarize(high_lr_run()), summarize(high_lr_run())]
    assert run_colors(same) == ["C0", "C1"]


def test_run_labels_name_what_differs() -> None:
    runs = two_runs()
    assert run_labels(runs, [summarize(r) for r in runs]) == ["η=0.1", "η=0.01"]
    s32 = RunEvents.from_events(make_run(0.1, run_id="s32", batch_size=32))
    s256 = RunEvents.from_events(make_run(0.1, run_id="s256", batch_size=256))
    assert run_labels([s32, s256], [summarize(s32), summarize(s256)]) == ["S=32", "S=256"]
    twins = [high_lr_run(), RunEvents.from_events(high_lr_run().events, label="again")]
    assert run_labels(twins, [summarize(r) for r in twins]) == ["resnet32-lr0.1", "again"]


def test_eigenvalue_figure_layout() -> None:
    fig = make_figure(two_runs(), "eigenvalues", axis="step")
    main = [ax for ax in fig.axes if ax.get_xlabel() == "optimizer step"]
    assert len(main) == 2
    assert main[0].get_ylim() == main[1].get_ylim()  # one eigenvalue scale
    # k traces + the zero line per panel; rank 1 (red) drawn last, on top.
    lines = main[0].get_lines()
    assert len(lines) == 30 + 1
    first, last = lines[0].get_color(), lines[29].get_color()
    assert last[0] > last[2] and first[2] > first[0]
    assert any("training loss" in ax.get_ylabel() for ax in fig.axes)
    assert any("rank" in ax.get_ylabel() for ax in fig.axes)  # the colorbar


def test_single_run_and_partial_data_still_draw(tmp_path: Path) -> None:
    _assert_nontrivial_png(plot_runs([high_lr_run()], tmp_path / "one.png", "eigenvalues"))
    # A run with steps and spectra only (no eval, no neurons): the batch loss stands in.
    sparse = RunEvents.from_events(
        [ev for ev in low_lr_run().events if ev.kind not in ("eval", "neurons")]
    )
    _assert_nontrivial_png(plot_runs([sparse], tmp_path / "auto.png", "auto", axis="step"))
    fig = make_figure([sparse], "dead")
    assert any("no dead-neuron" in t.get_text() for ax in fig.axes for t in ax.texts)


def test_regression_runs_skip_the_accuracy_panel() -> None:
    events = [
        make_event(
            "eval", float(s), step=s, epoch=0, train_loss=1.0 / s, train_acc=float("nan"),
            test_loss=1.2 / s, test_acc=float("nan"),
        )
        for s in range(1, 6)
    ]
    fig = make_figure([RunEvents("reg", events)], "auto")
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["(a) loss"]


def test_rho_is_paired_with_the_training_loss_of_the_same_step() -> None:
    from sgdtop.plot import rho_at_train_loss

    def ev(kind: str, step: int, **f: object):
        return make_event(kind, float(step), step=step, epoch=0, **f)

    spec = {"eigenvalues": [1.0], "residuals": [0.0], "converged": [True], "cond_k": 1.0,
            "lr": 0.1, "momentum": 0.0, "eta_lambda1": 0.1, "stability_limit": 20.0,
            "hvps": 1, "seconds": 0.1, "warm": False}
    acc = {"train_acc": 0.5, "test_loss": 1.0, "test_acc": 0.5}
    run = RunEvents.from_events([
        ev("spectrum", 0, spectral_norm=5.0, **spec),  # no eval at step 0: left out
        ev("eval", 10, train_loss=0.9, **acc), ev("spectrum", 10, spectral_norm=7.0, **spec),
        ev("spectrum", 15, spectral_norm=8.0, **spec),  # between evals: left out
        ev("eval", 20, train_loss=0.4, **acc), ev("spectrum", 20, spectral_norm=3.0, **spec),
    ])
    x, y = rho_at_train_loss(run)
    assert x.tolist() == [0.9, 0.4] and y.tolist() == [7.0, 3.0]
    with pytest.raises(PlotDataError, match="evaluation"):
        make_figure([RunEvents.from_events([ev("spectrum", 0, spectral_norm=5.0, **spec)])],
                    "rho-vs-loss")
