"""Display-ready snapshots of the run state: what each area of the run view shows.

Plain Python (no Textual, no Rich, no torch). :class:`~sgdtop.tui.state.run.RunState`
builds them; the drawing functions of :mod:`sgdtop.tui.draw` draw them; widgets hold the
latest one, so pausing the display freezes every panel. See docs/design.md (the TUI).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sgdtop.schema import LossSlice, RunStart, Spectrum, SpectrumProgress

#: Run statuses of the display (run_end's statuses plus the ones before/without it).
WAITING: Final[str] = "waiting"
RUNNING: Final[str] = "running"
STOPPING: Final[str] = "stopping"
LOST: Final[str] = "lost"
ENDED_STATUSES: Final[frozenset[str]] = frozenset(
    {"completed", "interrupted", "diverged", "failed", LOST}
)


@dataclass(frozen=True, slots=True)
class EigenRow:
    """One row of the top-k table: rank (1-based), signed λ, change since the previous
    measurement (None without one), residual ‖Hv−λv‖, and the convergence mark:
    ``"converged"``, ``"near"`` (relative residual < 1e-2) or ``"no"``."""

    rank: int
    value: float
    delta: float | None
    residual: float | None
    mark: str


@dataclass(frozen=True, slots=True)
class LogLine:
    """One log panel line: trainer time t (s), level (info/warning/error), source, text."""

    t: float
    level: str
    source: str
    message: str




@dataclass(frozen=True, slots=True)
class SliceView:
    """The loss-slice panel: the newest slices, oldest first (empty: none in this run)."""

    slices: tuple[LossSlice, ...]



@dataclass(frozen=True, slots=True)
class HeaderView:
    """What the header shows (a snapshot: the display can be paused)."""

    info: RunStart | None
    lr: float | None
    epoch: int | None
    step: int | None
    elapsed: float
    examples_per_s: float | None
    status: str
    status_message: str


@dataclass(frozen=True, slots=True)
class MetricView:
    """One sparkline row: key, label, the recent window of values (oldest first), the
    newest and the one before; ``limit`` = (η·λ₁, 2(1+β)) on the stability row; ``note``:
    a remark shown instead of a missing value (e.g. no accuracy for a regression);
    ``extra``: a detail shown after the value where there is room."""

    key: str
    label: str
    values: tuple[float, ...]
    current: float | None
    previous: float | None
    unit: str = ""
    limit: tuple[float, float] | None = None
    note: str = ""
    extra: str = ""


@dataclass(frozen=True, slots=True)
class SpectrumView:
    """The top-k table and the measurement status line."""

    rows: tuple[EigenRow, ...]
    k: int | None
    progress: SpectrumProgress | None
    last: Spectrum | None
    ended: bool


@dataclass(frozen=True, slots=True)
class ChartView:
    """The Fig. 2 chart: x positions (steps) of the measurements, their eigenvalues
    (signed, by rank), the loss trace, and the latest stability limit 2(1+β)/η."""

    xs: tuple[float, ...]
    eigenvalues: tuple[tuple[float, ...], ...]
    loss_xs: tuple[float, ...]
    loss_ys: tuple[float, ...]
    loss_label: str
    x_div: float
    x_unit: str
    k: int
    stability_limit: float | None

