"""Loss slices: the probe-set loss along the top Hessian eigenvectors (the paper's Fig. 7).

For unit eigenvectors v₁…v_m of H (the Ritz vectors of a top-k measurement, ‖vᵢ‖₂ = 1 in
the flattened space of trainable parameters) and distances t₁…t_P (parameter-space L2
distance, the same units as θ), a slice is

    Lᵢ(t) = L(θ + t·vᵢ),   L = mean loss over the probe set (micro-batches weighted by size),

evaluated with the model in eval mode — the same function whose Hessian is measured, so that
near θ, Lᵢ(t) ≈ L(θ) + gᵢ·t + ½·λᵢ·t² with gᵢ = ∇L·vᵢ (the slope, also reported) and λᵢ
the eigenvalue. Where the curve leaves that parabola the quadratic model of the loss stops
holding: on the paper's reading, SGD with a large η steps far enough along the sharpest
directions to reach that region.

The paper uses "a constant step along the eigenvectors scaled by η": :func:`slice_distances`
gives tⱼ = j·step·η for j = −m…m.

**Orientation.** An eigenvector's sign is arbitrary (Lanczos may return either), which
would mirror slices at random between measurements. Each direction is therefore oriented
so that its slope gᵢ ≤ 0: positive t is the way a full-batch gradient step moves along vᵢ
(the step −η∇L has component −η·gᵢ ≥ 0 on vᵢ), so slices taken at different times are
comparable.

Side-effect free like the other measurements: parameters are never written (the shifted
parameters go through :func:`torch.func.functional_call`), buffers, train/eval flags and the
RNG are restored (:func:`sgdtop.spectrum.guard.measuring`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call

from sgdtop.spectrum.errors import SpectrumInputError
from sgdtop.spectrum.guard import measuring
from sgdtop.spectrum.hvp import ProbeHessian, trainable_parameters

LossFn = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True, slots=True)
class LossSlices:
    """The loss along m directions at P distances.

    Attributes:
        distances: the P distances t (parameter-space L2 norm), ascending.
        eigenvalues: λᵢ of each direction (as given; NaN when unknown).
        slopes: gᵢ = ∇L(θ)·vᵢ ≤ 0, the directional derivative at t = 0 (loss per unit
            distance), vᵢ oriented so (see the module docstring).
        losses: m rows of P values, losses[i][j] = L(θ + tⱼ·vᵢ) (NaN/inf where it blew up).
        loss0: L(θ), the loss at t = 0.
        lr: the learning rate η the distances were scaled by (NaN when not scaled).
        seconds: wall-clock time of the computation.
    """

    distances: tuple[float, ...]
    eigenvalues: tuple[float, ...]
    slopes: tuple[float, ...]
    losses: tuple[tuple[float, ...], ...]
    loss0: float
    lr: float
    seconds: float


def slice_distances(lr: float, points: int = 21, step: float = 1.0) -> list[float]:
    """Distances tⱼ = j·step·η for j = −m…m, m = (points − 1) // 2 (``points`` odd ≥ 3).

    Raises :class:`SpectrumInputError` for an even or too small ``points`` or a
    non-positive ``step`` or ``lr``."""
    if points < 3 or points % 2 == 0:
        raise SpectrumInputError(f"slice points must be an odd number ≥ 3, got {points}")
    if not (step > 0 and math.isfinite(step)):
        raise SpectrumInputError(f"slice step must be a positive number, got {step}")
    if not (lr > 0 and math.isfinite(lr)):
        raise SpectrumInputError(f"slices are scaled by η, which must be positive, got {lr}")
    m = (points - 1) // 2
    return [j * step * lr for j in range(-m, m + 1)]


def loss_slices(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Sequence[tuple[Tensor, Tensor]],
    directions: Tensor,
    distances: Sequence[float],
    *,
    eigenvalues: Sequence[float] | None = None,
    lr: float = math.nan,
    batch_norm: str = "running",
) -> LossSlices:
    """The probe-set loss along each column of ``directions`` at each distance.

    Args:
        model, loss_fn, batches: the loss L (mean of ``loss_fn`` over ``batches``, weighted
            by batch size, model in eval mode), as for :func:`hessian_spectrum`.
        directions: (n, m) tensor (any device/dtype; e.g. ``SpectrumResult.ritz_vectors``
            [:, :m]), columns in the flattened order of the trainable parameters. Columns
            are used as given (Ritz vectors have unit norm), each flipped if need be so that
            its slope is ≤ 0.
        distances: the distances t, in parameter units (:func:`slice_distances`).
        eigenvalues: λᵢ per column, copied into the result (NaN when None).
        lr: η the distances were scaled by, copied into the result.
        batch_norm: ``"running"`` or ``"batch"``, as for :func:`hessian_spectrum` (use the
            one the directions were measured with).

    Cost: one forward pass over the batches per (direction, distance) plus one gradient.
    """
    t0 = time.perf_counter()
    named = trainable_parameters(model)
    n = sum(p.numel() for _, p in named)
    if directions.ndim != 2 or directions.shape[0] != n:
        raise SpectrumInputError(
            f"directions must be an (n, m) tensor with n = {n} trainable parameters, got "
            f"shape {tuple(directions.shape)}")
    if not batches:
        raise SpectrumInputError("the probe set is empty")
    m = directions.shape[1]
    lams = (tuple(float(x) for x in eigenvalues) if eigenvalues is not None
            else tuple(math.nan for _ in range(m)))
    if len(lams) != m:
        raise SpectrumInputError(f"{len(lams)} eigenvalues given for {m} directions")
    ts = sorted(float(t) for t in distances)
    with measuring(model, batch_norm):
        op = ProbeHessian(model, loss_fn, batches, graph_cache_bytes=0)
        base = {name: p.detach() for name, p in zip(op.names, op.params, strict=True)}

        def loss_at(params: dict[str, Tensor]) -> float:
            acc = 0.0
            for x, y, size in op.iter_batches():
                out = functional_call(model, params, (x,), strict=False)
                acc += float(op.batch_loss_of(out, y)) * size
            return acc / op.num_examples

        loss0, grad = op.loss_and_gradient()  # gradients never touch .grad
        rows: list[tuple[float, ...]] = []
        slopes: list[float] = []
        with torch.no_grad():
            for i in range(m):
                v = directions[:, i].to(device=grad.device, dtype=torch.float64)
                slope = float(grad @ v)
                if slope > 0:
                    v, slope = -v, -slope
                slopes.append(slope)
                parts = op.unflatten(v)
                row = []
                for t in ts:
                    if t == 0.0:
                        row.append(loss0)
                        continue
                    shifted = {name: base[name] + t * part
                               for name, part in zip(op.names, parts, strict=True)}
                    row.append(loss_at(shifted))
                rows.append(tuple(row))
    return LossSlices(distances=tuple(ts), eigenvalues=lams, slopes=tuple(slopes),
                      losses=tuple(rows), loss0=loss0, lr=float(lr),
                      seconds=time.perf_counter() - t0)

