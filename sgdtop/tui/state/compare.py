"""The compare view's state: which metrics a :class:`~sgdtop.compare.CompareReport` has,
in key order, how each is named, and one short label per run.

Plain Python (no Textual, no Rich, no torch); the report itself is the data. See
docs/design.md (the TUI).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from sgdtop.compare import CompareReport
from sgdtop.summary import RunSummary
from sgdtop.tui.draw.numbers import SUBSCRIPTS, fmt_num

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

_SETTING_SYMBOLS: Final[tuple[tuple[str, str], ...]] = (
    ("lr", "η="), ("batch_size", "S="), ("momentum", "β="), ("weight_decay", "wd="),
    ("model", ""), ("dataset", ""),
)


def setting_text(value: object) -> str:
    """A setting's value: numbers in 3 significant digits, ``?`` when unknown."""
    if value is None:
        return "?"
    if isinstance(value, float):
        return fmt_num(value, 3)
    return str(value)


def run_labels(report: CompareReport) -> list[str]:
    """One short label per run, by what differs: ``η=0.1``, ``S=32 β=0.9``, ...

    A label the user gave (other than the run id) is kept as it is. With no differing
    setting the run ids are used; labels that would still be equal get ``#n`` appended.
    """
    differing = set(report.differing)
    labels = []
    for s in report.summaries:
        if s.label != s.run_id:
            labels.append(s.label)
            continue
        settings = s.settings()
        parts = [
            prefix + setting_text(settings[key])
            for key, prefix in _SETTING_SYMBOLS if key in differing
        ]
        labels.append(" ".join(parts) or s.run_id)
    seen: dict[str, int] = {}
    for lab in labels:
        seen[lab] = seen.get(lab, 0) + 1
    counts: dict[str, int] = {}
    for i, lab in enumerate(labels):
        if seen[lab] > 1:
            counts[lab] = counts.get(lab, 0) + 1
            labels[i] = f"{lab} #{counts[lab]}"
    return labels


def k_symbol(summaries: Sequence[RunSummary]) -> str:
    """``κ₃₀`` when every run computed the same k, else ``κ_k``."""
    ks = {s.k for s in summaries}
    k = ks.pop() if len(ks) == 1 else None
    return "κ" + str(k).translate(SUBSCRIPTS) if k is not None else "κ_k"


def metric_keys(report: CompareReport) -> list[str]:
    """The report's metrics in key order (see :data:`METRIC_ORDER`)."""
    known = [m for m in METRIC_ORDER if m in report.series]
    return known + [m for m in report.series if m not in METRIC_ORDER]


def metric_label(report: CompareReport, key: str, *, short: bool = False) -> str:
    """How metric ``key`` is named: short (the metric bar) or full (the chart title);
    κ_k carries the runs' k (κ₃₀)."""
    label = SHORT_NAMES.get(key, key) if short else report.series[key].metric.label
    return label.replace("κ_k", k_symbol(report.summaries))
