"""``sgdtop compare`` in the terminal: several saved runs side by side, one screen.

Top: the settings and summary table, one column per run (its header in the run's color,
the settings in which the runs differ highlighted). Below: one chart of the selected
metric (ρ(H), top-10 mean, κ_k, losses, test accuracy, dead %), one colored line per
run over the report's common axis (epoch by default). Keys: ←/→, Tab or 1..7 switch the
metric, ``l`` linear/log, ``s`` saves an SVG screenshot in the current directory, ``?``
help, ``q`` quits.

Everything shown comes from a :class:`~sgdtop.compare.CompareReport`: its metrics and
run labels are :mod:`sgdtop.tui.state.compare`, the table, metric bar and chart lines
:mod:`sgdtop.tui.draw.compare` (both tested without Textual), the widgets
:mod:`sgdtop.tui.compare.widgets`. The view has no messages (nothing arrives while it
runs). Never imports torch (a test checks it). See docs/design.md (the TUI).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer

from sgdtop.compare import CompareReport
from sgdtop.tui.compare.widgets import CompareChart, MetricBar, SummaryTableView
from sgdtop.tui.help import HelpScreen
from sgdtop.tui.screenshot import save_svg
from sgdtop.tui.state.compare import metric_keys

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

    TEXT = COMPARE_HELP_TEXT


class CompareApp(App[None]):
    """``sgdtop compare`` on a terminal: the summary table and one metric chart."""

    CSS_PATH = Path(__file__).parent.parent / "sgdtop.tcss"
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
        Binding("s", "save_svg", "SVG"),
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

    def action_save_svg(self) -> None:
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

