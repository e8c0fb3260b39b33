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

:class:`SweepBoard` is the plain-Python fold of the updates into rows (tested without
Textual). Never imports torch.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Final

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Static

from sgdtop.compare import format_value
from sgdtop.sweep import (
    AXIS_SYMBOLS,
    FINISHED,
    PENDING,
    POLL_S,
    Cell,
    CellUpdate,
    Sweep,
    SweepResult,
    SweepSummary,
    cell_rows,
    fit_rows,
    fits_title,
    run_sweep,
    stop_on_signals,
    summarize_sweep,
)
from sgdtop.tui import render
from sgdtop.tui.widgets import HelpScreen

#: A running cell after the sweep was asked to stop (a display status only).
STOPPING: Final[str] = "stopping"
#: Glyph and style of each cell status.
CELL_STATUS_STYLES: Final[dict[str, tuple[str, str]]] = {
    PENDING: ("○", render.DIM),
    "running": ("●", render.GOOD),
    STOPPING: ("◌", render.WARN),
    "completed": ("■", render.GOOD),
    "interrupted": ("■", render.WARN),
    "diverged": ("✖", render.BAD),
    "failed": ("✖", render.BAD),
    "died": ("✖", render.BAD),
}
#: Statuses counted as failed in the header.
FAILED: Final[tuple[str, ...]] = ("failed", "died")


# -- pure functions and the board (no Textual) -----------------------------------------


def cell_status_text(status: str) -> Text:
    """The status badge of a cell: ``● running``, ``■ completed``, ``✖ failed``, ..."""
    glyph, style = CELL_STATUS_STYLES.get(status, ("?", render.WARN))
    label = "stopping…" if status == STOPPING else status
    return Text(f"{glyph} {label}", style=style, no_wrap=True)


def shown_axes(sweep: Sweep) -> list[str]:
    """The axes the table shows: those that vary, else every swept one (one cell)."""
    return sweep.varying or [k for k in sweep.axes]


@dataclass(slots=True)
class CellRow:
    """What is known of one cell: its newest status and headline numbers (None before the
    first), ``started`` the clock time its current attempt started (None unless running),
    ``seconds`` its time once ended."""

    cell: Cell
    status: str = PENDING
    run_id: str | None = None
    step: int | None = None
    epoch: int | None = None  #: 0-based
    epochs: int | None = None
    spectral_norm: float | None = None
    test_acc: float | None = None  #: in [0, 1]; NaN for regression
    test_loss: float | None = None
    seconds: float | None = None
    started: float | None = None
    device: str | None = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class SweepCounts:
    """Cells per state: ``done`` completed or diverged (not run again), ``running``,
    ``pending`` (not started yet), ``interrupted``, ``failed`` (failed or died)."""

    total: int
    done: int
    running: int
    pending: int
    interrupted: int
    failed: int


class SweepBoard:
    """The rows of the live table, folded from :class:`~sgdtop.sweep.CellUpdate`\\ s.

    Plain Python: :meth:`apply` one update at a time (it returns the index of the row that
    changed), :meth:`cells` gives a row's table cells as Rich text. ``clock`` (seconds,
    monotonic) runs the time of the cells still running.
    """

    def __init__(self, sweep: Sweep, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.sweep = sweep
        self.clock = clock
        self.axes: list[str] = shown_axes(sweep)
        self.rows: list[CellRow] = [CellRow(cell=c, run_id=c.run_id) for c in sweep.cells]
        self.stopping = False
        #: The newest message worth showing (a failure, a skipped cell still running).
        self.note: Text | None = None

    # -- folding -----------------------------------------------------------------------

    def apply(self, u: CellUpdate) -> int:
        """Fold one update into its row; returns the row's index."""
        row = self.rows[u.index]
        row.status = u.status
        row.run_id = u.run_id or row.run_id
        if u.kind == "start":
            row.step = row.epoch = row.epochs = None
            row.spectral_norm = row.test_acc = row.test_loss = None
            row.seconds = None
            row.message = ""
        row.step = u.step if u.step is not None else row.step
        row.epoch = u.epoch if u.epoch is not None else row.epoch
        row.epochs = u.epochs if u.epochs is not None else row.epochs
        row.spectral_norm = u.spectral_norm if u.spectral_norm is not None else row.spectral_norm
        row.test_acc = u.test_acc if u.test_acc is not None else row.test_acc
        row.test_loss = u.test_loss if u.test_loss is not None else row.test_loss
        row.device = u.device if u.device is not None else row.device
        if u.status == "running":
            row.started = self.clock() - (u.seconds or 0.0)
            row.seconds = None
        else:
            row.started = None
            row.seconds = u.seconds
        if u.message:
            row.message = u.message
        if u.kind == "end" and u.status not in FINISHED and u.message:
            self.note = self._note(row, u.status, u.message)
        elif u.kind == "skip" and u.status == "running":
            self.note = self._note(row, "running", u.message)
        return u.index

    @staticmethod
    def _note(row: CellRow, status: str, message: str) -> Text:
        out = Text(no_wrap=True, overflow="ellipsis")
        out.append(row.cell.name, "bold")
        out.append(" ")
        out.append_text(cell_status_text(status))
        out.append(f": {message}", render.DIM)
        return out

    def mark_stopping(self) -> None:
        """The sweep was asked to stop: running cells show ``stopping…``."""
        self.stopping = True

    # -- reading -----------------------------------------------------------------------

    def display_status(self, row: CellRow) -> str:
        """The status shown: ``stopping`` for a running cell once the sweep stops."""
        return STOPPING if row.status == "running" and self.stopping else row.status

    def counts(self) -> SweepCounts:
        """Cells per state (see :class:`SweepCounts`)."""
        statuses = [r.status for r in self.rows]
        return SweepCounts(
            total=len(statuses),
            done=sum(s in FINISHED for s in statuses),
            running=statuses.count("running"),
            pending=statuses.count(PENDING),
            interrupted=statuses.count("interrupted"),
            failed=sum(s in FAILED for s in statuses),
        )

    @property
    def regression(self) -> bool:
        """Whether the task has no accuracy (test acc NaN, a test loss): the table then
        shows the test loss."""
        accs = [r.test_acc for r in self.rows if r.test_acc is not None]
        if any(math.isfinite(a) for a in accs):
            return False
        return any(r.test_loss is not None for r in self.rows)

    def columns(self) -> list[tuple[str, str]]:
        """The table's columns: (key, label)."""
        cols = [("index", "#")]
        cols += [(f"axis-{k}", AXIS_SYMBOLS[k]) for k in self.axes]
        cols += [("status", "status"), ("epoch", "epoch"), ("step", "step"),
                 ("rho", "ρ(H)"), ("test", self.test_label()), ("time", "time")]
        return cols

    def test_label(self) -> str:
        """The label of the test column: ``test acc``, or ``test loss`` (regression)."""
        return "test loss" if self.regression else "test acc"

    def elapsed(self, row: CellRow) -> float | None:
        """The cell's time: running, since its start; ended, its wall-clock time."""
        if row.started is not None:
            return max(0.0, self.clock() - row.started)
        return row.seconds

    def cells(self, index: int) -> list[Text]:
        """Row ``index`` as table cells, in the order of :meth:`columns`."""
        row = self.rows[index]
        status = self.display_status(row)
        dim = status == PENDING

        def num(text: str) -> Text:
            return Text(text, justify="right", style=render.DIM if dim else "")

        out = [Text(str(index + 1), justify="right", style=render.DIM)]
        out += [num(format_value(row.cell.settings.get(k))) for k in self.axes]
        out.append(cell_status_text(status))
        epoch = "–" if row.epoch is None else str(row.epoch + 1)
        if row.epochs is not None:
            epoch += f"/{row.epochs}"
        out.append(num(epoch if row.epoch is not None or row.epochs is not None else "–"))
        out.append(num("–" if row.step is None else f"{row.step:,}"))
        out.append(num(render.fmt_num(row.spectral_norm, 4)))
        out.append(num(self._test_text(row)))
        elapsed = self.elapsed(row)
        out.append(num("–" if elapsed is None else render.fmt_duration(elapsed)))
        return out

    def _test_text(self, row: CellRow) -> str:
        if self.regression:
            return render.fmt_num(row.test_loss, 4)
        acc = row.test_acc
        if acc is None or not math.isfinite(acc):
            return "–" if acc is None else "nan"
        return f"{100 * acc:.1f}%"


def state_text(result: SweepResult | None, *, stopping: bool, escalated: bool,
               failed: bool) -> Text:
    """The sweep's state badge: running, stopping, done, interrupted or failed."""
    if result is not None:
        if result.interrupted:
            return cell_status_text("interrupted")
        if result.exit_code == 0:
            return Text("■ done", style=render.GOOD, no_wrap=True)
        return Text("✖ failed cells", style=render.BAD, no_wrap=True)
    if stopping:
        return Text("◌ stopping hard…" if escalated else "◌ stopping…", style=render.WARN,
                    no_wrap=True)
    return Text("● running", style=render.BAD if failed else render.GOOD, no_wrap=True)


def header_text(sweep: Sweep, counts: SweepCounts, state: Text, elapsed: float | None,
                jobs: int, width: int) -> Text:
    """Two lines: ``sgdtop sweep``, the id, profile and jobs, the elapsed time and the
    state on the right; then the cells done, running, pending, (interrupted,) failed."""
    right = render.pair("t", render.fmt_duration(elapsed))
    right.append("  ")
    right.append_text(state)
    right.truncate(max(10, width // 2), overflow="ellipsis")
    ident = [Text(" sgdtop sweep ", style="bold reverse"), Text(sweep.sweep_id, style="bold"),
             render.pair("profile", sweep.profile_name, ""), render.pair("jobs", str(jobs))]
    left = render.fit_parts(ident, max(0, width - right.cell_len - 1))
    line1 = Text(no_wrap=True, overflow="crop")
    line1.append_text(left)
    line1.append(" " * max(1, width - left.cell_len - right.cell_len))
    line1.append_text(right)

    def count(n: int, status: str, label: str) -> Text:
        glyph, style = CELL_STATUS_STYLES[status]
        out = Text(no_wrap=True)
        out.append(f"{glyph} ", style if n else render.DIM)
        out.append(str(n), "bold")
        out.append(f" {label}", render.DIM)
        return out

    parts = [render.pair("cells", str(counts.total)), count(counts.done, "completed", "done"),
             count(counts.running, "running", "running"),
             count(counts.pending, PENDING, "pending")]
    if counts.interrupted:
        parts.append(count(counts.interrupted, "interrupted", "interrupted"))
    parts.append(count(counts.failed, "failed", "failed"))
    line2 = render.fit_parts(parts, width)
    if len(line2.plain) < len("  ".join(p.plain for p in parts)):
        line2 = render.fit_parts(parts, width, " ")  # narrow: one space between the counts
    return Text("\n").join([line1, line2])


def summary_table_rows(summary: SweepSummary) -> tuple[list[str], list[list[Text]]]:
    """The Fig. 3 per-cell table (:func:`~sgdtop.sweep.cell_rows`) as a header and rows of
    Rich text: the cell name left, numbers right, the status in its color."""
    rows = cell_rows(summary)
    header = rows[0]
    status_col = header.index("status")
    out = []
    for row in rows[1:]:
        cells = []
        for i, value in enumerate(row):
            if i == status_col:
                cells.append(cell_status_text(value))
            elif i == 0:
                cells.append(Text(value, style=render.DIM))
            else:
                cells.append(Text(value, justify="right"))
        out.append(cells)
    return header, out


def fit_table_rows(summary: SweepSummary) -> tuple[list[str], list[list[Text]]]:
    """The fitted lines (:func:`~sgdtop.sweep.fit_rows`) as a header and rows of text."""
    rows = fit_rows(summary)
    return rows[0], [[Text(v, justify="left" if i < 3 else "right") for i, v in enumerate(r)]
                     for r in rows[1:]]


# -- messages and widgets ------------------------------------------------------------


class CellChanged(Message):
    """The sweep thread reported ``update`` (one per :class:`~sgdtop.sweep.CellUpdate`)."""

    def __init__(self, update: CellUpdate) -> None:
        super().__init__()
        self.update = update


class SweepEnded(Message):
    """:func:`~sgdtop.sweep.run_sweep` returned (``result``, and the Fig. 3 ``summary``
    when it could be computed) or raised ``error``."""

    def __init__(self, result: SweepResult | None, summary: SweepSummary | None,
                 error: BaseException | None) -> None:
        super().__init__()
        self.result = result
        self.summary = summary
        self.error = error


class SweepHeader(Widget):
    """Two lines: the sweep, its state, the cells per state and the elapsed time."""

    DEFAULT_CSS = "SweepHeader { height: 2; }"

    def render(self) -> Text:
        app = self.app
        assert isinstance(app, SweepApp)
        return header_text(app.sweep, app.board.counts(), app.state_text(), app.elapsed(),
                           app.jobs, self.size.width)


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

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(SWEEP_HELP_TEXT, id="help-body")


# -- the app -------------------------------------------------------------------------


class SweepApp(App[SweepResult | None]):
    """``sgdtop sweep`` on a terminal. With ``start`` (the default) it runs ``sweep`` in a
    thread at mount; without, tests drive it with :meth:`apply_update` and
    :meth:`finish`. Returns the :class:`~sgdtop.sweep.SweepResult` (None when the sweep
    raised: see :attr:`error`)."""

    CSS_PATH = Path(__file__).with_name("sgdtop.tcss")
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
            table.add_row(*self.board.cells(i), key=str(i))
        self.query_one("#sweep-summary").display = False
        self._show_note()
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
                               handle_signals=False, gpus=self.gpus, poll_s=self.poll_s)
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
        self.query_one(SweepHeader).refresh()

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
        self.query_one(SweepHeader).refresh()
        self.refresh_bindings()
        if self.stop_event.is_set() and not self._stop_requested:
            self.exit(result)

    # -- drawing -----------------------------------------------------------------------

    def elapsed(self) -> float:
        """Seconds since the app started (until the sweep ended)."""
        end = self._ended_at if self._ended_at is not None else self.clock()
        return max(0.0, end - self._started_at)

    def state_text(self) -> Text:
        """The state badge of the header."""
        return state_text(self.result if self.finished else None,
                          stopping=self.board.stopping, escalated=self.escalate_event.is_set(),
                          failed=self.board.counts().failed > 0)

    def _update_row(self, index: int) -> None:
        table = self.query_one("#sweep-cells", DataTable)
        keys = [key for key, _ in self.board.columns()]
        for key, value in zip(keys, self.board.cells(index), strict=True):
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
            table.add_row(*self.board.cells(i), key=str(i))

    def _show_note(self) -> None:
        note = self.query_one("#sweep-note", Static)
        if self.board.note is not None:
            note.update(self.board.note)
            return
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(str(self.sweep.path), render.DIM)
        note.update(text)

    def _fill_summary(self, summary: SweepSummary) -> None:
        self.query_one("#sum-title", Static).update(Text.assemble(
            ("Fig. 3 summary", "bold"), ("  time averages over training", render.DIM)))
        for table_id, (header, rows) in (("#sum-cells", summary_table_rows(summary)),
                                         ("#sum-fits", fit_table_rows(summary))):
            table = self.query_one(table_id, DataTable)
            table.clear(columns=True)
            table.add_columns(*header)
            for row in rows:
                table.add_row(*row)
            table.display = bool(rows)
        self.query_one("#sum-fits-title", Static).update(
            Text(fits_title(summary), style=render.DIM))

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
        self.query_one(SweepHeader).refresh()

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
        self.query_one(SweepHeader).refresh()

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
