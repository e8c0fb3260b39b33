r"""The sweep view's state: the grid's cells folded from the sweep's
:class:`~sgdtop.sweep.CellUpdate`\ s (their newest status and headline numbers).

Plain Python (no Textual, no Rich, no torch): :meth:`SweepBoard.apply` one update at a
time; :mod:`sgdtop.tui.draw.sweep` draws the rows. See docs/design.md (the TUI).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from sgdtop.sweep import AXIS_SYMBOLS, FINISHED, PENDING, Cell, CellUpdate, Sweep, SweepResult

#: A running cell after the sweep was asked to stop (a display status only).
STOPPING: Final[str] = "stopping"
#: Statuses counted as failed in the header.
FAILED: Final[tuple[str, ...]] = ("failed", "died")


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



@dataclass(frozen=True, slots=True)
class BoardNote:
    """A message worth showing under the table: the cell's name, the status it is shown
    with, the message."""

    cell: str
    status: str
    message: str


class SweepBoard:
    """The rows of the live table, folded from :class:`~sgdtop.sweep.CellUpdate`\\ s.

    :meth:`apply` one update at a time (it returns the index of the row that changed);
    ``clock`` (seconds, monotonic) runs the time of the cells still running.
    """

    def __init__(self, sweep: Sweep, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.sweep = sweep
        self.clock = clock
        self.axes: list[str] = shown_axes(sweep)
        self.rows: list[CellRow] = [CellRow(cell=c, run_id=c.run_id) for c in sweep.cells]
        self.stopping = False
        #: The newest message worth showing (a failure, a skipped cell still running).
        self.note: BoardNote | None = None

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
            self.note = BoardNote(row.cell.name, u.status, u.message)
        elif u.kind == "skip" and u.status == "running":
            self.note = BoardNote(row.cell.name, "running", u.message)
        return u.index

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


@dataclass(frozen=True, slots=True)
class SweepHeaderView:
    """What the sweep view's header shows: the sweep, its cells per state, the result
    once it returned (None before), whether it is stopping (``escalated``: the cells
    were told to kill their trainers), the elapsed seconds and the jobs."""

    sweep: Sweep
    counts: SweepCounts
    result: SweepResult | None
    stopping: bool
    escalated: bool
    elapsed: float | None
    jobs: int
