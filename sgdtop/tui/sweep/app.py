"""``sgdtop sweep`` on a terminal: the grid's cells live, then the paper's Fig. 3 summary.

Top: two header lines (the sweep id, profile and jobs, its state; the cells done,
running, pending and failed, the elapsed time). Below: one table row per cell — its swept
settings (η, S, β, seed: the axes that vary), status, epoch x/N, step, the last ρ(H), the
last test accuracy (test loss for a regression task such as the teacher-student MLP) and
the cell's time — and one note line (the sweep directory, or the last failure). When the
sweep ends the Fig. 3 summary replaces the table (``v`` switches back and forth) and the
app waits for ``q``.

:func:`~sgdtop.sweep.run_sweep` runs in a plain daemon thread (``handle_signals=False``)
whose progress callback posts one :class:`CellChanged` message per update: posting never
blocks, so a busy screen can never hold up the thread that signals the cells, and a
message posted while the app shuts down is simply dropped. (A Textual thread worker is
joined by ``asyncio.run`` at exit and ``call_from_thread`` waits for the UI, so neither
is used.) The first ``q`` (or Ctrl+C) sets the sweep's ``stop`` event — running cells
get a SIGINT and write run_end ``interrupted`` — and a second one sets its ``escalate``
event (the cells kill their trainers at once; see :func:`~sgdtop.sweep.run_sweep`). The
app only quits once the sweep has returned, so no cell is left behind.

:class:`~sgdtop.tui.state.sweep.SweepBoard` is the plain-Python fold of the updates into
rows (tested without Textual); :mod:`sgdtop.tui.draw.sweep` draws them. Never imports
torch. See docs/design.md (the TUI).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Footer, Static

from sgdtop.sweep import (
    POLL_S,
    CellUpdate,
    Sweep,
    SweepResult,
    SweepSummary,
    fits_title,
    run_sweep,
    stop_on_signals,
    summarize_sweep,
)
from sgdtop.tui.draw.palette import DIM
from sgdtop.tui.draw.sweep import (
    fit_table_rows,
    note_text,
    row_cells,
    state_text,
    summary_table_rows,
)
from sgdtop.tui.help import HelpScreen
from sgdtop.tui.state.sweep import SweepBoard, SweepHeaderView
from sgdtop.tui.sweep.messages import CellChanged, SweepEnded
from sgdtop.tui.sweep.widgets import SweepHeader, SweepHelpScreen


class SweepApp(App[SweepResult | None]):
    """``sgdtop sweep`` on a terminal. With ``start`` (the default) it runs ``sweep`` in a
    thread at mount; without, tests drive it with :meth:`apply_update` and
    :meth:`finish`. Returns the :class:`~sgdtop.sweep.SweepResult` (None when the sweep
    raised: see :attr:`error`)."""

    CSS_PATH = Path(__file__).parent.parent / "sgdtop.tcss"
    TITLE = "sgdtop sweep"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "stop", "stop"),
        Binding("q", "quit", "quit"),
        Binding("ctrl+c", "stop", "stop", show=False, priority=True),
        Binding("ctrl+c", "quit", "quit", show=False, priority=True),
        Binding("v", "toggle_view", "cells/summary"),
        Binding("question_mark", "help", "help"),
    ]

    def __init__(
        self,
        sweep: Sweep,
        *,
        jobs: int = 1,
        start: bool = True,
        gpus: Sequence[str] | None = None,
        poll_s: float = POLL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.sweep = sweep
        self.jobs = jobs
        self.start_sweep = start
        self.gpus = gpus
        self.poll_s = poll_s
        self.clock = clock
        self.board = SweepBoard(sweep, clock=clock)
        #: Set by the first q / Ctrl+C (or a signal): running cells are asked to stop.
        self.stop_event = threading.Event()
        #: Set by the second: the cells kill their trainers at once.
        self.escalate_event = threading.Event()
        self.result: SweepResult | None = None
        self.summary: SweepSummary | None = None
        self.error: BaseException | None = None
        self.finished = False
        self.showing_summary = False
        self._stop_requested = False  # by q / Ctrl+C (a signal sets stop_event only)
        self._started_at = clock()
        self._ended_at: float | None = None
        self._thread: threading.Thread | None = None
        self._test_label = ""

    # -- layout ------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield SweepHeader(id="sweep-header")
        with Vertical(id="sweep-body"):
            yield DataTable(id="sweep-cells", cursor_type="none", zebra_stripes=True)
            with Vertical(id="sweep-summary"):
                yield Static(id="sum-title")
                yield DataTable(id="sum-cells", cursor_type="none", fixed_columns=1)
                yield Static(id="sum-fits-title")
                yield DataTable(id="sum-fits", cursor_type="none")
        yield Static(id="sweep-note")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#sweep-cells", DataTable)
        self._test_label = self.board.test_label()
        for key, label in self.board.columns():
            table.add_column(label, key=key)
        for i in range(len(self.board.rows)):
            table.add_row(*row_cells(self.board, i), key=str(i))
        self.query_one("#sweep-summary").display = False
        self._show_note()
        self._show_header()
        self.set_interval(1.0, self._tick)
        if self.start_sweep:
            self._thread = threading.Thread(target=self._run, name="sgdtop-sweep",
                                            daemon=True)
            self._thread.start()

    # -- the sweep (thread) ------------------------------------------------------------

    def _run(self) -> None:
        """Thread: run the sweep, then summarize it; report both as messages."""
        result: SweepResult | None = None
        summary: SweepSummary | None = None
        error: BaseException | None = None
        try:
            result = run_sweep(self.sweep, jobs=self.jobs, on_update=self._post_update,
                               stop=self.stop_event, escalate=self.escalate_event,
                               handle_signals=False, poll_s=self.poll_s,
                               gpus=None if self.gpus is None else list(self.gpus))
            summary = summarize_sweep(self.sweep)
        except BaseException as exc:  # reported to the caller of the app
            error = exc
        finally:
            self.result, self.summary, self.error = result, summary, error
            self.post_message(SweepEnded(result, summary, error))

    def _post_update(self, update: CellUpdate) -> None:
        self.post_message(CellChanged(update))

    @property
    def sweep_running(self) -> bool:
        """Whether the sweep's thread is still running."""
        return self._thread is not None and self._thread.is_alive()

    def wait_for_sweep(self) -> None:
        """Stop the sweep if it still runs (the app ended early) and wait for it."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            self.stop_event.set()
            thread.join()

    # -- folding -----------------------------------------------------------------------

    def on_cell_changed(self, message: CellChanged) -> None:
        self.apply_update(message.update)

    def on_sweep_ended(self, message: SweepEnded) -> None:
        if message.error is not None:
            self.error = message.error
            self.exit(None)
            return
        self.finish(message.result, message.summary)

    def apply_update(self, update: CellUpdate) -> None:
        """Show one update (the thread's messages come here; tests call it directly)."""
        index = self.board.apply(update)
        if self.board.test_label() != self._test_label:
            self._rebuild_table()
        else:
            self._update_row(index)
        self._show_note()
        self._show_header()

    def finish(self, result: SweepResult | None, summary: SweepSummary | None) -> None:
        """The sweep ended with ``result``: show ``summary`` (when given) and wait for q;
        a sweep stopped by a signal (not by q) quits at once."""
        self.finished = True
        self.result = result
        self.summary = summary
        self._ended_at = self.clock()
        self.board.stopping = False
        if result is not None:  # rows still running (a lost "end"): the final status
            for row, status in zip(self.board.rows, result.statuses, strict=False):
                if row.status == "running" and status != "running":
                    row.status, row.started = status, None
        self._update_all_rows()
        if summary is not None:
            self._fill_summary(summary)
            self._set_view(summary=True)
        self._show_note()
        self._show_header()
        self.refresh_bindings()
        if self.stop_event.is_set() and not self._stop_requested:
            self.exit(result)

    # -- drawing -----------------------------------------------------------------------

    def elapsed(self) -> float:
        """Seconds since the app started (until the sweep ended)."""
        end = self._ended_at if self._ended_at is not None else self.clock()
        return max(0.0, end - self._started_at)

    def header_view(self) -> SweepHeaderView:
        """What the header shows now."""
        return SweepHeaderView(
            sweep=self.sweep, counts=self.board.counts(),
            result=self.result if self.finished else None, stopping=self.board.stopping,
            escalated=self.escalate_event.is_set(), elapsed=self.elapsed(), jobs=self.jobs)

    def state_text(self) -> Text:
        """The state badge of the header."""
        v = self.header_view()
        return state_text(v.result, stopping=v.stopping, escalated=v.escalated,
                          failed=v.counts.failed > 0)

    def _show_header(self) -> None:
        self.query_one(SweepHeader).show(self.header_view())

    def _update_row(self, index: int) -> None:
        table = self.query_one("#sweep-cells", DataTable)
        keys = [key for key, _ in self.board.columns()]
        for key, value in zip(keys, row_cells(self.board, index), strict=True):
            table.update_cell(str(index), key, value, update_width=True)

    def _update_all_rows(self) -> None:
        for i in range(len(self.board.rows)):
            self._update_row(i)

    def _rebuild_table(self) -> None:
        """New columns (the test column became ``test loss``): redraw every row."""
        table = self.query_one("#sweep-cells", DataTable)
        table.clear(columns=True)
        self._test_label = self.board.test_label()
        for key, label in self.board.columns():
            table.add_column(label, key=key)
        for i in range(len(self.board.rows)):
            table.add_row(*row_cells(self.board, i), key=str(i))

    def _show_note(self) -> None:
        note = self.query_one("#sweep-note", Static)
        if self.board.note is not None:
            note.update(note_text(self.board.note))
            return
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(str(self.sweep.path), DIM)
        note.update(text)

    def _fill_summary(self, summary: SweepSummary) -> None:
        self.query_one("#sum-title", Static).update(Text.assemble(
            ("Fig. 3 summary", "bold"), ("  time averages over training", DIM)))
        for table_id, (header, rows) in (("#sum-cells", summary_table_rows(summary)),
                                         ("#sum-fits", fit_table_rows(summary))):
            table = self.query_one(table_id, DataTable)
            table.clear(columns=True)
            table.add_columns(*header)
            for row in rows:
                table.add_row(*row)
            table.display = bool(rows)
        self.query_one("#sum-fits-title", Static).update(
            Text(fits_title(summary), style=DIM))

    def _set_view(self, *, summary: bool) -> None:
        self.showing_summary = summary
        self.query_one("#sweep-cells").display = not summary
        self.query_one("#sweep-summary").display = summary
        (self.query_one("#sum-cells") if summary else self.query_one("#sweep-cells")).focus()

    def _tick(self) -> None:
        """Once a second: the elapsed times, and a stop that came by signal."""
        if self.stop_event.is_set() and not self.board.stopping and not self.finished:
            self.board.mark_stopping()
            self._update_all_rows()
        elif not self.finished:
            for i, row in enumerate(self.board.rows):
                if row.started is not None:
                    self._update_row(i)
        self._show_header()

    # -- actions -----------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return not self.finished
        if action == "quit":
            return self.finished
        if action == "toggle_view":
            return self.summary is not None
        return True

    def action_stop(self) -> None:
        """First: stop the sweep (running cells write run_end interrupted); second: make
        the cells kill their trainers now; later: remind that it waits for them."""
        self._stop_requested = True
        if not self.stop_event.is_set():
            self.stop_event.set()
            self.board.mark_stopping()
            self._update_all_rows()
            self.notify("stopping the sweep: running cells finish their step… "
                        "q again to stop them now", timeout=4)
        elif not self.escalate_event.is_set():
            self.escalate_event.set()
            self.notify("stopping the cells now: their trainers are killed", timeout=4)
        else:
            running = self.board.counts().running
            self.notify(f"waiting for {running} cell{'s' if running != 1 else ''} to exit",
                        timeout=3)
        self._show_header()

    async def action_quit(self) -> None:
        """Quit (the sweep has ended), returning its result."""
        self.exit(self.result)

    def action_toggle_view(self) -> None:
        """After the end: the cells table / the Fig. 3 summary."""
        if self.summary is not None:
            self._set_view(summary=not self.showing_summary)

    def action_help(self) -> None:
        """Show the keys and what the columns mean."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(SweepHelpScreen())


# -- entry point (called by the CLI) -------------------------------------------------------


def run_sweep_live(sweep: Sweep, *, jobs: int = 1) -> SweepResult:
    """Run ``sweep`` with the live view until the user quits after its end; returns its
    result. SIGINT/SIGTERM stop the sweep as ``q`` does (a second one escalates) and the
    app quits once the cells have exited. Raises what :func:`~sgdtop.sweep.run_sweep`
    raised (e.g. :class:`~sgdtop.sweep.SweepError` when the sweep is already running)."""
    app = SweepApp(sweep, jobs=jobs)
    with stop_on_signals(app.stop_event, app.escalate_event.set):
        try:
            app.run()
        finally:
            if app.sweep_running:  # the app broke: the cells are stopped, not orphaned
                sys.stderr.write("sgdtop: stopping the sweep's running cells...\n")
            app.wait_for_sweep()
    if app.error is not None:
        raise app.error
    if app.result is None:  # the app broke before the sweep started
        raise RuntimeError("the sweep view ended before the sweep")
    return app.result
