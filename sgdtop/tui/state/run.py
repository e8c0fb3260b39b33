"""The run view's state: a fold of the event stream into bounded, display-ready values.

Plain Python (no Textual, no Rich, no torch), so it is tested without a terminal and
could drive any other front end. :class:`RunState` applies events one at a time; memory
stays bounded however long the run is (:mod:`sgdtop.tui.state.buffers`; the log is a ring
of :class:`~sgdtop.tui.state.views.LogLine`). Each area of the screen has a version
counter (``header_version``, ``metrics_version``, ``spectrum_version``, ``chart_version``,
``slices_version``, ``log_seq``) so the UI redraws only what changed.

:class:`Backlog` and :class:`ReplayFold` fold queued (live) or due (replay) events into a
state within a time budget. See docs/design.md (the TUI).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from sgdtop.events import Event
from sgdtop.tui.state.buffers import Decimated, Ring
from sgdtop.tui.state.records import Layer, LossSlice, Progress, RunInfo, Spectrum, as_float
from sgdtop.tui.state.replay import ReplayCursor
from sgdtop.tui.state.views import (
    ENDED_STATUSES,
    LOST,
    RUNNING,
    STOPPING,
    WAITING,
    ChartView,
    EigenRow,
    HeaderView,
    LogLine,
    MetricView,
    SliceView,
    SpectrumView,
    is_finite,
)

#: Log lines kept.
LOG_LINES: Final[int] = 500
#: Loss slices kept for the slice panel (the newest ones; older ones fade out).
SLICE_HISTORY: Final[int] = 6
#: A Ritz pair whose relative residual ‖Hv−λv‖/|λ| is below this counts as nearly converged.
NEAR_CONVERGED_REL_RESIDUAL: Final[float] = 1e-2


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



#: Events folded between two looks at the clock (folding within a time budget).
FOLD_BATCH: Final[int] = 256
#: The lost-run message of a replay whose recording ends without run_end.
NO_RUN_END: Final[str] = "the run has no run_end (still running, or its trainer died)"


class Backlog:
    """Events received (a live or followed run) and not folded yet, oldest first."""

    __slots__ = ("events",)

    def __init__(self) -> None:
        self.events: deque[Event] = deque()

    def __len__(self) -> int:
        return len(self.events)

    def extend(self, events: Iterable[Event]) -> None:
        """Queue ``events`` after those already waiting."""
        self.events.extend(events)

    def fold_into(self, state: RunState, budget: float | None) -> None:
        """Fold queued events into ``state``, for at most ``budget`` seconds (None: all
        of them); the clock is read every :data:`FOLD_BATCH` events."""
        backlog, apply = self.events, state.apply
        deadline = None if budget is None else time.perf_counter() + budget
        while backlog:
            for _ in range(min(FOLD_BATCH, len(backlog))):
                apply(backlog.popleft())
            if deadline is not None and time.perf_counter() > deadline:
                break


class ReplayFold:
    """A replay's state: the recording's events up to its cursor's position folded into
    :attr:`state`. A position behind what was folded (a step back) rebuilds the state
    from the start; a recording that ends without run_end ends the stream as
    :data:`~sgdtop.tui.state.views.LOST` once everything is folded."""

    __slots__ = ("applied", "cursor", "state")

    def __init__(self, cursor: ReplayCursor) -> None:
        self.cursor = cursor
        self.state = RunState()
        self.applied = 0  #: events of the recording folded into :attr:`state`

    @property
    def caught_up(self) -> bool:
        """True when every event due at the cursor has been folded."""
        return self.applied == self.cursor.position

    def catch_up(self, budget: float | None) -> bool:
        """Fold the events due, for at most ``budget`` seconds (None: all of them).
        Returns True when the state was rebuilt (a new :attr:`state` object)."""
        cursor = self.cursor
        target = cursor.position
        rebuilt = target < self.applied
        if rebuilt:
            self.state = RunState()
            self.applied = 0
        events, apply = cursor.events, self.state.apply
        deadline = None if budget is None else time.perf_counter() + budget
        i = self.applied
        while i < target:
            stop = min(target, i + FOLD_BATCH)
            for j in range(i, stop):
                apply(events[j])
            i = stop
            if deadline is not None and time.perf_counter() > deadline:
                break
        self.applied = i
        if i == len(events) and events and not self.state.ended:
            self.state.end_stream(NO_RUN_END)
        return rebuilt
