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

Definitions are ``docs/design.md``'s: H is the Hessian of the mean of ``loss_fn`` over the
*probe* batches (fixed, materialised once on the model's device) w.r.t. all trainable
parameters, model in eval mode (``hessian_bn="running"``, the paper's protocol) or with batch
norm on each probe batch's statistics (``hessian_bn="batch"``, the function SGD
differentiates). The run is written by a :class:`sgdtop.recorder.RunRecorder`, the same
lifecycle as ``sgdtop run``'s trainer (``docs/design.md``, "Run lifecycle"). Measuring
changes nothing the training sees — parameters, buffers, train/eval mode, ``.grad``,
optimizer state and torch's global random state — so a loop trains bit for bit the same
with and without the monitor.

How the run ends (``run_end``'s status): ``completed`` when the ``with`` block exits
normally, ``interrupted`` on ``KeyboardInterrupt`` (Ctrl+C, or ``sgdtop stop RUN``, which
sends SIGINT to this process), ``failed`` on any other exception (which propagates), and
``diverged`` once a non-finite loss was passed to :meth:`Monitor.step` or the probe loss
became non-finite (measurements stop then and the loop goes on; with
``stop_on_divergence=True`` :meth:`Monitor.step` raises :class:`Diverged` instead, which
ends the ``with`` block and is swallowed by it), and ``failed`` when the run directory
stops taking events (a full disk: one ``sgdtop: error:`` line on stderr, measurements stop,
the loop goes on). ``sys.exit(0)`` inside the block is a normal end.
"""

from __future__ import annotations

import math
import subprocess
import sys
import traceback
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import torch
from torch import Tensor, nn

from sgdtop.measure import (
    BATCH_NORM_MODES,
    Batches,
    LossFn,
    MeasureSettings,
    evaluate_batches,
    preserved_rng,
)
from sgdtop.models import count_params
from sgdtop.recorder import (
    MAX_MESSAGE,
    RunDescription,
    RunDirError,
    RunRecorder,
    StopRequested,
    Subject,
    new_run_id,
)
from sgdtop.schema import LogLevel
from sgdtop.store import runs_root

Status = Literal["completed", "interrupted", "diverged", "failed"]


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
        hessian_bn: batch norm in H: ``"running"`` (eval mode, the paper's protocol; a
            warning is logged once when η·λ₁ reads far above the stability limit, as it
            does for batch-norm models) or ``"batch"`` (each probe batch's statistics).
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
            trainable parameters, a negative ``every``, or other bad settings; at
            :meth:`start`, a run directory that exists or cannot be written.
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
        hessian_bn: str = "running",
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
        if hessian_bn not in BATCH_NORM_MODES:
            raise MonitorError(f"hessian_bn must be 'running' or 'batch', got {hessian_bn!r}")
        if slices < 0:
            raise MonitorError(f"slices must be >= 0 (eigenvectors to slice along), got {slices}")
        if slices and (slice_points < 3 or slice_points % 2 == 0):
            raise MonitorError(f"slice_points must be an odd number >= 3, got {slice_points}")
        if slices and not (slice_step > 0 and math.isfinite(slice_step)):
            raise MonitorError(f"slice_step must be a positive number, got {slice_step}")
        self.model = model
        self.loss_fn = loss_fn
        self.device = _device_of(model)
        self.num_params = count_params(model)
        if k > self.num_params:
            raise MonitorError(f"k={k} is larger than the model's {self.num_params} "
                               "trainable parameters")
        self.probe_batches = materialize_probe(probe, self.device)
        self.probe_size = sum(len(x) for x, _ in self.probe_batches)
        self.every, self.k, self.name = every, k, name
        self.optimizer = optimizer
        self.settings = MeasureSettings(
            k=k, which=which, tol=tol, seed=seed, warm_start=warm_start, max_hvps=max_hvps,
            dead_threshold=dead_threshold, dense_max_params=dense_max_params,
            batch_norm=hessian_bn, slice_k=slices, slice_points=slice_points,
            slice_step=slice_step)
        self.measure_at_start, self.measure_at_end = measure_at_start, measure_at_end
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
        self._recorder = RunRecorder(step_event_seconds=step_event_seconds)
        self._warned_stop = False
        self._eta = math.nan  # η in force at the last step, NaN when unknown
        self._beta = 0.0  # β in force at the last step
        self._viewer: subprocess.Popen[bytes] | None = None

    # --- what the recorder knows ----------------------------------------------------------
    @property
    def run_dir(self) -> Path | None:
        """The run directory, once started."""
        return self._recorder.run_dir

    @property
    def run_id(self) -> str | None:
        """The run id (the run directory's name), once started."""
        return self._recorder.run_id if self._recorder.started else None

    @property
    def status(self) -> Status | None:
        """``run_end``'s status once the run has ended, else None."""
        return self._recorder.status

    @property
    def steps(self) -> int:
        """:meth:`step` calls so far (optimizer steps)."""
        return self._recorder.clock.step

    @property
    def measurements(self) -> int:
        """Measurements taken."""
        return self._recorder.measurements

    @property
    def measure_seconds(self) -> float:
        """Wall time spent measuring (s)."""
        return self._recorder.measure_seconds

    # --- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> Monitor:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        if exc is None:
            self.close()
            return False
        if isinstance(exc, Diverged) and self._recorder.diverged is not None:
            self.close()
            return True
        if isinstance(exc, KeyboardInterrupt):
            self.close("interrupted", f"interrupted (KeyboardInterrupt) at step {self.steps}")
            return False
        if isinstance(exc, SystemExit) and exc.code in (0, None):
            self.close()  # sys.exit() / sys.exit(0) inside the block: a normal end
            return False
        if self._recorder.started and self.status is None:
            lines = traceback.format_exception(exc_type, exc, tb)
            for line in "".join(lines).rstrip().splitlines()[-20:]:
                self._recorder.log(line, level="error")
        first = f"{type(exc).__name__}: {exc}".splitlines()[0][:MAX_MESSAGE]
        self.close("failed", f"training raised {first}")
        return False

    def _settings(self) -> dict[str, Any]:
        """The resolved settings, saved as the run's ``profile.json`` (None: unknown)."""
        s = self.settings
        return {
            "name": self.name, "source": "sgdtop.Monitor", "model": self.name,
            "model_class": type(self.model).__name__, "dataset": self.dataset,
            "task": self.task,
            "lr": self.lr, "batch_size": self.batch_size,
            "momentum": self.momentum if self.momentum is not None else 0.0,
            "weight_decay": self.weight_decay, "k": self.k, "every": self.every,
            "which": s.which, "tol": s.tol, "seed": s.seed,
            "warm_start": s.warm_start, "max_hvps": s.max_hvps or 0,
            "hessian_bn": s.batch_norm,
            "slices": s.slice_k, "slice_points": s.slice_points,
            "slice_step": s.slice_step,
            "dead_threshold": s.dead_threshold, "dense_max_params": s.dense_max_params,
            "probe_size": self.probe_size, "probe_batch": len(self.probe_batches[0][0]),
            "device": str(self.device),
            "optimizer": type(self.optimizer).__name__ if self.optimizer is not None else None,
        }

    def start(self) -> None:
        """Create the run directory, write ``run_start`` and measure once (unless
        ``measure_at_start`` is False). Called by ``with``.

        Raises:
            MonitorError: the run directory exists or cannot be created or written (the
                message names it).
        """
        rec = self._recorder
        if rec.started or rec.status is not None:
            raise RuntimeError("this Monitor has already started")
        settings = self._settings()
        if self._run_dir_arg is not None:
            run_dir = self._run_dir_arg
        else:
            run_dir = runs_root(self._runs_dir_arg) / new_run_id(self.name, self.lr,
                                                                   self.batch_size)
        self._eta, self._beta = self._hyper(None, None, None)
        description = RunDescription(
            model=self.name, num_params=self.num_params, device=str(self.device),
            dataset=self.dataset, train_size=self.train_size, test_size=self.test_size,
            probe_size=self.probe_size, lr=self._eta, batch_size=self.batch_size,
            momentum=self._beta, weight_decay=self.weight_decay, k=self.k, epochs=0,
            steps_per_epoch=0, task=self.task, model_class=type(self.model).__name__,
            optimizer=settings["optimizer"], source="monitor")
        try:
            rec.start(run_dir, profile=settings, description=description,
                      subject=Subject(self.model, self.loss_fn, self.probe_batches,
                                      self.settings))
        except RunDirError as exc:
            raise MonitorError(str(exc)) from None
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
        rec = self._recorder
        if not rec.started or rec.status is not None:
            return
        try:
            if status is None:
                if rec.diverged is not None:
                    status, message = "diverged", rec.diverged
                elif self.measure_at_end and rec.last_measured_step != self.steps:
                    self.measure()
                    if rec.diverged is not None:  # the probe loss was not finite
                        status, message = "diverged", rec.diverged
        except KeyboardInterrupt:
            status = "interrupted"
            message = f"interrupted (KeyboardInterrupt) at step {self.steps}"
            raise
        except BaseException as exc:
            status = "failed"
            message = f"the last measurement raised {type(exc).__name__}: {exc}"
            message = message.splitlines()[0][:MAX_MESSAGE]
            raise
        finally:
            rec.end(status or "completed",
                    message or f"{self.steps} steps, {self.measurements} measurements")
            self._wait_viewer()

    # --- the viewer -------------------------------------------------------------------------
    def _start_viewer(self) -> None:
        if not self.open_tui or self.run_dir is None:
            return
        if not (sys.stdout.isatty() and sys.stdin.isatty()):
            self.log("open_tui: stdin/stdout is not a terminal, so no viewer was started; follow "
                     f"the run with `sgdtop watch {self.run_dir}`", level="info")
            return
        # the viewer owns the terminal (stdin included); -P: the working directory is not
        # put on its sys.path (a json.py there must not replace the standard library's)
        self._viewer = subprocess.Popen(
            [sys.executable, "-P", "-m", "sgdtop", "watch", str(self.run_dir.resolve())])

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
        rec = self._require_started()
        self._eta, self._beta = self._hyper(lr, momentum, optimizer)
        value = float(loss.detach()) if isinstance(loss, Tensor) else float(loss)
        if rec.step(value, lr=self._eta, batch_size=self.batch_size, epoch=epoch):
            self.log(f"{rec.diverged}; measurements stop", level="warning")
        if rec.diverged is not None:
            if self.stop_on_divergence and not math.isfinite(value):
                raise Diverged(rec.diverged)
            return
        if self.every and self.steps % self.every == 0:
            self.measure()

    def measure(self, lr: float | None = None, momentum: float | None = None,
                optimizer: torch.optim.Optimizer | None = None) -> None:
        """Measure now: ``spectrum``, ``dense_spectrum`` (small models), ``neurons`` and,
        with ``slices``, ``loss_slice`` events. Side-effect free. η and β: the arguments,
        else those in force at the last :meth:`step` (before the first step: the
        optimizer's or the constructor's)."""
        rec = self._require_started()
        if rec.diverged is not None or self._write_failed():
            return
        if lr is None and momentum is None and optimizer is None:
            eta, beta = self._eta, self._beta
        else:
            eta, beta = self._hyper(lr, momentum, optimizer)
        try:
            measured = rec.measure(lr=eta, momentum=beta)
        except StopRequested:
            if self._write_failed():  # reported once on stderr; the user's loop goes on
                return
            raise
        if not measured and rec.diverged is not None:
            self.log(f"{rec.diverged}; measurements stop", level="warning")

    def _write_failed(self) -> bool:
        """Whether the run directory stopped taking events (the recorder said so on
        stderr; the run will end ``failed``)."""
        return self._recorder.write_error is not None

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
        rec = self._require_started()
        if test is not None and (test_loss is None or test_acc is None):
            loss, acc = evaluate_batches(self.model, self.loss_fn, test, self.device)
            test_loss = loss if test_loss is None else test_loss
            test_acc = acc if test_acc is None else test_acc
        if train_loss is None or train_acc is None:
            loss, acc = evaluate_batches(self.model, self.loss_fn, self.probe_batches,
                                         self.device)
            train_loss = loss if train_loss is None else train_loss
            train_acc = acc if train_acc is None else train_acc
        rec.eval(train_loss=float(train_loss), train_acc=float(train_acc),
                 test_loss=math.nan if test_loss is None else float(test_loss),
                 test_acc=math.nan if test_acc is None else float(test_acc))

    def log(self, message: str, level: LogLevel = "info") -> None:
        """Write a ``log`` event (``level``: info, warning or error)."""
        self._require_started().log(message, level=level)

    def _require_started(self) -> RunRecorder:
        rec = self._recorder
        if not rec.started:
            raise RuntimeError("the Monitor is not started: use `with sgdtop.Monitor(...) "
                               "as mon:` (or call mon.start())")
        if rec.status is not None:
            raise RuntimeError(f"the Monitor's run has ended ({rec.status})")
        return rec
