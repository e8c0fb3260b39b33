"""The run view's widgets: each holds the latest view snapshot of its area and draws it at
its own size with the functions of :mod:`sgdtop.tui.draw`. No logic beyond adapting state.

Widgets never see the live :class:`~sgdtop.tui.state.run.RunState`, only immutable
snapshots pushed by the app, so pausing the display (``p``) freezes every panel — even
across a resize — while the state keeps ingesting events.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.geometry import Size
from textual.widget import Widget
from textual.widgets import RichLog

from sgdtop.tui.draw.eigen_chart import chart_legend, chart_text
from sgdtop.tui.draw.header import header_text
from sgdtop.tui.draw.log import log_text
from sgdtop.tui.draw.palette import DIM
from sgdtop.tui.draw.slices_chart import slices_legend, slices_text
from sgdtop.tui.draw.sparkline import metrics_text
from sgdtop.tui.draw.table import eigen_table, spectrum_status
from sgdtop.tui.help import HelpScreen
from sgdtop.tui.state.run import LOG_LINES
from sgdtop.tui.state.views import (
    ChartView,
    HeaderView,
    LogLine,
    MetricView,
    SliceView,
    SpectrumView,
)


class HeaderBar(Widget):
    """Two lines: the run (model, data, η, S, β, device), progress, status, mode."""

    DEFAULT_CSS = "HeaderBar { height: 2; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.view: HeaderView | None = None
        self.mode: Text = Text()

    def show(self, view: HeaderView, mode: Text) -> None:
        """Display ``view`` with ``mode`` (live/watch/replay, paused) on the right."""
        self.view, self.mode = view, mode
        self.refresh()

    def render(self) -> Text:
        if self.view is None:
            return Text(" sgdtop ", style="bold reverse")
        return header_text(self.view, self.size.width, mode=self.mode.copy())


class MetricsPanel(Widget):
    """Sparklines with current values: ρ(H), η·λ₁ vs 2(1+β), κ_k, losses, accuracy, dead %."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.views: tuple[MetricView, ...] = ()

    def show(self, views: tuple[MetricView, ...]) -> None:
        """Display these rows."""
        self.views = views
        self.refresh()

    def render(self) -> Text:
        return metrics_text(self.views, self.size.width)


class EigenBody(Widget):
    """The top-k table itself (its height is its row count; it scrolls in its panel)."""

    DEFAULT_CSS = "EigenBody { height: auto; }"

    def __init__(self) -> None:
        super().__init__()
        self.view: SpectrumView | None = None

    def show(self, view: SpectrumView) -> None:
        """Display this table."""
        old_rows = len(self.view.rows) if self.view is not None else -1
        self.view = view
        self.refresh(layout=len(view.rows) != old_rows)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return 1 + len(self.view.rows) if self.view is not None and self.view.rows else 1

    def render(self) -> Text:
        if self.view is None:
            return Text("no spectrum yet", style=DIM)
        return eigen_table(self.view, self.size.width)


class EigenPanel(VerticalScroll):
    """Focusable, scrollable panel around :class:`EigenBody`."""

    def compose(self) -> ComposeResult:
        yield EigenBody()

    def show(self, view: SpectrumView) -> None:
        """Display this table."""
        self.query_one(EigenBody).show(view)


class SpectrumStatus(Widget):
    """One line: the measurement under way (HVPs, seconds) or the last one's cost."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.view: SpectrumView | None = None

    def show(self, view: SpectrumView) -> None:
        """Display the status of this spectrum view."""
        self.view = view
        self.refresh()

    def render(self) -> Text:
        if self.view is None:
            return Text("")
        return spectrum_status(self.view, self.size.width)


class EigenChart(Widget, can_focus=True):
    """The top-k eigenvalues over training (Fig. 2) with the loss; linear or log scale."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.view: ChartView | None = None
        self.log_scale = False

    def show(self, view: ChartView) -> None:
        """Display this chart data."""
        self.view = view
        self._title()
        self.refresh()

    def _title(self) -> None:
        self.border_title = chart_legend(self.view, log=self.log_scale,
                                         width=self.size.width or 80)

    def on_resize(self) -> None:
        self._title()

    def set_log_scale(self, log: bool) -> None:
        """Switch between λ (linear) and log₁₀|λ|."""
        self.log_scale = log
        self._title()
        self.refresh()

    def render(self) -> Text:
        return chart_text(self.view, self.size.width, self.size.height, log=self.log_scale)


class SliceChart(Widget, can_focus=True):
    """The loss along the top eigenvectors (Fig. 7): one small chart per eigenvector, the
    newest slices over each other; shown in place of the eigenvalue chart (``v``)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.view: SliceView | None = None

    def show(self, view: SliceView) -> None:
        """Display these slices."""
        self.view = view
        self._title()
        self.refresh()

    def _title(self) -> None:
        self.border_title = slices_legend(self.view, width=self.size.width or 80)

    def on_resize(self) -> None:
        self._title()

    def render(self) -> Text:
        return slices_text(self.view, self.size.width, self.size.height)


class LogPanel(RichLog):
    """The trainer's log lines and sgdtop's own notes (run end, lost stream, ...)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, max_lines=LOG_LINES, wrap=True, markup=False, highlight=False)
        self._seq = 0

    def sync(self, lines: tuple[LogLine, ...], seq: int, *, reset: bool = False) -> None:
        """Show ``lines`` (the newest last), the state's log sequence number being ``seq``:
        only the lines not yet written are appended, unless ``reset``."""
        new = seq - self._seq
        if reset or new < 0 or new > len(lines):
            self.clear()
            new = len(lines)
        for line in lines[len(lines) - new:] if new else ():
            self.write(log_text(line))
        self._seq = seq



RUN_HELP_TEXT = """\
[b]sgdtop[/b]: the curvature of the training loss while SGD trains

[b]ρ(H)[/b]   spectral norm: the largest |λ| of the probe-set loss Hessian
[b]η·λ₁[/b]   step × top eigenvalue vs 2(1+β), the most gradient descent with
       momentum β is stable at; 100% means λ₁ = 2(1+β)/η
[b]κₖ[/b]     |λ₁| / |λₖ| over the top k eigenvalues
[b]dead[/b]   % of units with mean |activation| < threshold (probe batch)
[b]table[/b]  signed λ; Δ since the previous measurement; resid ‖Hv−λv‖;
       ✓ converged  ~ relative residual < 1e-2  ✗ not converged
[b]chart[/b]  a trace per eigenvalue, red = largest → blue = smallest;
       white: the loss (right axis); amber dots: 2(1+β)/η
       sparklines: × nan  ↑ +inf  ↓ -inf
[b]slices[/b] (v) loss L(θ+t·vᵢ) along eigenvector vᵢ, newest red → older blue;
       grey: the quadratic model L + g·t + ½λt² (g = ∇L·vᵢ)

[b]q[/b] quit (live: 1st q stops the trainer cleanly, 2nd q quits)
[b]?[/b] help  [b]l[/b] lin/log  [b]v[/b] slices  [b]p[/b] pause  [b]s[/b] SVG  [b]Tab[/b] panel
replay: [b]space[/b] play/pause  [b]← →[/b] measurement  [b]+ -[/b] speed  [b]g G[/b] ends

[dim]? or Esc closes[/dim]"""


class RunHelpScreen(HelpScreen):
    """The keys of the run view and the definitions of what it shows."""

    TEXT = RUN_HELP_TEXT
