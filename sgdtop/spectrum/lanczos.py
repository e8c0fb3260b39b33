"""Extreme eigenpairs of a symmetric linear operator given only as a matvec callable.

Pure linear algebra on ``torch`` tensors: nothing here knows about ``torch.nn``.

The method is Lanczos with full reorthogonalization, written in its Rayleigh–Ritz
("Davidson without preconditioner") form so that the same code can start from one vector
(cold) or from a block of vectors (warm: the previous measurement's Ritz vectors):

1. the basis ``V`` (orthonormal, float64) grows one vector (or ``block_size`` vectors) per
   step; every new vector is orthogonalized twice against the whole basis (classical
   Gram–Schmidt, twice: a Ritz residual is orthogonal to V by construction up to
   rounding, which counts as the first pass, and gets one explicit pass; a random or
   warm-start vector gets two), so there are no ghost copies of converged eigenvalues;
2. ``W = A V`` is kept (float64) next to ``V``; the projected matrix ``T = sym(Vᵀ W)`` and
   the Gram matrix ``G = Wᵀ W`` are updated column by column;
3. Rayleigh–Ritz: ``T = S Θ Sᵀ``; the Ritz pairs ``(θᵢ, yᵢ = V sᵢ)`` have residual norms
   ``‖A yᵢ − θᵢ yᵢ‖² = sᵢᵀ G sᵢ − θᵢ²`` (no extra matvec);
4. the basis is expanded by the residual ``W sᵢ − θᵢ V sᵢ`` of the wanted, unconverged
   pair whose residual is largest relative to its threshold. From a single start vector
   every Ritz residual lies along the same Krylov direction, so the basis is exactly the
   Krylov space ``span{b, Ab, A²b, ...}``: this *is* Lanczos. From a block the residuals
   differ and the expansion targets the pairs that still need work;
5. when the basis is full (``max_basis``), it is thick-restarted (Wu & Simon 2000): it
   keeps the wanted Ritz vectors and the next best ones, with ``T`` diagonal.

Wanted pairs: the k Ritz values of largest ``|θ|`` (``which="magnitude"``, the paper's
definition) or of largest ``θ`` (``which="largest"``). A pair is converged when its
residual is at most ``tol · max(|θ|, SMALL_EIGENVALUE_FLOOR · ρ)``, ρ the largest ``|θ|``:
relative to the eigenvalue itself, except that eigenvalues below ``1e-3·ρ`` are held to the
absolute bound ``tol · 1e-3 · ρ`` (they are zero to the precision a float32 operator has).

The edge of k (issue 18): a Krylov method knows only the Ritz values it has, and converged
residuals of the top k do not prove that no eigenvalue of larger |λ| is missing (along SGD
runs of the teacher-student MLP about one top-30 measurement in twenty returned the 31st
eigenvalue, the other member of a ± pair, in place of the 30th). So a *guard band* of
``g = max(5, k // 5)`` further pairs is converged too, and the top k are reported only
once the band *separates* them: each guard pair j either meets the tolerance or its
residual interval lies below the k-th value, ``key(θⱼ) + rⱼ < key(θ_k) − thresh_k``
(key = |θ| or θ). A cold start uses two random vectors (``COLD_START_BLOCK``), and a warm
start that falls back to Σ yᵢ adds a random one, so that ± pairs and near-degenerate pairs
are resolved from the start. This is a strong heuristic, not a proof (none exists for a
Krylov method); it costs ~20% more matvecs at k=30 on that MLP (``benchmarks/README.md``).

Warm start (``start`` = the previous Ritz vectors y₁..y_k, in wanted order): the slowest
one, y_k, is applied first. If its residual under the new operator is within
``WARM_BLOCK_MAX_RATIO`` (8) times its threshold, the operator moved little and the whole
block enters the basis (k matvecs for Rayleigh–Ritz, then targeted expansions).
Otherwise a block costs more than it saves (each of the k pairs then needs its own
corrections) and Lanczos starts from Σ yᵢ instead (with one random vector beside it,
for the edge of k, above). The trial costs one matvec. Measured with the solver before
issue 18 (:mod:`sgdtop.spectrum.legacy`; ``benchmarks/bench_spectrum.py``, k=30, one SGD
step between measurements): warm/cold matvecs 0.36 on the teacher-student MLP at η = 1e-4, 0.64 at
η = 1e-3, 0.96 at the paper's η = 0.1 (0.97 on ResNet20), where one step moves the
spectrum by more than the tolerance.

Repeated and tightly clustered eigenvalues: a Krylov space grown from ``p`` start vectors
holds at most ``p`` independent eigenvectors of one eigenvalue, so a cold start with
``block_size=1`` finds each distinct eigenvalue once (rounding errors reveal further
copies only slowly), and a cluster narrower than the tolerance looks like one eigenvalue.
Use ``block_size ≥`` the multiplicity (or cluster size) you expect; a warm start from Ritz
vectors that already hold the copies keeps them. SciPy's ``eigsh`` has the same limit.

Block expansion (issue 18): with ``block_size = b > 1`` each step expands by the residuals
of the b unconverged wanted pairs furthest off, so every pass over the basis (residuals,
Gram–Schmidt, the new columns of T and G) serves b vectors at once, and the b products
go through one ``matmat`` call where one is given (one batched backward through the
Hessian's graph; :meth:`sgdtop.spectrum.hvp.ProbeHessian.matmat`). Measured on the
synthetic spectra of ``tests/test_spectrum_lanczos.py`` at k = 30: b = 4 needs 3–4× fewer
block products than b = 1 for 0–30% more vectors, with the same answers. ``matvecs``
counts vectors, ``passes`` the products as issued.

Layout and cost: ``V`` and ``W`` are preallocated (cap, n) row blocks, so the first m
vectors are one contiguous matrix and each projection is one matrix product (see
``_Iteration``). Memory: ``2 · max_basis`` float64 vectors of length n, on ``device``,
with ``max_basis = 2(k + g) + 20 + b`` by default (g the guard band).
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

COLD_START_BLOCK: Final[int] = 2
"""A cold start uses at least this many random vectors (``max(COLD_START_BLOCK,
block_size)``): a Krylov space grown from one vector holds one eigenvector per eigenvalue
and resolves a near-degenerate pair (or a ± pair by |λ|) only slowly."""

WARM_BLOCK_MAX_RATIO: Final[float] = 8.0
"""A warm start uses the whole block only if its slowest vector's residual is within this
many times its convergence threshold under the new operator (see ``_start_warm``)."""

_GRAM_DIGITS: Final[float] = 1e-5
"""Residuals below this fraction of ‖A y‖ are recomputed from the vectors (the Gram
formula's cancellation floor is ~1e-8 in float64)."""

MatVec = Callable[[torch.Tensor], torch.Tensor]


def default_max_basis(k: int, block_size: int = 1) -> int:
    """The basis size at which the iteration restarts, by default: ``2k + 20`` vectors
    (plus the block size; k here counts the guard band too). Larger bases restart less
    and rarely save many matvecs."""
    return 2 * k + 20 + block_size


def default_guard_band(k: int) -> int:
    """The guard band beyond k, by default: ``max(5, k // 5)`` pairs (6 for k = 30)."""
    return max(5, k // 5)


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
        guard_band: g, the pairs beyond k that were converged too (``k + g`` in all, at
            most n): the top k are reported only once the band converged.
        separated: whether all ``k + g`` pairs met the tolerance (False when
            ``max_matvecs`` stopped the iteration first).
        passes: products with A as issued: one per matvec, one per block ``matmat``.
        host_reads: device-to-host read-backs of the solver's own (not counting those
            inside ``matvec``/``matmat`` or ``torch.linalg.eigh``).
    """

    eigenvalues: torch.Tensor
    vectors: torch.Tensor
    residuals: torch.Tensor
    converged: torch.Tensor
    matvecs: int
    restarts: int
    guard_band: int = 0
    separated: bool = True
    passes: int = 0
    host_reads: int = 0


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
    guard_band: int | None = None,
    matmat: MatVec | None = None,
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
        guard_band: pairs beyond k converged before the top k are reported (None for
            :func:`default_guard_band`; 0 for none, the pre-issue-18 behaviour).
        matmat: ``V ↦ A V`` for a float64 block (n, b): used for the blocks the iteration
            applies at once (start blocks, block expansions); None: one ``matvec`` each.
    """
    check_eigen_args(n, k, which, tol)
    if guard_band is None:
        guard_band = default_guard_band(k)
    if isinstance(guard_band, bool) or not isinstance(guard_band, int) or guard_band < 0:
        raise SpectrumInputError(f"guard_band must be a non-negative integer, got {guard_band!r}")
    guard_band = min(guard_band, n - k)
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise SpectrumInputError(f"block_size must be a positive integer, got {block_size!r}")
    if max_matvecs is not None and max_matvecs < 1:
        raise SpectrumInputError(f"max_matvecs must be positive, got {max_matvecs!r}")
    if device is None:
        device = start.device if start is not None else torch.device("cpu")
    band = k + guard_band
    cap = max_basis if max_basis is not None else default_max_basis(band, block_size)
    cap = min(n, max(cap, band + block_size + 1))
    return _Iteration(matvec, n, k, band, which, tol, seed, block_size, max_matvecs, cap,
                      torch.device(device), matmat).run(start)


class _Iteration:
    """State of one run of :func:`top_eigenpairs`.

    Layout: the basis ``V`` and its products ``W = A V`` are preallocated row blocks of
    shape (cap, n), float64, so that the first m vectors are one contiguous (m, n) matrix
    and every projection against them is a single matrix product that reads the basis
    once; the projected matrices ``T`` and ``G`` (cap, cap) live on the same device.
    Per expansion by one vector the basis is read: V and W once each for the Ritz
    residual, V twice for its reorthogonalization, V and W once each for the new column
    of T and G (the residual is orthogonal to V by construction, VᵀW s − θ s = 0 up to
    rounding, so one explicit Gram–Schmidt pass is the second of "twice is enough").
    """

    def __init__(
        self, matvec: MatVec, n: int, k: int, band: int, which: str, tol: float, seed: int,
        block_size: int, max_matvecs: int | None, cap: int, device: torch.device,
        matmat: MatVec | None = None,
    ) -> None:
        self.matvec, self.matmat, self.n, self.which, self.tol = matvec, matmat, n, which, tol
        self.k_out = k  # reported pairs
        self.k = band  # converged pairs: k plus the guard band
        if max_matvecs is None:
            max_matvecs = default_matvec_limit(n, k)
        self.block, self.max_matvecs, self.cap, self.device = (
            block_size, max_matvecs, cap, device)
        self.gen = torch.Generator().manual_seed(seed)
        f64 = torch.float64
        self.V = torch.empty(cap, n, dtype=f64, device=device)
        self.W = torch.empty(cap, n, dtype=f64, device=device)
        self.T = torch.zeros(cap, cap, dtype=f64, device=device)
        self.G = torch.zeros(cap, cap, dtype=f64, device=device)
        self.m = 0
        self.matvecs = 0
        self.passes = 0
        self.restarts = 0
        self.host_reads = 0

    # -- the loop -------------------------------------------------------------------------

    def run(self, start: torch.Tensor | None) -> EigenResult:
        if start is None:
            self._add(self._random(min(self.n, max(COLD_START_BLOCK, self.block))))
        else:
            if start.dim() == 1:
                start = start[:, None]
            if start.dim() != 2 or start.shape[0] != self.n:
                raise SpectrumInputError(
                    f"start vectors have shape {tuple(start.shape)}; expected ({self.n}, b)")
            cand = start.to(device=self.device, dtype=torch.float64)[:, : self.cap]
            if not torch.isfinite(cand).all():
                raise SpectrumInputError("start vectors contain NaN or infinity")
            self._start_warm(cand.T.contiguous())
        if self.m == 0:
            self._add(self._random(self.block))
        while True:
            theta, s = torch.linalg.eigh(self.T[: self.m, : self.m])
            order = wanted_order(theta, self.which)
            want = order[: self.k]
            thresh = self._allowed(theta, want, self._thresholds(theta, want))
            res, unsure = self._gram_residuals(theta[want], s[:, want], thresh)
            # The one read-back of the iteration: residuals, thresholds, which to recompute.
            res, thresh, unsure = self._host(torch.stack([res, thresh, unsure.to(res.dtype)]))
            if bool(unsure.any()):  # rare: tight thresholds (see _residual_norms)
                idx = torch.nonzero(unsure).flatten()
                dev = idx.to(self.device)
                r = self._ritz_residuals(theta[want][dev], s[:, want][:, dev])
                res[idx] = self._host(torch.linalg.vector_norm(r, dim=1))
            unconverged = torch.nonzero(res > thresh).flatten()
            done = self.m >= self.k and unconverged.numel() == 0
            if done or self.m >= self.n or self._out_of_budget():
                return self._result(theta, s, want)
            if self.m + self.block > self.cap:
                self._restart(theta, s, order)
                continue
            # Expand by the residuals of the unconverged wanted pairs that are furthest off.
            if unconverged.numel() == 0:  # fewer than k pairs so far, all converged
                cand, passes = self._random(self.block), 2
            else:
                ratio = res[unconverged] / thresh[unconverged]
                pick = unconverged[torch.argsort(ratio, descending=True)[: self.block]]
                pick = pick.to(self.device)
                cand = self._ritz_residuals(theta[want][pick], s[:, want][:, pick])
                passes = 1
            if (self._add(cand, passes) == 0
                    and self._add(self._random(self.block)) == 0):
                return self._result(theta, s, want)

    def _start_warm(self, cand: torch.Tensor) -> None:
        """Start from a block of approximate eigenvectors (rows: the previous Ritz vectors,
        in wanted order). The last one, the slowest to converge, is tried first: if A moved
        little (its residual is within ``WARM_BLOCK_MAX_RATIO`` times its threshold), the
        whole block enters the basis (Rayleigh–Ritz on it, then targeted expansions);
        otherwise the block is of little use as such, and Lanczos starts from the vector
        Σ yᵢ (and a random one), whose Krylov space recovers the old subspace in about b
        steps and the new directions after. That trial costs one matvec."""
        cand = cand[: self.k_out]
        b = cand.shape[0]
        if b == 1:
            self._add(cand)
            return
        self._add(cand[-1:])
        if self.m == 1:
            theta = self.T[0, 0]
            res = (self.G[0, 0] - theta**2).clamp_min(0).sqrt()
            if res <= WARM_BLOCK_MAX_RATIO * self.tol * theta.abs():
                self._add(cand[:-1])
                return
            self.m = 0
            self.T.zero_()
            self.G.zero_()
        self._add(torch.cat([cand.sum(0, keepdim=True), self._random(1)], 0))

    def _out_of_budget(self) -> bool:
        return self.max_matvecs is not None and self.matvecs >= self.max_matvecs

    # -- pieces ---------------------------------------------------------------------------

    def _random(self, b: int) -> torch.Tensor:
        """``b`` seeded Gaussian rows (n,), drawn on the CPU (device-independent)."""
        z = torch.randn(self.n, b, dtype=torch.float64, generator=self.gen)
        return z.T.contiguous().to(self.device)

    def _add(self, cand: torch.Tensor, passes: int = 2) -> int:
        """Orthonormalize the rows of ``cand`` against the basis (``passes`` block
        Gram–Schmidt passes, each one product with V and one with Vᵀ) and each other,
        apply A to those that are independent, and grow V, W, T, G. Returns how many
        were added."""
        room = min(self.cap - self.m, self.max_matvecs - self.matvecs)
        if room <= 0:
            return 0
        q = cand.clone()
        norm0 = torch.linalg.vector_norm(q, dim=1)
        if self.m:
            basis = self.V[: self.m]
            for _ in range(passes):
                q -= (q @ basis.T) @ basis
        rows: list[torch.Tensor] = []
        norms: list[torch.Tensor] = []
        for j in range(q.shape[0]):  # within the block (b is small): Gram–Schmidt twice
            x = q[j]
            for _ in range(2 if rows else 0):
                prev = torch.stack(rows)
                x = x - (prev @ x) @ prev
            norm = torch.linalg.vector_norm(x)
            norms.append(norm)
            # A dependent row becomes a (harmless) arbitrary unit direction here and is
            # dropped below: deciding after the block costs one read-back, not b.
            rows.append(x / norm.clamp_min(torch.finfo(torch.float64).tiny))
        ok = self._host((norm0 > 0) & (torch.stack(norms) > _DEPENDENT * norm0))
        keep = [rows[j] for j in range(len(rows)) if bool(ok[j])][:room]
        if not keep:
            return 0
        block = torch.stack(keep)
        self._append(block, self._apply(block))
        return block.shape[0]

    def _apply(self, q: torch.Tensor) -> torch.Tensor:
        """``A qᵢ`` for each row (b, n): one block product if a ``matmat`` is given,
        else one matvec per row; float64 rows on the device."""
        b = q.shape[0]
        if self.matmat is not None and b > 1:
            w = self.matmat(q.T)
            if w.shape != (self.n, b):
                raise SpectrumInputError(
                    f"matmat returned shape {tuple(w.shape)}; expected ({self.n}, {b})")
            out = w.to(device=self.device, dtype=torch.float64).T
            self.passes += 1
        else:
            rows = []
            for j in range(b):
                w = self.matvec(q[j])
                if w.shape != (self.n,):
                    raise SpectrumInputError(
                        f"matvec returned shape {tuple(w.shape)}; expected ({self.n},)")
                rows.append(w.to(device=self.device, dtype=torch.float64))
                self.passes += 1
            out = torch.stack(rows)
        self.matvecs += b
        return out

    def _append(self, q: torch.Tensor, w: torch.Tensor) -> None:
        """Append orthonormal rows ``q`` (b, n) and ``w = A q`` to the basis; new columns
        of T = sym(VᵀW) and G = WᵀW from one product with V and one with W."""
        m, b = self.m, q.shape[0]
        m1 = m + b
        self.V[m:m1] = q
        self.W[m:m1] = w
        c_col = self.V[:m1] @ w.T  # (m1, b): v_iᵀ A q_j
        wq = self.W[:m1] @ torch.cat([q, w], 0).T  # (m1, 2b): (A v_i)ᵀ q_j, (A v_i)ᵀ A q_j
        t = c_col.clone()
        t[:m] = 0.5 * (c_col[:m] + wq[:m, :b])
        t[m:] = 0.5 * (c_col[m:] + c_col[m:].T)
        self.T[:m1, m:m1] = t
        self.T[m:m1, :m1] = t.T
        g = wq[:, b:]
        g[m:] = 0.5 * (g[m:] + g[m:].T)
        self.G[:m1, m:m1] = g
        self.G[m:m1, :m1] = g.T
        self.m = m1

    def _host(self, t: torch.Tensor) -> torch.Tensor:
        """Read a (small) device tensor back to the host: a synchronization on CUDA,
        counted in ``host_reads``. The inner loop reads back once per iteration (the
        residuals and thresholds of the band) and once per ``_add`` (which rows are
        independent)."""
        self.host_reads += 1
        return t.cpu()

    def _gram_residuals(
        self, theta: torch.Tensor, s: torch.Tensor, thresh: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The Gram-formula residuals (see :meth:`_residual_norms`) and the mask of those
        too close to its cancellation floor, on the device."""
        g = self.G[: self.m, : self.m]
        ws_sq = (s * (g @ s)).sum(0)
        res = (ws_sq - theta**2).clamp_min(0).sqrt()
        return res, thresh < _GRAM_DIGITS * ws_sq.sqrt()

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
            res[unsure] = torch.linalg.vector_norm(r, dim=1)
        return res

    def _allowed(
        self, theta_all: torch.Tensor, want: torch.Tensor, thresh: torch.Tensor
    ) -> torch.Tensor:
        """The residual each wanted pair may keep: its threshold for the top k; for a
        guard pair j > k, also anything that keeps its residual interval below the k-th
        value, ``key(θⱼ) + rⱼ < key(θ_k) − thresh_k`` (key = |θ| or θ): the band then
        *separates* the top k from the rest of the spectrum."""
        k = self.k_out
        if want.numel() <= k:
            return thresh
        key = theta_all[want].abs() if self.which == "magnitude" else theta_all[want]
        margin = key[k - 1] - thresh[k - 1] - key[k:]
        out = thresh.clone()
        out[k:] = torch.maximum(thresh[k:], margin)
        return out

    def _thresholds(self, theta_all: torch.Tensor, want: torch.Tensor) -> torch.Tensor:
        rho = theta_all.abs().max()
        return self.tol * torch.clamp(theta_all[want].abs(), min=SMALL_EIGENVALUE_FLOOR * rho)

    def _ritz_residuals(self, theta: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """Rows ``W s − θ V s`` (b, n) for the columns of s (m, b)."""
        st = s.T.contiguous()
        return st @ self.W[: self.m] - theta[:, None] * (st @ self.V[: self.m])

    def _restart(self, theta: torch.Tensor, s: torch.Tensor, order: torch.Tensor) -> None:
        """Thick restart: keep the wanted Ritz vectors and the best of the rest."""
        keep = max(self.k, min(self.m - self.block, self.k + (self.cap - self.k) // 2))
        sel = order[:keep]
        sk = s[:, sel]
        m = self.m
        skt = sk.T.contiguous()
        self.V[:keep] = skt @ self.V[:m]
        self.W[:keep] = skt @ self.W[:m]
        g = skt @ self.G[:m, :m] @ sk
        self.T.zero_()
        self.G.zero_()
        self.T[:keep, :keep] = torch.diag(theta[sel])
        self.G[:keep, :keep] = 0.5 * (g + g.T)
        self.m = keep
        self.restarts += 1

    def _result(self, theta: torch.Tensor, s: torch.Tensor, want: torch.Tensor) -> EigenResult:
        band = want[: self.k]
        allowed = self._allowed(theta, band, self._thresholds(theta, band))
        band_res = self._residual_norms(theta[band], s[:, band], allowed)
        separated = bool(band.numel() == self.k and (
            self.m >= self.n or bool((band_res <= allowed).all())))
        want = want[: self.k_out]
        th = theta[want]
        swt = s[:, want].T.contiguous()
        y = swt @ self.V[: self.m]  # (k, n)
        r = swt @ self.W[: self.m] - th[:, None] * y
        res = torch.linalg.vector_norm(r, dim=1).cpu()
        thresh = self._thresholds(theta, want).cpu()
        if self.m >= self.n:  # the basis spans the whole space: the Ritz pairs are exact
            converged = torch.ones(want.numel(), dtype=torch.bool)
        else:
            converged = res <= thresh
        th = th.cpu()
        vectors = y.T.contiguous()
        # Fewer pairs than k (max_matvecs hit early): pad with NaN, flagged unconverged.
        missing = self.k_out - want.numel()
        if missing > 0:
            nan = torch.full((missing,), float("nan"), dtype=torch.float64)
            th = torch.cat([th, nan])
            res = torch.cat([res, nan])
            converged = torch.cat([converged, torch.zeros(missing, dtype=torch.bool)])
            vectors = torch.cat([vectors, torch.zeros(
                self.n, missing, dtype=vectors.dtype, device=vectors.device)], 1)
        return EigenResult(
            eigenvalues=th.clone(), vectors=vectors, residuals=res, converged=converged,
            matvecs=self.matvecs, restarts=self.restarts,
            guard_band=self.k - self.k_out, separated=separated, passes=self.passes,
            host_reads=self.host_reads,
        )


def lanczos_tridiagonal(
    matvec: MatVec, v0: torch.Tensor, steps: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``steps`` steps of the Lanczos three-term recurrence from ``v0`` (normalized), with
    full reorthogonalization (twice) in float64. Returns the tridiagonal's diagonal α
    (length m) and off-diagonal β (length m − 1), both float64 on the CPU, where m ≤
    ``steps`` (fewer when the Krylov space becomes invariant)."""
    n = v0.shape[0]
    q = v0.to(torch.float64)
    q = q / torch.linalg.vector_norm(q)
    basis = torch.zeros(n, steps, dtype=torch.float64, device=q.device)
    alphas: list[float] = []
    betas: list[float] = []
    scale = 0.0
    for j in range(steps):
        basis[:, j] = q
        w = matvec(q).to(device=q.device, dtype=torch.float64)
        alpha = float(q @ w)
        alphas.append(alpha)
        done = basis[:, : j + 1]
        for _ in range(2):
            w -= done @ (done.T @ w)
        beta = float(torch.linalg.vector_norm(w))
        scale = max(scale, abs(alpha), beta)
        if j == steps - 1 or beta <= _DEPENDENT * scale:
            break
        betas.append(beta)
        q = w / beta
    return torch.tensor(alphas, dtype=torch.float64), torch.tensor(betas, dtype=torch.float64)
