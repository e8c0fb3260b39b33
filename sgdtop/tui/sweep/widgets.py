r"""The sweep view's widgets: the header (pushed a
:class:`~sgdtop.tui.state.sweep.SweepHeaderView`) and the help screen. The cells and
summary tables are Textual ``DataTable``\ s filled by the app with
:mod:`sgdtop.tui.draw.sweep`'s cells.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from sgdtop.tui.draw.sweep import header_text, state_text
from sgdtop.tui.help import HelpScreen
from sgdtop.tui.state.sweep import SweepHeaderView


class SweepHeader(Widget):
    """Two lines: the sweep, its state, the cells per state and the elapsed time."""

    DEFAULT_CSS = "SweepHeader { height: 2; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.view: SweepHeaderView | None = None

    def show(self, view: SweepHeaderView) -> None:
        """Display ``view``."""
        self.view = view
        self.refresh()

    def render(self) -> Text:
        v = self.view
        if v is None:
            return Text("")
        state = state_text(v.result, stopping=v.stopping, escalated=v.escalated,
                           failed=v.counts.failed > 0)
        return header_text(v.sweep, v.counts, state, v.elapsed, v.jobs, self.size.width)


SWEEP_HELP_TEXT = """\
[b]sgdtop sweep[/b]: a grid of runs over η, S, β and seeds

[b]table[/b]  one row per cell: its swept settings, status, epoch, optimizer
       steps, ρ(H) = max |λ| of its last spectrum, its last test accuracy
       (test loss for regression) and its time
[b]done[/b]   completed or diverged: not run again when the same command
       is run again (interrupted, failed and pending cells are)
[b]summary[/b] when the sweep ends: the paper's Fig. 3, time averages over
       training of ρ(H) and the top-10 mean |λ| per cell, and lines
       fitted against 1/η and S (completed cells)

[b]q[/b] / [b]Ctrl+C[/b] stop the sweep: running cells finish their step and
       write run_end interrupted; again: they kill their trainers now
[b]q[/b] after the end: quit   [b]v[/b] cells / summary   [b]?[/b] help

[dim]? or Esc closes[/dim]"""



class SweepHelpScreen(HelpScreen):
    """The keys of the sweep view and what its columns mean."""

    TEXT = SWEEP_HELP_TEXT
