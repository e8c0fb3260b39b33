"""Drawing and saving a figure of saved runs: :data:`PLOT_KINDS`, :func:`make_figure` and
:func:`plot_runs` (what ``sgdtop plot RUN... --kind K`` calls), and the ``"auto"`` kind,
a multi-panel summary of whatever the runs measured. The other kinds are in
:mod:`sgdtop.plot.runs`; the package docstring says what each shows. matplotlib is
imported only when a figure is drawn. Definitions: docs/design.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from sgdtop.plot.runs import (
    _cond_style_handles,
    _draw_dense,
    _fig_cond,
    _fig_dead,
    _fig_dense,
    _fig_eigenvalues,
    _fig_generalization,
    _fig_rho_vs_loss,
    _fig_slices,
    _has,
    _has_finite,
    _k_of,
    _plot_cond,
    _training_loss,
)
from sgdtop.plot.style import (
    _WIDTH_IN,
    PlotDataError,
    _line,
    _maybe_log,
    _metadata,
    _require_matplotlib,
    _run_handles,
    _style,
    _styled,
    _suffix,
)
from sgdtop.stats import AXIS_LABELS, Axis, RunEvents, series

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PLOT_KINDS: Final[tuple[str, ...]] = ("auto", "eigenvalues", "cond", "dead", "dense",
                                       "generalization", "rho-vs-loss", "slices")


def _fig_auto(fig: Figure, runs: Sequence[RunEvents], axis: Axis) -> None:
    summaries, colors, labels = _styled(runs)
    k = _k_of(runs, summaries)
    panels: list[str] = []
    if any(_has(r, "spectrum") for r in runs):
        panels += ["rho", "top10", "cond"]
    elif any(_has(r, "dense_spectrum") for r in runs):
        panels.append("cond")
    if any(_has(r, "eval") or _has(r, "step") for r in runs):
        panels.append("loss")
    if _has_finite(runs, "test_acc", "eval"):
        panels.append("acc")
    if any(_has(r, "neurons") for r in runs):
        panels.append("dead")
    if any(_has(r, "dense_spectrum") for r in runs):
        panels.append("dense")
    if not panels:
        raise PlotDataError("these runs hold no measurements to plot")
    ncols = 3 if len(panels) >= 5 else min(len(panels), 2)
    nrows = math.ceil(len(panels) / ncols)
    fig.set_size_inches(_WIDTH_IN if ncols > 1 else 4.5, 2.35 * nrows + 0.7)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    extra_handles: list[Any] = []
    extra_labels: list[str] = []
    for idx, (ax, panel) in enumerate(zip(axes, panels, strict=False)):
        letter = f"({chr(ord('a') + idx)}) "
        if panel == "dense":
            n_dense = sum(_has(r, "dense_spectrum") for r in runs)
            for run, color in zip(runs, colors, strict=True):
                _draw_dense(ax, run, color, axis, stats=n_dense == 1)
            ax.set_title(letter + "full spectrum (last)")
            ax.set_xlabel(r"Hessian eigenvalue $\lambda$")
            ax.set_ylabel("count (log scale)")
            continue
        ax.set_xlabel(AXIS_LABELS[axis])
        if panel == "cond":
            _plot_cond(ax, runs, colors, axis)
            ax.set_title(letter + "condition number")
            ax.set_ylabel(r"$\kappa$")
            handles, texts = _cond_style_handles(runs, k)
            extra_handles += handles
            extra_labels += texts
            continue
        if panel == "loss":
            from matplotlib.lines import Line2D

            for run, color in zip(runs, colors, strict=True):
                x, y, _ = _training_loss(run, axis)
                _line(ax, x, y, color=color)
                x, y = series(run.events, "test_loss", "eval", axis=axis)
                if x.size:
                    _line(ax, x, y, color=color, ls="--")
            ax.set_title(letter + "loss")
            ax.set_ylabel("loss")
            extra_handles += [Line2D([], [], color="0.2"), Line2D([], [], color="0.2", ls="--")]
            extra_labels += ["train loss", "test loss"]
            continue
        field, kind, title, ylabel, scale = {
            "rho": ("spectral_norm", "spectrum", "spectral norm", r"$\rho(H)$", 1.0),
            "top10": ("top10_mean", "spectrum", "top-10 mean", r"mean $|\lambda_{1..10}|$", 1.0),
            "acc": ("test_acc", "eval", "test accuracy", "test accuracy (%)", 100.0),
            "dead": ("dead_pct", "neurons", "dead neurons", "dead neurons (%)", 1.0),
        }[panel]
        ys = []
        for run, color in zip(runs, colors, strict=True):
            x, y = series(run.events, field, kind, axis=axis)
            if x.size:
                _line(ax, x, y * scale, color=color)
                ys.append(y)
        if panel in ("rho", "top10"):
            _maybe_log(ax, ys)
        ax.set_title(letter + title)
        ax.set_ylabel(ylabel)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    fig.legend(
        _run_handles(labels, colors) + extra_handles,
        labels + extra_labels,
        loc="outside lower center",
        ncols=min(len(labels) + len(extra_labels), 4),
    )
    title = runs[0].name if len(runs) == 1 else f"{len(runs)} runs"
    fig.suptitle(f"sgdtop: {title}")


_FIGURES: Final[dict[str, Any]] = {
    "auto": _fig_auto,
    "eigenvalues": _fig_eigenvalues,
    "cond": _fig_cond,
    "dead": _fig_dead,
    "dense": _fig_dense,
    "generalization": _fig_generalization,
    "rho-vs-loss": _fig_rho_vs_loss,
    "slices": _fig_slices,
}


def make_figure(runs: Sequence[RunEvents], kind: str = "auto", *, axis: Axis = "epoch") -> Figure:
    """Draw figure ``kind`` (see :mod:`sgdtop.plot`) of ``runs`` over ``axis``.

    Raises :class:`PlotUnavailableError` without matplotlib, :class:`PlotDataError` when
    the runs hold nothing that figure shows, ``ValueError`` for an unknown kind.
    """
    if kind not in PLOT_KINDS:
        raise ValueError(f"unknown plot kind {kind!r} (known: {', '.join(PLOT_KINDS)})")
    if not runs:
        raise PlotDataError("no runs to plot")
    _require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with _style():
        fig = Figure(layout="constrained")
        FigureCanvasAgg(fig)
        _FIGURES[kind](fig, runs, axis)
    return fig


def plot_runs(
    runs: Sequence[RunEvents],
    out: Path,
    kind: str = "auto",
    *,
    axis: Axis = "epoch",
    dpi: int = 200,
) -> Path:
    """Draw figure ``kind`` of ``runs`` and save it to ``out`` (format by suffix: .png,
    .svg or .pdf; ``dpi`` applies to PNG). Creates ``out``'s directory; returns ``out``.

    Raises ``ValueError`` for an unknown suffix or kind, :class:`PlotDataError` when
    there is nothing to draw, :class:`PlotUnavailableError` without matplotlib.
    """
    out = Path(out)
    suffix = _suffix(out)
    fig = make_figure(runs, kind, axis=axis)
    out.parent.mkdir(parents=True, exist_ok=True)
    with _style():
        fig.savefig(out, format=suffix[1:], dpi=dpi, metadata=_metadata(suffix))
    return out
