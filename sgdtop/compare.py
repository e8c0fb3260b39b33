"""Several runs side by side: series aligned on a common axis and a comparison table.

The library half of ``sgdtop compare``: :func:`build_report` turns runs into a
:class:`CompareReport` (summaries + aligned series), which the TUI can show and which
renders as a Rich table (:func:`summary_table`, :func:`series_table`) or as plain text
(:func:`summary_rows`, :func:`series_rows`, :func:`render_text`, for ``--log``).

Runs trained with different batch sizes take different numbers of steps per epoch, so
the epoch axis (the default) is the one on which they compare; see
:mod:`sgdtop.summary` for the axes and the definitions of the numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
from rich.table import Table
from rich.text import Text

from sgdtop import format as fmt
from sgdtop.stats import (
    AXIS_LABELS,
    Axis,
    RunEvents,
    RunStats,
    Weighting,
    series,
    summarize,
)


@dataclass(frozen=True, slots=True)
class Metric:
    """A per-event quantity to compare: the ``field`` of events of ``kind`` (or a derived
    spectrum field, see :func:`sgdtop.stats.field_value`), shown as ``label``."""

    name: str
    kind: str
    field: str
    label: str
    scale: float = 1.0  #: shown values are the field's times this (100 for a %)


#: What ``sgdtop compare`` aligns by default: ρ(H), κ_k, top-10 mean, losses, test
#: accuracy, dead %.
DEFAULT_METRICS: Final[tuple[Metric, ...]] = (
    Metric("spectral_norm", "spectrum", "spectral_norm", "ρ(H)"),
    Metric("cond_k", "spectrum", "cond_k", "κ_k"),
    Metric("top10_mean", "spectrum", "top10_mean", "top-10 mean |λ|"),
    Metric("train_loss", "eval", "train_loss", "train loss"),
    Metric("test_loss", "eval", "test_loss", "test loss"),
    Metric("test_acc", "eval", "test_acc", "test acc (%)", 100.0),
    Metric("dead_pct", "neurons", "dead_pct", "dead %"),
)

#: The settings a comparison table lists first, with their row labels.
SETTINGS: Final[tuple[tuple[str, str], ...]] = (
    ("model", "model"),
    ("dataset", "dataset"),
    ("lr", "η (lr)"),
    ("batch_size", "batch size S"),
    ("momentum", "momentum β"),
    ("weight_decay", "weight decay"),
)


@dataclass(frozen=True, slots=True)
class AlignedSeries:
    """One metric of several runs on a common axis.

    ``x`` is the sorted union of the runs' positions on ``axis``; ``y[i, j]`` is run i's
    value at ``x[j]``: NaN where run i has no measurement there (or, with interpolation,
    lies outside run i's measured range). Values are the field's times ``metric.scale``.
    ``names`` are the runs' labels, in order.
    """

    metric: Metric
    axis: Axis
    names: list[str]
    x: np.ndarray
    y: np.ndarray


@dataclass(slots=True)
class CompareReport:
    """What ``sgdtop compare`` shows: a summary per run, the settings in which the runs
    differ, and each metric aligned on ``axis``."""

    axis: Axis
    summaries: list[RunStats]
    differing: list[str]
    series: dict[str, AlignedSeries] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """The runs' labels, in order."""
        return [s.label for s in self.summaries]


def align(
    runs: Sequence[RunEvents],
    metric: Metric,
    *,
    axis: Axis = "epoch",
    interpolate: bool = False,
) -> AlignedSeries:
    """Align ``metric`` of ``runs`` on ``axis`` (see :class:`AlignedSeries`).

    Without ``interpolate`` each run keeps its own measurements, exactly (non-finite
    values included) and NaN elsewhere; with it, each run is linearly interpolated between
    its finite measurements onto every x of the union (never extrapolated). When a run has
    two measurements at one x, the last one wins.
    """
    per_run = [series(r.events, metric.field, metric.kind, axis=axis) for r in runs]
    per_run = [(x, v * metric.scale) for x, v in per_run]
    xs = [x for x, _ in per_run]
    grid = np.unique(np.concatenate(xs)) if xs else np.array([], dtype=float)
    y = np.full((len(runs), grid.size), np.nan)
    for i, (x, v) in enumerate(per_run):
        if x.size == 0:
            continue
        if interpolate:
            ok = np.isfinite(v)
            if not ok.any():
                continue
            xo, vo = x[ok], v[ok]
            order = np.argsort(xo, kind="stable")
            xo, vo = xo[order], vo[order]
            inside = (grid >= xo[0]) & (grid <= xo[-1])
            y[i, inside] = np.interp(grid[inside], xo, vo)
        else:
            idx = np.searchsorted(grid, x)
            y[i, idx] = v  # later duplicates overwrite earlier ones
    return AlignedSeries(
        metric=metric, axis=axis, names=[r.name for r in runs], x=grid, y=y
    )


def differing_settings(summaries: Sequence[RunStats]) -> list[str]:
    """The setting names (model, dataset, lr, ...) whose values are not all equal."""
    out = []
    for key, _ in SETTINGS:
        values = {repr(s.settings()[key]) for s in summaries}
        if len(values) > 1:
            out.append(key)
    return out


def build_report(
    runs: Sequence[RunEvents],
    *,
    axis: Axis = "epoch",
    metrics: Sequence[Metric] = DEFAULT_METRICS,
    interpolate: bool = False,
    weighting: Weighting = "events",
) -> CompareReport:
    """Summaries, differing settings and aligned ``metrics`` of ``runs``."""
    summaries = [summarize(r, weighting=weighting) for r in runs]
    return CompareReport(
        axis=axis,
        summaries=summaries,
        differing=differing_settings(summaries),
        series={
            m.name: align(runs, m, axis=axis, interpolate=interpolate) for m in metrics
        },
    )


def format_value(x: Any, digits: int = 4) -> str:
    """A table cell: ``—`` for None, ``nan``/``inf``/``-inf``, ints as they are, other
    floats to ``digits`` significant digits, anything else as ``str``."""
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float | np.floating):
        xf = float(x)
        if math.isnan(xf):
            return "nan"
        if math.isinf(xf):
            return "inf" if xf > 0 else "-inf"
        return f"{xf:.{digits}g}"
    return str(x)


def _pct(x: float | None) -> float | None:
    return None if x is None else x * 100.0


def _k_label(summaries: Sequence[RunStats]) -> str:
    """``κ₃₀`` when all runs computed the same k, else ``κₖ``
    (:func:`sgdtop.format.kappa_label`)."""
    ks = {s.k for s in summaries}
    if len(ks) == 1:
        k = ks.pop()
        if k is not None:
            return fmt.kappa_label(k)
    return fmt.kappa_label(None)


def _setting_cell(key: str) -> Callable[[RunStats], str]:
    """The table cell of setting ``key`` of a run."""
    return lambda s: format_value(s.settings()[key])


def _summary_spec(
    summaries: Sequence[RunStats],
) -> list[tuple[str, str | None, Callable[[RunStats], str]]]:
    """(row label, setting key or None, cell formatter) for each row of the table."""
    k_label = _k_label(summaries)
    rows: list[tuple[str, str | None, Callable[[RunStats], str]]] = [
        (label, key, _setting_cell(key)) for key, label in SETTINGS
    ]
    rows += [
        ("parameters", None, lambda s: format_value(s.num_params)),
        ("status", None, lambda s: s.status),
        ("steps", None, lambda s: format_value(s.steps)),
        ("epochs", None, lambda s: format_value(s.epochs, 3)),
        ("time (s)", None, lambda s: format_value(s.seconds, 3)),
        (
            "spectra (non-finite)",
            None,
            lambda s: f"{s.n_spectra} ({s.n_nonfinite_spectra})",
        ),
        ("ρ(H) final", None, lambda s: format_value(s.final_spectral_norm)),
        ("ρ(H) avg over training", None, lambda s: format_value(s.mean_spectral_norm)),
        ("ρ(H) max", None, lambda s: format_value(s.max_spectral_norm)),
        ("top-10 mean |λ| avg", None, lambda s: format_value(s.mean_top10_mean)),
        (f"{k_label} final", None, lambda s: format_value(s.final_cond_k)),
        ("η·λ₁ final", None, lambda s: format_value(s.final_eta_lambda1)),
        ("train loss final", None, lambda s: format_value(s.final_train_loss)),
        ("test loss final", None, lambda s: format_value(s.final_test_loss)),
        ("test acc final (%)", None, lambda s: format_value(_pct(s.final_test_acc), 3)),
        ("dead neurons final (%)", None, lambda s: format_value(s.final_dead_pct, 3)),
    ]
    if any(s.final_dense_cond is not None for s in summaries):
        rows.append(("dense κ final", None, lambda s: format_value(s.final_dense_cond)))
    return rows


def summary_rows(report: CompareReport) -> list[list[str]]:
    """The comparison table as plain text cells: a header row ``["", run names...]``, then
    one row per setting or number, one column per run (runs side by side)."""
    rows = [["", *report.names]]
    for label, _, cell in _summary_spec(report.summaries):
        rows.append([label, *(cell(s) for s in report.summaries)])
    return rows


def summary_table(report: CompareReport, *, title: str | None = None) -> Table:
    """The comparison table as a Rich :class:`~rich.table.Table`; settings in which the
    runs differ are bold."""
    table = Table(title=title, show_lines=False, header_style="bold")
    table.add_column("", style="dim", no_wrap=True)
    for name in report.names:
        table.add_column(name, justify="right", overflow="fold")
    spec = _summary_spec(report.summaries)
    for i, (label, key, cell) in enumerate(spec):
        bold = key is not None and key in report.differing
        style = "bold" if bold else ""
        table.add_row(
            Text(label, style="bold" if bold else "dim"),
            *(Text(cell(s), style=style) for s in report.summaries),
            end_section=(i == len(SETTINGS) - 1 or label == "spectra (non-finite)"),
        )
    return table


def _subsample(n: int, max_rows: int) -> list[int]:
    """At most ``max_rows`` indices of range(n), evenly spread, first and last kept."""
    if n <= max_rows:
        return list(range(n))
    if max_rows < 2:
        return [n - 1] if max_rows == 1 else []
    return sorted({round(i * (n - 1) / (max_rows - 1)) for i in range(max_rows)})


def series_rows(aligned: AlignedSeries, *, max_rows: int = 20) -> list[list[str]]:
    """One aligned metric as plain text cells: header ``[axis, run names...]`` then one
    row per x (at most ``max_rows``, evenly spread, first and last kept); rows where no
    run has a value are skipped."""
    rows = [[AXIS_LABELS[aligned.axis], *aligned.names]]
    has_any = ~np.all(np.isnan(aligned.y), axis=0) if aligned.y.size else np.array([], bool)
    cols = np.flatnonzero(has_any)
    for j in _subsample(cols.size, max_rows):
        c = cols[j]
        x = float(aligned.x[c])
        x_cell = format_value(int(x)) if x.is_integer() else format_value(x, 4)
        rows.append([x_cell, *(format_value(float(v)) for v in aligned.y[:, c])])
    return rows


def series_table(aligned: AlignedSeries, *, max_rows: int = 20) -> Table:
    """One aligned metric as a Rich table (see :func:`series_rows`)."""
    rows = series_rows(aligned, max_rows=max_rows)
    table = Table(title=aligned.metric.label, header_style="bold")
    table.add_column(rows[0][0], justify="right", style="dim")
    for name in rows[0][1:]:
        table.add_column(name, justify="right")
    for row in rows[1:]:
        table.add_row(*row)
    return table


def format_rows(rows: Sequence[Sequence[str]], *, gap: int = 2) -> str:
    """Plain-text columns: the first left-aligned, the others right-aligned; a rule under
    the header row."""
    if not rows:
        return ""
    ncol = max(len(r) for r in rows)
    widths = [max(len(r[c]) if c < len(r) else 0 for r in rows) for c in range(ncol)]
    lines = []
    for i, r in enumerate(rows):
        cells = [
            (r[c] if c < len(r) else "").ljust(widths[c])
            if c == 0
            else (r[c] if c < len(r) else "").rjust(widths[c])
            for c in range(ncol)
        ]
        lines.append((" " * gap).join(cells).rstrip())
        if i == 0:
            lines.append("-" * (sum(widths) + gap * (ncol - 1)))
    return "\n".join(lines)


def render_text(report: CompareReport, *, max_rows: int = 12) -> str:
    """The whole comparison as plain text (``sgdtop compare --log``): the summary table,
    then each aligned metric that any run measured."""
    parts = [format_rows(summary_rows(report))]
    for aligned in report.series.values():
        if aligned.y.size == 0 or np.all(np.isnan(aligned.y)):
            continue
        parts.append(f"{aligned.metric.label} by {AXIS_LABELS[aligned.axis]}")
        parts.append(format_rows(series_rows(aligned, max_rows=max_rows)))
    return "\n\n".join(parts) + "\n"
