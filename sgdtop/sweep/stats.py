"""The paper's Fig. 3 statistics of a sweep: per-cell time averages and fitted lines.

For each completed cell the training-time averages (see :mod:`sgdtop.summary`) of
ρ(H) = max |λ| and of the mean |λ| of the top-10 eigenvalues, against 1/η (in
1/learning-rate units, i.e. dimensionless) and against the batch size S (examples), with
a least-squares line ``y = slope·x + intercept`` (:func:`scipy.stats.linregress`) and its
coefficient of determination r² per quantity. When several axes vary, one line is fitted
per value of the other swept settings (seeds pooled): e.g. a 2×2 grid of η × S gives a
line against 1/η for each S and a line against S for each η. See ``docs/design.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from sgdtop.compare import format_value
from sgdtop.format import number_or_none
from sgdtop.schema import RunStart
from sgdtop.stats import RunEvents, Weighting, summarize
from sgdtop.store import read_run, run_info
from sgdtop.sweep.grid import AXIS_SYMBOLS, Cell
from sgdtop.sweep.sweepfile import PENDING, Sweep, load_sweep


@dataclass(frozen=True, slots=True)
class LinearFit:
    """Least squares ``y ≈ slope·x + intercept`` over ``n`` points; ``r2`` = 1 − SS_res /
    SS_tot (1 for a perfect fit; NaN when y is constant but not fitted exactly)."""

    slope: float
    intercept: float
    r2: float
    n: int

    def predict(self, x: np.ndarray) -> np.ndarray:
        """``slope·x + intercept``."""
        return self.slope * np.asarray(x, dtype=float) + self.intercept


def fit_line(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> LinearFit:
    """Ordinary least-squares line through the finite ``(x, y)`` pairs
    (:func:`scipy.stats.linregress`; r² = its r value squared, or, for a constant y,
    1 when the line fits it exactly and NaN otherwise).

    Raises ``ValueError`` with fewer than two distinct finite x.
    """
    from scipy.stats import linregress  # (~0.3 s import)

    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=float)
    if xa.shape != ya.shape:
        raise ValueError(f"x and y differ in length ({xa.size} vs {ya.size})")
    ok = np.isfinite(xa) & np.isfinite(ya)
    xa, ya = xa[ok], ya[ok]
    if np.unique(xa).size < 2:
        raise ValueError("a line needs at least two distinct finite x values")
    res = linregress(xa, ya)
    slope, intercept = float(res.slope), float(res.intercept)
    if float(np.ptp(ya)) > 0:
        r2 = float(res.rvalue) ** 2
    else:  # linregress gives r = 0 for a constant y, fitted exactly or not
        ss_res = float(np.sum((ya - (slope * xa + intercept)) ** 2))
        r2 = 1.0 if ss_res <= 1e-12 * max(1.0, float(np.sum(ya**2))) else math.nan
    return LinearFit(slope=slope, intercept=intercept, r2=r2, n=int(xa.size))


@dataclass(frozen=True, slots=True)
class CellSummary:
    """One cell's Fig. 3 numbers: ``mean_spectral_norm`` = ρ(H) averaged over training,
    ``mean_top10_mean`` = the top-10 mean |λ| averaged over training (see
    :mod:`sgdtop.summary`), and headline numbers of its newest run. Settings are the
    run's (from run_start), else the cell's; None when unknown."""

    index: int
    name: str
    settings: dict[str, float | int]
    run_id: str | None
    status: str
    lr: float | None  #: η
    batch_size: int | None  #: S, examples
    momentum: float | None  #: β
    seed: int | None
    steps: int  #: optimizer steps taken
    n_spectra: int  #: spectrum measurements averaged
    mean_spectral_norm: float | None
    mean_top10_mean: float | None
    final_spectral_norm: float | None
    final_test_acc: float | None  #: in [0, 1]; NaN for regression
    final_test_loss: float | None

    @property
    def inv_lr(self) -> float | None:
        """1/η."""
        return None if not self.lr else 1.0 / self.lr


#: The Fig. 3 quantities: name → label.
QUANTITIES: Final[dict[str, str]] = {
    "spectral_norm": "ρ(H)",
    "top10_mean": "top-10 mean |λ|",
}
#: The Fig. 3 x axes: name → (the axis it comes from, label).
X_AXES: Final[dict[str, tuple[str, str]]] = {
    "inv_lr": ("lr", "1/η"),
    "batch_size": ("batch_size", "S"),
}


@dataclass(frozen=True, slots=True)
class SweepFit:
    """One fitted line of Fig. 3: ``quantity`` (a key of :data:`QUANTITIES`) against
    ``x_axis`` (a key of :data:`X_AXES`) over the completed cells that share ``group``
    (the other swept settings, seeds pooled; empty when only this axis varies). ``x``,
    ``y`` are the points; ``fit`` is None with fewer than two distinct x."""

    quantity: str
    x_axis: str
    group: dict[str, float | int]
    x: np.ndarray
    y: np.ndarray
    fit: LinearFit | None

    @property
    def group_label(self) -> str:
        """``S=16`` (the group's settings), or ``all`` when there is no group."""
        return " ".join(f"{AXIS_SYMBOLS[k]}={format_value(v)}"
                        for k, v in self.group.items()) or "all"


@dataclass(frozen=True, slots=True)
class SweepSummary:
    """The Fig. 3 summary of a sweep: per-cell numbers and the fitted lines."""

    sweep_id: str
    profile: str
    varying: list[str]  #: the axes with more than one value
    cells: list[CellSummary]
    fits: list[SweepFit]


def _cell_summary(sweep: Sweep, cell: Cell, weighting: Weighting) -> CellSummary:
    run_dir = sweep.run_dir(cell)
    settings = dict(cell.settings)
    size, seed0 = settings.get("batch_size"), settings.get("seed")
    empty = CellSummary(
        index=cell.index, name=cell.name, settings=settings, run_id=cell.run_id,
        status=PENDING, lr=number_or_none(settings.get("lr")),
        batch_size=None if size is None else int(size),
        momentum=number_or_none(settings.get("momentum")),
        seed=None if seed0 is None else int(seed0),
        steps=0, n_spectra=0, mean_spectral_norm=None, mean_top10_mean=None,
        final_spectral_norm=None, final_test_acc=None, final_test_loss=None)
    if run_dir is None or not run_dir.is_dir():
        return empty
    try:
        res = read_run(run_dir)
    except OSError:
        return empty
    if res.newer is not None:
        return empty
    events = res.records
    s = summarize(RunEvents.from_events(events, path=run_dir), weighting=weighting)
    seed = settings.get("seed")
    start = next((r for r in events if isinstance(r, RunStart)), None)
    if seed is None and start is not None:
        from_profile = start.profile.get("seed")  # the profile is a plain mapping
        seed = from_profile if isinstance(from_profile, int) else None
    return CellSummary(
        index=cell.index, name=cell.name, settings=settings, run_id=cell.run_id,
        status=run_info(run_dir).status,
        lr=s.lr if s.lr is not None else empty.lr,
        batch_size=s.batch_size if s.batch_size is not None else empty.batch_size,
        momentum=s.momentum if s.momentum is not None else empty.momentum,
        seed=seed if isinstance(seed, int) else None, steps=s.steps,
        n_spectra=s.n_spectra, mean_spectral_norm=s.mean_spectral_norm,
        mean_top10_mean=s.mean_top10_mean, final_spectral_norm=s.final_spectral_norm,
        final_test_acc=s.final_test_acc, final_test_loss=s.final_test_loss)


def cell_axis_value(c: CellSummary, axis: str) -> float | int | None:
    """The value of ``axis`` (one of :data:`~sgdtop.sweep.grid.AXES`) in cell ``c``."""
    return {"lr": c.lr, "batch_size": c.batch_size, "momentum": c.momentum,
            "seed": c.seed}[axis]


def _fits(cells: Sequence[CellSummary], varying: Sequence[str]) -> list[SweepFit]:
    fits: list[SweepFit] = []
    for x_axis, (axis, _) in X_AXES.items():
        if axis not in varying:
            continue
        others = [k for k in varying if k not in (axis, "seed")]
        groups: dict[tuple[Any, ...], list[CellSummary]] = {}
        for c in cells:
            groups.setdefault(tuple(c.settings.get(k) for k in others), []).append(c)
        for key, members in groups.items():
            group = dict(zip(others, key, strict=True))
            for quantity in QUANTITIES:
                xs, ys = [], []
                for c in members:
                    xv = c.inv_lr if x_axis == "inv_lr" else c.batch_size
                    yv = c.mean_spectral_norm if quantity == "spectral_norm" \
                        else c.mean_top10_mean
                    if xv is not None and yv is not None and math.isfinite(yv):
                        xs.append(float(xv))
                        ys.append(float(yv))
                x = np.array(xs, dtype=float)
                y = np.array(ys, dtype=float)
                order = np.argsort(x, kind="stable")
                x, y = x[order], y[order]
                fit = fit_line(x, y) if np.unique(x).size >= 2 else None
                fits.append(SweepFit(quantity=quantity, x_axis=x_axis, group=group, x=x,
                                     y=y, fit=fit))
    return fits


def summarize_sweep(
    sweep: Sweep | str | Path,
    *,
    weighting: Weighting = "events",
    statuses: Sequence[str] = ("completed",),
) -> SweepSummary:
    """The Fig. 3 summary of ``sweep`` (a :class:`Sweep` or its directory): every cell's
    :class:`CellSummary`, and lines fitted over the cells whose status is in ``statuses``
    (by default only completed runs: an interrupted run's average covers part of
    training, a diverged run's is dominated by its blow-up)."""
    if not isinstance(sweep, Sweep):
        sweep = load_sweep(sweep)
    cells = [_cell_summary(sweep, c, weighting) for c in sweep.cells]
    fitted = [c for c in cells if c.status in statuses]
    return SweepSummary(sweep_id=sweep.sweep_id, profile=sweep.profile,
                        varying=sweep.varying, cells=cells,
                        fits=_fits(fitted, sweep.varying))


