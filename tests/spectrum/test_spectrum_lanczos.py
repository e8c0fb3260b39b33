"""The eigensolver on synthetic symmetric operators with known spectra (k=30).

Each operator is ``A = Q diag(λ) Qᵀ`` with a random orthogonal Q (n=400), so the answer is
known exactly. "No ghosts" and "none missing" are both checked by comparing the sorted
computed values with the sorted true top 30 *with multiplicity*: a spurious copy or a
missed eigenvalue shifts the list and fails. Matvec counts are asserted (deterministic:
seeded start vectors); the bounds are the counts measured when the tests were written,
with a little slack, and never above SciPy's ``eigsh`` on the same operator where ``eigsh``
finds the right answer.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse.linalg as sla
import torch

from sgdtop.spectrum.errors import SpectrumInputError
from sgdtop.spectrum.lanczos import lanczos_tridiagonal, top_eigenpairs

N = 400
K = 30


def _rest(count: int, lo: float, hi: float, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(count, dtype=torch.float64, generator=g)


def _operator(ev: torch.Tensor, seed: int = 0):
    n = ev.numel()
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64, generator=g))

    def matvec(v: torch.Tensor) -> torch.Tensor:
        return q @ (ev * (q.T @ v))

    return matvec


def _top(ev: torch.Tensor, k: int = K) -> torch.Tensor:
    return ev[torch.argsort(ev.abs(), descending=True, stable=True)][:k]


def _eigsh_matvecs(matvec, n: int, k: int, tol: float) -> tuple[int, np.ndarray]:
    count = [0]

    def mv(x: np.ndarray) -> np.ndarray:
        count[0] += 1
        return matvec(torch.from_numpy(np.ascontiguousarray(x).ravel())).numpy()

    op = sla.LinearOperator((n, n), matvec=mv, dtype=np.float64)
    vals = sla.eigsh(op, k=k, which="LM", tol=tol, v0=np.ones(n), return_eigenvectors=False)
    return count[0], np.sort(vals)


REPEATED = torch.tensor(
    [10, 10, 10, -9, -9, 8, 8, 8, 7, -6, -6, -6, 5, 5, 4.5, 4.5, 4.5, -4, -4, 3.5,
     3.4, 3.4, 3.4, -3.2, -3.2, 3.1, 3.1, 3.1, 3.0, 3.0], dtype=torch.float64)

CLUSTERED = torch.cat([
    10 * (1 + 1e-4 * torch.arange(5.0)),   # 5 eigenvalues within 4e-4 relative
    -7 * (1 + 1e-3 * torch.arange(5.0)),   # negative cluster
    5 * (1 + 1e-2 * torch.arange(10.0)),
    3.5 * (1 + 1e-3 * torch.arange(10.0)),
]).double()

SIGNED = torch.tensor(
    [(-1) ** i * (12.0 - 0.3 * i) for i in range(K)], dtype=torch.float64)


def test_repeated_eigenvalues_found_with_multiplicity() -> None:
    ev = torch.cat([REPEATED, _rest(N - K, -2, 2)])
    res = top_eigenpairs(_operator(ev), N, K, tol=1e-8, block_size=3)
    assert torch.allclose(res.eigenvalues.sort().values, _top(ev).sort().values,
                          rtol=0, atol=1e-10)
    assert bool(res.converged.all())
    assert res.matvecs <= 125  # measured 115
    # Reported order: |λ| descending.
    assert torch.all(res.eigenvalues.abs().diff() <= 1e-12)


def test_clustered_eigenvalues_none_missing() -> None:
    ev = torch.cat([CLUSTERED, _rest(N - K, -2, 2)])
    res = top_eigenpairs(_operator(ev), N, K, tol=1e-3, block_size=2)
    true = _top(ev).sort().values
    assert torch.allclose(res.eigenvalues.sort().values, true, rtol=1e-5, atol=0)
    assert bool(res.converged.all())
    assert res.matvecs <= 105  # measured 98; eigsh: 94


def test_negative_eigenvalues_magnitude_and_largest() -> None:
    ev = torch.cat([SIGNED, _rest(N - K, -2, 2)])
    matvec = _operator(ev)
    mag = top_eigenpairs(matvec, N, K, tol=1e-3)
    assert torch.allclose(mag.eigenvalues, _top(ev), rtol=1e-5, atol=0)
    assert (mag.eigenvalues < 0).sum() == 15
    eigsh_count, eigsh_vals = _eigsh_matvecs(matvec, N, K, 1e-3)
    assert np.allclose(eigsh_vals, np.sort(_top(ev).numpy()), rtol=1e-5)
    assert mag.matvecs <= eigsh_count
    largest = top_eigenpairs(matvec, N, 10, which="largest", tol=1e-3)
    assert torch.allclose(largest.eigenvalues, ev.sort(descending=True).values[:10],
                          rtol=1e-5, atol=0)


def test_bulk_with_outliers_no_more_matvecs_than_eigsh() -> None:
    """Against ``eigsh`` converging as many pairs: k + the guard band (6) by default, k
    without it. (The spectrum is drawn from a fixed seed: it used to depend on the global
    RNG, and so on the tests run before.)"""
    with torch.random.fork_rng():
        torch.manual_seed(2)
        outliers = torch.logspace(0.7, 1.7, 10, dtype=torch.float64)
        bulk = torch.distributions.Gamma(0.5, 1 / 0.3).sample((N - 110,)).double()
        neg = -torch.distributions.Gamma(0.5, 10.0).sample((100,)).double()
    ev = torch.cat([outliers, bulk, neg])
    matvec = _operator(ev)
    true = _top(ev)
    for guard in (None, 0):
        res = top_eigenpairs(matvec, N, K, tol=1e-3, guard_band=guard)
        assert torch.all((res.eigenvalues - true).abs() <= 1e-3 * true.abs())
        assert bool(res.converged.all()) and res.separated
        eigsh_count, _ = _eigsh_matvecs(matvec, N, K + res.guard_band, 1e-3)
        assert res.matvecs <= eigsh_count, (guard, res.matvecs, eigsh_count)


def test_residuals_are_true_residuals() -> None:
    ev = torch.cat([SIGNED, _rest(N - K, -2, 2)])
    matvec = _operator(ev)
    res = top_eigenpairs(matvec, N, K, tol=1e-3, max_matvecs=50)
    for i in range(K):
        y = res.vectors[:, i]
        true_res = torch.linalg.vector_norm(matvec(y) - res.eigenvalues[i] * y)
        assert float(true_res) == pytest.approx(float(res.residuals[i]), rel=1e-6, abs=1e-12)
    gram = res.vectors.T @ res.vectors
    assert torch.allclose(gram, torch.eye(K, dtype=torch.float64), atol=1e-10)


def test_max_matvecs_caps_and_flags_unconverged() -> None:
    ev = torch.cat([CLUSTERED, _rest(N - K, -2, 2)])
    res = top_eigenpairs(_operator(ev), N, K, tol=1e-6, max_matvecs=40)
    assert res.matvecs == 40
    assert not bool(res.converged.all())
    assert res.eigenvalues.shape == (K,)
    early = top_eigenpairs(_operator(ev), N, K, max_matvecs=5)
    assert early.matvecs == 5
    assert torch.isnan(early.eigenvalues[5:]).all()
    assert not bool(early.converged[5:].any())


def test_whole_space_is_exact() -> None:
    """k = n: the basis fills the space (random vectors after each invariant subspace)."""
    ev = torch.tensor([3.0, 3.0, 3.0, -1.0, 0.0, 0.0, 2.0, 0.5], dtype=torch.float64)
    res = top_eigenpairs(_operator(ev), 8, 8)
    assert torch.allclose(res.eigenvalues.sort().values, ev.sort().values, atol=1e-12)
    assert bool(res.converged.all())
    assert res.matvecs == 8


def test_warm_start_needs_fewer_matvecs() -> None:
    """Consecutive measurements of a slowly changing operator: warm ≤ half of cold."""
    n = 2000
    g = torch.Generator().manual_seed(3)
    ev = torch.cat([torch.logspace(0.7, 1.7, 10, dtype=torch.float64),
                    torch.linspace(2, 3, 20, dtype=torch.float64),
                    torch.rand(n - 30, dtype=torch.float64, generator=g) * 2.5 - 1])
    x = torch.randn(n, 4, dtype=torch.float64, generator=g) / n**0.5
    d = torch.randn(n, 4, dtype=torch.float64, generator=g) / n**0.5
    before = top_eigenpairs(lambda v: ev * v, n, K)

    def after(v: torch.Tensor) -> torch.Tensor:
        return ev * v + 0.03 * (x @ (d.T @ v) + d @ (x.T @ v))

    cold = top_eigenpairs(after, n, K)
    warm = top_eigenpairs(after, n, K, start=before.vectors)
    assert bool(cold.converged.all()) and bool(warm.converged.all())
    assert torch.allclose(warm.eigenvalues, cold.eigenvalues, rtol=1e-4, atol=0)
    assert warm.matvecs <= cold.matvecs // 2, (warm.matvecs, cold.matvecs)


def test_seed_determines_the_result() -> None:
    ev = torch.cat([SIGNED, _rest(N - K, -2, 2)])
    a = top_eigenpairs(_operator(ev), N, 5, seed=7)
    b = top_eigenpairs(_operator(ev), N, 5, seed=7)
    assert torch.equal(a.eigenvalues, b.eigenvalues) and a.matvecs == b.matvecs


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k": 0}, "positive integer"),
        ({"k": -3}, "positive integer"),
        ({"k": 11}, "exceeds"),
        ({"k": 2, "which": "smallest"}, "which"),
        ({"k": 2, "tol": 0.0}, "tol"),
        ({"k": 2, "block_size": 0}, "block_size"),
        ({"k": 2, "start": torch.ones(3)}, "shape"),
    ],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    ev = torch.arange(10, dtype=torch.float64)
    with pytest.raises(SpectrumInputError, match=match) as err:
        top_eigenpairs(lambda v: ev * v, 10, **kwargs)
    assert "\n" not in str(err.value)


def test_tridiagonal_matches_dense_quadrature() -> None:
    ev = torch.linspace(-1, 4, 50, dtype=torch.float64)
    v0 = torch.ones(50, dtype=torch.float64)
    alpha, beta = lanczos_tridiagonal(lambda v: ev * v, v0, 50)
    assert alpha.numel() == 50 and beta.numel() == 49
    t = torch.diag(alpha) + torch.diag(beta, 1) + torch.diag(beta, -1)
    assert torch.allclose(torch.linalg.eigvalsh(t), ev, atol=1e-10)


def _bulk_spectrum() -> torch.Tensor:
    with torch.random.fork_rng():
        torch.manual_seed(2)
        outliers = torch.logspace(0.7, 1.7, 10, dtype=torch.float64)
        bulk = torch.distributions.Gamma(0.5, 1 / 0.3).sample((N - 110,)).double()
        neg = -torch.distributions.Gamma(0.5, 10.0).sample((100,)).double()
    return torch.cat([outliers, bulk, neg])


@pytest.mark.parametrize(
    ("name", "tol", "vectors", "passes"),
    [  # measured when written (b = 4): vectors, block passes; b = 1 took 128/96/50/109
        ("repeated", 1e-8, 132, 35),
        ("clustered", 1e-3, 108, 27),
        ("signed", 1e-3, 66, 18),
        ("bulk", 1e-3, 123, 31),
    ],
)
def test_block_expansion_no_ghosts_no_misses(
    name: str, tol: float, vectors: int, passes: int
) -> None:
    """Block Lanczos (4 vectors per expansion, one block product each) on every synthetic
    spectrum: the right top 30 with multiplicity, and the counts that cost."""
    ev = {
        "repeated": torch.cat([REPEATED, _rest(N - K, -2, 2)]),
        "clustered": torch.cat([CLUSTERED, _rest(N - K, -2, 2)]),
        "signed": torch.cat([SIGNED, _rest(N - K, -2, 2)]),
        "bulk": _bulk_spectrum(),
    }[name]
    matvec = _operator(ev)
    calls: list[int] = []

    def matmat(v: torch.Tensor) -> torch.Tensor:
        calls.append(v.shape[1])
        return torch.stack([matvec(v[:, j]) for j in range(v.shape[1])], 1)

    res = top_eigenpairs(matvec, N, K, tol=tol, block_size=4, matmat=matmat)
    assert torch.allclose(res.eigenvalues.sort().values, _top(ev).sort().values,
                          rtol=1e-5, atol=1e-10)
    assert bool(res.converged.all()) and res.separated
    assert sum(calls) + (res.passes - len(calls)) == res.matvecs
    assert res.matvecs <= vectors + 5 and res.passes <= passes + 2, (res.matvecs, res.passes)
