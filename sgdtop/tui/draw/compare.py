"""Drawing the compare view: the settings and summary table (one column per run), the
metric bar, and each run's trace of the selected metric as a chart line.
"""

from __future__ import annotations

from collections.abc import Callable

from rich import box
from rich.table import Table
from rich.text import Text

from sgdtop import format as fmt
from sgdtop.compare import AlignedSeries, CompareReport
from sgdtop.stats import RunStats
from sgdtop.tui.draw.lines_chart import ChartLine
from sgdtop.tui.draw.palette import DIFF_STYLE, DIM, run_color
from sgdtop.tui.state.compare import (
    k_symbol,
    metric_keys,
    metric_label,
    run_labels,
)


def _pct(x: float | None) -> float | None:
    return None if x is None else x * 100.0


Cell = Callable[[RunStats], str]


def summary_spec(report: CompareReport, *, full: bool) -> list[tuple[str, str | None, Cell]]:
    """The table's rows: (label, setting key or None, cell of a run).

    Compact (``full=False``, for short screens): η, S, β (and any other differing
    setting), status, steps, ρ(H) final / time average, time-averaged top-10 mean,
    final κ_k, test accuracy and dead %. ``full`` adds the other settings, epochs, time,
    max ρ(H), η·λ₁ and the losses.
    """
    differing = set(report.differing)
    kappa = k_symbol(report)

    def setting_cell(key: str) -> Cell:
        return lambda s: fmt.setting(s.settings()[key])

    settings: list[tuple[str, str | None, Cell]] = []
    for key, label in (
        ("model", "model"), ("dataset", "dataset"), ("lr", "η"), ("batch_size", "S"),
        ("momentum", "β"), ("weight_decay", "weight decay"),
    ):
        if full or key in ("lr", "batch_size", "momentum") or key in differing:
            settings.append((label, key, setting_cell(key)))
    rows = [*settings, ("status", None, lambda s: s.status),
            ("steps", None, lambda s: fmt.number(s.steps))]
    if full:
        rows += [
            ("epochs", None, lambda s: fmt.number(s.epochs, 3)),
            ("time", None, lambda s: fmt.clock(s.seconds)),
            ("ρ(H) final", None, lambda s: fmt.number(s.final_spectral_norm)),
            ("ρ(H) time avg", None, lambda s: fmt.number(s.mean_spectral_norm)),
            ("ρ(H) max", None, lambda s: fmt.number(s.max_spectral_norm)),
        ]
    else:
        rows.append(("ρ(H) final/avg", None, lambda s: (
            f"{fmt.number(s.final_spectral_norm, 3)} / {fmt.number(s.mean_spectral_norm, 3)}")))
    rows += [
        ("top-10 mean avg", None, lambda s: fmt.number(s.mean_top10_mean)),
        (f"{kappa} final", None, lambda s: fmt.number(s.final_cond_k)),
    ]
    if full:
        rows += [
            ("η·λ₁ final", None, lambda s: fmt.number(s.final_eta_lambda1)),
            ("train loss", None, lambda s: fmt.number(s.final_train_loss)),
            ("test loss", None, lambda s: fmt.number(s.final_test_loss)),
        ]
    rows += [
        ("test acc %", None, lambda s: fmt.number(_pct(s.final_test_acc), 3)),
        ("dead %", None, lambda s: fmt.number(s.final_dead_pct, 3)),
    ]
    return rows


def summary_table(report: CompareReport, *, full: bool = False) -> Table:
    """The settings and summary table: one column per run, its header the run's label in
    its color; the settings in which the runs differ in :data:`DIFF_STYLE`."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1),
                  header_style="bold", expand=False)
    table.add_column("", style=DIM, no_wrap=True, overflow="ellipsis")
    for i, label in enumerate(run_labels(report)):
        table.add_column(Text(label, style=f"bold {run_color(i)}"), justify="right",
                         no_wrap=True, overflow="ellipsis")
    for label, key, cell in summary_spec(report, full=full):
        differs = key is not None and key in report.differing
        style = DIFF_STYLE if differs else ""
        table.add_row(Text(label, style=DIFF_STYLE if differs else DIM),
                      *(Text(cell(s), style=style) for s in report.summaries))
    return table


def table_height(report: CompareReport, *, full: bool) -> int:
    """Rows :func:`summary_table` takes: the header, its rule and one per row."""
    return 2 + len(summary_spec(report, full=full))


def chart_lines(report: CompareReport, key: str) -> list[ChartLine]:
    """Metric ``key`` of every run as a colored :class:`~sgdtop.tui.ChartLine`."""
    aligned: AlignedSeries = report.series[key]
    labels = run_labels(report)
    xs = [float(x) for x in aligned.x]
    return [
        ChartLine(label=labels[i], xs=xs, ys=[float(v) for v in aligned.y[i]],
                         color=run_color(i))
        for i in range(len(labels))
        if i < aligned.y.shape[0]
    ]


def metric_bar(report: CompareReport, selected: str, width: int) -> Text:
    """The metric keys: ``1 ρ(H)  2 top-10 ...``, the selected one highlighted; the
    numbers are dropped when they do not fit."""
    keys = metric_keys(report)
    if width <= 0:
        return Text()

    def build(numbers: bool, sep: str) -> Text:
        out = Text(no_wrap=True, overflow="ellipsis")
        for i, key in enumerate(keys):
            if i:
                out.append(sep)
            name = metric_label(report, key, short=True)
            if numbers and i < 9:
                out.append(f"{i + 1} ", DIM)
            out.append(name, "bold reverse" if key == selected else "")
        return out

    for numbers, sep in ((True, "   "), (True, "  "), (False, " ")):
        text = build(numbers, sep)
        if text.cell_len <= width:
            return text
    text.truncate(width, overflow="ellipsis")
    return text
