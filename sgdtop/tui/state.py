"""The TUI's state: a fold of the event stream into bounded, display-ready values.

Plain Python (no Textual, no Rich, no torch), so it is tested without a terminal and
could drive any other front end. :class:`RunState` applies :class:`~sgdtop.events.Event`
objects one at a time; memory stays bounded however long the run is:

- :class:`Ring` keeps the most recent values of a scalar (the sparklines' window);
- :class:`Decimated` keeps the whole history at a bounded, uniform resolution (the
  eigenvalue chart, Fig. 2 of the paper): when full it drops every other point and from
  then on keeps every 2nd (4th, 8th, ...) new one, plus always the latest point;
- the log is a ring of :class:`LogLine`.

Each area of the screen has a version counter (``header_version``, ``metrics_version``,
``spectrum_version``, ``chart_version``, ``log_seq``) so the UI redraws only what changed.

:class:`ReplayCursor` is the replay's play head over a recorded list of events (time
scaled by a speed, stepping one measurement back or forward) — also plain Python.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

from sgdtop.events import Event

T = TypeVar("T")

#: Values kept per sparkline (the widest sparkline that shows them all: 240 columns).
SPARK_WINDOW: Final[int] = 240
#: Points kept per whole-run chart series before decimation.
CHART_POINTS: Final[int] = 512
#: Log lines kept.
LOG_LINES: Final[int] = 500
#: Loss slices kept for the slice panel (the newest ones; older ones fade out).
SLICE_HISTORY: Final[int] = 6
#: A Ritz pair whose relative residual ‖Hv−λv‖/|λ| is below this counts as nearly converged.
NEAR_CONVERGED_REL_RESIDUAL: Final[float] = 1e-2

#: Run statuses of the display (run_end's statuses plus the ones before/without it).
WAITING: Final[str] = "waiting"
RUNNING: Final[str] = "running"
STOPPING: Final[str] = "stopping"
LOST: Final[str] = "lost"
ENDED_STATUSES: Final[frozenset[str]] = frozenset(
    {"completed", "interrupted", "diverged", "failed", LOST}
)


def is_finite(x: object) -> bool:
    """True for an int/float that is neither NaN nor ±inf (bools excluded)."""
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def as_float(x: object) -> float:
    """``x`` as a float; NaN for anything that is not a number (None, str, ...)."""
    if isinstance(x, bool):
        return float(x)
    if isinstance(x, int | float):
        return float(x)
    return math.nan


class Ring:
    """The most recent ``capacity`` values of a scalar series, with the step of each."""

    __slots__ = ("steps", "values")

    def __init__(self, capacity: int = SPARK_WINDOW) -> None:
        self.values: deque[float] = deque(maxlen=capacity)
        self.steps: deque[int | None] = deque(maxlen=capacity)

    def append(self, value: float, step: int | None = None) -> None:
        """Add one value (any float, non-finite included)."""
        self.values.append(value)
        self.steps.append(step)

    @property
    def last(self) -> float | None:
        """The newest value, or None when empty."""
        return self.values[-1] if self.values else None

    @property
    def previous(self) -> float | None:
        """The value before the newest one, or None."""
        return self.values[-2] if len(self.values) > 1 else None

    def __len__(self) -> int:
        return len(self.values)

    def tail(self, n: int) -> tuple[float, ...]:
        """The last ``n`` values, oldest first."""
        if n <= 0:
            return ()
        if n >= len(self.values):
            return tuple(self.values)
        return tuple(self.values)[-n:]


class Decimated(Generic[T]):
    """A whole-history series at bounded resolution: at most ``capacity`` + 1 points.

    Point number n (0-based, in arrival order) is kept iff n is a multiple of
    :attr:`stride`; the stride doubles each time the kept points overflow ``capacity``.
    The newest point is always available (:meth:`points` appends it when it is not kept),
    so the right edge of a chart is always the latest measurement.
    """

    __slots__ = ("_count", "_last", "capacity", "stride", "xs", "ys")

    def __init__(self, capacity: int = CHART_POINTS) -> None:
        if capacity < 2:
            raise ValueError("capacity must be at least 2")
        self.capacity = capacity
        self.stride = 1
        self.xs: list[float] = []
        self.ys: list[T] = []
        self._count = 0
        self._last: tuple[float, T] | None = None

    def append(self, x: float, y: T) -> None:
        """Add the point (x, y)."""
        if self._count % self.stride == 0:
            self.xs.append(x)
            self.ys.append(y)
            if len(self.xs) > self.capacity:
                self.xs = self.xs[::2]
                self.ys = self.ys[::2]
                self.stride *= 2
        self._count += 1
        self._last = (x, y)

    def __len__(self) -> int:
        """Number of points :meth:`points` returns."""
        if self._last is None:
            return 0
        return len(self.xs) + (0 if (self._count - 1) % self.stride == 0 else 1)

    @property
    def count(self) -> int:
        """Points appended in total (kept or not)."""
        return self._count

    def points(self) -> tuple[tuple[float, ...], tuple[T, ...]]:
        """(xs, ys) of the kept points plus the newest one, oldest first."""
        if self._last is None:
            return (), ()
        if (self._count - 1) % self.stride == 0:
            return tuple(self.xs), tuple(self.ys)
        return (*self.xs, self._last[0]), (*self.ys, self._last[1])


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What run_start says about the run (fields the screen shows)."""

    run_id: str
    model: str
    dataset: str
    num_params: int | None
    device: str
    lr: float
    batch_size: int | None
    momentum: float
    weight_decay: float
    k: int | None
    epochs: int | None
    steps_per_epoch: int | None
    task: str | None = None  # "classification" | "regression" (optional in run_start)

    @classmethod
    def from_event(cls, ev: Event) -> RunInfo:
        """Build from a run_start event (tolerant of odd types: it is only displayed)."""

        def opt_int(x: Any) -> int | None:
            return x if isinstance(x, int) and not isinstance(x, bool) else None

        return cls(
            run_id=str(ev.get("run_id", "?")),
            model=str(ev.get("model", "?")),
            dataset=str(ev.get("dataset", "?")),
            num_params=opt_int(ev.get("num_params")),
            device=str(ev.get("device", "?")),
            lr=as_float(ev.get("lr")),
            batch_size=opt_int(ev.get("batch_size")),
            momentum=as_float(ev.get("momentum")),
            weight_decay=as_float(ev.get("weight_decay")),
            k=opt_int(ev.get("k")),
            epochs=opt_int(ev.get("epochs")),
            steps_per_epoch=opt_int(ev.get("steps_per_epoch")),
            task=str(ev["task"]) if isinstance(ev.get("task"), str) else None,
        )


@dataclass(frozen=True, slots=True)
class Spectrum:
    """One spectrum measurement (see ``REQUIRED_FIELDS['spectrum']`` for the meanings)."""

    step: int | None
    epoch: int | None
    t: float
    eigenvalues: tuple[float, ...]
    residuals: tuple[float, ...]
    converged: tuple[bool, ...]
    spectral_norm: float
    cond_k: float
    lr: float
    momentum: float
    eta_lambda1: float
    stability_limit: float
    hvps: int | None
    seconds: float
    warm: bool

    @classmethod
    def from_event(cls, ev: Event) -> Spectrum:
        """Build from a spectrum event; lists of the wrong type become empty tuples."""

        def floats(x: Any) -> tuple[float, ...]:
            return tuple(as_float(v) for v in x) if isinstance(x, list | tuple) else ()

        conv = ev.get("converged")
        hvps = ev.get("hvps")
        return cls(
            step=ev.step,
            epoch=ev.epoch,
            t=ev.t,
            eigenvalues=floats(ev.get("eigenvalues")),
            residuals=floats(ev.get("residuals")),
            converged=tuple(bool(c) for c in conv) if isinstance(conv, list | tuple) else (),
            spectral_norm=as_float(ev.get("spectral_norm")),
            cond_k=as_float(ev.get("cond_k")),
            lr=as_float(ev.get("lr")),
            momentum=as_float(ev.get("momentum")),
            eta_lambda1=as_float(ev.get("eta_lambda1")),
            stability_limit=as_float(ev.get("stability_limit")),
            hvps=hvps if isinstance(hvps, int) and not isinstance(hvps, bool) else None,
            seconds=as_float(ev.get("seconds")),
            warm=bool(ev.get("warm", False)),
        )

    @property
    def stability_ratio(self) -> float:
        """λ₁ / (2(1+β)/η) = η·λ₁ / 2(1+β): 1.0 is the edge of stability of GD with momentum."""
        denom = self.eta_limit
        if not is_finite(denom) or denom == 0.0:
            return math.nan
        return self.eta_lambda1 / denom  # NaN and ±inf carry through

    @property
    def eta_limit(self) -> float:
        """2(1+β): the threshold η·λ₁ is compared against."""
        return 2.0 * (1.0 + self.momentum)


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
class Progress:
    """A spectrum measurement under way: HVPs done and seconds so far."""

    hvps: int | None
    seconds: float


@dataclass(frozen=True, slots=True)
class Layer:
    """Dead units in one layer: name, units, dead units, dead %."""

    name: str
    units: int | None
    dead: int | None
    dead_pct: float


@dataclass(frozen=True, slots=True)
class LossSlice:
    """One ``loss_slice`` event: the probe loss L(θ + t·vᵢ) along the top eigenvectors vᵢ
    at distances t (parameter units), with λᵢ, the slopes gᵢ = ∇L·vᵢ and L(θ)."""

    step: int | None
    distances: tuple[float, ...]
    eigenvalues: tuple[float, ...]
    slopes: tuple[float, ...]
    losses: tuple[tuple[float, ...], ...]
    loss0: float
    lr: float

    @classmethod
    def from_event(cls, ev: Event) -> LossSlice | None:
        """The slice of ``ev``, or None when its fields are malformed (a display never
        raises on odd values)."""
        ts, rows = ev.get("distances"), ev.get("losses")
        if not isinstance(ts, list) or not isinstance(rows, list):
            return None
        distances = tuple(as_float(t) for t in ts)
        losses = tuple(tuple(as_float(v) for v in row) for row in rows
                       if isinstance(row, list) and len(row) == len(distances))
        m = len(losses)
        lams, slopes = ev.get("eigenvalues"), ev.get("slopes")
        return cls(
            step=ev.step, distances=distances, losses=losses,
            eigenvalues=tuple(as_float(x) for x in (lams if isinstance(lams, list) else []))[:m],
            slopes=tuple(as_float(x) for x in (slopes if isinstance(slopes, list) else []))[:m],
            loss0=as_float(ev.get("loss0")), lr=as_float(ev.get("lr")))


@dataclass(frozen=True, slots=True)
class SliceView:
    """The loss-slice panel: the newest slices, oldest first (empty: none in this run)."""

    slices: tuple[LossSlice, ...]


@dataclass
class RunState:
    """Everything the screen shows, folded from events (call :meth:`apply`)."""

    info: RunInfo | None = None
    status: str = WAITING
    status_message: str = ""
    t: float = 0.0
    step: int | None = None
    epoch: int | None = None
    lr: float | None = None
    examples_per_s: float | None = None
    steps_per_s: float | None = None
    batch_loss: float | None = None
    events_applied: int = 0
    spectrum: Spectrum | None = None
    previous_spectrum: Spectrum | None = None
    progress: Progress | None = None
    dense_cond: float | None = None
    layers: tuple[Layer, ...] = ()
    # sparkline windows (most recent values)
    rho: Ring = field(default_factory=Ring)
    stability: Ring = field(default_factory=Ring)
    cond: Ring = field(default_factory=Ring)
    train_loss: Ring = field(default_factory=Ring)
    step_loss: Ring = field(default_factory=Ring)  # batch loss of the step events
    test_loss: Ring = field(default_factory=Ring)
    test_acc: Ring = field(default_factory=Ring)
    dead_pct: Ring = field(default_factory=Ring)
    # whole-run chart series: x = step
    eigen_history: Decimated[tuple[float, ...]] = field(default_factory=Decimated)
    loss_history: Decimated[float] = field(default_factory=Decimated)
    batch_loss_history: Decimated[float] = field(default_factory=Decimated)
    log: deque[LogLine] = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    slices: deque[LossSlice] = field(default_factory=lambda: deque(maxlen=SLICE_HISTORY))
    # versions: bumped when the area's content changes
    header_version: int = 0
    metrics_version: int = 0
    spectrum_version: int = 0
    chart_version: int = 0
    slices_version: int = 0
    log_seq: int = 0

    # -- folding -----------------------------------------------------------------------

    def apply(self, ev: Event) -> None:
        """Fold one event into the state. Never raises on odd values: it is a display."""
        self.events_applied += 1
        if is_finite(ev.t) and ev.t > self.t:
            self.t = ev.t
        if ev.step is not None:
            self.step = ev.step
        if ev.epoch is not None:
            self.epoch = ev.epoch
        self.header_version += 1
        handler = _HANDLERS.get(ev.kind)
        if handler is not None:
            handler(self, ev)

    def apply_all(self, events: Iterable[Event]) -> None:
        """Fold events in order."""
        for ev in events:
            self.apply(ev)

    def _on_run_start(self, ev: Event) -> None:
        self.info = RunInfo.from_event(ev)
        if self.status == WAITING:
            self.status = RUNNING
        if self.lr is None and is_finite(self.info.lr):
            self.lr = self.info.lr
        self.add_log(ev.t, "info", "sgdtop", f"run {self.info.run_id} started")

    def _on_step(self, ev: Event) -> None:
        if self.status == WAITING:
            self.status = RUNNING
        self.lr = as_float(ev.get("lr"))
        self.batch_loss = as_float(ev.get("loss"))
        self.examples_per_s = as_float(ev.get("examples_per_s"))
        self.steps_per_s = as_float(ev.get("steps_per_s"))
        self.batch_loss_history.append(float(ev.step or 0), self.batch_loss)
        self.step_loss.append(self.batch_loss, ev.step)
        self.metrics_version += 1
        if len(self.loss_history) == 0 and self.batch_loss_history.count % 8 == 1:
            self.chart_version += 1  # the chart shows the batch loss until the first eval

    def _on_eval(self, ev: Event) -> None:
        step = ev.step
        train_loss = as_float(ev.get("train_loss"))
        self.train_loss.append(train_loss, step)
        self.test_loss.append(as_float(ev.get("test_loss")), step)
        self.test_acc.append(100.0 * as_float(ev.get("test_acc")), step)
        self.loss_history.append(float(step or 0), train_loss)
        self.metrics_version += 1
        self.chart_version += 1

    def _on_spectrum(self, ev: Event) -> None:
        sp = Spectrum.from_event(ev)
        self.previous_spectrum = self.spectrum
        self.spectrum = sp
        self.progress = None
        self.rho.append(sp.spectral_norm, ev.step)
        self.stability.append(100.0 * sp.stability_ratio, ev.step)
        self.cond.append(sp.cond_k, ev.step)
        self.eigen_history.append(float(ev.step or 0), sp.eigenvalues)
        self.metrics_version += 1
        self.spectrum_version += 1
        self.chart_version += 1
        if sp.eigenvalues and not all(is_finite(v) for v in sp.eigenvalues):
            self.add_log(ev.t, "warning", "sgdtop", "non-finite eigenvalues in the spectrum")

    def _on_progress(self, ev: Event) -> None:
        hvps = ev.get("hvps")
        self.progress = Progress(
            hvps=hvps if isinstance(hvps, int) and not isinstance(hvps, bool) else None,
            seconds=as_float(ev.get("seconds")),
        )
        self.spectrum_version += 1

    def _on_slice(self, ev: Event) -> None:
        sl = LossSlice.from_event(ev)
        if sl is not None:
            self.slices.append(sl)
            self.slices_version += 1

    def _on_dense(self, ev: Event) -> None:
        self.dense_cond = as_float(ev.get("cond"))
        self.metrics_version += 1

    def _on_neurons(self, ev: Event) -> None:
        self.dead_pct.append(as_float(ev.get("dead_pct")), ev.step)
        layers = ev.get("layers")
        if isinstance(layers, list):
            self.layers = tuple(
                Layer(
                    name=str(layer.get("name", "?")),
                    units=layer.get("units") if isinstance(layer.get("units"), int) else None,
                    dead=layer.get("dead") if isinstance(layer.get("dead"), int) else None,
                    dead_pct=as_float(layer.get("dead_pct")),
                )
                for layer in layers
                if isinstance(layer, dict)
            )
        self.metrics_version += 1

    def _on_log(self, ev: Event) -> None:
        level = str(ev.get("level", "info"))
        self.add_log(ev.t, level, str(ev.get("source", "trainer")), str(ev.get("message", "")))

    def _on_run_end(self, ev: Event) -> None:
        self.status = str(ev.get("status", "completed"))
        self.status_message = str(ev.get("message", ""))
        self.progress = None
        self.spectrum_version += 1
        level = "info" if self.status in ("completed", "interrupted") else "error"
        text = f"run {self.status}"
        if self.status_message:
            text += f": {self.status_message}"
        self.add_log(ev.t, level, "sgdtop", text)

    def end_stream(self, reason: str | None) -> None:
        """The event stream ended. With a run_end already applied nothing changes;
        otherwise the run is marked :data:`LOST` with ``reason`` (one line)."""
        if self.status in ENDED_STATUSES:
            return
        self.status = LOST
        self.status_message = reason or "the event stream ended before run_end"
        self.progress = None
        self.header_version += 1
        self.spectrum_version += 1
        self.add_log(self.t, "error", "sgdtop", self.status_message)

    def mark_stopping(self) -> None:
        """The user asked the trainer to stop (it will write run_end)."""
        if self.status in ENDED_STATUSES:
            return
        self.status = STOPPING
        self.header_version += 1
        self.add_log(self.t, "info", "sgdtop", "stop requested: the trainer finishes its step")

    def add_log(self, t: float, level: str, source: str, message: str) -> None:
        """Append a line to the log panel (also used by the app for its own notes)."""
        for line in message.splitlines() or [""]:
            self.log.append(LogLine(t=t, level=level, source=source, message=line))
            self.log_seq += 1

    # -- derived values ----------------------------------------------------------------

    @property
    def ended(self) -> bool:
        """True once run_end was applied or the stream ended without it."""
        return self.status in ENDED_STATUSES

    def eigen_rows(self) -> list[EigenRow]:
        """The top-k table for the latest spectrum (empty before the first one)."""
        sp = self.spectrum
        if sp is None:
            return []
        prev = self.previous_spectrum
        rows: list[EigenRow] = []
        for i, lam in enumerate(sp.eigenvalues):
            delta: float | None = None
            if prev is not None and i < len(prev.eigenvalues):
                delta = lam - prev.eigenvalues[i]
            res = sp.residuals[i] if i < len(sp.residuals) else None
            conv = sp.converged[i] if i < len(sp.converged) else False
            mark = _mark(lam, res, conv)
            rows.append(EigenRow(rank=i + 1, value=lam, delta=delta, residual=res, mark=mark))
        return rows

    def header_view(self) -> HeaderView:
        """Snapshot for the header."""
        return HeaderView(
            info=self.info, lr=self.lr, epoch=self.epoch, step=self.step, elapsed=self.t,
            examples_per_s=self.examples_per_s, status=self.status,
            status_message=self.status_message,
        )

    def metric_views(self) -> tuple[MetricView, ...]:
        """Snapshots for the sparkline rows, top to bottom."""
        sp = self.spectrum
        k = self.info.k if self.info is not None and self.info.k else (
            len(sp.eigenvalues) if sp is not None and sp.eigenvalues else None)
        cond_label = "κ" + (str(k).translate(_SUBSCRIPTS) if k else "ₖ")

        def view(key: str, label: str, ring: Ring, unit: str = "",
                 limit: tuple[float, float] | None = None, note: str = "",
                 extra: str = "") -> MetricView:
            return MetricView(key=key, label=label, values=tuple(ring.values),
                              current=ring.last, previous=ring.previous, unit=unit,
                              limit=limit, note=note, extra=extra)

        dense = f"dense κ {_short(self.dense_cond)}" if self.dense_cond is not None else ""
        worst = max(self.layers, key=lambda la: la.dead_pct if is_finite(la.dead_pct) else -1.0,
                    default=None)
        dead_extra = f"max {worst.name} {_short(worst.dead_pct)}%" if worst is not None else ""

        limit = (sp.eta_lambda1, sp.eta_limit) if sp is not None else None
        regression = self.info is not None and self.info.task == "regression"
        acc = Ring(1) if regression else self.test_acc
        return (
            view("rho", "ρ(H)", self.rho),
            view("stability", "η·λ₁", self.stability, "%", limit, extra=(
                f"λ₁ {_short(sp.eigenvalues[0])} vs {_short(sp.stability_limit)}"
                if sp is not None and sp.eigenvalues else "")),
            view("cond", cond_label, self.cond, extra=dense),
            # the batch loss as it streams in; before any step event (e.g. a run of eval
            # events only) the per-epoch training loss
            view("train_loss", "loss", self.step_loss if len(self.step_loss) else
                 self.train_loss),
            view("test_loss", "test loss", self.test_loss),
            view("test_acc", "test acc", acc, "%", note="regression" if regression else ""),
            view("dead", "dead", self.dead_pct, "%", extra=dead_extra),
        )

    def spectrum_view(self) -> SpectrumView:
        """Snapshot for the eigenvalue table and its status line."""
        k = self.info.k if self.info is not None else None
        return SpectrumView(rows=tuple(self.eigen_rows()), k=k, progress=self.progress,
                            last=self.spectrum, ended=self.ended)

    def chart_view(self) -> ChartView:
        """Snapshot for the chart (copies of the bounded histories)."""
        xs, eig = self.eigen_history.points()
        if len(self.loss_history):
            lxs, lys = self.loss_history.points()
            label = "train loss"
        else:
            lxs, lys = self.batch_loss_history.points()
            label = "batch loss"
        x_div, x_unit = self.x_scale()
        k = max((len(e) for e in eig), default=0)
        limit = self.spectrum.stability_limit if self.spectrum is not None else None
        return ChartView(xs=xs, eigenvalues=eig, loss_xs=lxs, loss_ys=lys, loss_label=label,
                         x_div=x_div, x_unit=x_unit, k=k, stability_limit=limit)

    def slice_view(self) -> SliceView:
        """Snapshot for the loss-slice panel: the newest slices, oldest first."""
        return SliceView(slices=tuple(self.slices))

    def log_lines(self) -> tuple[LogLine, ...]:
        """The log panel's lines, oldest first."""
        return tuple(self.log)

    def x_scale(self) -> tuple[float, str]:
        """Divide steps by the first value to get the chart's x unit, named by the second:
        epochs when steps_per_epoch is known, else steps."""
        if self.info is not None and self.info.steps_per_epoch:
            return float(self.info.steps_per_epoch), "epoch"
        return 1.0, "step"


@dataclass(frozen=True, slots=True)
class HeaderView:
    """What the header shows (a snapshot: the display can be paused)."""

    info: RunInfo | None
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
    progress: Progress | None
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


def _short(x: float) -> str:
    """A number in 3 significant digits (for notes; the drawing code formats the rest)."""
    return f"{x:.3g}".replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")


def _mark(lam: float, residual: float | None, converged: bool) -> str:
    if converged:
        return "converged"
    if (
        residual is not None
        and is_finite(residual)
        and is_finite(lam)
        and lam != 0.0
        and residual / abs(lam) < NEAR_CONVERGED_REL_RESIDUAL
    ):
        return "near"
    return "no"


_SUBSCRIPTS: Final = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")

_HANDLERS: Final = {
    "run_start": RunState._on_run_start,
    "step": RunState._on_step,
    "eval": RunState._on_eval,
    "spectrum": RunState._on_spectrum,
    "spectrum_progress": RunState._on_progress,
    "dense_spectrum": RunState._on_dense,
    "loss_slice": RunState._on_slice,
    "neurons": RunState._on_neurons,
    "log": RunState._on_log,
    "run_end": RunState._on_run_end,
}


def fold(events: Iterable[Event]) -> RunState:
    """A fresh state with ``events`` applied."""
    state = RunState()
    state.apply_all(events)
    return state


class ReplayCursor:
    """The play head of a replay over recorded events.

    ``position`` is how many events should be applied (0..len): the caller applies
    ``events[applied:position]``, or — when the position moved behind what it applied —
    rebuilds its state from ``events[:position]``. The clock runs in the events' own time
    ``t``: :meth:`advance` moves it by wall seconds × ``speed``. Stepping
    (:meth:`next_measurement`, :meth:`previous_measurement`, :meth:`to_start`,
    :meth:`to_end`) moves the position and the clock together.
    """

    MIN_SPEED: Final[float] = 1 / 64
    MAX_SPEED: Final[float] = 65536.0

    def __init__(self, events: Sequence[Event], *, speed: float = 1.0) -> None:
        self.events = events
        self.position = 0
        self.t0 = events[0].t if events else 0.0
        self.clock = self.t0
        self.speed = min(max(speed, self.MIN_SPEED), self.MAX_SPEED)
        self.playing = True
        self.measurements: list[int] = [i for i, ev in enumerate(events) if ev.kind == "spectrum"]

    @property
    def at_end(self) -> bool:
        """True when every event has been applied."""
        return self.position >= len(self.events)

    @property
    def duration(self) -> float:
        """Event time from the first to the last event (s)."""
        return (self.events[-1].t - self.t0) if self.events else 0.0

    @property
    def measurement_index(self) -> int:
        """How many spectrum events are at or before the play head (0..len(measurements))."""
        lo, hi = 0, len(self.measurements)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.measurements[mid] < self.position:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def advance(self, wall_seconds: float) -> int:
        """Move the clock by ``wall_seconds`` × speed (if playing) and the position past
        every event now due; returns the position. Pauses at the end."""
        if self.playing and not self.at_end:
            self.clock += max(0.0, wall_seconds) * self.speed
            self._catch_up()
        return self.position

    def _catch_up(self) -> None:
        n = len(self.events)
        pos = self.position
        while pos < n and self.events[pos].t <= self.clock:
            pos += 1
        self.position = pos
        if self.at_end:
            self.playing = False

    def _jump(self, position: int) -> int:
        position = max(0, min(position, len(self.events)))
        self.position = position
        if position == 0:
            self.clock = self.t0
        else:
            self.clock = max(self.events[position - 1].t, self.t0)
        return position

    def next_measurement(self) -> int:
        """Jump just past the next spectrum event (or to the end); pauses."""
        self.playing = False
        for idx in self.measurements:
            if idx >= self.position:
                return self._jump(idx + 1)
        return self._jump(len(self.events))

    def previous_measurement(self) -> int:
        """Jump just past the spectrum event before the current one (or to the start of
        the run when there is none); pauses."""
        self.playing = False
        shown = self.measurement_index  # measurements applied
        if shown >= 2:
            return self._jump(self.measurements[shown - 2] + 1)
        if self.measurements:
            return self._jump(self.measurements[0])
        return self._jump(0)

    def to_start(self) -> int:
        """Back to the start: the events at the first event's time (run_start) applied;
        the play state is kept."""
        self._jump(0)
        playing = self.playing
        self._catch_up()
        self.playing = playing and not self.at_end
        return self.position

    def to_end(self) -> int:
        """Everything applied; pauses."""
        self.playing = False
        return self._jump(len(self.events))

    def faster(self) -> float:
        """Double the speed (bounded); returns it."""
        self.speed = min(self.speed * 2.0, self.MAX_SPEED)
        return self.speed

    def slower(self) -> float:
        """Halve the speed (bounded); returns it."""
        self.speed = max(self.speed / 2.0, self.MIN_SPEED)
        return self.speed

    def toggle(self) -> bool:
        """Play/pause; playing at the end restarts from the start. Returns playing."""
        if self.playing:
            self.playing = False
        else:
            if self.at_end:
                self.to_start()
            self.playing = True
        return self.playing

