"""The per-run figure kinds of :mod:`sgdtop.plot`, one function per kind, drawn on a
given :class:`~matplotlib.figure.Figure`: ``"eigenvalues"`` (Fig. 2), ``"cond"`` (Fig. 1a),
``"dead"`` (Fig. 5), ``"dense"`` (Fig. 1c/d), ``"generalization"`` (Fig. 1b),
``"rho-vs-loss"`` and ``"slices"`` (Fig. 7); the package docstring says what each shows.
Also the run-data accessors the figures share (which events a run has, its training
loss, :func:`rho_at_train_loss`). Each raises :class:`PlotDataError` when the runs hold
nothing it shows. matplotlib is imported only inside functions. Definitions:
docs/design.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sgdtop.compare import format_value
from sgdtop.plot.style import (
    _LOSS_COLOR,
    _WIDTH_IN,
    PlotDataError,
    _finite_or_nan,
    _line,
    _maybe_log,
    _maybe_symlog,
    _no_data,
    _red_blue,
    _run_handles,
    _styled,
    run_labels,
)
from sgdtop.schema import Eval, LossSlice, Spectrum
from sgdtop.stats import (
    AXIS_LABELS,
    Axis,
    RunEvents,
    RunStats,
    eigenvalue_matrix,
    last_dense_spectrum,
    series,
    summarize,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _has(run: RunEvents, kind: str) -> bool:
    return any(ev.kind == kind for ev in run.events)


def _slices(run: RunEvents) -> list[LossSlice]:
    """The run's loss_slice records, in order."""
    return [r for r in run.events if isinstance(r, LossSlice)]


def _has_finite(runs: Sequence[RunEvents], field: str, kind: str) -> bool:
    return any(
        np.isfinite(series(r.events, field, kind, axis="step")[1]).any() for r in runs
    )


def _k_of(runs: Sequence[RunEvents], summaries: Sequence[RunStats]) -> str:
    ks = {s.k for s in summaries}
    if len(ks) == 1 and None not in ks:
        return str(ks.pop())
    return "k"


def _training_loss(run: RunEvents, axis: Axis) -> tuple[np.ndarray, np.ndarray, str]:
    """The training loss: over the probe set (eval) if measured, else the batch loss."""
    x, y = series(run.events, "train_loss", "eval", axis=axis)
    if np.isfinite(y).any():
        return x, y, "training loss (probe set)"
    x, y = series(run.events, "loss", "step", axis=axis)
    return x, y, "training loss (batch)"


def _fig_eigenvalues(fig: Figure, runs: Sequence[RunEvents], axis: Axis) -> None:
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.lines import Line2D

    if not any(_has(r, "spectrum") for r in runs):
        raise PlotDataError("no spectrum events in these runs: no eigenvalues to plot")
    summaries = [summarize(r) for r in runs]
    labels = run_labels(runs, summaries)
    n = len(runs)
    ncols = 1 if n == 1 else 2
    nrows = math.ceil(n / ncols)
    fig.set_size_inches(_WIDTH_IN if n > 1 else 4.8, 2.7 * nrows + 0.6)
    axes = fig.subplots(nrows, ncols, sharey=True, squeeze=False).ravel()
    cmap = _red_blue()
    k_max = 1
    twins = []
    loss_label = "training loss"
    for i, (run, label) in enumerate(zip(runs, labels, strict=True)):
        ax = axes[i]
        x, lam = eigenvalue_matrix(run.events, axis=axis)
        k = lam.shape[1]
        k_max = max(k_max, k)
        ax.set_title(label)  # the differing settings (the run's name when none differ)
        if k == 0:
            _no_data(ax, "no spectrum measurements")
        for j in reversed(range(k)):  # largest drawn last, on top
            color = cmap(j / (k - 1) if k > 1 else 0.0)
            ax.plot(x, _finite_or_nan(lam[:, j]), color=color, lw=0.9, alpha=0.9)
        ax.axhline(0.0, color="0.5", lw=0.5)
        ax.set_xlabel(AXIS_LABELS[axis])
        if i % ncols == 0:
            ax.set_ylabel(r"Hessian eigenvalue $\lambda_i$")
        tw = ax.twinx()
        tw.grid(False)
        tw.spines["right"].set_visible(True)
        lx, ly, loss_label = _training_loss(run, axis)
        if lx.size:
            tw.plot(lx, _finite_or_nan(ly), color=_LOSS_COLOR, lw=2.2)
        if i % ncols == ncols - 1 or i == n - 1:
            tw.set_ylabel(loss_label)
        else:  # one loss scale for all panels: its ticks on the right of each row only
            tw.tick_params(labelright=False)
        twins.append((tw, ly))
    for ax in axes[n:]:
        ax.set_visible(False)
    _maybe_symlog(axes[0], [eigenvalue_matrix(r.events, axis=axis)[1] for r in runs])
    # One loss scale for all panels, like the eigenvalue scale (sharey).
    ly_all = np.concatenate([ly[np.isfinite(ly)] for _, ly in twins])
    if ly_all.size:
        lo, hi = float(ly_all.min()), float(ly_all.max())
        pad = 0.05 * (hi - lo or 1.0)
        for tw, _ in twins:
            tw.set_ylim(min(0.0, lo - pad), hi + pad)
    sm = ScalarMappable(norm=Normalize(1, k_max), cmap=cmap)
    cbar = fig.colorbar(
        sm, ax=list(axes[:n]), label="eigenvalue rank (1 = largest |λ|)", aspect=30, pad=0.02
    )
    cbar.ax.invert_yaxis()  # rank 1 on top, like the largest eigenvalue
    fig.legend(
        [Line2D([], [], color=_LOSS_COLOR, lw=2.2)],
        [loss_label],
        loc="outside lower center",
    )
    fig.suptitle(f"Top-{k_max} Hessian eigenvalues through training")


def _plot_cond(ax: Axes, runs: Sequence[RunEvents], colors: list[Any], axis: Axis) -> bool:
    """κ_k (solid) and dense κ (dashed) per run; returns whether anything was drawn."""
    drawn = []
    for run, color in zip(runs, colors, strict=True):
        x, y = series(run.events, "cond_k", "spectrum", axis=axis)
        if np.isfinite(y).any():
            _line(ax, x, y, color=color)
            drawn.append(y)
        xd, yd = series(run.events, "cond", "dense_spectrum", axis=axis)
        if np.isfinite(yd).any():
            ax.plot(xd, _finite_or_nan(yd), color=color, ls="--", marker="s", ms=4)
            drawn.append(yd)
    if drawn:
        _maybe_log(ax, drawn, ratio=20.0)
    return bool(drawn)


def _cond_style_handles(runs: Sequence[RunEvents], k: str) -> tuple[list[Any], list[str]]:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color="0.2")]
    labels = [rf"$\kappa_{{{k}}} = |\lambda_1|/|\lambda_{{{k}}}|$ (top-{k})"]
    if any(_has(r, "dense_spectrum") for r in runs):
        handles.append(Line2D([], [], color="0.2", ls="--", marker="s", ms=4))
        labels.append(r"$\kappa = \lambda_{max}/\lambda^{+}_{min}$ (dense)")
    return handles, labels



def _fig_cond(fig: Figure, runs: Sequence[RunEvents], axis: Axis) -> None:
    summaries, colors, labels = _styled(runs)
    fig.set_size_inches(5.2, 3.6)
    ax = fig.subplots()
    if not _plot_cond(ax, runs, colors, axis):
        raise PlotDataError("no finite condition number (κ_k or dense κ) in these runs")
    ax.set_xlabel(AXIS_LABELS[axis])
    ax.set_ylabel(r"condition number $\kappa$")
    ax.set_title("Hessian condition number through training")
    sh, sl = _cond_style_handles(runs, _k_of(runs, summaries))
    fig.legend(
        _run_handles(labels, colors) + sh, labels + sl, loc="outside right upper"
    )


def _fig_dead(fig: Figure, runs: Sequence[RunEvents], axis: Axis) -> None:
    if not any(_has(r, "neurons") or _has(r, "spectrum") for r in runs):
        raise PlotDataError("no neurons or spectrum events in these runs")
    _summaries, colors, labels = _styled(runs)
    fig.set_size_inches(_WIDTH_IN, 3.0)
    ax_dead, ax_rho = fig.subplots(1, 2)
    rhos = []
    for run, color in zip(runs, colors, strict=True):
        x, y = series(run.events, "dead_pct", "neurons", axis=axis)
        if x.size:
            _line(ax_dead, x, y, color=color)
        x, y = series(run.events, "spectral_norm", "spectrum", axis=axis)
        if x.size:
            _line(ax_rho, x, y, color=color)
            rhos.append(y)
    if not any(_has(r, "neurons") for r in runs):
        _no_data(ax_dead, "no dead-neuron measurements")
    if not rhos:
        _no_data(ax_rho, "no spectrum measurements")
    _maybe_log(ax_rho, rhos)
    ax_dead.set_title("Dead neurons")
    ax_dead.set_ylabel("dead neurons (%)")
    ax_rho.set_title("Spectral norm")
    ax_rho.set_ylabel(r"$\rho(H) = \max\,|\lambda|$")
    for ax in (ax_dead, ax_rho):
        ax.set_xlabel(AXIS_LABELS[axis])
    fig.legend(_run_handles(labels, colors), labels, loc="outside right upper")


def _draw_dense(ax: Axes, run: RunEvents, color: Any, axis: Axis, *, stats: bool) -> bool:
    hist = last_dense_spectrum(run.events, axis=axis)
    if hist is None or hist.counts.size == 0:
        return False
    ax.hist(
        hist.edges[:-1], bins=hist.edges.tolist(), weights=hist.counts, log=True,
        color=color, alpha=0.8 if stats else 0.45, histtype="stepfilled",
    )
    if stats:
        neg_pct = 100.0 * hist.n_negative / hist.n if hist.n else math.nan
        text = "\n".join(
            [
                f"n = {hist.n}",
                rf"$\lambda_{{max}}$ = {format_value(hist.lambda_max, 3)}",
                rf"$\lambda_{{min}}$ = {format_value(hist.lambda_min, 3)}",
                rf"$\kappa$ = {format_value(hist.cond, 3)}",
                f"negative: {format_value(neg_pct, 3)}%",
            ]
        )
        ax.text(
            0.97, 0.95, text, transform=ax.transAxes, ha="right", va="top", fontsize=7.5,
            bbox={"boxstyle": "round", "fc": "white", "ec": "0.7", "alpha": 0.9},
        )
    return True


def _fig_dense(fig: Figure, runs: Sequence[RunEvents], axis: Axis) -> None:
    with_dense = [r for r in runs if _has(r, "dense_spectrum")]
    if not with_dense:
        raise PlotDataError(
            "no dense_spectrum events in these runs (only models up to dense_max_params "
            "get the full spectrum)"
        )
    _summaries, all_colors, all_labels = _styled(runs)
    idx = [i for i, r in enumerate(runs) if _has(r, "dense_spectrum")]
    n = len(with_dense)
    ncols = min(n, 2)
    nrows = math.ceil(n / ncols)
    fig.set_size_inches(_WIDTH_IN if n > 1 else 4.8, 2.8 * nrows + 0.4)
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False).ravel()
    for i, (run, j) in enumerate(zip(with_dense, idx, strict=True)):
        ax = axes[i]
        _draw_dense(ax, run, all_colors[j], axis, stats=True)
        hist = last_dense_spectrum(run.events, axis=axis)
        where = f" at {AXIS_LABELS[axis]} {format_value(hist.x, 3)}" if hist else ""
        ax.set_title(f"{all_labels[j]}{where}")
        ax.set_xlabel(r"Hessian eigenvalue $\lambda$")
        if i % ncols == 0:
            ax.set_ylabel("count (log scale)")
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.suptitle("Full Hessian spectrum")


def _fig_generalization(fig: Figure, runs: Sequence[RunEvents], axis: Axis) -> None:
    """Fig. 1b: final test loss against final κ (exact where measured, else κ_k) and
    against final ρ(H), one point per run, colored by η."""
    summaries, colors, labels = _styled(runs)
    exact = all(s.final_dense_cond is not None for s in summaries)
    k = _k_of(runs, summaries)
    points = []
    for s, color, label in zip(summaries, colors, labels, strict=True):
        kappa = s.final_dense_cond if exact else s.final_cond_k
        points.append((kappa, s.final_spectral_norm, s.final_test_loss, color, label))
    usable = [pt for pt in points if pt[2] is not None and math.isfinite(pt[2])]
    if not usable:
        raise PlotDataError("no run has a finite final test loss (eval events)")
    fig.set_size_inches(_WIDTH_IN, 3.0)
    axes = fig.subplots(1, 2, sharey=True)
    xlabels = (r"condition number $\kappa$ (exact, last)" if exact
               else rf"$\kappa_{{{k}}} = |\lambda_1|/|\lambda_{{{k}}}|$ (last)",
               r"spectral norm $\rho(H)$ (last)")
    for col, (ax, xlabel) in enumerate(zip(axes, xlabels, strict=True)):
        xs = []
        for kappa, rho, loss, color, label in usable:
            x = kappa if col == 0 else rho
            if x is None or not math.isfinite(x):
                continue
            xs.append(x)
            ax.scatter([x], [loss], color=color, s=30, zorder=3, label=label if col == 0
                       else None)
        _maybe_log(ax, [np.asarray(xs, dtype=float)], ratio=20.0, axis="x")
        ax.set_xlabel(xlabel)
    axes[0].set_ylabel("test loss (last)")
    fig.legend(loc="outside right center", fontsize=7.5)
    fig.suptitle("Curvature at the end of training against test loss")


def rho_at_train_loss(run: RunEvents) -> tuple[np.ndarray, np.ndarray]:
    """(training loss, ρ(H)) pairs: each spectrum event with an eval event at the same
    step (the trainer evaluates at the end of an epoch, then measures), in step order."""
    records = run.events
    losses = {r.step: r.train_loss for r in records
              if isinstance(r, Eval) and r.step is not None}
    pairs = [(losses[r.step], r.spectral_norm) for r in records
             if isinstance(r, Spectrum) and r.step is not None and r.step in losses]
    if not pairs:
        return np.array([]), np.array([])
    x, y = zip(*pairs, strict=True)
    return np.asarray(x, dtype=float), np.asarray(y, dtype=float)


def _fig_rho_vs_loss(fig: Figure, runs: Sequence[RunEvents], axis: Axis) -> None:
    """ρ(H) against the training loss at the same step, one line per run."""
    _summaries, colors, labels = _styled(runs)
    fig.set_size_inches(4.8, 3.4)
    ax = fig.subplots()
    drawn = []
    for run, color, label in zip(runs, colors, labels, strict=True):
        x, y = rho_at_train_loss(run)
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.any():
            ax.plot(x[ok], y[ok], color=color, marker="o", markersize=3, lw=1.2, label=label)
            ax.plot(x[ok][-1:], y[ok][-1:], color=color, marker="s", markersize=5)
            drawn.append(y[ok])
    if not drawn:
        raise PlotDataError("no spectrum measured at the step of an evaluation (the trainer "
                            "measures right after each epoch's evaluation)")
    _maybe_log(ax, drawn)
    ax.invert_xaxis()  # training goes from left (high loss) to right (low loss)
    ax.set_xlabel("training loss (probe set; decreasing →)")
    ax.set_ylabel(r"spectral norm $\rho(H)$")
    ax.legend(fontsize=7.5)
    fig.suptitle("Curvature at equal training loss (square: end of training)")


def _fig_slices(fig: Figure, runs: Sequence[RunEvents], axis: Axis) -> None:
    """Fig. 7: per run (rows) and eigenvector (columns), L(θ + t·vᵢ) against t for every
    loss_slice event, colored by time from blue (first) to red (last)."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    with_slices = [r for r in runs if _has(r, "loss_slice")]
    if not with_slices:
        raise PlotDataError(
            "no loss_slice events in these runs (a profile with slice_every > 0 measures "
            "them, e.g. --set slice_every=5)")
    cmap = _red_blue().reversed()  # first blue, last red
    slices = [_slices(r) for r in with_slices]
    m = max(1, max((len(rec.losses) for evs in slices for rec in evs), default=0))
    fig.set_size_inches(min(_WIDTH_IN * 1.4, 2.3 * m + 0.8), 2.3 * len(with_slices) + 0.6)
    axes = fig.subplots(len(with_slices), m, squeeze=False)
    for row, (run, evs) in enumerate(zip(with_slices, slices, strict=True)):
        steps = [rec.step if rec.step is not None else i for i, rec in enumerate(evs)]
        norm = Normalize(vmin=min(steps), vmax=max(max(steps), min(steps) + 1))
        eta = next((rec.lr for rec in evs if rec.lr > 0), math.nan)
        for col in range(m):
            ax = axes[row, col]
            drawn = []
            for rec, step in zip(evs, steps, strict=True):
                if col >= len(rec.losses):
                    continue
                t = np.asarray(rec.distances, dtype=float)
                x = t / eta if math.isfinite(eta) else t
                y = _finite_or_nan(np.asarray(rec.losses[col], dtype=float))
                ax.plot(x, y, color=cmap(norm(step)), lw=0.9, alpha=0.85)
                drawn.append(y)
            _maybe_log(ax, drawn)  # early slices can be 100× the late ones
            ax.set_title(f"{run.name}: $v_{{{col + 1}}}$" if col == 0 and len(runs) > 1
                         else f"eigenvector $v_{{{col + 1}}}$")
            ax.set_xlabel(r"distance $t/\eta$" if math.isfinite(eta) else "distance $t$")
            if col == 0:
                ax.set_ylabel("probe loss")
        fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=list(axes[row]),
                     label="step", shrink=0.9)
    fig.suptitle("Loss along the top Hessian eigenvectors (first to last measurement: "
                 "blue to red)")
