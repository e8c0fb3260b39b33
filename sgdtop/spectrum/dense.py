"""The exact full Hessian spectrum of a small model: :func:`dense_spectrum`.

The Hessian H (``docs/design.md``: mean probe-set loss, eval mode, no weight decay) is
built column block by column block with double backward (``is_grads_batched``: one
batched backward per block of unit vectors and micro-batch), symmetrized, and
diagonalized in float64 with ``torch.linalg.eigvalsh``. Memory: n² float64 (200 MB at
the default limit of 5,000 parameters), time O(n³) for the eigenvalues.

Condition number (``docs/design.md``): κ = λ_max / λ_min⁺, where λ_min⁺ is the smallest eigenvalue
above the floor ``rel_floor · ρ(H)``; eigenvalues within ±floor count as zero and those
below −floor as negative. The default floor is set by the precision the Hessian was
computed in: ``rel_floor = 10 · √n · ε`` (ε the machine epsilon of the model's dtype),
about 8e-5 for a float32 model with 5,000 parameters; the result states the floor used.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import torch
from torch import nn

from sgdtop.spectrum.errors import DenseTooLargeError, NonFiniteError, SpectrumInputError
from sgdtop.spectrum.guard import measuring
from sgdtop.spectrum.hvp import Batches, LossFn, ProbeHessian

DENSE_MAX_PARAMS_DEFAULT: Final[int] = 5000
"""Largest model (trainable parameters) :func:`dense_spectrum` accepts by default."""

HISTOGRAM_BINS_DEFAULT: Final[int] = 50
"""Bins of the ``dense_spectrum`` event's histogram."""

_COLUMN_BLOCK: Final[int] = 256
"""Hessian columns computed per batched backward pass."""


def default_rel_floor(n: int, dtype: torch.dtype) -> float:
    """``10 · √n · ε(dtype)``: the relative size below which an eigenvalue of a Hessian
    computed in ``dtype`` is indistinguishable from zero."""
    return 10.0 * math.sqrt(n) * torch.finfo(dtype).eps


def spectrum_histogram(
    eigenvalues: Any, bins: int = HISTOGRAM_BINS_DEFAULT
) -> tuple[list[float], list[int]]:
    """A histogram of eigenvalues on ``bins`` equal-width bins from the smallest to the
    largest: ``(edges, counts)``, ``len(edges) == bins + 1``, counts summing to the number
    of eigenvalues. A single value (or all equal) gets bins spanning ``value ± 0.5``
    (``± 0.5·|value|`` if larger)."""
    if bins < 1:
        raise SpectrumInputError(f"bins must be a positive integer, got {bins!r}")
    values = np.asarray(eigenvalues, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        return [0.0] * (bins + 1), [0] * bins
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        half = max(0.5, 0.5 * abs(lo))
        lo, hi = lo - half, hi + half
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    return [float(e) for e in edges], [int(c) for c in counts]


@dataclass(frozen=True, slots=True)
class DenseSpectrum:
    """All n Hessian eigenvalues of a small model.

    Attributes:
        eigenvalues: n floats, signed, ordered by |λ| descending (the order of
            :class:`sgdtop.spectrum.SpectrumResult`, so ``eigenvalues[:k]`` is the top k).
        n: number of trainable parameters.
        lambda_max, lambda_min: largest and smallest (signed) eigenvalue.
        spectral_norm: ρ(H) = max |λ|.
        rel_floor: the relative floor; ``floor = rel_floor · ρ(H)`` (absolute, loss units).
        floor: eigenvalues in [−floor, floor] count as zero.
        min_positive: λ_min⁺, the smallest eigenvalue above ``floor`` (NaN if none).
        cond: κ = λ_max / λ_min⁺ (NaN if there is no eigenvalue above the floor).
        n_negative: eigenvalues below −floor.
        n_zero: eigenvalues within ±floor.
        asymmetry: ‖H − Hᵀ‖_max / ‖H‖_max of the computed Hessian (rounding, ~ε).
        seconds: wall-clock time of the measurement.
    """

    eigenvalues: tuple[float, ...]
    n: int
    lambda_max: float
    lambda_min: float
    spectral_norm: float
    rel_floor: float
    floor: float
    min_positive: float
    cond: float
    n_negative: int
    n_zero: int
    asymmetry: float
    seconds: float

    def histogram(self, bins: int = HISTOGRAM_BINS_DEFAULT) -> tuple[list[float], list[int]]:
        """``(edges, counts)`` of all eigenvalues (:func:`spectrum_histogram`)."""
        return spectrum_histogram(self.eigenvalues, bins)


def dense_hessian(op: ProbeHessian, block: int = _COLUMN_BLOCK) -> torch.Tensor:
    """The (n, n) float64 Hessian of ``op``'s probe loss (unsymmetrized), on ``op.device``
    (the CPU for devices without float64).

    Call inside :func:`sgdtop.spectrum.guard.measuring`.
    """
    n = op.num_params
    device = op.device if op.device.type in ("cpu", "cuda") else torch.device("cpu")
    hess = torch.zeros(n, n, dtype=torch.float64, device=device)
    for x, y, size in op.iter_batches():
        loss = op.batch_loss(x, y)
        if not loss.requires_grad:
            continue
        grads = torch.autograd.grad(
            loss, op.params, create_graph=True, allow_unused=True, materialize_grads=True)
        flat = torch.cat([g.reshape(-1) for g in grads])
        if not flat.requires_grad:
            continue
        for lo in range(0, n, block):
            hi = min(n, lo + block)
            eye = torch.zeros(hi - lo, n, dtype=flat.dtype, device=flat.device)
            eye[:, lo:hi].fill_diagonal_(1.0)
            rows = _batched_rows(flat, op.params, eye)
            hess[lo:hi].add_(rows.to(device), alpha=size)
    hess.div_(op.num_examples)
    return hess


def _batched_rows(
    flat: torch.Tensor, params: list[nn.Parameter], eye: torch.Tensor
) -> torch.Tensor:
    """Rows ``eyeᵢ · ∂flat/∂θ`` as float64, batched (vmap) where autograd supports it."""
    try:
        rows = torch.autograd.grad(
            flat, params, grad_outputs=eye, retain_graph=True, allow_unused=True,
            materialize_grads=True, is_grads_batched=True)
        return torch.cat([r.reshape(eye.shape[0], -1) for r in rows], 1).to(torch.float64)
    except (RuntimeError, NotImplementedError):  # an op without a batching rule: row by row
        out = []
        for e in eye:
            row = torch.autograd.grad(
                flat, params, grad_outputs=e, retain_graph=True, allow_unused=True,
                materialize_grads=True)
            out.append(torch.cat([r.reshape(-1) for r in row]))
        return torch.stack(out).to(torch.float64)


def dense_spectrum(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Batches,
    *,
    max_params: int = DENSE_MAX_PARAMS_DEFAULT,
    rel_floor: float | None = None,
    batch_norm: str = "running",
) -> DenseSpectrum:
    """All eigenvalues of the Hessian of the mean probe-set loss, exactly (float64
    ``eigvalsh`` of the full matrix), for models of at most ``max_params`` trainable
    parameters. Side-effect free like :func:`sgdtop.spectrum.hessian_spectrum`.

    Args:
        model, loss_fn, batches: as for :func:`sgdtop.spectrum.hessian_spectrum`.
        max_params: refuse larger models (:class:`DenseTooLargeError`).
        rel_floor: floor of λ_min⁺ relative to ρ(H) (default :func:`default_rel_floor`).
        batch_norm: ``"running"`` or ``"batch"``, as for ``hessian_spectrum``.

    Raises:
        DenseTooLargeError: the model has more than ``max_params`` trainable parameters.
        SpectrumInputError: an empty probe set, no trainable parameters, bad ``rel_floor``.
        NonFiniteError: the Hessian has NaN/inf entries.
    """
    t0 = time.perf_counter()
    op = ProbeHessian(model, loss_fn, batches)
    n = op.num_params
    if n > max_params:
        raise DenseTooLargeError(
            f"the dense spectrum is limited to {max_params:,} parameters; the model has "
            f"{n:,} (use hessian_spectrum for the top k, or spectral_density)")
    if rel_floor is None:
        rel_floor = default_rel_floor(n, op.dtype)
    if not 0 <= rel_floor < 1:
        raise SpectrumInputError(f"rel_floor must be in [0, 1), got {rel_floor!r}")
    with measuring(model, batch_norm):
        hess = dense_hessian(op)
    if not bool(torch.isfinite(hess).all()):
        raise NonFiniteError("the Hessian is not finite (the probe loss is NaN or infinite?)")
    scale = float(hess.abs().max())
    asym = float((hess - hess.T).abs().max()) / scale if scale > 0 else 0.0
    hess = 0.5 * (hess + hess.T)
    values = torch.linalg.eigvalsh(hess).cpu().numpy()
    del hess
    return summarize(values, rel_floor, asymmetry=asym, seconds=time.perf_counter() - t0)


def summarize(
    values: Any, rel_floor: float, *, asymmetry: float = 0.0, seconds: float = 0.0
) -> DenseSpectrum:
    """A :class:`DenseSpectrum` from a full set of eigenvalues (any order)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise SpectrumInputError("no eigenvalues to summarize")
    rho = float(np.abs(v).max())
    floor = rel_floor * rho
    positive = v[v > floor]
    min_pos = float(positive.min()) if positive.size else math.nan
    lam_max = float(v.max())
    order = np.argsort(-np.abs(v), kind="stable")
    return DenseSpectrum(
        eigenvalues=tuple(float(x) for x in v[order]),
        n=int(v.size),
        lambda_max=lam_max,
        lambda_min=float(v.min()),
        spectral_norm=rho,
        rel_floor=float(rel_floor),
        floor=floor,
        min_positive=min_pos,
        cond=lam_max / min_pos if positive.size else math.nan,
        n_negative=int((v < -floor).sum()),
        n_zero=int((np.abs(v) <= floor).sum()),
        asymmetry=asymmetry,
        seconds=seconds,
    )
