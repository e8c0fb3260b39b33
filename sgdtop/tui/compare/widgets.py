"""The compare view's widgets: the summary table, the metric bar and the chart. Each
adapts the :class:`~sgdtop.compare.CompareReport` to a drawing function of
:mod:`sgdtop.tui.draw` at its own size.
"""

from __future__ import annotations

from typing import Final

from rich.markup import escape
from rich.table import Table
from rich.text import Text
from textual.geometry import Size
from textual.widget import Widget

from sgdtop.compare import CompareReport
from sgdtop.stats import AXIS_LABELS
from sgdtop.tui.draw.compare import chart_lines, metric_bar, summary_table, table_height
from sgdtop.tui.draw.lines_chart import lines_chart, lines_legend
from sgdtop.tui.draw.palette import DIM
from sgdtop.tui.state.compare import metric_keys, metric_label

#: Screen rows from which the table lists every number (else the compact rows).
TALL_ROWS: Final[int] = 36


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
        legend = lines_legend(chart_lines(self.report, self.metric),
                                     max(0, width - len(head) - 3))
        title = escape(head)
        if legend.cell_len:
            title += "   " + legend.markup
        self.border_title = title

    def render(self) -> Text:
        if not self.metric:
            return Text("no metric to show", style=DIM)
        label = metric_label(self.report, self.metric)
        return lines_chart(chart_lines(self.report, self.metric), self.size.width,
                                  self.size.height, log=self.log_scale,
                                  empty=f"no run measured {label}")

