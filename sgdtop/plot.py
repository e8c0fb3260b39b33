"""The paper's figures from saved runs, with matplotlib (``sgdtop plot``).

matplotlib is an optional extra (``pip install 'sgdtop[plot]'``) and is imported only
when a figure is drawn; without it :class:`PlotUnavailableError` says how to install it.
Figures are drawn on a bare :class:`matplotlib.figure.Figure` with the Agg canvas: no
pyplot, no GUI backend, no global state touched.

Kinds (see :func:`make_figure`):

- ``"eigenvalues"`` (Fig. 2): per run, the top-k Hessian eigenvalues through training,
  colored red (rank 1, largest |λ|) to blue (rank k), with the training loss on a twin
  axis; one panel per run, all on one eigenvalue scale.
- ``"cond"`` (Fig. 1a): the condition number over training, one color per run: κ_k =
  |λ₁|/|λ_k| (solid) and, where ``dense_spectrum`` events exist, the exact κ =
  λmax/λmin⁺ (dashed, markers).
- ``"dead"`` (Fig. 5): dead neurons (%) and ρ(H) over training side by side; runs colored
  by η from red (highest) to blue (lowest).
- ``"dense"`` (Fig. 1c/d): the histogram of each run's last dense spectrum, log counts.
- ``"generalization"`` (Fig. 1b): one point per run, the final test loss against the final
  condition number (the exact κ where there is a dense spectrum, else κ_k) and against
  the final ρ(H); runs colored by η.
- ``"rho-vs-loss"`` (Fig. 2, "even for the same loss value"): ρ(H) against the training
  loss measured at the same step (epoch ends), one line per run colored by η: at equal
  loss, the runs' curvatures side by side.
- ``"slices"`` (Fig. 7): the loss along each top eigenvector (columns) at every
  ``loss_slice`` measurement, blue (first) to red (last); one row per run that has them.
- ``"auto"``: a multi-panel summary of whatever the runs measured: ρ(H), top-10 mean |λ|,
  κ, losses, test accuracy, dead %, the dense spectrum.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from sgdtop import format as fmt
from sgdtop.compare import differing_settings, format_value
from sgdtop.schema import Eval, LossSlice, Spectrum
from sgdtop.stats import (
    AXIS_LABELS,
    Axis,
    RunEvents,
    RunStats,
    Weighting,
    eigenvalue_matrix,
    last_dense_spectrum,
    series,
    summarize,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap
    from matplotlib.figure import Figure

    from sgdtop.sweep.stats import SweepFit
    from sgdtop.sweep.sweepfile import Sweep

PLOT_KINDS: Final[tuple[str, ...]] = ("auto", "eigenvalues", "cond", "dead", "dense",
                                       "generalization", "rho-vs-loss", "slices")
FORMATS: Final[tuple[str, ...]] = (".png", ".svg", ".pdf")
INSTALL_HINT: Final[str] = "matplotlib is not installed: pip install 'sgdtop[plot]'"

#: Red (high η / largest eigenvalue) through purple to blue (low η / smallest).
_RED_BLUE: Final[tuple[str, ...]] = ("#c0392b", "#7b3294", "#2166ac")
_LOSS_COLOR: Final[str] = "#111111"
#: Figure width for a full text width in a two-column paper, inches.
_WIDTH_IN: Final[float] = 7.0

_RC: Final[dict[str, Any]] = {
    "font.size": 9,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.5,
    "lines.linewidth": 1.4,
    "legend.frameon": False,
    "pdf.fonttype": 42,  # TrueType in PDFs: editable text, accepted by publishers
    "savefig.dpi": 200,
}

class PlotUnavailableError(RuntimeError):
    """matplotlib is not installed."""

    def __init__(self, message: str = INSTALL_HINT) -> None:
        super().__init__(message)


class PlotDataError(ValueError):
    """The runs hold nothing that the asked-for figure shows."""


def _require_matplotlib() -> Any:
    """Import matplotlib (lazily) or raise :class:`PlotUnavailableError`."""
    try:
        import matplotlib
        import matplotlib.figure
        from matplotlib.backends import backend_agg  # noqa: F401
    except ImportError as exc:
        raise PlotUnavailableError() from exc
    return matplotlib


@contextmanager
def _style() -> Iterator[None]:
    mpl = _require_matplotlib()
    with mpl.rc_context(_RC):
        yield


def _red_blue() -> Colormap:
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list("sgdtop_red_blue", list(_RED_BLUE))


def _finite_or_nan(y: np.ndarray) -> np.ndarray:
    """NaN where ``y`` is not finite: matplotlib leaves a gap there."""
    return np.where(np.isfinite(y), y, np.nan)


def run_labels(runs: Sequence[RunEvents], summaries: Sequence[RunStats]) -> list[str]:
    """Legend labels, spelled by :func:`sgdtop.format.run_labels`: the settings in which
    the runs differ (``η=0.1 S=128``), a label the user gave, else the run's id."""
    differing = differing_settings(summaries) if len(runs) > 1 else []
    return fmt.run_labels([s.settings() for s in summaries], [r.run_id for r in runs],
                          differing, given=[r.label for r in runs])


def run_colors(summaries: Sequence[RunStats]) -> list[Any]:
    """One color per run: by η from red (highest) to blue (lowest) on a log scale when
    the runs' learning rates differ, else matplotlib's default cycle."""
    lrs = [s.lr for s in summaries]
    finite = [lr for lr in lrs if lr is not None and lr > 0 and math.isfinite(lr)]
    if len(set(finite)) >= 2:
        lo, hi = math.log10(min(finite)), math.log10(max(finite))
        cmap = _red_blue()
        return [
            cmap(1.0 - (math.log10(lr) - lo) / (hi - lo)) if lr in finite else "0.4"
            for lr in lrs
        ]
    cycle = [f"C{i % 10}" for i in range(len(summaries))]
    return cycle


def _styled(runs: Sequence[RunEvents]) -> tuple[list[RunStats], list[Any], list[str]]:
    """Each run's summary, color (by η) and legend label (what differs)."""
    summaries = [summarize(r) for r in runs]
    return summaries, run_colors(summaries), run_labels(runs, summaries)


def _line(ax: Axes, x: np.ndarray, y: np.ndarray, **kw: Any) -> None:
    """A series as a line (gaps at non-finite values), with markers when it is short."""
    y = _finite_or_nan(y)
    if x.size < 25:
        kw.setdefault("marker", "o")
        kw.setdefault("markersize", 3)
    ax.plot(x, y, **kw)


def _maybe_log(ax: Axes, values: Sequence[np.ndarray], ratio: float = 50.0,
               axis: str = "y") -> None:
    """Log scale on ``axis`` ("x" or "y") when every finite value is positive and they
    span > ``ratio``×."""
    allv = np.concatenate([v[np.isfinite(v)] for v in values]) if values else np.array([])
    if allv.size and np.all(allv > 0) and allv.max() / allv.min() > ratio:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")


def _maybe_symlog(ax: Axes, values: Sequence[np.ndarray], ratio: float = 50.0) -> None:
    """A symmetric-log y scale (linear within ±the median |value|) when the largest |value|
    is over ``ratio``× the median: e.g. the eval-mode spectrum of a batch-norm network at
    initialization, which would flatten the rest of training to a line."""
    allv = np.concatenate([np.abs(v[np.isfinite(v)]).ravel() for v in values]) if values \
        else np.array([])
    allv = allv[allv > 0]
    if allv.size and allv.max() / np.median(allv) > ratio:
        ax.set_yscale("symlog", linthresh=float(np.median(allv)))


def _no_data(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, what, ha="center", va="center", transform=ax.transAxes, color="0.4")


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


# -- the figures ------------------------------------------------------------------------


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


def _run_handles(labels: list[str], colors: list[Any]) -> list[Any]:
    from matplotlib.lines import Line2D

    return [Line2D([], [], color=c, lw=2) for c in colors[: len(labels)]]


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
    """Draw figure ``kind`` (see the module docstring) of ``runs`` over ``axis``.

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


def _suffix(out: Path) -> str:
    """``out``'s suffix, lower case, when it is one of :data:`FORMATS`; else ValueError."""
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(
            f"cannot write {out.name!r}: the file name must end in {', '.join(FORMATS)}"
        )
    return suffix


def _metadata(suffix: str) -> dict[str, str]:
    """File metadata naming the creator (keys differ per format)."""
    return {"Software": "sgdtop"} if suffix == ".png" else {"Creator": "sgdtop"}


# ------------------------------------------------------------------------ Fig. 3 (sweeps)
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
