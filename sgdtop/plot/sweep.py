"""The paper's Fig. 3 from a sweep (``sgdtop plot SWEEP``): :func:`plot_sweep` draws the
training-time averages of ρ(H) and of the top-10 mean |λ| of each completed cell against
1/η and S, with the fitted lines of :mod:`sgdtop.sweep.stats`. matplotlib and the sweep
statistics are imported only when the figure is drawn. Definitions: docs/design.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sgdtop.compare import format_value
from sgdtop.plot.style import (
    PlotDataError,
    _metadata,
    _require_matplotlib,
    _style,
    _suffix,
)
from sgdtop.stats import Weighting

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from sgdtop.sweep.stats import SweepFit
    from sgdtop.sweep.sweepfile import Sweep


def _draw_sweep_panel(ax: Axes, fits: Sequence[SweepFit], x_axis: str) -> None:
    """Points and fitted lines of one Fig. 3 panel: ρ(H) solid, top-10 mean dotted, one
    color per group."""
    groups: list[str] = []
    for f in fits:
        if f.group_label not in groups:
            groups.append(f.group_label)
    allx = np.concatenate([f.x for f in fits]) if fits else np.array([])
    log_x = allx.size > 0 and bool(np.all(allx > 0)) and allx.max() / allx.min() > 50
    for f in fits:
        color = f"C{groups.index(f.group_label) % 10}"
        solid = f.quantity == "spectral_norm"
        ls = "-" if solid else ":"
        marker = "o" if solid else "s"
        name = "ρ(H)" if solid else "top-10 mean"
        label = name + ("" if f.group_label == "all" else f", {f.group_label}")
        if f.fit is not None:
            label += f": slope {format_value(f.fit.slope, 3)}, r² {format_value(f.fit.r2, 3)}"
        ax.plot(f.x, f.y, ls="none", marker=marker, color=color, ms=4,
                mfc=color if solid else "white")
        if f.fit is not None and f.x.size:
            lo, hi = float(f.x.min()), float(f.x.max())
            xs = np.geomspace(lo, hi, 200) if log_x else np.linspace(lo, hi, 200)
            ax.plot(xs, f.fit.predict(xs), ls=ls, color=color, lw=1.6 if solid else 2.0,
                    label=label)
        else:
            ax.plot(f.x, f.y, ls=ls, color=color, label=label)
    if log_x:  # a line over decades of x: log-log shows every point (a line stays a line
        ax.set_xscale("log")  # for large x, where the slope dominates the intercept)
        ally = np.concatenate([f.y for f in fits])
        if ally.size and bool(np.all(ally > 0)):
            ax.set_yscale("log")
    ax.set_xlabel({"inv_lr": r"$1/\eta$", "batch_size": "batch size $S$"}[x_axis])
    ax.set_ylabel(r"time average over training")
    # Below the axes: "best" put it over a point of a 5-cell sweep.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=7, frameon=False)


def plot_sweep(
    sweep: Sweep | str | Path,
    out: str | Path,
    *,
    weighting: Weighting = "events",
    dpi: int = 200,
) -> Path:
    """Draw the paper's Fig. 3 for ``sweep`` and save it to ``out`` (.png, .svg or .pdf).

    Left: the training-time averages of ρ(H) (solid) and of the top-10 mean |λ| (dotted)
    of each completed cell against 1/η, with the fitted lines; right: the same against S
    when S varies; one color per value of the other swept settings. Axes are linear, or
    log-log when x spans more than 50× (the fitted line is then drawn as the curve it
    is). The legend gives each line's slope and r². Raises ``ValueError`` for an
    unknown suffix, :class:`PlotDataError` when nothing can be drawn,
    :class:`PlotUnavailableError` without matplotlib. Returns ``out``.
    """
    from sgdtop.sweep.stats import X_AXES, summarize_sweep

    out = Path(out)
    suffix = _suffix(out)
    summary = summarize_sweep(sweep, weighting=weighting)
    panels = [x for x, (axis, _) in X_AXES.items() if axis in summary.varying]
    if not panels:
        raise PlotDataError(f"sweep {summary.sweep_id} varies neither η nor S: "
                            "Fig. 3 has no x axis")
    if not any(f.x.size for f in summary.fits):
        raise PlotDataError(f"sweep {summary.sweep_id} has no completed cell with a "
                            "spectrum measurement yet")
    _require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with _style():
        fig = Figure(layout="constrained")
        FigureCanvasAgg(fig)
        fig.set_size_inches(3.8 * len(panels) + 0.6, 3.5)
        axes = fig.subplots(1, len(panels), squeeze=False).ravel()
        for ax, x_axis in zip(axes, panels, strict=True):
            _draw_sweep_panel(ax, [f for f in summary.fits if f.x_axis == x_axis], x_axis)
            ax.set_title({"inv_lr": "against the inverse learning rate 1/η",
                          "batch_size": "against the batch size S"}[x_axis])
        fig.suptitle(f"sweep {summary.sweep_id}: time-averaged spectrum (Fig. 3)")
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, format=suffix[1:], dpi=dpi, metadata=_metadata(suffix))
    return out
