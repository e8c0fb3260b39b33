"""The run view's state: a fold of the event stream into bounded, display-ready values.

Plain Python (no Textual, no Rich, no torch), so it is tested without a terminal and
could drive any other front end. :class:`RunState` applies events one at a time; memory
stays bounded however long the run is (:mod:`sgdtop.tui.state.buffers`; the log is a ring
of :class:`~sgdtop.tui.state.views.LogLine`). Each area of the screen has a version
counter (``header_version``, ``metrics_version``, ``spectrum_version``, ``chart_version``,
``slices_version``, ``log_seq``) so the UI redraws only what changed.

:mod:`sgdtop.tui.state.ingest` folds queued (live) or due (replay) records into a state
within a time budget. See docs/design.md (the TUI).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from sgdtop import format as fmt
from sgdtop.schema import (
    DenseSpectrum,
    Eval,
    Log,
    LossSlice,
    NeuronLayer,
    Neurons,
    Record,
    RunEnd,
    RunStart,
    Spectrum,
    SpectrumProgress,
    Step,
)
from sgdtop.tui.state.buffers import Decimated, Ring
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

    info: RunStart | None = None
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
    progress: SpectrumProgress | None = None
    dense_cond: float | None = None
    layers: tuple[NeuronLayer, ...] = ()
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

    def apply(self, rec: Record) -> None:
        """Fold one record into the state (the decoder has checked its types; non-finite
        values are kept and shown as such)."""
        self.events_applied += 1
        if fmt.finite(rec.t) and rec.t > self.t:
            self.t = rec.t
        if rec.step is not None:
            self.step = rec.step
        if rec.epoch is not None:
            self.epoch = rec.epoch
        self.header_version += 1
        match rec:
            case RunStart():
                self._on_run_start(rec)
            case Step():
                self._on_step(rec)
            case Eval():
                self._on_eval(rec)
            case Spectrum():
                self._on_spectrum(rec)
            case SpectrumProgress():
                self.progress = rec
                self.spectrum_version += 1
            case DenseSpectrum():
                self.dense_cond = rec.cond
                self.metrics_version += 1
            case LossSlice():
                self.slices.append(rec)
                self.slices_version += 1
            case Neurons():
                self.dead_pct.append(rec.dead_pct, rec.step)
                self.layers = rec.layers
                self.metrics_version += 1
            case Log():
                self.add_log(rec.t, rec.level, rec.source, rec.message)
            case RunEnd():
                self._on_run_end(rec)

    def apply_all(self, records: Iterable[Record]) -> None:
        """Fold records in order."""
        for rec in records:
            self.apply(rec)

    def _on_run_start(self, rec: RunStart) -> None:
        self.info = rec
        if self.status == WAITING:
            self.status = RUNNING
        if self.lr is None and fmt.finite(rec.lr):
            self.lr = rec.lr
        self.add_log(rec.t, "info", "sgdtop", f"run {rec.run_id} started")

    def _on_step(self, rec: Step) -> None:
        if self.status == WAITING:
            self.status = RUNNING
        if rec.lr is not None:  # None: η not known (a Monitor without an optimizer)
            self.lr = rec.lr
        self.batch_loss = rec.loss
        self.examples_per_s = rec.examples_per_s
        self.steps_per_s = rec.steps_per_s
        self.batch_loss_history.append(float(rec.step or 0), rec.loss)
        self.step_loss.append(rec.loss, rec.step)
        self.metrics_version += 1
        if len(self.loss_history) == 0 and self.batch_loss_history.count % 8 == 1:
            self.chart_version += 1  # the chart shows the batch loss until the first eval

    def _on_eval(self, rec: Eval) -> None:
        step = rec.step
        self.train_loss.append(rec.train_loss, step)
        self.test_loss.append(rec.test_loss, step)
        self.test_acc.append(100.0 * rec.test_acc, step)
        self.loss_history.append(float(step or 0), rec.train_loss)
        self.metrics_version += 1
        self.chart_version += 1

    def _on_spectrum(self, sp: Spectrum) -> None:
        self.previous_spectrum = self.spectrum
        self.spectrum = sp
        self.progress = None
        self.rho.append(sp.spectral_norm, sp.step)
        self.stability.append(100.0 * stability_ratio(sp), sp.step)
        self.cond.append(sp.cond_k, sp.step)
        self.eigen_history.append(float(sp.step or 0), sp.eigenvalues)
        self.metrics_version += 1
        self.spectrum_version += 1
        self.chart_version += 1
        if sp.eigenvalues and not all(fmt.finite(v) for v in sp.eigenvalues):
            self.add_log(sp.t, "warning", "sgdtop", "non-finite eigenvalues in the spectrum")

    def _on_run_end(self, rec: RunEnd) -> None:
        self.status = rec.status
        self.status_message = rec.message
        self.progress = None
        self.spectrum_version += 1
        level = "info" if self.status in ("completed", "interrupted") else "error"
        text = f"run {self.status}"
        if self.status_message:
            text += f": {self.status_message}"
        self.add_log(rec.t, level, "sgdtop", text)

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
        cond_label = fmt.kappa_label(k)

        def view(key: str, label: str, ring: Ring, unit: str = "",
                 limit: tuple[float, float] | None = None, note: str = "",
                 extra: str = "") -> MetricView:
            return MetricView(key=key, label=label, values=tuple(ring.values),
                              current=ring.last, previous=ring.previous, unit=unit,
                              limit=limit, note=note, extra=extra)

        dense = f"dense κ {fmt.number(self.dense_cond, 3)}" if self.dense_cond is not None else ""
        worst = max(self.layers, key=lambda la: la.dead_pct if fmt.finite(la.dead_pct) else -1.0,
                    default=None)
        dead_extra = (f"max {worst.name} {fmt.number(worst.dead_pct, 3)}%"
                      if worst is not None else "")

        limit = (sp.eta_lambda1, eta_limit(sp)) if sp is not None else None
        regression = self.info is not None and self.info.task == "regression"
        acc = Ring(1) if regression else self.test_acc
        return (
            view("rho", "ρ(H)", self.rho),
            view("stability", "η·λ₁", self.stability, "%", limit, extra=(
                f"λ₁ {fmt.number(sp.eigenvalues[0], 3)} vs {fmt.number(sp.stability_limit, 3)}"
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



def eta_limit(sp: Spectrum) -> float:
    """2(1+β): the threshold η·λ₁ is compared against (β the spectrum's momentum)."""
    return 2.0 * (1.0 + sp.momentum)


def stability_ratio(sp: Spectrum) -> float:
    """λ₁ / (2(1+β)/η) = η·λ₁ / 2(1+β): 1.0 is the edge of stability of GD with momentum."""
    denom = eta_limit(sp)
    if not fmt.finite(denom) or denom == 0.0:
        return math.nan
    return sp.eta_lambda1 / denom  # NaN and ±inf carry through


def _mark(lam: float, residual: float | None, converged: bool) -> str:
    if converged:
        return "converged"
    if (
        residual is not None
        and fmt.finite(residual)
        and fmt.finite(lam)
        and lam != 0.0
        and residual / abs(lam) < NEAR_CONVERGED_REL_RESIDUAL
    ):
        return "near"
    return "no"


def fold(records: Iterable[Record]) -> RunState:
    """A fresh state with ``records`` applied."""
    state = RunState()
    state.apply_all(records)
    return state
