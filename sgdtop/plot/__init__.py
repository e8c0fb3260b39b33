"""The paper's figures from saved runs and sweeps, with matplotlib (``sgdtop plot``).

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

Modules, one per concept: :mod:`.style` (the shared look: colors, run labels and legends,
axis helpers, the matplotlib import guard and the errors), :mod:`.runs` (the per-run
figure kinds), :mod:`.figure` (:func:`make_figure`, :func:`plot_runs`, the ``"auto"``
summary) and :mod:`.sweep` (Fig. 3, :func:`plot_sweep`). The names below are importable
from ``sgdtop.plot``. Definitions: docs/design.md.
"""

from __future__ import annotations

from sgdtop.plot.figure import PLOT_KINDS, make_figure, plot_runs
from sgdtop.plot.runs import rho_at_train_loss
from sgdtop.plot.style import (
    FORMATS,
    INSTALL_HINT,
    PlotDataError,
    PlotUnavailableError,
    run_colors,
    run_labels,
)
from sgdtop.plot.sweep import plot_sweep

__all__ = [
    "FORMATS",
    "INSTALL_HINT",
    "PLOT_KINDS",
    "PlotDataError",
    "PlotUnavailableError",
    "make_figure",
    "plot_runs",
    "plot_sweep",
    "rho_at_train_loss",
    "run_colors",
    "run_labels",
]
