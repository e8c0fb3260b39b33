"""The eigensolver as it was before issue 18, kept only as a baseline: the benchmark
(``benchmarks/bench_spectrum.py``, "old single-vector path") and the test that reproduces
its miss at the edge of k (``tests/test_spectrum_edge.py``). Measurements never use it.

Lanczos with full reorthogonalization in Rayleigh–Ritz form, one vector per step from a
single random start, converging exactly the top k (no guard band), with the basis stored
as (n, cap) column blocks and the projected matrices on the CPU. See
:mod:`sgdtop.spectrum.lanczos` for the method and the definitions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

import torch

from sgdtop.spectrum.errors import SpectrumInputError

Which = Literal["magnitude", "largest"]
WHICH: Final[tuple[str, ...]] = ("magnitude", "largest")

SMALL_EIGENVALUE_FLOOR: Final[float] = 1e-3
"""Eigenvalues with ``|θ| < SMALL_EIGENVALUE_FLOOR · ρ`` are converged at residual
``tol · SMALL_EIGENVALUE_FLOOR · ρ`` (absolute) instead of ``tol · |θ|``."""

_DEPENDENT: Final[float] = 1e-10
"""A new vector whose norm drops below this fraction of its norm before orthogonalization
is taken to lie in the basis already (dropped, or replaced by a random vector)."""

WARM_BLOCK_MAX_RATIO: Final[float] = 8.0
"""A warm start uses the whole block only if its slowest vector's residual is within this
many times its convergence threshold under the new operator (see ``_start_warm``)."""

_GRAM_DIGITS: Final[float] = 1e-5
"""Residuals below this fraction of ‖A y‖ are recomputed from the vectors (the Gram
formula's cancellation floor is ~1e-8 in float64)."""

MatVec = Callable[[torch.Tensor], torch.Tensor]


def default_max_basis(k: int, block_size: int = 1) -> int:
    """The basis size at which the iteration restarts, by default: ``2k + 20`` vectors
    (plus the block size). Larger bases restart less and rarely save many matvecs."""
    return 2 * k + 20 + block_size


def default_matvec_limit(n: int, k: int) -> int:
    """The cap on matvecs when none is given: ``min(20n, 100k + 1000)``. A guard against
    a tolerance the operator's precision cannot meet, not a budget."""
    return min(20 * n, 100 * k + 1000)


@dataclass(frozen=True, slots=True)
class EigenResult:
    """The wanted Ritz pairs of a symmetric operator A, ordered as asked (see ``which``).

    Attributes:
        eigenvalues: (k,) float64, CPU: Ritz values θᵢ, signed.
        vectors: (n, k) float64 on the working device: orthonormal Ritz vectors yᵢ.
        residuals: (k,) float64, CPU: ‖A yᵢ − θᵢ yᵢ‖, from the stored products A V.
        converged: (k,) bool, CPU: residual within the threshold (module docstring).
        matvecs: number of products with A.
        restarts: number of thick restarts.
    """

    eigenvalues: torch.Tensor
    vectors: torch.Tensor
    residuals: torch.Tensor
    converged: torch.Tensor
    matvecs: int
    restarts: int


def check_eigen_args(n: int, k: int, which: str, tol: float) -> None:
    """Raise :class:`SpectrumInputError` unless ``1 ≤ k ≤ n``, ``which`` is known and
    ``tol > 0``."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise SpectrumInputError(f"k must be a positive integer, got {k!r}")
    if k > n:
        raise SpectrumInputError(f"k={k} exceeds the operator's dimension ({n} parameters)")
    if which not in WHICH:
        raise SpectrumInputError(f"which must be one of {', '.join(WHICH)}; got {which!r}")
    if not tol > 0:
        raise SpectrumInputError(f"tol must be positive, got {tol!r}")


def wanted_order(theta: torch.Tensor, which: str) -> torch.Tensor:
    """Indices of ``theta`` sorted by |θ| descending (``magnitude``) or θ descending."""
    key = theta.abs() if which == "magnitude" else theta
    return torch.argsort(key, descending=True, stable=True)


def top_eigenpairs(
    matvec: MatVec,
    n: int,
    k: int,
    *,
    which: str = "magnitude",
    tol: float = 1e-3,
    start: torch.Tensor | None = None,
    seed: int = 0,
    block_size: int = 1,
    max_matvecs: int | None = None,
    max_basis: int | None = None,
    device: torch.device | str | None = None,
) -> EigenResult:
    """The k wanted eigenpairs of the symmetric operator ``matvec`` (see the module
    docstring for the method and the convergence test).

    Args:
        matvec: ``v ↦ A v`` for a float64 vector of shape (n,) on ``device``; may return any
            floating dtype (it is promoted to float64).
        n: dimension of A.
        k: number of eigenpairs, ``1 ≤ k ≤ n``.
        which: ``"magnitude"`` (largest |λ|) or ``"largest"`` (largest λ).
        tol: relative residual tolerance of the convergence test.
        start: start vector(s), shape (n,) or (n, b), e.g. the previous Ritz vectors; None
            for ``block_size`` seeded Gaussian vectors.
        seed: seed of the random start and of any random vector needed after a breakdown.
            Random vectors are drawn on the CPU, so results do not depend on the device.
        block_size: start vectors (cold) and expansion vectors per step.
        max_matvecs: stop after this many products even if not converged (the result then
            flags the unconverged pairs); None for :func:`default_matvec_limit`. Never
            raises for non-convergence.
        max_basis: restart the basis at this many vectors (default :func:`default_max_basis`).
        device: where the basis lives (default: ``start``'s device, else CPU).
    """
    check_eigen_args(n, k, which, tol)
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise SpectrumInputError(f"block_size must be a positive integer, got {block_size!r}")
    if max_matvecs is not None and max_matvecs < 1:
        raise SpectrumInputError(f"max_matvecs must be positive, got {max_matvecs!r}")
    if device is None:
        device = start.device if start is not None else torch.device("cpu")
    cap = max_basis if max_basis is not None else default_max_basis(k, block_size)
    cap = min(n, max(cap, k + block_size + 1))
    return _Iteration(matvec, n, k, which, tol, seed, block_size, max_matvecs, cap,
                      torch.device(device)).run(start)


class _Iteration:
    """State of one run of :func:`top_eigenpairs`."""

    def __init__(
        self, matvec: MatVec, n: int, k: int, which: str, tol: float, seed: int,
        block_size: int, max_matvecs: int | None, cap: int, device: torch.device,
    ) -> None:
        self.matvec, self.n, self.k, self.which, self.tol = matvec, n, k, which, tol
        if max_matvecs is None:
            max_matvecs = default_matvec_limit(n, k)
        self.block, self.max_matvecs, self.cap, self.device = (
            block_size, max_matvecs, cap, device)
        self.gen = torch.Generator().manual_seed(seed)
        f64 = torch.float64
        self.V = torch.empty(n, cap, dtype=f64, device=device)
        self.W = torch.empty(n, cap, dtype=f64, device=device)
        self.T = torch.zeros(cap, cap, dtype=f64)
        self.G = torch.zeros(cap, cap, dtype=f64)
        self.m = 0
        self.matvecs = 0
        self.restarts = 0

    # -- the loop -------------------------------------------------------------------------

    def run(self, start: torch.Tensor | None) -> EigenResult:
        if start is None:
            self._add(self._random(self.block))
        else:
            if start.dim() == 1:
                start = start[:, None]
            if start.dim() != 2 or start.shape[0] != self.n:
                raise SpectrumInputError(
                    f"start vectors have shape {tuple(start.shape)}; expected ({self.n}, b)")
            cand = start.to(device=self.device, dtype=torch.float64)[:, : self.cap]
            if not torch.isfinite(cand).all():
                raise SpectrumInputError("start vectors contain NaN or infinity")
            self._start_warm(cand)
        if self.m == 0:
            self._add(self._random(self.block))
        while True:
            theta, s = torch.linalg.eigh(self.T[: self.m, : self.m])
            order = wanted_order(theta, self.which)
            want = order[: self.k]
            thresh = self._thresholds(theta, want)
            res = self._residual_norms(theta[want], s[:, want], thresh)
            unconverged = torch.nonzero(res > thresh).flatten()
            done = self.m >= self.k and unconverged.numel() == 0
            if done or self.m >= self.n or self._out_of_budget():
                return self._result(theta, s, want)
            if self.m + self.block > self.cap:
                self._restart(theta, s, order)
                continue
            # Expand by the residuals of the unconverged wanted pairs that are furthest off.
            if unconverged.numel() == 0:  # fewer than k pairs so far, all converged
                cand = self._random(self.block)
            else:
                ratio = res[unconverged] / thresh[unconverged]
                pick = unconverged[torch.argsort(ratio, descending=True)[: self.block]]
                cand = self._ritz_residuals(theta[want][pick], s[:, want][:, pick])
            if self._add(cand) == 0 and self._add(self._random(self.block)) == 0:
                return self._result(theta, s, want)

    def _start_warm(self, cand: torch.Tensor) -> None:
        """Start from a block of approximate eigenvectors (the previous Ritz vectors, in
        wanted order). The last one, the slowest to converge, is tried first: if A moved
        little (its residual is within ``WARM_BLOCK_MAX_RATIO`` times its threshold), the
        whole block enters the basis (Rayleigh–Ritz on it, then targeted expansions);
        otherwise the block is of little use as such, and Lanczos starts from the single
        vector Σ yᵢ, whose Krylov space recovers the old subspace in about b steps and the
        new directions after. That trial costs one matvec."""
        cand = cand[:, : self.k]
        b = cand.shape[1]
        if b == 1:
            self._add(cand)
            return
        self._add(cand[:, -1:])
        if self.m == 1:
            theta = self.T[0, 0]
            res = (self.G[0, 0] - theta**2).clamp_min(0).sqrt()
            if res <= WARM_BLOCK_MAX_RATIO * self.tol * theta.abs():
                self._add(cand[:, :-1])
                return
            self.m = 0
            self.T.zero_()
            self.G.zero_()
        self._add(cand.sum(1, keepdim=True))

    def _out_of_budget(self) -> bool:
        return self.max_matvecs is not None and self.matvecs >= self.max_matvecs

    # -- pieces ---------------------------------------------------------------------------

    def _random(self, b: int) -> torch.Tensor:
        z = torch.randn(self.n, b, dtype=torch.float64, generator=self.gen)
        return z.to(self.device)

    def _add(self, cand: torch.Tensor) -> int:
        """Orthonormalize the columns of ``cand`` against the basis (twice), apply A to
        each one that is independent, and grow V, W, T, G. Returns how many were added."""
        added = 0
        for j in range(cand.shape[1]):
            if self.m >= self.cap or self._out_of_budget():
                break
            q = cand[:, j].clone()
            norm0 = torch.linalg.vector_norm(q)
            if not norm0 > 0:
                continue
            basis = self.V[:, : self.m]
            for _ in range(2):
                q -= basis @ (basis.T @ q)
            norm = torch.linalg.vector_norm(q)
            if not norm > _DEPENDENT * norm0:
                continue
            self._append(q / norm)
            added += 1
        return added

    def _append(self, q: torch.Tensor) -> None:
        m = self.m
        w = self.matvec(q)
        self.matvecs += 1
        if w.shape != (self.n,):
            raise SpectrumInputError(
                f"matvec returned shape {tuple(w.shape)}; expected ({self.n},)")
        w = w.to(device=self.device, dtype=torch.float64)
        self.V[:, m] = q
        self.W[:, m] = w
        c_col = (self.V[:, : m + 1].T @ w).cpu()  # v_iᵀ A q
        c_row = (self.W[:, :m].T @ q).cpu()  # qᵀ A v_i
        t = c_col.clone()
        t[:m] = 0.5 * (c_col[:m] + c_row)
        self.T[: m + 1, m] = t
        self.T[m, : m + 1] = t
        g = (self.W[:, : m + 1].T @ w).cpu()
        self.G[: m + 1, m] = g
        self.G[m, : m + 1] = g
        self.m = m + 1

    def _residual_norms(
        self, theta: torch.Tensor, s: torch.Tensor, thresh: torch.Tensor
    ) -> torch.Tensor:
        """‖W s − θ V s‖ for each column: sqrt(sᵀ G s − θ²) (V orthonormal), which costs
        no vector operation but loses digits to cancellation below ~1e-6·‖W s‖; where the
        threshold is that small, the residual is computed from the vectors instead."""
        g = self.G[: self.m, : self.m]
        ws_sq = (s * (g @ s)).sum(0)
        res = (ws_sq - theta**2).clamp_min(0).sqrt()
        unsure = torch.nonzero(thresh < _GRAM_DIGITS * ws_sq.sqrt()).flatten()
        if unsure.numel():
            r = self._ritz_residuals(theta[unsure], s[:, unsure])
            res[unsure] = torch.linalg.vector_norm(r, dim=0).cpu()
        return res

    def _thresholds(self, theta_all: torch.Tensor, want: torch.Tensor) -> torch.Tensor:
        rho = theta_all.abs().max()
        return self.tol * torch.clamp(theta_all[want].abs(), min=SMALL_EIGENVALUE_FLOOR * rho)

    def _ritz_residuals(self, theta: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        s = s.to(self.device)
        v = self.V[:, : self.m] @ s
        return self.W[:, : self.m] @ s - v * theta.to(self.device)

    def _restart(self, theta: torch.Tensor, s: torch.Tensor, order: torch.Tensor) -> None:
        """Thick restart: keep the wanted Ritz vectors and the best of the rest."""
        keep = max(self.k, min(self.m - self.block, self.k + (self.cap - self.k) // 2))
        sel = order[:keep]
        sk = s[:, sel]
        sk_dev = sk.to(self.device)
        m = self.m
        self.V[:, :keep] = self.V[:, :m] @ sk_dev
        self.W[:, :keep] = self.W[:, :m] @ sk_dev
        g = sk.T @ self.G[:m, :m] @ sk
        self.T.zero_()
        self.G.zero_()
        self.T[:keep, :keep] = torch.diag(theta[sel])
        self.G[:keep, :keep] = 0.5 * (g + g.T)
        self.m = keep
        self.restarts += 1

    def _result(self, theta: torch.Tensor, s: torch.Tensor, want: torch.Tensor) -> EigenResult:
        want = want[: self.k]
        th = theta[want]
        sw = s[:, want].to(self.device)
        y = self.V[:, : self.m] @ sw
        r = self.W[:, : self.m] @ sw - y * th.to(self.device)
        res = torch.linalg.vector_norm(r, dim=0).cpu()
        thresh = self._thresholds(theta, want)
        if self.m >= self.n:  # the basis spans the whole space: the Ritz pairs are exact
            converged = torch.ones(want.numel(), dtype=torch.bool)
        else:
            converged = res <= thresh
        # Fewer pairs than k (max_matvecs hit early): pad with NaN, flagged unconverged.
        missing = self.k - want.numel()
        if missing > 0:
            nan = torch.full((missing,), float("nan"), dtype=torch.float64)
            th = torch.cat([th, nan])
            res = torch.cat([res, nan])
            converged = torch.cat([converged, torch.zeros(missing, dtype=torch.bool)])
            y = torch.cat([y, torch.zeros(self.n, missing, dtype=y.dtype, device=y.device)], 1)
        return EigenResult(
            eigenvalues=th.clone(), vectors=y, residuals=res, converged=converged,
            matvecs=self.matvecs, restarts=self.restarts,
        )
