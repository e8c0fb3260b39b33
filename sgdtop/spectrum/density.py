"""The Hessian's spectral density by stochastic Lanczos quadrature (SLQ).

Ghorbani, Krishnan, Xiao (2019), "An Investigation into Neural Net Optimization via
Hessian Eigenvalue Density" (ICML), §2: for a random unit vector v, m steps of Lanczos
from v give a tridiagonal T_m = U diag(θ) Uᵀ; the nodes θⱼ with weights τⱼ = U₀ⱼ² are the
m-point Gauss quadrature of the measure Σᵢ (v·eᵢ)² δ(λ − λᵢ), whose expectation over v
is the spectral density φ(λ) = (1/n) Σᵢ δ(λ − λᵢ). Averaging over ``num_vectors``
vectors and smoothing each node with a Gaussian kernel of width σ gives

    φ_σ(t) = (1/num_vectors) Σ_l Σⱼ τⱼ⁽ˡ⁾ · exp(−(t − θⱼ⁽ˡ⁾)² / 2σ²) / (σ √(2π)),

a probability density in t (eigenvalue units): it integrates to 1. Cost: ``steps`` HVPs
per vector. The quadrature is exact for polynomial moments of degree < 2·steps:
Σⱼ τⱼ θⱼᵖ = vᵀ Hᵖ v.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import torch
from torch import nn

from sgdtop.spectrum.errors import SpectrumInputError
from sgdtop.spectrum.guard import measuring
from sgdtop.spectrum.hvp import Batches, LossFn, ProbeHessian
from sgdtop.spectrum.lanczos import lanczos_tridiagonal

DENSITY_STEPS_DEFAULT: Final[int] = 80
DENSITY_VECTORS_DEFAULT: Final[int] = 4
DENSITY_GRID_DEFAULT: Final[int] = 512
DENSITY_REL_WIDTH_DEFAULT: Final[float] = 0.01
"""Kernel width σ as a fraction of the spectral range (λ_max − λ_min) by default."""


@dataclass(frozen=True, slots=True)
class Quadrature:
    """Gauss quadrature nodes θⱼ and weights τⱼ (summing to 1) of one start vector."""

    nodes: tuple[float, ...]
    weights: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class SpectralDensity:
    """The smoothed spectral density φ_σ on a grid.

    Attributes:
        grid: eigenvalue values t (loss units), ascending.
        density: φ_σ(t), per unit eigenvalue (integrates to ≈1 over the grid).
        sigma: kernel width σ, eigenvalue units.
        quadratures: the nodes and weights of each start vector.
        hvps: Hessian-vector products used; seconds: wall-clock time.
    """

    grid: tuple[float, ...]
    density: tuple[float, ...]
    sigma: float
    quadratures: tuple[Quadrature, ...] = field(repr=False)
    hvps: int
    seconds: float


def _rademacher(n: int, gen: torch.Generator) -> torch.Tensor:
    signs = torch.randint(0, 2, (n,), generator=gen, dtype=torch.int64) * 2 - 1
    return signs.to(torch.float64) / math.sqrt(n)


def slq_quadratures(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    n: int,
    *,
    steps: int = DENSITY_STEPS_DEFAULT,
    num_vectors: int = DENSITY_VECTORS_DEFAULT,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> tuple[Quadrature, ...]:
    """Gauss quadratures of the spectral measure for ``num_vectors`` Rademacher vectors
    (drawn on the CPU from ``seed``), ``steps`` Lanczos steps each (fewer if the Krylov
    space is exhausted). Pure linear algebra on ``matvec``."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise SpectrumInputError(f"steps must be a positive integer, got {steps!r}")
    if isinstance(num_vectors, bool) or not isinstance(num_vectors, int) or num_vectors < 1:
        raise SpectrumInputError(f"num_vectors must be a positive integer, got {num_vectors!r}")
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(num_vectors):
        v0 = _rademacher(n, gen).to(device)
        alpha, beta = lanczos_tridiagonal(matvec, v0, min(steps, n))
        t = torch.diag(alpha)
        if beta.numel():
            t += torch.diag(beta, 1) + torch.diag(beta, -1)
        theta, u = torch.linalg.eigh(t)
        w = u[0] ** 2
        out.append(Quadrature(tuple(theta.tolist()), tuple((w / w.sum()).tolist())))
    return tuple(out)


def smooth_density(
    quadratures: tuple[Quadrature, ...],
    *,
    grid_points: int = DENSITY_GRID_DEFAULT,
    sigma: float | None = None,
    rel_width: float = DENSITY_REL_WIDTH_DEFAULT,
) -> tuple[list[float], list[float], float]:
    """``(grid, density, sigma)``: the Gaussian-smoothed average of the quadratures on
    ``grid_points`` points spanning the nodes ± 5σ (σ = ``rel_width`` · node range unless
    given)."""
    nodes = torch.tensor([x for q in quadratures for x in q.nodes], dtype=torch.float64)
    weights = torch.tensor([x for q in quadratures for x in q.weights], dtype=torch.float64)
    weights /= len(quadratures)
    lo, hi = float(nodes.min()), float(nodes.max())
    if sigma is None:
        span = hi - lo if hi > lo else max(abs(lo), 1.0)
        sigma = rel_width * span
    if not sigma > 0:
        raise SpectrumInputError(f"the kernel width must be positive, got {sigma!r}")
    grid = torch.linspace(lo - 5 * sigma, hi + 5 * sigma, grid_points, dtype=torch.float64)
    z = (grid[:, None] - nodes[None, :]) / sigma
    dens = (torch.exp(-0.5 * z**2) * weights).sum(1) / (sigma * math.sqrt(2 * math.pi))
    return grid.tolist(), dens.tolist(), float(sigma)


def spectral_density(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Batches,
    *,
    steps: int = DENSITY_STEPS_DEFAULT,
    num_vectors: int = DENSITY_VECTORS_DEFAULT,
    grid_points: int = DENSITY_GRID_DEFAULT,
    sigma: float | None = None,
    seed: int = 0,
    progress: Callable[[int, float], None] | None = None,
    graph_cache_bytes: int | None = None,
) -> SpectralDensity:
    """The Hessian's spectral density by SLQ (module docstring), for models of any size:
    ``steps · num_vectors`` HVPs (320 by default), memory ``steps`` float64 vectors.
    Side-effect free like :func:`sgdtop.spectrum.hessian_spectrum`.

    Args:
        model, loss_fn, batches: as for :func:`sgdtop.spectrum.hessian_spectrum`.
        steps: Lanczos steps per vector (Ghorbani et al. use 90).
        num_vectors: random start vectors averaged.
        grid_points: points of the returned grid.
        sigma: kernel width in eigenvalue units (default 1% of the node range).
        seed: seed of the Rademacher vectors.
        progress: called after each HVP with (HVPs so far, seconds so far).
        graph_cache_bytes: as for :func:`sgdtop.spectrum.hessian_spectrum`.
    """
    t0 = time.perf_counter()
    op = ProbeHessian(model, loss_fn, batches, graph_cache_bytes=graph_cache_bytes)

    def matvec(v: torch.Tensor) -> torch.Tensor:
        out = op.matvec(v)
        if progress is not None:
            progress(op.hvps, time.perf_counter() - t0)
        return out

    device = op.device if op.device.type in ("cpu", "cuda") else torch.device("cpu")
    with measuring(model):
        try:
            quads = slq_quadratures(
                matvec, op.num_params, steps=steps, num_vectors=num_vectors, seed=seed,
                device=device)
        finally:
            op.release()
    grid, dens, sig = smooth_density(quads, grid_points=grid_points, sigma=sigma)
    return SpectralDensity(
        grid=tuple(grid), density=tuple(dens), sigma=sig, quadratures=quads,
        hvps=op.hvps, seconds=time.perf_counter() - t0,
    )
