"""``sgdtop.Monitor``: the Hessian spectrum of *your* model, measured inside *your* training
loop, written as a normal sgdtop run.

::

    import sgdtop

    with sgdtop.Monitor(model, loss_fn, probe=probe_loader, every=100, k=30,
                        optimizer=opt, name="my-run") as mon:
        for x, y in loader:
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            mon.step(loss=loss)          # measures every `every` steps
        mon.eval(test=test_loader)       # optional: an eval event

The run directory (``runs/<id>/`` by default: ``$SGDTOP_RUNS_DIR`` or ``./runs``) holds the
same events as ``sgdtop run`` writes (``run_start``, ``step``, ``spectrum``,
``dense_spectrum`` for small models, ``neurons``, ``eval``, ``log``, ``run_end``), so
``sgdtop watch RUN`` shows it live from another terminal and ``replay``, ``runs``, ``show``,
``compare``, ``plot`` and ``export`` work on it.

Definitions are DESIGN.md's: H is the Hessian of the mean of ``loss_fn`` over the *probe*
batches (fixed, materialised once on the model's device) w.r.t. all trainable parameters,
model in eval mode. Measuring changes nothing the training sees — parameters, buffers,
train/eval mode, ``.grad``, optimizer state and torch's global random state — so a loop
trains bit for bit the same with and without the monitor.

How the run ends (``run_end``'s status): ``completed`` when the ``with`` block exits
normally, ``interrupted`` on ``KeyboardInterrupt`` (Ctrl+C, or ``sgdtop stop RUN``, which
sends SIGINT to this process), ``failed`` on any other exception (which propagates), and
``diverged`` once a non-finite loss was passed to :meth:`Monitor.step` or the probe loss
became non-finite (measurements stop then and the loop goes on; with
``stop_on_divergence=True`` :meth:`Monitor.step` raises :class:`Diverged` instead, which
ends the ``with`` block and is swallowed by it). ``sys.exit(0)`` inside the block is a
normal end.
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor, nn

from sgdtop.measure import (
    Batches,
    Emitter,
    LossFn,
    emit_loss_slices,
    emit_measurement,
    evaluate_batches,
    preserved_rng,
    throttled_progress,
    versions,
)
from sgdtop.store import PID_FILE, EventWriter, create_run_dir, new_run_id, runs_root

if TYPE_CHECKING:
    from sgdtop.spectrum import SpectrumResult

Status = Literal["completed", "interrupted", "diverged", "failed"]
_MAX_MESSAGE = 2000


class MonitorError(ValueError):
    """Bad input to :class:`Monitor` (an empty probe, k too large, ...); one line."""


class Diverged(RuntimeError):
    """Raised by :meth:`Monitor.step` on a non-finite loss when ``stop_on_divergence``."""


def _device_of(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    raise MonitorError("the model has no parameters to measure")


def materialize_probe(probe: Iterable[Any], device: torch.device) -> Batches:
    """The probe set as a list of (inputs, targets) batches on ``device``, copied once.

    ``probe`` is a DataLoader or any iterable of batches (inputs, targets), e.g. a list of
    pairs of tensors; each item is one batch. Iterating it does not touch torch's global
    random state (a DataLoader draws a seed from it: that draw is undone).

    Raises:
        MonitorError: the probe yields nothing, or an item is not a pair of tensors.
    """
    batches: Batches = []
    with preserved_rng(device):
        for i, item in enumerate(probe):
            if not (isinstance(item, tuple | list) and len(item) == 2
                    and all(isinstance(t, Tensor) for t in item)):
                raise MonitorError(
                    f"probe batch {i} is a {type(item).__name__}, expected a pair "
                    "(inputs, targets) of tensors, as a DataLoader over (x, y) yields")
            x, y = item
            if len(x) == 0:
                continue
            batches.append((x.detach().to(device, copy=True), y.detach().to(device, copy=True)))
    if not batches:
        raise MonitorError("the probe yields no examples: give Monitor(probe=...) a "
                           "DataLoader or a list of (inputs, targets) batches with at "
                           "least one example (e.g. a fixed ~5% of the training set)")
    return batches


def hyperparams(optimizer: torch.optim.Optimizer | None) -> tuple[float | None, float | None,
                                                                  float | None]:
    """(η, β, L2 coefficient) read from ``optimizer.param_groups[0]``: ``lr``; ``momentum``
    (SGD, RMSprop) or ``betas[0]`` (Adam, AdamW, ...); ``weight_decay``. None for what the
    optimizer does not have (or when there is no optimizer)."""
    if optimizer is None or not optimizer.param_groups:
        return None, None, None
    group = optimizer.param_groups[0]

    def num(x: Any) -> float | None:
        if isinstance(x, Tensor):
            x = x.item()
        return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None

    momentum = num(group.get("momentum"))
    if momentum is None and isinstance(group.get("betas"), tuple | list):
        momentum = num(group["betas"][0])
    return num(group.get("lr")), momentum, num(group.get("weight_decay"))


class Monitor:
    """Measures a model inside the caller's training loop and writes an sgdtop run.

    Args:
        model: the model being trained (any ``nn.Module``; batch norm and dropout are fine).
        loss_fn: ``loss_fn(model(x), y)`` → the mean loss of a batch; H is its Hessian over
            the probe set (add no L2 term here: the measured loss excludes it).
        probe: the probe set: a DataLoader or a list of (inputs, targets) batches, read
            once and kept on the model's device (choose a fixed few % of the training set,
            without augmentation).
        every: measure every this many :meth:`step` calls (optimizer steps); 0: never on a
            schedule (only at the start and end, and on :meth:`measure`).
        k: number of top eigenvalues (by |λ|, or largest λ with ``which="largest"``).
        run_dir: the run directory to create (must not exist); default
            ``<runs_dir>/<generated id>``.
        name: a label for the run, part of the generated id and shown as the model.
        runs_dir: where the run directory is created when ``run_dir`` is None (default
            ``$SGDTOP_RUNS_DIR`` or ``./runs``).
        open_tui: start ``sgdtop watch`` on this run in a subprocess, only when stdin and
            stdout are terminals. The viewer then owns the terminal: keys (Ctrl+C too) go
            to it, q closes it and training goes on; print nothing meanwhile. At the end
            of the run the monitor waits for it to be closed.
        optimizer: read η (``lr``), β (``momentum`` or Adam's ``betas[0]``) and the L2
            coefficient from its first parameter group at every step; ``step``'s arguments
            override it.
        lr, momentum: η and β to report when neither ``step`` nor the optimizer gives them
            (β defaults to 0: plain SGD; η unknown is NaN in the events).
        batch_size, train_size, test_size: examples per step and in the data sets, for
            ``run_start`` and throughput (None / 0: unknown).
        dataset: a name for the training data, shown by ``sgdtop runs``.
        task: ``"classification"`` or ``"regression"`` (how the viewer labels accuracy);
            default: classification when the probe's targets are integer class indices,
            else regression.
        which, tol, seed, warm_start, max_hvps: Lanczos settings (as the profile keys).
        slices: with every measurement, also the loss along this many top eigenvectors
            (a ``loss_slice`` event, the paper's Fig. 7; 0: never), at ``slice_points``
            distances t = j·``slice_step``·η (needs η: from the optimizer or ``lr``).
        dead_threshold: a unit is dead when its mean |activation| is below this.
        dense_max_params: exact full spectrum for models up to this many parameters.
        measure_at_start: measure once on entering (before the first step).
        measure_at_end: measure once more on a normal exit (if the last step was not just
            measured).
        step_event_seconds: at most one ``step`` event per this many seconds (the last
            step is always written at the end).
        stop_on_divergence: raise :class:`Diverged` from :meth:`step` on a non-finite loss.
        quiet: do not print the one-line "run saved in ..." hint on stderr.

    Raises:
        MonitorError: an empty or malformed probe, ``k`` larger than the number of
            trainable parameters, or a negative ``every``.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        probe: Iterable[Any],
        *,
        every: int = 100,
        k: int = 30,
        run_dir: str | Path | None = None,
        name: str = "my-run",
        runs_dir: str | Path | None = None,
        open_tui: bool = False,
        optimizer: torch.optim.Optimizer | None = None,
        lr: float | None = None,
        momentum: float | None = None,
        batch_size: int | None = None,
        train_size: int = 0,
        test_size: int = 0,
        dataset: str = "custom",
        task: str | None = None,
        which: str = "magnitude",
        tol: float = 1e-3,
        seed: int = 0,
        warm_start: bool = True,
        max_hvps: int | None = None,
        slices: int = 0,
        slice_points: int = 21,
        slice_step: float = 1.0,
        dead_threshold: float = 1e-3,
        dense_max_params: int = 2000,
        measure_at_start: bool = True,
        measure_at_end: bool = True,
        step_event_seconds: float = 0.2,
        stop_on_divergence: bool = False,
        quiet: bool = False,
    ) -> None:
        if every < 0:
            raise MonitorError(f"every must be >= 0 (steps between measurements), got {every}")
        if k < 1:
            raise MonitorError(f"k must be a positive integer, got {k}")
        if task not in (None, "classification", "regression"):
            raise MonitorError(f"task must be 'classification' or 'regression', got {task!r}")
        if which not in ("magnitude", "largest"):
            raise MonitorError(f"which must be 'magnitude' or 'largest', got {which!r}")
        if slices < 0:
            raise MonitorError(f"slices must be >= 0 (eigenvectors to slice along), got {slices}")
        if slices and (slice_points < 3 or slice_points % 2 == 0):
            raise MonitorError(f"slice_points must be an odd number >= 3, got {slice_points}")
        if slices and not (slice_step > 0 and math.isfinite(slice_step)):
            raise MonitorError(f"slice_step must be a positive number, got {slice_step}")
        self.model = model
        self.loss_fn = loss_fn
        self.device = _device_of(model)
        self.num_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        if k > self.num_params:
            raise MonitorError(f"k={k} is larger than the model's {self.num_params} "
                               "trainable parameters")
        self.probe_batches = materialize_probe(probe, self.device)
        self.probe_size = sum(len(x) for x, _ in self.probe_batches)
        self.every, self.k, self.name = every, k, name
        self.optimizer = optimizer
        self.which, self.tol, self.seed = which, tol, seed
        self.warm_start, self.max_hvps = warm_start, max_hvps
        self.slices, self.slice_points, self.slice_step = slices, slice_points, slice_step
        self.dead_threshold, self.dense_max_params = dead_threshold, dense_max_params
        self.measure_at_start, self.measure_at_end = measure_at_start, measure_at_end
        self.step_event_seconds = step_event_seconds
        self.stop_on_divergence, self.quiet, self.open_tui = stop_on_divergence, quiet, open_tui
        self.batch_size, self.train_size, self.test_size = batch_size, train_size, test_size
        self.dataset = dataset
        y0 = self.probe_batches[0][1]
        self.task = task or ("classification" if y0.ndim == 1 and not y0.is_floating_point()
                             else "regression")
        opt_lr, opt_mom, opt_wd = hyperparams(optimizer)
        self.lr: float | None = lr if lr is not None else opt_lr
        self.momentum: float | None = momentum if momentum is not None else opt_mom
        self.weight_decay = opt_wd or 0.0
        self._run_dir_arg = Path(run_dir) if run_dir is not None else None
        self._runs_dir_arg = runs_dir
        self.run_dir: Path | None = None
        self.run_id: str | None = None
        self.status: Status | None = None  # set when the run has ended
        self.steps = 0  # step() calls so far (optimizer steps)
        self.measurements = 0
        self.measure_seconds = 0.0
        self._emit: Emitter | None = None
        self._writer: EventWriter | None = None
        self._warm: SpectrumResult | None = None
        self._last_measured_step: int | None = None
        self._diverged: str | None = None
        self._last_loss = math.nan
        self._eta = math.nan  # η in force at the last step, NaN when unknown
        self._beta = 0.0  # β in force at the last step
        self._pending_step = False
        self._window_t = 0.0
        self._window_steps = 0
        self._window_measure = 0.0
        self._viewer: subprocess.Popen[bytes] | None = None

    # --- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> Monitor:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        if exc is None:
            self.close()
            return False
        if isinstance(exc, Diverged) and self._diverged is not None:
            self.close()
            return True
        if isinstance(exc, KeyboardInterrupt):
            self.close("interrupted", f"interrupted (KeyboardInterrupt) at step {self.steps}")
            return False
        if isinstance(exc, SystemExit) and exc.code in (0, None):
            self.close()  # sys.exit() / sys.exit(0) inside the block: a normal end
            return False
        if self._emit is not None:
            lines = traceback.format_exception(exc_type, exc, tb)
            for line in "".join(lines).rstrip().splitlines()[-20:]:
                self._emit("log", level="error", message=line[:_MAX_MESSAGE], source="trainer")
        first = f"{type(exc).__name__}: {exc}".splitlines()[0][:_MAX_MESSAGE]
        self.close("failed", f"training raised {first}")
        return False

    def _settings(self) -> dict[str, Any]:
        """The resolved settings, saved as the run's ``profile.json`` (None: unknown)."""
        return {
            "name": self.name, "source": "sgdtop.Monitor", "model": self.name,
            "model_class": type(self.model).__name__, "dataset": self.dataset,
            "task": self.task,
            "lr": self.lr, "batch_size": self.batch_size,
            "momentum": self.momentum if self.momentum is not None else 0.0,
            "weight_decay": self.weight_decay, "k": self.k, "every": self.every,
            "which": self.which, "tol": self.tol, "seed": self.seed,
            "warm_start": self.warm_start, "max_hvps": self.max_hvps or 0,
            "slices": self.slices, "slice_points": self.slice_points,
            "slice_step": self.slice_step,
            "dead_threshold": self.dead_threshold, "dense_max_params": self.dense_max_params,
            "probe_size": self.probe_size, "probe_batch": len(self.probe_batches[0][0]),
            "device": str(self.device),
            "optimizer": type(self.optimizer).__name__ if self.optimizer is not None else None,
        }

    def start(self) -> None:
        """Create the run directory, write ``run_start`` and measure once (unless
        ``measure_at_start`` is False). Called by ``with``."""
        if self._emit is not None:
            raise RuntimeError("this Monitor has already started")
        settings = self._settings()
        if self._run_dir_arg is not None:
            parent, run_id = self._run_dir_arg.parent, self._run_dir_arg.name
        else:
            parent = runs_root(self._runs_dir_arg)
            run_id = new_run_id(self.name, self.lr, self.batch_size)
        parent.mkdir(parents=True, exist_ok=True)
        try:
            run_dir = create_run_dir(parent, run_id, settings)
        except FileExistsError:
            raise MonitorError(f"run directory {parent / run_id} already exists") from None
        self.run_dir, self.run_id = run_dir, run_id
        (run_dir / PID_FILE).write_text(f"{os.getpid()}\n")
        self._writer = EventWriter(run_dir, None)
        self._emit = Emitter(self._writer.write)
        lr, momentum = self._hyper(None, None, None)
        self._eta, self._beta = lr, momentum
        self._emit("run_start", run_id=run_id, profile=settings, model=self.name,
                   num_params=self.num_params, device=str(self.device), versions=versions(),
                   dataset=self.dataset, train_size=self.train_size,
                   test_size=self.test_size, probe_size=self.probe_size, lr=lr,
                   batch_size=self.batch_size, momentum=momentum,
                   weight_decay=self.weight_decay, k=self.k, epochs=0, steps_per_epoch=0,
                   task=self.task, wall_time=time.time(),
                   model_class=type(self.model).__name__, optimizer=settings["optimizer"],
                   source="monitor")
        self._window_t = time.monotonic()
        if not self.quiet:
            print(f"sgdtop: monitoring into {run_dir}  (watch it: sgdtop watch {run_dir})",
                  file=sys.stderr, flush=True)
        self._start_viewer()
        if self.measure_at_start:
            try:
                self.measure()
            except BaseException as exc:  # __exit__ is not called when __enter__ raises
                self.__exit__(type(exc), exc, exc.__traceback__)
                raise

    def close(self, status: Status | None = None, message: str | None = None) -> None:
        """Write ``run_end`` and release the run directory (idempotent). ``status``
        defaults to ``diverged`` after a non-finite loss, else ``completed`` (after a last
        measurement when ``measure_at_end``)."""
        if self._emit is None or self.status is not None:
            return
        emit = self._emit
        try:
            if status is None:
                if self._diverged is not None:
                    status, message = "diverged", self._diverged
                elif self.measure_at_end and self._last_measured_step != self.steps:
                    self._flush_step()
                    self.measure()
                    if self._diverged is not None:  # the probe loss was not finite
                        status, message = "diverged", self._diverged
            self._flush_step()
        except KeyboardInterrupt:
            status = "interrupted"
            message = f"interrupted (KeyboardInterrupt) at step {self.steps}"
            raise
        except BaseException as exc:
            status = "failed"
            message = f"the last measurement raised {type(exc).__name__}: {exc}"
            message = message.splitlines()[0][:_MAX_MESSAGE]
            raise
        finally:
            self.status = status or "completed"
            emit("run_end", status=self.status,
                 message=message or f"{self.steps} steps, {self.measurements} measurements",
                 steps=self.steps, seconds=time.monotonic() - emit.t0,
                 measurements=self.measurements, measure_seconds=self.measure_seconds)
            if self._writer is not None:
                self._writer.close()
            if self.run_dir is not None:
                with contextlib.suppress(OSError):
                    (self.run_dir / PID_FILE).unlink()
            self._wait_viewer()

    # --- the viewer -------------------------------------------------------------------------
    def _start_viewer(self) -> None:
        if not self.open_tui or self.run_dir is None:
            return
        if not (sys.stdout.isatty() and sys.stdin.isatty()):
            self.log("open_tui: stdin/stdout is not a terminal, so no viewer was started; follow "
                     f"the run with `sgdtop watch {self.run_dir}`", level="info")
            return
        self._viewer = subprocess.Popen(  # the viewer owns the terminal (stdin included)
            [sys.executable, "-m", "sgdtop", "watch", str(self.run_dir.resolve())])

    def _wait_viewer(self) -> None:
        if self._viewer is None:
            return
        try:
            self._viewer.wait()
        except KeyboardInterrupt:
            self._viewer.terminate()
            self._viewer.wait(timeout=5)
        self._viewer = None

    # --- in the loop ------------------------------------------------------------------------
    def _hyper(self, lr: float | None, momentum: float | None,
               optimizer: torch.optim.Optimizer | None) -> tuple[float, float]:
        """(η, β) in force: the arguments, else the optimizer's, else the constructor's;
        η unknown is NaN, β unknown is 0 (plain SGD)."""
        opt_lr, opt_mom, _ = hyperparams(optimizer or self.optimizer)
        eta = lr if lr is not None else opt_lr if opt_lr is not None else self.lr
        beta = (momentum if momentum is not None else opt_mom if opt_mom is not None
                else self.momentum)
        return (math.nan if eta is None else float(eta)), (0.0 if beta is None else float(beta))

    def step(self, loss: Tensor | float, lr: float | None = None,
             momentum: float | None = None, optimizer: torch.optim.Optimizer | None = None,
             *, epoch: int | None = None) -> None:
        """Record one optimizer step (call it after ``optimizer.step()``).

        Args:
            loss: the batch's training loss (a tensor or a float).
            lr, momentum: η and β in force (default: read from ``optimizer``, else from
                the monitor's optimizer, else the constructor's values).
            optimizer: read η and β from ``optimizer.param_groups[0]``.
            epoch: the 0-based epoch, if the loop has epochs (stamped on later events).

        Measures on schedule (every ``every`` steps) unless the loss has diverged.
        """
        emit = self._require_started()
        self.steps += 1
        emit.step = self.steps
        if epoch is not None:
            emit.epoch = epoch
        self._eta, self._beta = self._hyper(lr, momentum, optimizer)
        value = float(loss.detach()) if isinstance(loss, Tensor) else float(loss)
        self._last_loss = value
        self._window_steps += 1
        self._pending_step = True
        if not math.isfinite(value):
            self._flush_step()
            if self._diverged is None:
                self._diverged = (f"training loss became {value} at step {self.steps} "
                                  f"(η={self._eta:g})")
                self.log(self._diverged + "; measurements stop", level="warning")
            if self.stop_on_divergence:
                raise Diverged(self._diverged)
            return
        now = time.monotonic()
        if now - self._window_t >= self.step_event_seconds:
            self._flush_step()
        if (self.every and self.steps % self.every == 0 and self._diverged is None):
            self._flush_step()
            self.measure()

    def _flush_step(self) -> None:
        """Write the pending ``step`` event (throughput since the last one, measurement
        time excluded)."""
        if not self._pending_step or self._emit is None:
            return
        now = time.monotonic()
        busy = now - self._window_t - (self.measure_seconds - self._window_measure)
        steps_per_s = self._window_steps / busy if busy > 0 else math.nan
        examples_per_s = (steps_per_s * self.batch_size if self.batch_size else math.nan)
        self._emit("step", lr=self._eta, loss=self._last_loss, examples_per_s=examples_per_s,
                   steps_per_s=steps_per_s)
        self._pending_step = False
        self._window_t, self._window_steps = now, 0
        self._window_measure = self.measure_seconds

    def measure(self, lr: float | None = None, momentum: float | None = None,
                optimizer: torch.optim.Optimizer | None = None) -> None:
        """Measure now: ``spectrum``, ``dense_spectrum`` (small models) and ``neurons``
        events. Side-effect free. η and β: the arguments, else those in force at the last
        :meth:`step` (before the first step: the optimizer's or the constructor's)."""
        from sgdtop.spectrum.errors import NonFiniteError

        emit = self._require_started()
        if self._diverged is not None:
            return
        if lr is None and momentum is None and optimizer is None:
            eta, beta = self._eta, self._beta
        else:
            eta, beta = self._hyper(lr, momentum, optimizer)
        t0 = time.monotonic()
        try:
            self._warm = emit_measurement(
                emit, self.model, self.loss_fn, self.probe_batches, k=self.k,
                which=self.which, tol=self.tol, seed=self.seed + self.measurements,
                warm=self._warm if self.warm_start else None, lr=eta, momentum=beta,
                dead_threshold=self.dead_threshold, dense_max_params=self.dense_max_params,
                max_hvps=self.max_hvps, progress=throttled_progress(emit),
            )
            if self.slices:
                emit_loss_slices(emit, self.model, self.loss_fn, self.probe_batches,
                                 self._warm, lr=eta, directions=self.slices,
                                 points=self.slice_points, step=self.slice_step)
        except NonFiniteError as exc:  # the weights diverged; the user's loop goes on
            self._diverged = f"measuring at step {self.steps}: {exc}"
            self.log(self._diverged + "; measurements stop", level="warning")
            return
        finally:
            self.measure_seconds += time.monotonic() - t0
            self._last_measured_step = self.steps
        self.measurements += 1

    def eval(self, test_loss: float | None = None, test_acc: float | None = None, *,
             test: Iterable[Any] | None = None, train_loss: float | None = None,
             train_acc: float | None = None) -> None:
        """Write an ``eval`` event.

        Give the numbers you computed (``test_loss``, ``test_acc`` in [0, 1]), or ``test``
        (a DataLoader or list of (inputs, targets) batches) to have them computed in eval
        mode, side-effect free. ``train_loss``/``train_acc`` default to the mean loss and
        accuracy over the probe set. Accuracy is NaN unless outputs are (b, C) logits and
        targets (b,) class indices.
        """
        emit = self._require_started()
        if test is not None and (test_loss is None or test_acc is None):
            loss, acc = evaluate_batches(self.model, self.loss_fn, test, self.device)
            test_loss = loss if test_loss is None else test_loss
            test_acc = acc if test_acc is None else test_acc
        if train_loss is None or train_acc is None:
            loss, acc = evaluate_batches(self.model, self.loss_fn, self.probe_batches,
                                         self.device)
            train_loss = loss if train_loss is None else train_loss
            train_acc = acc if train_acc is None else train_acc
        self._flush_step()
        emit("eval", train_loss=float(train_loss), train_acc=float(train_acc),
             test_loss=math.nan if test_loss is None else float(test_loss),
             test_acc=math.nan if test_acc is None else float(test_acc))

    def log(self, message: str, level: str = "info") -> None:
        """Write a ``log`` event (``level``: info, warning or error)."""
        emit = self._require_started()
        emit("log", level=level, message=message[:_MAX_MESSAGE], source="trainer")

    def _require_started(self) -> Emitter:
        if self._emit is None:
            raise RuntimeError("the Monitor is not started: use `with sgdtop.Monitor(...) "
                               "as mon:` (or call mon.start())")
        if self.status is not None:
            raise RuntimeError(f"the Monitor's run has ended ({self.status})")
        return self._emit
