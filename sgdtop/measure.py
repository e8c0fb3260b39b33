"""One measurement as events: the code the built-in trainer (:mod:`sgdtop.train`) and the
library monitor (:mod:`sgdtop.monitor`) share.

A *measurement* is, on the probe set (DESIGN.md):

1. the top-k Hessian eigenvalues (:func:`sgdtop.spectrum.hessian_spectrum`) → one
   ``spectrum`` event;
2. for models of at most ``dense_max_params`` trainable parameters, the exact full spectrum
   (:func:`sgdtop.spectrum.dense_spectrum`) → one ``dense_spectrum`` event;
3. the dead-neuron share on the first probe batch (:func:`sgdtop.probes.dead_neurons`) →
   one ``neurons`` event (always last: sinks close a measurement on it);
4. where asked (:func:`emit_loss_slices`), after those: the loss along the top
   eigenvectors → one ``loss_slice`` event (the paper's Fig. 7).

Measuring is side-effect free: the spectrum and probe functions restore parameters,
buffers, train/eval mode and ``.grad``; :func:`emit_measurement` also runs them inside
:func:`preserved_rng`, so torch's global random state (CPU and the model's CUDA device) is
exactly as before and the training that follows draws the same numbers it would unmeasured.

Also here, because both callers need them: :class:`Emitter` (stamps ``t``, ``step``,
``epoch``), :func:`versions`, :func:`throttled_progress` (``spectrum_progress`` events) and
:func:`evaluate_batches` (loss and accuracy of a model over batches, side-effect free).
"""

from __future__ import annotations

import contextlib
import math
import platform
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import Tensor, nn

import sgdtop
from sgdtop.events import Event, make_event

if TYPE_CHECKING:
    from sgdtop.spectrum import SpectrumResult

LossFn = Callable[[Tensor, Tensor], Tensor]
"""A loss: ``loss_fn(outputs, targets)`` → the mean loss of the batch (a 0-d tensor)."""

Batches = list[tuple[Tensor, Tensor]]
"""The probe set as (inputs, targets) batches, already on the model's device."""

#: Seconds between two ``spectrum_progress`` events of one measurement.
PROGRESS_EVERY_S = 0.5


class Emit(Protocol):
    """Anything that turns ``(kind, **fields)`` into an event and writes it (an
    :class:`Emitter`)."""

    def __call__(self, kind: str, **fields: Any) -> Event: ...


class Emitter:
    """Stamps events with ``t`` (seconds since ``t0``, monotonic clock), ``step`` (optimizer
    steps taken so far) and ``epoch`` (0-based) and hands them to ``sink``."""

    def __init__(self, sink: Callable[[Event], None], t0: float | None = None) -> None:
        self.sink = sink
        self.t0 = time.monotonic() if t0 is None else t0
        self.step = 0
        self.epoch = 0

    def __call__(self, kind: str, **fields: Any) -> Event:
        ev = make_event(kind, time.monotonic() - self.t0, step=self.step, epoch=self.epoch,
                        **fields)
        self.sink(ev)
        return ev


def versions() -> dict[str, str]:
    """Versions of what produced the run (``run_start``'s ``versions``)."""
    return {"sgdtop": sgdtop.__version__, "python": platform.python_version(),
            "torch": torch.__version__, "platform": sys.platform}


@contextlib.contextmanager
def preserved_rng(device: torch.device) -> Iterator[None]:
    """Run the body with torch's global random state saved and restored afterwards: the
    CPU generator and, for a CUDA ``device``, that device's generator."""
    devices: list[int] = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices):
        yield


def throttled_progress(emit: Emit, *, every_s: float = PROGRESS_EVERY_S,
                       check: Callable[[], None] | None = None,
                       ) -> Callable[[int, float], None]:
    """A ``progress(hvps, seconds)`` callback for :func:`sgdtop.spectrum.hessian_spectrum`
    that emits ``spectrum_progress`` at most once per ``every_s`` seconds. ``check`` is
    called on every report first; it may raise to abandon the measurement (a stop)."""
    last = [time.monotonic()]

    def progress(hvps: int, seconds: float) -> None:
        if check is not None:
            check()
        now = time.monotonic()
        if now - last[0] >= every_s:
            last[0] = now
            emit("spectrum_progress", hvps=hvps, seconds=seconds)

    return progress


def emit_measurement(
    emit: Emit,
    model: nn.Module,
    loss_fn: LossFn,
    probe_batches: Batches,
    *,
    k: int,
    which: str = "magnitude",
    tol: float = 1e-3,
    seed: int = 0,
    warm: SpectrumResult | None = None,
    lr: float,
    momentum: float,
    dead_threshold: float = 1e-3,
    dense_max_params: int = 2000,
    max_hvps: int | None = None,
    progress: Callable[[int, float], None] | None = None,
    batch_norm: str = "running",
) -> SpectrumResult:
    """Measure ``model`` on ``probe_batches`` and emit ``spectrum``, ``dense_spectrum``
    (models of at most ``dense_max_params`` trainable parameters) and ``neurons``.

    Args:
        emit: writes one event (an :class:`Emitter`).
        model, loss_fn, probe_batches: what is measured; H is the Hessian of the mean of
            ``loss_fn`` over the probe batches (weighted by batch size), model in eval mode.
        k, which, tol, seed, max_hvps, progress: passed to ``hessian_spectrum``
            (``which``: "magnitude" orders by |λ|, "largest" by λ; ``tol``: relative Ritz
            residual; ``seed``: the Lanczos start vector).
        warm: the previous measurement's result to warm-start Lanczos from, or None.
        lr: learning rate η in force (NaN when unknown); gives η·λ₁ and 2(1+β)/η.
        momentum: momentum β (0 for plain SGD).
        dead_threshold: a unit is dead when its mean |activation| is below this.
        dense_max_params: exact full spectrum for models up to this many parameters
            (0: never).
        batch_norm: ``"running"`` (eval mode, the paper) or ``"batch"`` (batch norm on
            each probe micro-batch's statistics, as in training) for the Hessian.

    Returns:
        The spectrum result, to pass back as ``warm`` next time.

    Raises:
        sgdtop.spectrum.errors.NonFiniteError: the probe loss or an HVP is NaN/inf (a diverged
            model); the events of this measurement are then not (all) written.
    """
    from sgdtop.probes import dead_neurons
    from sgdtop.spectrum import dense_spectrum, hessian_spectrum

    device = probe_batches[0][0].device
    num_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    with preserved_rng(device):
        res = hessian_spectrum(model, loss_fn, probe_batches, k=k, which=which, tol=tol,
                               seed=seed, warm_start=warm, progress=progress,
                               max_hvps=max_hvps, batch_norm=batch_norm)
        emit("spectrum", **res.event_fields(lr=lr, momentum=momentum), k=k, which=which,
             tol=tol, batch_norm=batch_norm)
        if num_params <= dense_max_params:
            d = dense_spectrum(model, loss_fn, probe_batches, max_params=dense_max_params,
                               batch_norm=batch_norm)
            emit("dense_spectrum", **d.event_fields(), seconds=d.seconds)
        rep = dead_neurons(model, probe_batches[0][0], threshold=dead_threshold)
        emit("neurons", dead_pct=float(rep.dead_pct), threshold=dead_threshold,
             layers=[{"name": layer.name, "units": int(layer.units), "dead": int(layer.dead),
                      "dead_pct": float(layer.dead_pct)} for layer in rep.layers])
    return res


def emit_loss_slices(
    emit: Emit,
    model: nn.Module,
    loss_fn: LossFn,
    probe_batches: Batches,
    result: SpectrumResult,
    *,
    lr: float,
    directions: int = 4,
    points: int = 21,
    step: float = 1.0,
    batch_norm: str = "running",
) -> None:
    """Emit a ``loss_slice``: the probe loss along the top ``directions`` Ritz vectors of
    ``result`` (at most all k) at distances j·``step``·η, j = −m…m, ``points`` = 2m + 1
    (:func:`sgdtop.spectrum.loss_slices`). Nothing is emitted when η is unknown (NaN) or
    not positive: the distances are in units of η. Side-effect free."""
    from sgdtop.spectrum import loss_slices, slice_distances

    if not (math.isfinite(lr) and lr > 0):
        return
    m = min(directions, len(result.eigenvalues))
    with preserved_rng(probe_batches[0][0].device):
        sl = loss_slices(model, loss_fn, probe_batches, result.ritz_vectors[:, :m],
                         slice_distances(lr, points, step), eigenvalues=result.eigenvalues[:m],
                         lr=lr, batch_norm=batch_norm)
    emit("loss_slice", **sl.event_fields())


def is_classification(outputs: Tensor, targets: Tensor) -> bool:
    """Whether accuracy is defined for a batch: outputs are (b, C) logits with C ≥ 2 and
    targets are (b,) integer class indices."""
    return (outputs.ndim == 2 and outputs.shape[1] >= 2 and targets.ndim == 1
            and not targets.is_floating_point() and not targets.is_complex())


def evaluate_batches(model: nn.Module, loss_fn: LossFn,
                     batches: Iterable[tuple[Tensor, Tensor]], device: torch.device,
                     classification: bool | None = None) -> tuple[float, float]:
    """(mean loss, accuracy in [0, 1]) of ``model`` over ``batches``, in eval mode.

    The loss is the example-weighted mean of ``loss_fn`` per batch. Accuracy is the share
    of argmax predictions equal to the target; NaN when ``classification`` is False, or,
    when it is None, for batches that are not classification batches
    (:func:`is_classification`). Both are NaN when ``batches`` is empty.

    Side-effect free (:func:`sgdtop.spectrum.guard.measuring`): every submodule's
    train/eval flag and every buffer are restored, and torch's global random state (a
    DataLoader draws a seed from it) is preserved.
    """
    from sgdtop.spectrum.guard import measuring

    total, loss_sum, correct, counted = 0, 0.0, 0, 0
    with preserved_rng(device), measuring(model), torch.no_grad():
        for x, y in batches:
            x, y = x.to(device), y.to(device)
            out = model(x)
            n = len(x)
            loss_sum += float(loss_fn(out, y)) * n
            total += n
            cls = is_classification(out, y) if classification is None else classification
            if cls:
                correct += int((out.argmax(dim=1) == y).sum())
                counted += n
    if total == 0:
        return math.nan, math.nan
    return loss_sum / total, (correct / counted if counted == total else math.nan)
