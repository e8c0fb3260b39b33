"""The compare view's state: which metrics a :class:`~sgdtop.compare.CompareReport` has,
in key order, how each is named, and one short label per run.

Plain Python (no Textual, no Rich, no torch); the report itself is the data. See
docs/design.md (the TUI).
"""

from __future__ import annotations

from typing import Final

from sgdtop import format as fmt
from sgdtop.compare import CompareReport

#: The metrics in the order of their keys 1..7 (those of the report; others follow).
METRIC_ORDER: Final[tuple[str, ...]] = (
    "spectral_norm", "top10_mean", "cond_k", "train_loss", "test_loss", "test_acc",
    "dead_pct",
)
#: Short names for the metric bar.
SHORT_NAMES: Final[dict[str, str]] = {
    "spectral_norm": "ρ(H)",
    "top10_mean": "top-10",
    "cond_k": "κ_k",
    "train_loss": "train loss",
    "test_loss": "test loss",
    "test_acc": "test acc",
    "dead_pct": "dead %",
}

def run_labels(report: CompareReport) -> list[str]:
    """One short label per run, by what differs: ``η=0.1``, ``S=32 β=0.9``, ...
    (:func:`sgdtop.format.run_labels`). A label the user gave (other than the run id) is
    kept as it is; with no differing setting the run ids are used."""
    summaries = report.summaries
    return fmt.run_labels(
        [s.settings() for s in summaries], [s.run_id for s in summaries], report.differing,
        given=[s.label if s.label != s.run_id else None for s in summaries])


def k_symbol(report: CompareReport) -> str:
    """``κ₃₀`` when every run computed the same k, else ``κₖ``
    (:func:`sgdtop.format.kappa_label`)."""
    ks = {s.k for s in report.summaries}
    return fmt.kappa_label(ks.pop() if len(ks) == 1 else None)


def metric_keys(report: CompareReport) -> list[str]:
    """The report's metrics in key order (see :data:`METRIC_ORDER`)."""
    known = [m for m in METRIC_ORDER if m in report.series]
    return known + [m for m in report.series if m not in METRIC_ORDER]


def metric_label(report: CompareReport, key: str, *, short: bool = False) -> str:
    """How metric ``key`` is named: short (the metric bar) or full (the chart title);
    κ_k carries the runs' k (κ₃₀)."""
    label = SHORT_NAMES.get(key, key) if short else report.series[key].metric.label
    return label.replace("κ_k", k_symbol(report))
