"""``sgdtop compare`` in the terminal: several saved runs side by side, one screen.

Top: the settings and summary table, one column per run (its header in the run's color,
the settings in which the runs differ highlighted). Below: one chart of the selected
metric (ρ(H), top-10 mean, κ_k, losses, test accuracy, dead %), one colored line per
run over the report's common axis (epoch by default). Keys: ←/→, Tab or 1..7 switch the
metric, ``l`` linear/log, ``s`` saves an SVG screenshot in the current directory, ``?``
help, ``q`` quits.

Everything shown comes from a :class:`~sgdtop.compare.CompareReport`; the pure functions
here (labels, table, chart lines) are tested without Textual, the drawing is
:mod:`sgdtop.tui.render`'s. Never imports torch (a test checks it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar, Final

from rich import box
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.geometry import Size
from textual.widget import Widget
from textual.widgets import Footer, Static

from sgdtop.compare import AlignedSeries, CompareReport
from sgdtop.summary import AXIS_LABELS, RunStats
from sgdtop.tui import render
from sgdtop.tui.screenshot import save_svg
from sgdtop.tui.widgets import HelpScreen

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
#: Screen rows from which the table lists every number (else the compact rows).
TALL_ROWS: Final[int] = 36
#: How a setting that differs between runs is shown, in the table and the labels.
DIFF_STYLE: Final[str] = "bold #facc15"

_SETTING_SYMBOLS: Final[tuple[tuple[str, str], ...]] = (
    ("lr", "η="), ("batch_size", "S="), ("momentum", "β="), ("weight_decay", "wd="),
    ("model", ""), ("dataset", ""),
)
_SUB: Final = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


# -- pure functions (no Textual) -----------------------------------------------------


def _setting_text(value: object) -> str:
    """A setting's value: numbers in 3 significant digits, ``?`` when unknown."""
    if value is None:
        return "?"
    if isinstance(value, float):
        return render.fmt_num(value, 3)
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
            prefix + _setting_text(settings[key])
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


def k_symbol(summaries: Sequence[RunStats]) -> str:
    """``κ₃₀`` when every run computed the same k, else ``κ_k``."""
    ks = {s.k for s in summaries}
    k = ks.pop() if len(ks) == 1 else None
    return "κ" + str(k).translate(_SUB) if k is not None else "κ_k"


def metric_keys(report: CompareReport) -> list[str]:
    """The report's metrics in key order (see :data:`METRIC_ORDER`)."""
    known = [m for m in METRIC_ORDER if m in report.series]
    return known + [m for m in report.series if m not in METRIC_ORDER]


def metric_label(report: CompareReport, key: str, *, short: bool = False) -> str:
    """How metric ``key`` is named: short (the metric bar) or full (the chart title);
    κ_k carries the runs' k (κ₃₀)."""
    label = SHORT_NAMES.get(key, key) if short else report.series[key].metric.label
    return label.replace("κ_k", k_symbol(report.summaries))


def _pct(x: float | None) -> float | None:
    return None if x is None else x * 100.0


def _num(x: float | int | None, digits: int = 4) -> str:
    return render.fmt_num(x, digits)


Cell = Callable[[RunStats], str]


def summary_spec(report: CompareReport, *, full: bool) -> list[tuple[str, str | None, Cell]]:
    """The table's rows: (label, setting key or None, cell of a run).

    Compact (``full=False``, for short screens): η, S, β (and any other differing
    setting), status, steps, ρ(H) final / time average, time-averaged top-10 mean,
    final κ_k, test accuracy and dead %. ``full`` adds the other settings, epochs, time,
    max ρ(H), η·λ₁ and the losses.
    """
    differing = set(report.differing)
    kappa = k_symbol(report.summaries)

    def setting(key: str) -> Cell:
        return lambda s: _setting_text(s.settings()[key])

    settings: list[tuple[str, str | None, Cell]] = []
    for key, label in (
        ("model", "model"), ("dataset", "dataset"), ("lr", "η"), ("batch_size", "S"),
        ("momentum", "β"), ("weight_decay", "weight decay"),
    ):
        if full or key in ("lr", "batch_size", "momentum") or key in differing:
            settings.append((label, key, setting(key)))
    rows = [*settings, ("status", None, lambda s: s.status),
            ("steps", None, lambda s: _num(s.steps))]
    if full:
        rows += [
            ("epochs", None, lambda s: _num(s.epochs, 3)),
            ("time", None, lambda s: render.fmt_duration(s.seconds)),
            ("ρ(H) final", None, lambda s: _num(s.final_spectral_norm)),
            ("ρ(H) time avg", None, lambda s: _num(s.mean_spectral_norm)),
            ("ρ(H) max", None, lambda s: _num(s.max_spectral_norm)),
        ]
    else:
        rows.append(("ρ(H) final/avg", None, lambda s: (
            f"{_num(s.final_spectral_norm, 3)} / {_num(s.mean_spectral_norm, 3)}")))
    rows += [
        ("top-10 mean avg", None, lambda s: _num(s.mean_top10_mean)),
        (f"{kappa} final", None, lambda s: _num(s.final_cond_k)),
    ]
    if full:
        rows += [
            ("η·λ₁ final", None, lambda s: _num(s.final_eta_lambda1)),
            ("train loss", None, lambda s: _num(s.final_train_loss)),
            ("test loss", None, lambda s: _num(s.final_test_loss)),
        ]
    rows += [
        ("test acc %", None, lambda s: _num(_pct(s.final_test_acc), 3)),
        ("dead %", None, lambda s: _num(s.final_dead_pct, 3)),
    ]
    return rows


def summary_table(report: CompareReport, *, full: bool = False) -> Table:
    """The settings and summary table: one column per run, its header the run's label in
    its color; the settings in which the runs differ in :data:`DIFF_STYLE`."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1),
                  header_style="bold", expand=False)
    table.add_column("", style=render.DIM, no_wrap=True, overflow="ellipsis")
    for i, label in enumerate(run_labels(report)):
        table.add_column(Text(label, style=f"bold {render.run_color(i)}"), justify="right",
                         no_wrap=True, overflow="ellipsis")
    for label, key, cell in summary_spec(report, full=full):
        differs = key is not None and key in report.differing
        style = DIFF_STYLE if differs else ""
        table.add_row(Text(label, style=DIFF_STYLE if differs else render.DIM),
                      *(Text(cell(s), style=style) for s in report.summaries))
    return table


def table_height(report: CompareReport, *, full: bool) -> int:
    """Rows :func:`summary_table` takes: the header, its rule and one per row."""
    return 2 + len(summary_spec(report, full=full))


def chart_lines(report: CompareReport, key: str) -> list[render.ChartLine]:
    """Metric ``key`` of every run as a colored :class:`~sgdtop.tui.render.ChartLine`."""
    aligned: AlignedSeries = report.series[key]
    labels = run_labels(report)
    xs = [float(x) for x in aligned.x]
    return [
        render.ChartLine(label=labels[i], xs=xs, ys=[float(v) for v in aligned.y[i]],
                         color=render.run_color(i))
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
                out.append(f"{i + 1} ", render.DIM)
            out.append(name, "bold reverse" if key == selected else "")
        return out

    for numbers, sep in ((True, "   "), (True, "  "), (False, " ")):
        text = build(numbers, sep)
        if text.cell_len <= width:
            return text
    text.truncate(width, overflow="ellipsis")
    return text


# -- widgets -------------------------------------------------------------------------


class SummaryTableView(Widget):
    """The settings and summary table (all rows on tall screens, compact rows else)."""

    DEFAULT_CSS = "SummaryTableView { height: auto; }"

    def __init__(self, report: CompareReport, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.report = report

    @property
    def full(self) -> bool:
        """Whether the screen is tall enough for every row."""
        return self.app.size.height >= TALL_ROWS

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return table_height(self.report, full=self.full)

    def render(self) -> Table:
        return summary_table(self.report, full=self.full)


class MetricBar(Widget):
    """One line: the metrics and their keys, the selected one highlighted."""

    DEFAULT_CSS = "MetricBar { height: 1; }"

    def __init__(self, report: CompareReport, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.report = report
        self.selected = metric_keys(report)[0] if report.series else ""

    def select(self, key: str) -> None:
        """Highlight metric ``key``."""
        self.selected = key
        self.refresh()

    def render(self) -> Text:
        return metric_bar(self.report, self.selected, self.size.width)


class CompareChart(Widget):
    """The selected metric of every run over the common axis; linear or log scale."""

    def __init__(self, report: CompareReport, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.report = report
        self.metric = metric_keys(report)[0] if report.series else ""
        self.log_scale = False

    def show(self, metric: str, *, log: bool) -> None:
        """Draw ``metric`` (a key of the report's series), on a log scale with ``log``."""
        self.metric, self.log_scale = metric, log
        self._title()
        self.refresh()

    def on_mount(self) -> None:
        self._title()

    def on_resize(self) -> None:
        self._title()

    def _title(self) -> None:
        if not self.metric:
            self.border_title = "no metric"
            return
        axis = AXIS_LABELS[self.report.axis]
        head = (f"{metric_label(self.report, self.metric)} by {axis} · "
                f"{'log' if self.log_scale else 'lin'}")
        width = max(0, (self.size.width or 80) - 4)
        legend = render.lines_legend(chart_lines(self.report, self.metric),
                                     max(0, width - len(head) - 3))
        title = escape(head)
        if legend.cell_len:
            title += "   " + legend.markup
        self.border_title = title

    def render(self) -> Text:
        if not self.metric:
            return Text("no metric to show", style=render.DIM)
        label = metric_label(self.report, self.metric)
        return render.lines_chart(chart_lines(self.report, self.metric), self.size.width,
                                  self.size.height, log=self.log_scale,
                                  empty=f"no run measured {label}")


COMPARE_HELP_TEXT = """\
[b]sgdtop compare[/b]: saved runs side by side

[b]table[/b]  one column per run, headed by its label (what differs, e.g. η=0.1)
       in its chart color; settings that differ between runs in yellow.
       ρ(H) final/avg: the last spectral norm / its time average over
       training; top-10 mean avg: the mean |λ| of the top 10, averaged over
       training (the paper's Fig. 3); κₖ = |λ₁|/|λₖ|; dead %: units with
       mean |activation| under the threshold; nan/inf as measured
[b]chart[/b]  the selected metric, one line per run over the common axis;
       points a run did not measure are bridged; a tick on the top
       (bottom) edge: +inf (-inf); log: log₁₀|value|

[b]← →[/b] [b]Tab[/b] [b]1‥7[/b] metric  [b]l[/b] lin/log  [b]s[/b] SVG (current directory)
[b]?[/b] help  [b]q[/b] quit

[dim]? or Esc closes[/dim]"""


class CompareHelpScreen(HelpScreen):
    """The keys of the compare view and what its numbers mean."""

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(COMPARE_HELP_TEXT, id="help-body")


class CompareApp(App[None]):
    """``sgdtop compare`` on a terminal: the summary table and one metric chart."""

    CSS_PATH = Path(__file__).with_name("sgdtop.tcss")
    TITLE = "sgdtop compare"
    ENABLE_COMMAND_PALETTE = False
    metric_group = Binding.Group("metric", compact=True)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "quit"),
        Binding("ctrl+c", "quit", "quit", show=False, priority=True),
        Binding("question_mark", "help", "help"),
        Binding("left", "previous_metric", "metric", group=metric_group),
        Binding("right", "next_metric", "metric", group=metric_group),
        Binding("tab", "next_metric", "metric", show=False, priority=True),
        Binding("shift+tab", "previous_metric", "metric", show=False, priority=True),
        *(Binding(str(n), f"select_metric({n - 1})", f"metric {n}", show=False)
          for n in range(1, 10)),
        Binding("l", "toggle_log", "lin/log"),
        Binding("s", "screenshot", "SVG"),
    ]

    def __init__(self, report: CompareReport) -> None:
        super().__init__()
        self.report = report
        self.metrics: list[str] = metric_keys(report)
        self.metric_index = 0
        self.log_scale = False
        #: SVG screenshots saved (``s``), in order.
        self.screenshots: list[Path] = []

    @property
    def metric(self) -> str:
        """The key of the metric on the chart ("" when the report has none)."""
        return self.metrics[self.metric_index] if self.metrics else ""

    def compose(self) -> ComposeResult:
        yield SummaryTableView(self.report, id="cmp-table")
        yield MetricBar(self.report, id="cmp-metrics")
        yield CompareChart(self.report, id="cmp-chart")
        yield Footer()

    def _show(self) -> None:
        self.query_one(MetricBar).select(self.metric)
        self.query_one(CompareChart).show(self.metric, log=self.log_scale)

    def action_select_metric(self, index: int) -> None:
        """Show metric number ``index`` (0-based; ignored when there is none)."""
        if 0 <= index < len(self.metrics):
            self.metric_index = index
            self._show()

    def action_next_metric(self) -> None:
        """The next metric (wraps around)."""
        if self.metrics:
            self.action_select_metric((self.metric_index + 1) % len(self.metrics))

    def action_previous_metric(self) -> None:
        """The previous metric (wraps around)."""
        if self.metrics:
            self.action_select_metric((self.metric_index - 1) % len(self.metrics))

    def action_toggle_log(self) -> None:
        """Linear / log₁₀|value| scale of the chart."""
        self.log_scale = not self.log_scale
        self._show()

    def action_help(self) -> None:
        """Show the keys and definitions."""
        if not isinstance(self.screen, CompareHelpScreen):
            self.push_screen(CompareHelpScreen())

    def action_screenshot(self) -> None:
        """Save an SVG of the screen into the current directory
        (``sgdtop-compare-<metric>.svg``, numbered when it exists)."""
        folder = Path.cwd()
        stem = f"sgdtop-compare-{self.metric or 'table'}"
        saved = save_svg(self, folder, stem)
        if saved is not None:
            self.screenshots.append(saved)


def run_compare(report: CompareReport) -> None:
    """Show ``report`` in the terminal until the user quits (``q``)."""
    CompareApp(report).run()

