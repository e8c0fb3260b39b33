"""The look shared by every figure of :mod:`sgdtop.plot`, and its drawing helpers.

Here: the matplotlib import guard (:func:`_require_matplotlib`, raising
:class:`PlotUnavailableError` with :data:`INSTALL_HINT`) and :class:`PlotDataError`; the
rc style every figure is drawn and saved under; the colors (red for high η or the largest
eigenvalue through blue) with :func:`run_colors`, and the legend labels
(:func:`run_labels`: what the runs differ in) and handles; axis helpers (gaps at
non-finite values, log or symlog scales when values span decades, "no data" notes); the
output formats (:data:`FORMATS`) and file metadata. matplotlib is imported only inside
functions, never at import time. Definitions: docs/design.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from sgdtop import format as fmt
from sgdtop.compare import differing_settings
from sgdtop.stats import RunEvents, RunStats, summarize

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap

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


def _run_handles(labels: list[str], colors: list[Any]) -> list[Any]:
    from matplotlib.lines import Line2D

    return [Line2D([], [], color=c, lw=2) for c in colors[: len(labels)]]


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
