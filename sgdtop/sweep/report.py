"""The sweep report: the Fig. 3 tables (plain text and Rich) and the headless log printer.

See ``docs/design.md`` (sweeps) and :mod:`sgdtop.sweep.stats` for the numbers.
"""

from __future__ import annotations

import math
import sys
import time
from typing import IO

from rich.table import Table

from sgdtop import format as fmt
from sgdtop.compare import format_rows, format_value
from sgdtop.sweep.grid import AXES, AXIS_SYMBOLS
from sgdtop.sweep.stats import QUANTITIES, X_AXES, SweepSummary, cell_axis_value
from sgdtop.sweep.updates import CellUpdate


def _pct(x: float | None) -> str:
    """An accuracy in [0, 1] as a percentage (``87.5%``); the table's ``—`` when unknown,
    ``-`` when not finite (a regression run has no accuracy)."""
    if x is None or not math.isfinite(x):
        return "—" if x is None else "-"
    return fmt.percent(100 * x)


def cell_rows(summary: SweepSummary) -> list[list[str]]:
    """The per-cell table as text cells: a header row, then one row per cell (its swept
    settings, 1/η when η is swept, status, ⟨ρ(H)⟩, ⟨top-10⟩, final ρ(H), test acc — or
    test loss when no cell has an accuracy —, measurements, run)."""
    axes = [k for k in AXES if any(k in c.settings for c in summary.cells)]
    header = ["cell", *(AXIS_SYMBOLS[k] for k in axes)]
    if "lr" in axes:
        header.insert(header.index("η") + 1, "1/η")
    # Accuracy for classification; the test loss where no cell has one (regression).
    acc = any(c.final_test_acc is not None and math.isfinite(c.final_test_acc)
              for c in summary.cells)
    header += ["status", "⟨ρ(H)⟩", "⟨top-10⟩", "ρ(H) final", "test acc" if acc else "test loss",
               "spectra", "run"]
    rows = [header]
    for c in summary.cells:
        row = [c.name]
        for k in axes:
            row.append(format_value(cell_axis_value(c, k)))
            if k == "lr":
                row.append(format_value(c.inv_lr))
        row += [c.status, format_value(c.mean_spectral_norm),
                format_value(c.mean_top10_mean), format_value(c.final_spectral_norm),
                _pct(c.final_test_acc) if acc else format_value(c.final_test_loss),
                str(c.n_spectra), c.run_id or "—"]
        rows.append(row)
    return rows


def fit_rows(summary: SweepSummary) -> list[list[str]]:
    """The fitted lines as text cells: quantity, against, group, points, slope, intercept,
    r²; a line that could not be fitted shows dashes."""
    rows = [["quantity", "against", "group", "n", "slope", "intercept", "r²"]]
    for f in summary.fits:
        q = QUANTITIES[f.quantity]
        x = X_AXES[f.x_axis][1]
        if f.fit is None:
            rows.append([q, x, f.group_label, str(f.x.size), "—", "—", "—"])
        else:
            rows.append([q, x, f.group_label, str(f.fit.n), format_value(f.fit.slope),
                         format_value(f.fit.intercept), format_value(f.fit.r2, 3)])
    return rows


def render_sweep_text(summary: SweepSummary) -> str:
    """The whole summary as plain text (``--log`` or not a terminal)."""
    parts = [f"sweep {summary.sweep_id} ({summary.profile}): Fig. 3 summary, time averages "
             "over training", format_rows(cell_rows(summary))]
    parts.append(fits_title(summary))
    if summary.fits:
        parts.append(format_rows(fit_rows(summary)))
    return "\n\n".join(parts) + "\n"


def fits_title(summary: SweepSummary) -> str:
    """The line above the fitted lines, or why there are none."""
    if summary.fits:
        return "linear fits  y = slope·x + intercept  (completed cells)"
    if not any(X_AXES[x][0] in summary.varying for x in X_AXES):
        return "no linear fit: the sweep varies neither η nor S"
    return "no linear fit yet: no completed cells"


def _table(rows: list[list[str]], title: str) -> Table:
    table = Table(title=title, header_style="bold")
    for i, name in enumerate(rows[0]):
        table.add_column(name, justify="left" if i == 0 else "right",
                         style="dim" if i == 0 else "", overflow="fold")
    for row in rows[1:]:
        table.add_row(*row)
    return table


def sweep_tables(summary: SweepSummary) -> list[Table]:
    """The summary as Rich tables: the cells, then (when any) the fitted lines."""
    tables = [_table(cell_rows(summary), f"sweep {summary.sweep_id}: Fig. 3 summary "
                                         "(time averages over training)")]
    if summary.fits:
        tables.append(_table(fit_rows(summary), "linear fits y = slope·x + intercept"))
    return tables


class SweepLogPrinter:
    """A progress callback that prints plain lines (``--log``): one per cell start, end
    and skip, and a progress line per cell at most every ``progress_every_s`` seconds."""

    def __init__(self, stream: IO[str] | None = None, *,
                 progress_every_s: float = 10.0) -> None:
        self.stream = stream or sys.stderr
        self.progress_every_s = progress_every_s
        self._last: dict[int, float] = {}

    def __call__(self, u: CellUpdate) -> None:
        head = f"[{u.index + 1:>{len(str(u.n_cells))}}/{u.n_cells}] {u.cell.name}"
        nums = f"ρ(H) {format_value(u.spectral_norm)}"
        if u.test_acc is not None and math.isfinite(u.test_acc):
            nums += f"  test acc {_pct(u.test_acc)}"
        elif u.test_loss is not None:
            nums += f"  test loss {format_value(u.test_loss)}"
        if u.kind == "skip":
            line = f"{head} {u.status} (run {u.run_id}): {u.message}"
            if u.spectral_norm is not None:
                line += f"; {nums}"
        elif u.kind == "start":
            line = f"{head} started: {u.cell.label()}" + (
                f" on CUDA device {u.device}" if u.device is not None else "")
            self._last[u.index] = time.monotonic()
        elif u.kind == "progress":
            now = time.monotonic()
            if (not u.message
                    and now - self._last.get(u.index, -math.inf) < self.progress_every_s):
                return
            self._last[u.index] = now
            epochs = f"/{u.epochs}" if u.epochs else ""
            line = (f"{head} epoch {'-' if u.epoch is None else u.epoch + 1}{epochs} "
                    f"step {u.step if u.step is not None else '-'}  {nums}")
        else:
            secs = f", {fmt.duration(u.seconds)}" if u.seconds is not None else ""
            line = f"{head} {u.status} (run {u.run_id or '-'}{secs}): {nums}"
        if u.kind != "skip" and u.message:
            line += f"  [{u.message}]"
        self.stream.write(line + "\n")
        self.stream.flush()

