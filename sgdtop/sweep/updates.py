"""What a sweep reports: one :class:`CellUpdate` per cell event, and a
:class:`SweepResult` at the end (consumed by the log printer and the TUI's sweep view;
see ``docs/design.md``, sweeps)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from sgdtop.sweep.grid import Cell
from sgdtop.sweep.sweepfile import FINISHED

UpdateKind = Literal["skip", "start", "progress", "end"]


@dataclass(frozen=True, slots=True)
class CellUpdate:
    """What a sweep reports about one cell, to a progress callback.

    ``kind``: ``"skip"`` (finished before: not run again), ``"start"`` (its subprocess
    started, or one left running by an earlier sweep process was taken up), ``"progress"``
    (a new measurement: a ``spectrum`` or ``eval`` event), ``"end"`` (its subprocess
    ended). ``status`` is the cell's status then: ``running`` while it runs, else its
    run's status or :data:`~sgdtop.sweep.sweepfile.PENDING`. Headline numbers are from the
    newest events (None before the first): ``spectral_norm`` ρ(H) = max |λ| of the last
    spectrum, ``test_acc`` the last test accuracy in [0, 1] (NaN for regression),
    ``test_loss`` the last test loss.
    """

    kind: UpdateKind
    index: int  #: the cell's index, 0-based
    n_cells: int  #: cells in the sweep
    cell: Cell
    status: str
    run_id: str | None = None
    step: int | None = None  #: optimizer steps taken
    epoch: int | None = None  #: the epoch of the newest event, 0-based
    epochs: int | None = None  #: epochs the run trains for
    spectral_norm: float | None = None
    test_acc: float | None = None
    test_loss: float | None = None  #: the last test loss
    seconds: float | None = None  #: since the cell started (end: its wall-clock time), s
    slot: int | None = None  #: the parallel slot running it
    device: str | None = None  #: its CUDA_VISIBLE_DEVICES, when assigned
    message: str = ""


UpdateCallback = Callable[[CellUpdate], None]


@dataclass(frozen=True, slots=True)
class SweepResult:
    """How a :func:`run_sweep` call ended: the final ``statuses`` of all cells (by
    index), how many cells it ran, and whether it was ``interrupted`` (stopped early)."""

    statuses: list[str]
    ran: int
    interrupted: bool

    @property
    def exit_code(self) -> int:
        """130 interrupted; 0 when every cell finished (completed or diverged); else 1."""
        if self.interrupted:
            return 130
        return 0 if all(s in FINISHED for s in self.statuses) else 1

    def counts(self) -> dict[str, int]:
        """Cells per status."""
        return dict(Counter(self.statuses))
