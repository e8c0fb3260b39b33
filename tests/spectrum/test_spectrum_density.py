"""Stochastic Lanczos quadrature: exact moments, a known density, a tiny model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from spectrum_fixtures import probe_for, tiny_mlp

from sgdtop.spectrum import SpectrumInputError, dense_spectrum, spectral_density
from sgdtop.spectrum.density import _rademacher, slq_quadratures, smooth_density

_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 has only trapz


def test_gauss_quadrature_moments_are_exact() -> None:
    """Σⱼ τⱼ θⱼᵖ = vᵀ Aᵖ v for p < 2·steps (the quadrature's defining property)."""
    n, steps = 300, 8
    ev = torch.linspace(-1.0, 3.0, n, dtype=torch.float64) ** 3
    quads = slq_quadratures(lambda v: ev * v, n, steps=steps, num_vectors=2, seed=5)
    gen = torch.Generator().manual_seed(5)
    for q in quads:
        v = _rademacher(n, gen)
        nodes, weights = np.array(q.nodes), np.array(q.weights)
        assert len(nodes) == steps and weights.sum() == pytest.approx(1.0)
        for p in range(2 * steps):
            exact = float((v * ev**p * v).sum())
            assert (weights * nodes**p).sum() == pytest.approx(exact, rel=1e-8, abs=1e-10)


def test_density_of_two_clusters() -> None:
    """70% of the eigenvalues near 0, 30% near 5: the density's mass splits so."""
    n = 2000
    g = torch.Generator().manual_seed(0)
    ev = torch.cat([torch.rand(1400, generator=g, dtype=torch.float64) * 0.2 - 0.1,
                    5 + torch.rand(600, generator=g, dtype=torch.float64) * 0.2])
    quads = slq_quadratures(lambda v: ev * v, n, steps=30, num_vectors=4, seed=1)
    grid, dens, sigma = smooth_density(quads, grid_points=2000)
    t, p = np.array(grid), np.array(dens)
    assert _trapezoid(p, t) == pytest.approx(1.0, abs=1e-3)
    high = _trapezoid(np.where(t > 2.5, p, 0.0), t)
    assert high == pytest.approx(0.3, abs=0.03)
    assert sigma == pytest.approx(0.01 * (max(max(q.nodes) for q in quads)
                                         - min(min(q.nodes) for q in quads)))


def test_spectral_density_of_a_tiny_model() -> None:
    model = tiny_mlp().double()
    x, y = probe_for(model)
    d = dense_spectrum(model, F.cross_entropy, [(x, y)])
    calls: list[int] = []
    sd = spectral_density(model, F.cross_entropy, [(x, y)], steps=12, num_vectors=3,
                          progress=lambda h, _: calls.append(h))
    assert sd.hvps <= 36 and calls[-1] == sd.hvps
    assert sd.grid[0] < d.lambda_min + 1e-6 and sd.grid[-1] > d.lambda_max - 1e-6
    # The extreme nodes converge to the extreme eigenvalues first.
    top = max(max(q.nodes) for q in sd.quadratures)
    assert top == pytest.approx(d.lambda_max, rel=1e-3)
    # The mean eigenvalue (tr H / n) is estimated without bias; 3 vectors: loose check.
    mean_est = np.mean([np.dot(q.weights, q.nodes) for q in sd.quadratures])
    slack = 0.5 * d.spectral_norm / math.sqrt(d.n)
    assert mean_est == pytest.approx(np.mean(d.eigenvalues), abs=slack)


def test_bad_arguments() -> None:
    model = tiny_mlp()
    x, y = probe_for(model)
    with pytest.raises(SpectrumInputError, match="steps"):
        spectral_density(model, F.cross_entropy, [(x, y)], steps=0)
    with pytest.raises(SpectrumInputError, match="num_vectors"):
        spectral_density(model, F.cross_entropy, [(x, y)], num_vectors=0)
    with pytest.raises(SpectrumInputError, match="empty"):
        spectral_density(model, F.cross_entropy, [])
