"""The built-in training loop and its measurement schedule: ``prepare(profile)`` builds
data, model and probe set (raising :class:`InputError` for bad input before anything is
written), and ``train(setup, recorder, run_dir)`` runs SGD through a
:class:`~sgdtop.recorder.RunRecorder`, which writes the run (``docs/design.md``, "Run
lifecycle"): this module only decides what to train and when to measure.

Measurement is side-effect free (:mod:`sgdtop.spectrum`, :mod:`sgdtop.neurons`), so a run
trains exactly as it would unmeasured. The measurement schedule (steps are optimizer steps
taken so far):

- once before the first step (``measure_at_start``);
- every ``first_epoch_every`` steps during the first epoch (the paper's Fig. 4 zoom);
- every ``measure_every`` steps;
- every ``slice_every`` steps up to step ``slice_until`` (the paper's Fig. 7), each of these
  measurements (and any other one up to ``slice_until``, the one at step 0 included) also
  emitting a ``loss_slice``: the probe-set loss along the top ``slice_k`` eigenvectors;
- at the end of every epoch (``measure_each_epoch``), after that epoch's evaluation, or of
  every ``measure_every_epochs``-th epoch and the last one.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from sgdtop import data as data_mod
from sgdtop.custom import CustomTask, CustomTaskError, is_custom_spec, load_factory, task_data
from sgdtop.format import duration
from sgdtop.measure import Batches, LossFn, MeasureSettings, evaluate_batches
from sgdtop.models import MODEL_NAMES, InitError, UnknownModelError, build_model, count_params
from sgdtop.profile import Profile
from sgdtop.recorder import RunDescription, RunRecorder, StopRequested, Subject
from sgdtop.schema import RunStatus

#: Expected Lanczos iterations per measurement, as a multiple of k, for the CPU estimate.
_HVPS_PER_K_ESTIMATE = 3.0
#: Hessian-vector product cost in gradients (double backward; measured in benchmarks/).
_HVP_COST_IN_GRADS = 4.0
#: Warn on CPU when one spectrum update is expected to take longer than this (seconds).
_SLOW_UPDATE_S = 20.0


class InputError(ValueError):
    """Bad input found while preparing a run; the message is one line."""


@dataclass
class Setup:
    """Everything a run trains on, built by :func:`prepare`."""

    profile: Profile
    device: torch.device
    task: data_mod.TaskData
    model: nn.Module
    loss_fn: LossFn
    probe_batches: Batches
    num_params: int
    train_size: int
    steps_per_epoch: int
    warnings: list[str] = field(default_factory=list)


def select_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available here (use cpu or auto)")
    return torch.device(name)


def _load_task(p: Profile) -> data_mod.TaskData:
    if p.dataset == "teacher-student":
        probe = data_mod.probe_size_for(p.n_train, p.probe_fraction, p.probe_cap)
        return data_mod.teacher_student(
            n_train=p.n_train, n_test=p.n_test, d=p.input_dim, out_dim=p.output_dim,
            noise_var=p.noise_var, teacher=p.teacher, seed=p.seed, probe_size=probe,
        )
    if p.dataset == "gratings":
        if p.model.startswith("vgg") and p.image_size != 32:
            raise InputError(f"{p.model} needs 32x32 images (5 max-pools); "
                             f"got image_size={p.image_size}: add --set image_size=32")
        probe = data_mod.probe_size_for(p.n_train, p.probe_fraction, p.probe_cap)
        try:
            return data_mod.gratings(
                n_train=p.n_train, n_test=p.n_test, num_classes=p.num_classes,
                size=p.image_size, pixel_noise=p.pixel_noise, fresh_noise=p.fresh_noise,
                seed=p.seed, probe_size=probe)
        except ValueError as exc:  # num_classes < 2, image_size < 8: its own one line
            raise InputError(str(exc)) from None
    if p.dataset == "digits":
        if p.model.startswith("vgg"):
            raise InputError(f"{p.model} needs 3x32x32 images; the digits are 1x8x8: use "
                             "resnet8 (or another resnet)")
        try:
            return data_mod.digits(seed=p.seed, probe_fraction=p.probe_fraction,
                                   probe_cap=p.probe_cap, augment=p.augment,
                                   subset=p.train_subset or None)
        except (data_mod.DatasetMissingError, ValueError) as exc:  # the extra is missing
            raise InputError(str(exc)) from None
    n = p.train_subset or 50_000
    probe = data_mod.probe_size_for(n, p.probe_fraction, p.probe_cap)
    try:
        return data_mod.cifar(
            p.dataset, data_dir=Path(p.data_dir), download=p.download, probe_size=probe,
            seed=p.seed, augment=p.augment, subset=p.train_subset or None,
        )
    except data_mod.DatasetMissingError as exc:
        raise InputError(str(exc)) from None


def prepare(p: Profile) -> Setup:
    """Build the run: device, data, probe set, model. Raises :class:`InputError`."""
    device = select_device(p.device)
    torch.manual_seed(p.seed)
    custom: CustomTask | None = None
    if is_custom_spec(p.model):  # `sgdtop run path/to/file.py:factory`
        try:
            custom = load_factory(p.model, seed=p.seed)
        except CustomTaskError as exc:
            raise InputError(str(exc)) from None
        n = len(custom.train)  # type: ignore[arg-type]
        task = task_data(custom, seed=p.seed, probe_size=data_mod.probe_size_for(
            n, p.probe_fraction, p.probe_cap))
    else:
        task = _load_task(p)
    train_size = len(task.train)  # type: ignore[arg-type]
    if p.batch_size > train_size:
        raise InputError(f"batch_size {p.batch_size} is larger than the training set "
                         f"({train_size} examples)")
    if custom is not None:
        model = custom.model
    else:
        if p.model in MODEL_NAMES and (task.in_features is None) == (p.model == "mlp"):
            kind = "vector" if p.model == "mlp" else "image"
            raise InputError(f"model {p.model} takes {kind} inputs, which dataset "
                             f"{task.name} does not have (mlp: teacher-student; resnet*, "
                             "vgg11: cifar10, cifar100, gratings; resnet*: digits)")
        try:
            model = build_model(p.model, num_classes=task.num_outputs,
                                in_features=task.in_features, hidden=tuple(p.hidden),
                                in_channels=task.in_channels, init=p.init)
        except (UnknownModelError, InitError) as exc:
            raise InputError(str(exc)) from None
    model.to(device)
    num_params = count_params(model)
    if device.type == "cpu":
        torch.set_num_threads(cpu_threads(p.threads, num_params))
    if p.k > num_params:
        raise InputError(f"k={p.k} is larger than the model's {num_params} trainable "
                         "parameters")
    loss_fn: LossFn
    if custom is not None:
        loss_fn = custom.resolved_loss()
    else:
        loss_fn = nn.MSELoss() if task.task == "regression" else nn.CrossEntropyLoss()
    probe_batches = [(x.to(device), y.to(device))
                     for x, y in data_mod.probe_batches(task.probe, p.probe_batch)]
    if not probe_batches:
        raise InputError("the probe set is empty (raise probe_fraction)")
    steps_per_epoch = math.ceil(train_size / p.batch_size)
    setup = Setup(profile=p, device=device, task=task, model=model, loss_fn=loss_fn,
                  probe_batches=probe_batches, num_params=num_params, train_size=train_size,
                  steps_per_epoch=steps_per_epoch)
    if device.type == "cpu":
        estimate = estimate_update_seconds(setup)
        if estimate > _SLOW_UPDATE_S:
            setup.warnings.append(
                f"on CPU one spectrum update will take about {duration(estimate)} "
                f"({len(probe_batches)} probe batches, k={p.k}); lower it with a smaller "
                "--k, --set probe_cap=512, fewer measurements (--set first_epoch_every=0), "
                "or --device cuda")
    return setup


#: Below this many parameters, one CPU thread is faster than several (thread overhead).
_SMALL_MODEL_PARAMS = 200_000


def cpu_threads(requested: int, num_params: int) -> int:
    """Intra-op CPU threads: ``requested`` if > 0; else 1 for small models (their ops are
    too short to split: on a busy 2-core machine a 625-parameter HVP took 195 ms with 2
    threads and 1.2 ms with one), else torch's default."""
    if requested > 0:
        return requested
    return 1 if num_params < _SMALL_MODEL_PARAMS else torch.get_num_threads()


def estimate_update_seconds(setup: Setup) -> float:
    """Rough seconds for one top-k spectrum update: one timed gradient on one probe
    micro-batch × batches × HVP cost in gradients × expected Lanczos iterations."""
    model, (x, y) = setup.model, setup.probe_batches[0]
    params = [q for q in model.parameters() if q.requires_grad]
    was_training = model.training
    model.eval()
    try:
        t0 = time.perf_counter()
        loss = setup.loss_fn(model(x), y)
        torch.autograd.grad(loss, params)
        grad_s = time.perf_counter() - t0
    finally:
        model.train(was_training)
    iters = min(setup.num_params, _HVPS_PER_K_ESTIMATE * setup.profile.k + 10)
    return grad_s * len(setup.probe_batches) * _HVP_COST_IN_GRADS * iters


def lr_at(p: Profile, step: int, steps_per_epoch: int) -> float:
    """Learning rate η for optimizer step ``step`` (0-based) under the profile's schedule."""
    if p.lr_schedule == "step":
        epoch = step // steps_per_epoch
        return p.lr * p.lr_gamma ** sum(1 for m in p.lr_milestones if epoch >= m)
    if p.lr_schedule == "cosine":
        total = p.epochs * steps_per_epoch
        return 0.5 * p.lr * (1 + math.cos(math.pi * min(step, total) / total))
    return p.lr


def _train_batches(setup: Setup, gen: torch.Generator) -> Iterator[tuple[torch.Tensor,
                                                                        torch.Tensor]]:
    """One epoch of shuffled training batches on the device. In-memory tensor data is
    indexed directly (no DataLoader overhead), each batch passed through the task's
    ``augment`` if it has one (drawing from ``gen``); image data goes through a
    DataLoader."""
    p, ds = setup.profile, setup.task.train
    if isinstance(ds, torch.utils.data.TensorDataset):
        xs, ys = ds.tensors
        if xs.device != setup.device:
            xs, ys = xs.to(setup.device), ys.to(setup.device)
            ds.tensors = (xs, ys)
        perm = torch.randperm(len(xs), generator=gen).to(setup.device)
        augment = setup.task.augment
        for i in range(0, len(xs), p.batch_size):
            idx = perm[i:i + p.batch_size]
            yield (xs[idx] if augment is None else augment(xs[idx], gen)), ys[idx]
        return
    cuda = setup.device.type == "cuda"
    loader = torch.utils.data.DataLoader(
        ds, batch_size=p.batch_size, shuffle=True, generator=gen,
        num_workers=4 if cuda else 2, pin_memory=cuda, persistent_workers=False)
    for x, y in loader:
        yield x.to(setup.device, non_blocking=True), y.to(setup.device, non_blocking=True)


def _evaluate(setup: Setup, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]
              ) -> tuple[float, float]:
    """(mean loss, accuracy) over ``batches`` in eval mode, side-effect free; accuracy is
    NaN for regression."""
    return evaluate_batches(setup.model, setup.loss_fn, batches, setup.device,
                            classification=setup.task.task == "classification")


def _test_batches(setup: Setup, batch_size: int = 512) -> Iterable[tuple[torch.Tensor,
                                                                          torch.Tensor]]:
    """The test set in batches: in-memory tensors are sliced (a DataLoader would index
    and collate them one example at a time), image data goes through a DataLoader."""
    ds = setup.task.test
    if isinstance(ds, torch.utils.data.TensorDataset):
        xs, ys = ds.tensors
        return [(xs[i:i + batch_size], ys[i:i + batch_size])
                for i in range(0, len(xs), batch_size)]
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False,
                                       num_workers=2 if setup.device.type == "cuda" else 0)


def measure_settings(p: Profile) -> MeasureSettings:
    """The measurement options of a profile."""
    return MeasureSettings(
        k=p.k, which=p.which, tol=p.tol, seed=p.seed, warm_start=p.warm_start,
        max_hvps=p.max_hvps or None, dead_threshold=p.dead_threshold,
        dense_max_params=p.dense_max_params, batch_norm=p.hessian_bn, slice_k=p.slice_k,
        slice_points=p.slice_points, slice_step=p.slice_step)


def describe(setup: Setup) -> RunDescription:
    """``run_start``'s description of a prepared run."""
    p, task = setup.profile, setup.task
    return RunDescription(
        model=p.model, num_params=setup.num_params, device=str(setup.device),
        dataset=task.name, train_size=setup.train_size,
        test_size=len(task.test),  # type: ignore[arg-type]
        probe_size=len(task.probe),  # type: ignore[arg-type]
        lr=p.lr, batch_size=p.batch_size, momentum=p.momentum,
        weight_decay=p.weight_decay, k=p.k, epochs=p.epochs,
        steps_per_epoch=setup.steps_per_epoch, task=task.task)


@dataclass
class Outcome:
    """How a run ended: a run_end status, a one-line message, steps taken."""

    status: RunStatus
    message: str
    steps: int


class Trainer:
    """One run of SGD with measurements on a schedule (module docstring), recorded by
    ``recorder`` (already started). Call :meth:`run`."""

    def __init__(self, setup: Setup, recorder: RunRecorder) -> None:
        self.setup = setup
        self.profile = setup.profile
        self.recorder = recorder

    def measure(self, lr: float) -> None:
        """One measurement at η = ``lr``, with a loss slice while ``slice_every`` is on
        and the step is at most ``slice_until`` (nothing when η is unknown: the distances
        are in units of η)."""
        p, rec = self.profile, self.recorder
        rec.measure(lr=lr, momentum=p.momentum,
                    slices=bool(p.slice_every) and rec.clock.step <= p.slice_until)

    def evaluate(self) -> None:
        """Loss and accuracy on the probe set (train) and the test set, as an ``eval``."""
        train_loss, train_acc = _evaluate(self.setup, self.setup.probe_batches)
        test_loss, test_acc = _evaluate(self.setup, _test_batches(self.setup))
        self.recorder.eval(train_loss=train_loss, train_acc=train_acc, test_loss=test_loss,
                           test_acc=test_acc)

    def _due(self, step: int, epoch: int) -> bool:
        p = self.profile
        if p.measure_every and step % p.measure_every == 0:
            return True
        if p.slice_every and step <= p.slice_until and step % p.slice_every == 0:
            return True
        return bool(epoch == 0 and p.first_epoch_every and step % p.first_epoch_every == 0)

    def run(self) -> Outcome:
        """Train ``epochs`` epochs (or until a stop, divergence or write failure)."""
        setup, p, rec = self.setup, self.profile, self.recorder
        model = setup.model
        params = [q for q in model.parameters() if q.requires_grad]
        opt = torch.optim.SGD(params, lr=p.lr, momentum=p.momentum,
                              weight_decay=p.weight_decay)
        gen = torch.Generator().manual_seed(p.seed)
        step = 0
        try:
            if p.measure_at_start:
                self.measure(lr_at(p, 0, setup.steps_per_epoch))
            model.train()
            for epoch in range(p.epochs):
                rec.clock.epoch = epoch
                for x, y in _train_batches(setup, gen):
                    if rec.stopping:
                        raise StopRequested
                    lr = lr_at(p, step, setup.steps_per_epoch)
                    for group in opt.param_groups:
                        group["lr"] = lr
                    opt.zero_grad(set_to_none=True)
                    loss = setup.loss_fn(model(x), y)
                    loss.backward()
                    opt.step()
                    step += 1
                    rec.step(float(loss.detach()), lr=lr, batch_size=len(x))
                    if rec.diverged is None and self._due(step, epoch):
                        self.measure(lr)
                    if rec.diverged is not None:
                        return Outcome("diverged", rec.diverged, step)
                self.evaluate()
                epoch_due = ((epoch + 1) % p.measure_every_epochs == 0
                             or epoch == p.epochs - 1)
                if p.measure_each_epoch and epoch_due and rec.last_measured_step != step:
                    self.measure(lr_at(p, max(step - 1, 0), setup.steps_per_epoch))
                    if rec.diverged is not None:
                        return Outcome("diverged", rec.diverged, step)
            return Outcome("completed", f"{p.epochs} epochs, {step} steps", step)
        except StopRequested:
            return Outcome("interrupted", f"stopped at step {step}", step)


def train(setup: Setup, recorder: RunRecorder, run_dir: Path | None = None,
          on_created: Callable[[Path], None] | None = None) -> Outcome:
    """The run up to its end: ``recorder.start`` (creating ``run_dir``; None: pipe and
    sink only), the setup's warnings as ``log`` records, training with measurements.
    Returns the outcome; the caller ends the run with ``recorder.end(outcome.status,
    outcome.message)`` (the worker first collects its captured output).

    Raises:
        sgdtop.recorder.RunDirError: ``run_dir`` cannot be created (nothing was written).
    """
    p = setup.profile
    recorder.step_event_seconds = p.step_event_seconds
    recorder.start(run_dir, profile=p.to_dict(), description=describe(setup),
                   subject=Subject(setup.model, setup.loss_fn, setup.probe_batches,
                                   measure_settings(p)), on_created=on_created)
    for message in setup.warnings:
        recorder.log(message, level="warning")
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        return Trainer(setup, recorder).run()
