"""One measurement of a model on its probe set: the torch side of
:meth:`sgdtop.recorder.RunRecorder.measure`, shared by every recorder user (the built-in
trainer, :class:`sgdtop.Monitor`, later framework callbacks).

A *measurement* is, on the probe set (``docs/design.md``, "Measurement"):

1. the top-k Hessian eigenvalues (:func:`sgdtop.spectrum.hessian_spectrum`);
2. for models of at most ``dense_max_params`` trainable parameters, the exact full spectrum
   (:func:`sgdtop.spectrum.dense_spectrum`);
3. the dead-neuron share on the first probe batch (:func:`sgdtop.neurons.dead_neurons`),
   always last (sinks close a measurement on its record);
4. where asked (:func:`take_slices`), after those: the loss along the top eigenvectors
   (the paper's Fig. 7).

:func:`take_measurement` yields the results in that order, so each record is written as
soon as its result exists. Measuring is side-effect free: the spectrum and neuron functions
restore parameters, buffers, train/eval mode and ``.grad``, and they run inside
:func:`preserved_rng`, so torch's global random state (CPU and the model's CUDA device) is
exactly as before and the training that follows draws the same numbers it would unmeasured.

Also here: the types :data:`LossFn` and :data:`Batches` (defined once, imported by every
layer above), :class:`MeasureSettings` (the options every recorder user shares),
:func:`evaluate_batches`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import torch
from torch import Tensor, nn

from sgdtop.models import count_params

if TYPE_CHECKING:
    from sgdtop.neurons import NeuronReport
    from sgdtop.spectrum import SpectrumResult
    from sgdtop.spectrum.dense import DenseSpectrum
    from sgdtop.spectrum.slices import LossSlices

LossFn = Callable[[Tensor, Tensor], Tensor]
"""A loss: ``loss_fn(outputs, targets)`` → the mean loss of the batch (a 0-d tensor)."""

Batches = list[tuple[Tensor, Tensor]]
"""The probe set as (inputs, targets) batches, already on the model's device."""

BATCH_NORM_MODES: Final[tuple[str, ...]] = ("running", "batch")
"""How batch norm is treated in H: ``running`` (eval mode, the paper) or ``batch`` (each
probe micro-batch's statistics, the function SGD differentiates)."""


@dataclass(frozen=True, slots=True)
class MeasureSettings:
    """What a measurement computes (the profile keys of the same names).

    Attributes:
        k: top eigenvalues wanted; ``which``: ``"magnitude"`` (by |λ|) or ``"largest"``;
            ``tol``: relative Ritz residual; ``seed``: the Lanczos start vector's seed (the
            n-th measurement uses ``seed + n``); ``warm_start``: start from the previous
            measurement's Ritz vectors; ``max_hvps``: cap on HVPs (None: no cap).
        dead_threshold: a unit is dead when its mean |activation| is below this.
        dense_max_params: exact full spectrum for models up to this many trainable
            parameters (0: never).
        batch_norm: one of :data:`BATCH_NORM_MODES`.
        slice_k: directions of a loss slice (0: never slice); ``slice_points`` (odd ≥ 3)
            distances j·``slice_step``·η.
    """

    k: int = 30
    which: str = "magnitude"
    tol: float = 1e-3
    seed: int = 0
    warm_start: bool = True
    max_hvps: int | None = None
    dead_threshold: float = 1e-3
    dense_max_params: int = 2000
    batch_norm: str = "running"
    slice_k: int = 0
    slice_points: int = 21
    slice_step: float = 1.0


@contextlib.contextmanager
def preserved_rng(device: torch.device) -> Iterator[None]:
    """Run the body with torch's global random state saved and restored afterwards: the
    CPU generator and, for a CUDA ``device``, that device's generator."""
    devices: list[int] = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices):
        yield


def take_measurement(
    model: nn.Module,
    loss_fn: LossFn,
    probe: Batches,
    settings: MeasureSettings,
    *,
    index: int = 0,
    previous: SpectrumResult | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> Iterator[SpectrumResult | DenseSpectrum | NeuronReport]:
    """Measure ``model`` on ``probe``: yields the top-k result, then (small models) the
    dense spectrum, then the dead-neuron report.

    Args:
        model, loss_fn, probe: what is measured; H is the Hessian of the mean of
            ``loss_fn`` over the probe batches (weighted by batch size).
        settings: see :class:`MeasureSettings`.
        index: how many measurements this run took before (the seed is ``seed + index``).
        previous: the previous top-k result, to warm-start from (used when
            ``settings.warm_start``).
        progress: ``progress(hvps, seconds)`` during the top-k run; may raise to abandon it.

    Raises:
        sgdtop.spectrum.errors.NonFiniteError: the probe loss or an HVP is NaN/inf (a
            diverged model); the results after it are then not yielded.
    """
    from sgdtop.neurons import dead_neurons
    from sgdtop.spectrum import dense_spectrum, hessian_spectrum

    s = settings
    with preserved_rng(probe[0][0].device):
        yield hessian_spectrum(
            model, loss_fn, probe, k=s.k, which=s.which, tol=s.tol, seed=s.seed + index,
            warm_start=previous if s.warm_start else None, progress=progress,
            max_hvps=s.max_hvps or None, batch_norm=s.batch_norm)
        if count_params(model) <= s.dense_max_params:
            yield dense_spectrum(model, loss_fn, probe, max_params=s.dense_max_params,
                                 batch_norm=s.batch_norm)
        yield dead_neurons(model, probe[0][0], threshold=s.dead_threshold)


def take_slices(model: nn.Module, loss_fn: LossFn, probe: Batches, result: SpectrumResult,
                settings: MeasureSettings, *, lr: float) -> LossSlices | None:
    """The probe loss along the top ``slice_k`` Ritz vectors of ``result`` (at most all k)
    at distances j·``slice_step``·η, j = −m…m, ``slice_points`` = 2m + 1
    (:func:`sgdtop.spectrum.loss_slices`). None when ``slice_k`` is 0 or η is unknown
    (NaN) or not positive: the distances are in units of η. Side-effect free."""
    from sgdtop.spectrum import loss_slices, slice_distances

    if not settings.slice_k or not (math.isfinite(lr) and lr > 0):
        return None
    m = min(settings.slice_k, len(result.eigenvalues))
    with preserved_rng(probe[0][0].device):
        return loss_slices(model, loss_fn, probe, result.ritz_vectors[:, :m],
                           slice_distances(lr, settings.slice_points, settings.slice_step),
                           eigenvalues=result.eigenvalues[:m], lr=lr,
                           batch_norm=settings.batch_norm)


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
