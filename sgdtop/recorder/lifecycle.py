"""One run's lifecycle: :class:`RunRecorder`, the object every producer of a run uses.

A recorder owns, for one run (``docs/design.md``, "Run lifecycle"):

- the run directory (created at :meth:`RunRecorder.start`, with ``profile.json``), its
  liveness lock (:mod:`sgdtop.recorder.liveness`) and ``summary.json``
  (:mod:`sgdtop.recorder.summary_file`);
- the writer (``events.jsonl`` and an optional event pipe, :mod:`sgdtop.recorder.writer`)
  and the clock that stamps every record (:mod:`sgdtop.recorder.clock`);
- ``run_start`` and ``run_end``;
- the throughput window: a ``step`` record at most every ``step_event_seconds`` (and
  before each measurement, evaluation and the end), carrying the mean batch loss of the
  steps since the previous one and the steps/s and examples/s over them, time spent
  measuring excluded;
- divergence: a non-finite batch loss, or a non-finite probe loss found by a measurement,
  sets :attr:`RunRecorder.diverged` (and measurements stop);
- the measurement call (spectrum, dense spectrum, dead neurons, loss slices;
  :mod:`sgdtop.measure` computes, :mod:`sgdtop.recorder.records` converts) and the once-
  per-run warning when a batch-norm model measured on running statistics reads η·λ₁ far
  above the stability limit;
- write failures: a full disk ends the run ``failed`` with the reason (sent on the pipe,
  one ``sgdtop: error:`` line reported), :attr:`RunRecorder.stopping` turning true so the
  loop stops.

Its users are thin: the built-in trainer (:mod:`sgdtop.train`, run by
:mod:`sgdtop.worker`), :class:`sgdtop.Monitor` (the user's own loop), and later a framework
callback (``start`` at fit start, ``step`` per batch, ``measure`` on a schedule, ``end`` at
fit end) or the rank-0 process of a distributed run (only rank 0 constructs a recorder).

Hooks, in order: :meth:`~RunRecorder.start` → (:meth:`~RunRecorder.step`,
:meth:`~RunRecorder.measure`, :meth:`~RunRecorder.eval`, :meth:`~RunRecorder.log`)* →
:meth:`~RunRecorder.end`. Records may also be written before ``start`` (log lines, a
``run_end`` for input refused before the run exists): they go to the pipe and sink only,
and the log lines are written to the file after ``run_start``, at its ``t``.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import math
import platform
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final

import sgdtop
from sgdtop.recorder.clock import RunClock
from sgdtop.recorder.liveness import LockHandle, hold_lock
from sgdtop.recorder.records import (
    dense_record,
    neurons_record,
    slice_record,
    spectrum_record,
)
from sgdtop.recorder.rundir import RunDirError, create_run_dir
from sgdtop.recorder.summary_file import SummaryKeeper
from sgdtop.recorder.writer import EventWriter
from sgdtop.schema import (
    Eval,
    Log,
    LogLevel,
    LogSource,
    Record,
    RunEnd,
    RunStart,
    RunStatus,
    SpectrumProgress,
    Step,
)

if TYPE_CHECKING:
    from torch import nn

    from sgdtop.measure import Batches, LossFn, MeasureSettings
    from sgdtop.spectrum import SpectrumResult

#: Longest ``log`` message kept (characters).
MAX_MESSAGE: Final[int] = 2000
#: Seconds between two ``spectrum_progress`` records of one measurement.
PROGRESS_EVERY_S: Final[float] = 0.5


class StopRequested(Exception):
    """Raised inside a measurement (or by a loop) when the run is asked to stop."""


@dataclass(frozen=True, slots=True)
class Subject:
    """What a recorder measures: ``model`` with ``loss_fn`` on the ``probe`` batches (on the
    model's device), with ``settings``."""

    model: nn.Module
    loss_fn: LossFn
    probe: Batches
    settings: MeasureSettings


@dataclass(frozen=True, slots=True)
class RunDescription:
    """``run_start``'s fields besides ``run_id``, ``profile``, ``versions`` and
    ``wall_time`` (which the recorder adds). ``lr`` is NaN when unknown; sizes are example
    counts (0: unknown); ``epochs``/``steps_per_epoch`` 0 when the loop is not the
    trainer's."""

    model: str
    num_params: int
    device: str
    dataset: str
    train_size: int
    test_size: int
    probe_size: int
    lr: float
    batch_size: int | None
    momentum: float
    weight_decay: float
    k: int
    epochs: int
    steps_per_epoch: int
    task: str | None = None
    model_class: str | None = None
    optimizer: str | None = None
    source: str | None = None


def versions() -> dict[str, object]:
    """Versions of what produced the run (``run_start``'s ``versions``): sgdtop, Python,
    torch (the loaded module's, else the installed distribution's; None when absent) and
    the platform. Imports no torch."""
    torch = sys.modules.get("torch")
    torch_version: str | None = getattr(torch, "__version__", None)
    if torch_version is None:
        try:
            torch_version = importlib.metadata.version("torch")
        except importlib.metadata.PackageNotFoundError:
            torch_version = None
    return {"sgdtop": sgdtop.__version__, "python": platform.python_version(),
            "torch": torch_version, "platform": sys.platform}


def _stderr_line(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class RunRecorder:
    """The lifecycle of one measured run (module docstring).

    Args:
        pipe: a text stream every record is also written to (the live parent), or None.
        sink: called with every record (in memory: tests, in-process viewers), or None.
        stop_requested: polled by :attr:`stopping` and during measurements (a signal flag).
        step_event_seconds: at most one ``step`` record per this many seconds.
        report: where the one ``sgdtop: error: ...`` line of a write failure goes
            (default: ``sys.stderr``).
        rank: the process rank in a distributed run (stamped on ``log`` records; None
            otherwise). Only one process (rank 0) records a run.

    Attributes:
        clock: stamps every record (``t``, ``step``, ``epoch``); ``clock.step`` counts
            :meth:`step` calls.
        run_dir, run_id: set by :meth:`start`.
        status: the ``run_end`` status once :meth:`end` ran, else None.
        diverged: the one-line reason once the run diverged, else None.
        measurements: measurements taken; ``measure_seconds``: wall time in them (s).
    """

    def __init__(self, *, pipe: IO[str] | None = None,
                 sink: Callable[[Record], None] | None = None,
                 stop_requested: Callable[[], bool] | None = None,
                 step_event_seconds: float = 0.2,
                 report: Callable[[str], None] = _stderr_line,
                 rank: int | None = None) -> None:
        self.clock = RunClock()
        self.writer = EventWriter(None, pipe)
        self._sink = sink
        self._stop_requested = stop_requested
        self._report = report
        self.rank = rank
        self.step_event_seconds = step_event_seconds
        self._lock = threading.RLock()
        self._summary: SummaryKeeper | None = None
        self._liveness: LockHandle | None = None
        self._early: list[Record] = []
        self._reported = False
        self.subject: Subject | None = None
        self.started = False
        self.run_dir: Path | None = None
        self.run_id: str | None = None
        self.status: RunStatus | None = None
        self.diverged: str | None = None
        self.measurements = 0
        self.measure_seconds = 0.0
        self.last_measured_step: int | None = None
        self._previous: SpectrumResult | None = None
        self._bn_warned = False
        self._lr = math.nan  # η of the last step
        self._pending = False
        self._win_t = time.monotonic()
        self._win_steps = 0
        self._win_examples: int | None = 0
        self._win_loss = 0.0
        self._win_measure = 0.0

    # --- writing ----------------------------------------------------------------------------
    def write(self, record: Record, *, to_pipe: bool = True) -> bool:
        """Write one record (file, pipe, sink; ``to_pipe=False``: the file only, a record
        sent before); returns whether the file took it. A write failure is reported once
        and makes :attr:`stopping` true."""
        with self._lock:
            took = self.writer.write(record, to_pipe=to_pipe)
            if took and self._summary is not None:
                self._summary.update(record)
            if not self.started and record.kind == "log":
                self._early.append(record)
            if self._sink is not None and to_pipe:
                self._sink(record)
            self._check_write_error()
            return took

    def _check_write_error(self) -> None:
        if self.writer.file_error is not None and not self._reported:
            self._reported = True
            self._report(f"sgdtop: error: {self.writer.file_error}")

    @property
    def write_error(self) -> str | None:
        """The one-line reason the events file stopped taking lines, or None."""
        err = self.writer.file_error
        return None if err is None else str(err)

    @property
    def stopping(self) -> bool:
        """Whether the loop should stop: a stop was requested or the events file failed."""
        return self.writer.file_error is not None or bool(
            self._stop_requested is not None and self._stop_requested())

    def _save_summary(self) -> None:
        if self._summary is not None and self.run_dir is not None and self.writer.has_file:
            self._summary.save(self.run_dir, self.writer.bytes_written,
                               self.writer.lines_written)

    # --- start --------------------------------------------------------------------------------
    def start(self, run_dir: Path | None, *, profile: Mapping[str, object],
              description: RunDescription, subject: Subject | None = None,
              on_created: Callable[[Path], None] | None = None) -> None:
        """Begin the run: create ``run_dir`` (None: no files, pipe and sink only) with
        ``profile.json``, take its liveness lock, open ``events.jsonl``, restart the clock
        (t = 0) and write ``run_start``, then the log lines written before.

        ``on_created(run_dir)`` runs once the directory exists, before any record.

        Raises:
            RunDirError: the directory exists, cannot be created, locked or written.
            RuntimeError: started twice.
        """
        with self._lock:
            if self.started or self.status is not None:
                raise RuntimeError("this run has already started")
            if run_dir is not None:
                run_dir = create_run_dir(run_dir.parent, run_dir.name, profile)
                try:
                    self._liveness = hold_lock(run_dir)
                    if on_created is not None:
                        on_created(run_dir)
                    self.writer.open_file(run_dir)
                except OSError as exc:
                    if self._liveness is not None:
                        self._liveness.release()
                    raise RunDirError(f"cannot write in {run_dir}: "
                                      f"{exc.strerror or exc}") from None
                self._summary = SummaryKeeper()
                self.run_dir, self.run_id = run_dir, run_dir.name
            self.subject = subject
            self.run_id = self.run_id or "run"
            self.clock.restart()
            self.started = True
            header = self.clock.header()
            d = description
            self.write(RunStart(
                **header, run_id=self.run_id, profile=dict(profile),
                versions=versions(), wall_time=time.time(),
                model=d.model, num_params=d.num_params, device=d.device, dataset=d.dataset,
                train_size=d.train_size, test_size=d.test_size, probe_size=d.probe_size,
                lr=d.lr, batch_size=d.batch_size, momentum=d.momentum,
                weight_decay=d.weight_decay, k=d.k, epochs=d.epochs,
                steps_per_epoch=d.steps_per_epoch, task=d.task, model_class=d.model_class,
                optimizer=d.optimizer, source=d.source))
            for rec in self._early:  # already on the pipe: to the file, at run_start's t
                self.write(dataclasses.replace(rec, t=header["t"]), to_pipe=False)
            self._early.clear()
            self._win_t = time.monotonic()
            self._save_summary()

    # --- in the loop ----------------------------------------------------------------------
    def step(self, loss: float, *, lr: float, batch_size: int | None = None,
             epoch: int | None = None) -> bool:
        """Record one optimizer step: ``loss`` the batch's training loss, ``lr`` the η in
        force, ``batch_size`` its examples (None: unknown), ``epoch`` (0-based) if known.

        Returns True when ``loss`` is the run's first non-finite loss: :attr:`diverged`
        is then set and a ``step`` record with that loss is written at once.
        """
        with self._lock:
            self.clock.step += 1
            if epoch is not None:
                self.clock.epoch = epoch
            self._lr = lr
            self._win_steps += 1
            self._win_loss += loss
            if batch_size is None or self._win_examples is None:
                self._win_examples = None
            else:
                self._win_examples += batch_size
            self._pending = True
            if not math.isfinite(loss):
                self.flush_step()
                if self.diverged is None:
                    self.diverged = (f"training loss became {loss} at step {self.clock.step} "
                                     f"(η={lr:g})")
                    return True
                return False
            if time.monotonic() - self._win_t >= self.step_event_seconds:
                self.flush_step()
            return False

    def flush_step(self) -> None:
        """Write the pending ``step`` record: the mean batch loss of the steps since the
        previous one, and their throughput (steps/s, examples/s; time spent measuring
        excluded; NaN when unknown)."""
        with self._lock:
            if not self._pending:
                return
            now = time.monotonic()
            busy = now - self._win_t - (self.measure_seconds - self._win_measure)
            steps_per_s = self._win_steps / busy if busy > 0 else math.nan
            examples_per_s = (self._win_examples / busy
                              if busy > 0 and self._win_examples else math.nan)
            self.write(Step(**self.clock.header(), lr=self._lr,
                            loss=self._win_loss / self._win_steps,
                            examples_per_s=examples_per_s, steps_per_s=steps_per_s))
            self._pending = False
            self._win_t, self._win_steps, self._win_examples, self._win_loss = now, 0, 0, 0.0
            self._win_measure = self.measure_seconds

    def measure(self, *, lr: float, momentum: float, slices: bool = True) -> bool:
        """Measure now (side-effect free) and write ``spectrum``, ``dense_spectrum`` (small
        models), ``neurons`` and, when ``slices`` and the settings ask, ``loss_slice``.

        ``lr``/``momentum``: η (NaN when unknown) and β in force. Returns whether a
        measurement was taken: nothing is measured once the run diverged, and a
        non-finite probe loss sets :attr:`diverged` (``measuring at step N: ...``).

        Raises:
            StopRequested: :attr:`stopping` turned true during the measurement.
            RuntimeError: no :class:`Subject` was given to :meth:`start`.
        """
        from sgdtop.measure import take_measurement, take_slices
        from sgdtop.neurons import NeuronReport
        from sgdtop.spectrum import SpectrumResult
        from sgdtop.spectrum.errors import NonFiniteError

        sub = self.subject
        if sub is None:
            raise RuntimeError("this recorder has nothing to measure (no Subject)")
        if self.diverged is not None:
            return False
        self.flush_step()
        if self.writer.file_error is not None:
            return False  # the run is failing (e.g. the step record hit a full disk)
        t0 = time.monotonic()
        try:
            for res in take_measurement(sub.model, sub.loss_fn, sub.probe, sub.settings,
                                        index=self.measurements, previous=self._previous,
                                        progress=self._progress()):
                header = self.clock.header()
                if isinstance(res, SpectrumResult):
                    self._previous = res
                    self.write(spectrum_record(header, res, lr=lr, momentum=momentum,
                                               batch_norm=sub.settings.batch_norm))
                elif isinstance(res, NeuronReport):
                    self.write(neurons_record(header, res))
                else:
                    self.write(dense_record(header, res))
                if self.writer.file_error is not None:
                    return False  # the run is failing: measure no further
            self._warn_eval_mode_curvature(lr, momentum)
            if slices and self._previous is not None:
                sl = take_slices(sub.model, sub.loss_fn, sub.probe, self._previous,
                                 sub.settings, lr=lr)
                if sl is not None:
                    self.write(slice_record(self.clock.header(), sl))
        except NonFiniteError as exc:  # the weights diverged
            self.diverged = f"measuring at step {self.clock.step}: {exc}"
            return False
        finally:
            self.measure_seconds += time.monotonic() - t0
            self.last_measured_step = self.clock.step
        self.measurements += 1
        self._save_summary()
        return True

    def _progress(self) -> Callable[[int, float], None]:
        """``progress(hvps, seconds)`` for the top-k run: raises :class:`StopRequested`
        when stopping, writes ``spectrum_progress`` at most every PROGRESS_EVERY_S."""
        last = [time.monotonic()]

        def progress(hvps: int, seconds: float) -> None:
            if self.stopping:
                raise StopRequested
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY_S:
                last[0] = now
                self.write(SpectrumProgress(**self.clock.header(), hvps=hvps, seconds=seconds))

        return progress

    def _warn_eval_mode_curvature(self, lr: float, momentum: float) -> None:
        """Once per run: a ``log`` warning when a batch-norm model measured in eval mode
        shows η·λ₁ over twice the stability limit 2(1+β). SGD cannot be stable on such a
        curvature, so the measured Hessian (running statistics) is not the one training
        follows — on ResNet20 it was 15-70× the batch-statistics one."""
        from sgdtop.spectrum.guard import batch_norm_layers

        sub, res = self.subject, self._previous
        if (self._bn_warned or sub is None or res is None
                or sub.settings.batch_norm != "running" or not (math.isfinite(lr) and lr > 0)):
            return
        if not batch_norm_layers(sub.model):
            return
        eta_lam, limit = lr * abs(res.eigenvalues[0]), 2.0 * (1.0 + momentum)
        if math.isfinite(eta_lam) and eta_lam > 2.0 * limit:
            self._bn_warned = True
            self.log(f"η·λ₁ = {eta_lam:.3g} is far above 2(1+β) = {limit:.3g}, the most SGD "
                     "is stable on: with batch norm measured on running statistics (eval "
                     "mode, the paper's protocol) the Hessian is not the one training "
                     "follows; --set hessian_bn=batch measures that one", level="warning")

    def eval(self, *, train_loss: float, train_acc: float, test_loss: float,
             test_acc: float) -> None:
        """Write an ``eval`` record (losses without the L2 term; accuracies in [0, 1],
        NaN for regression)."""
        self.flush_step()
        self.write(Eval(**self.clock.header(), train_loss=train_loss, train_acc=train_acc,
                        test_loss=test_loss, test_acc=test_acc))

    def log(self, message: str, level: LogLevel = "info",
            source: LogSource = "trainer") -> None:
        """Write a ``log`` record (``level``: info, warning, error; ``source``: trainer,
        stdout, stderr), the message cut to MAX_MESSAGE characters."""
        self.write(Log(**self.clock.header(), level=level, message=message[:MAX_MESSAGE],
                       source=source, rank=self.rank))

    # --- end --------------------------------------------------------------------------------
    def end(self, status: RunStatus, message: str) -> RunStatus:
        """Write ``run_end`` (idempotent) and release the run: save ``summary.json``, close
        the writer, release the liveness lock. Returns the status written: ``failed`` with
        the write error as its message when the events file failed (the record then goes
        on the pipe only)."""
        with self._lock:
            if self.status is not None:
                return self.status
            if self.started:
                self.flush_step()
            status, message = self._final(status, message)
            rec = self._run_end(status, message)
            took = self.writer.write(rec, to_pipe=False)
            if took and self._summary is not None:
                self._summary.update(rec)
            elif self.writer.file_error is not None:
                self._check_write_error()  # run_end itself failed: say why, on the pipe
                status, message = self._final(status, message)
                rec = self._run_end(status, message)
            self.writer.write(rec, to_file=False)
            if self._sink is not None:
                self._sink(rec)
            self.status = status
            self._save_summary()
            self.writer.close()
            if self._liveness is not None:
                self._liveness.release()
            return status

    def _final(self, status: RunStatus, message: str) -> tuple[RunStatus, str]:
        err = self.write_error
        return ("failed", err) if err is not None else (status, message)

    def _run_end(self, status: RunStatus, message: str) -> Record:
        return RunEnd(**self.clock.header(), status=status, message=message[:MAX_MESSAGE],
                      steps=self.clock.step, seconds=self.clock.seconds(),
                      measurements=self.measurements, measure_seconds=self.measure_seconds)

