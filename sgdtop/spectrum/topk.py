"""The top-k Hessian eigenvalues of the probe-set loss: :func:`hessian_spectrum`.

Definitions (``docs/design.md``): H is the Hessian of the mean probe-set loss w.r.t. all
trainable parameters, model in eval mode, weight decay excluded. The top-k eigenvalues are
the k of largest |λ| (``which="magnitude"``, default) or of largest λ (``"largest"``),
signed, ordered by that key; each has its Ritz residual ‖Hv − λv‖. The spectral norm is
ρ(H) = max |λ| over the computed ones, and κ_k = |λ₁| / |λ_k|. Eigenvalues are in the
loss's units per squared parameter unit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from sgdtop.spectrum.errors import SpectrumInputError
from sgdtop.spectrum.guard import measuring
from sgdtop.spectrum.hvp import DEFAULT_HVP_METHOD, Batches, LossFn, ProbeHessian
from sgdtop.spectrum.lanczos import check_eigen_args, top_eigenpairs

Progress = Callable[[int, float], None]
"""``progress(hvps_so_far, seconds_so_far)``, called after every Hessian-vector product."""


@dataclass(frozen=True, slots=True)
class SpectrumResult:
    """The top-k Hessian eigenvalues of one measurement.

    Attributes:
        eigenvalues: k floats, signed, ordered by |λ| descending (``which="magnitude"``) or
            λ descending (``"largest"``). NaN only where ``max_hvps`` stopped the iteration
            before k Ritz values existed.
        residuals: k floats, ‖H yᵢ − λᵢ yᵢ‖ for the unit Ritz vectors yᵢ.
        converged: k flags: residual ≤ tol · max(|λᵢ|, 1e-3 · ρ).
        spectral_norm: ρ(H) = max |λᵢ| over the computed eigenvalues.
        cond_k: κ_k = |λ₁| / |λ_k| (inf if λ_k = 0, NaN if H = 0 or λ_k is NaN).
        k, which, tol: what was asked.
        hvps: Hessian-vector products used (each is one pass over the probe set).
        seconds: wall-clock time of the whole measurement.
        warm: whether it started from a previous result's Ritz vectors.
        num_params: the dimension n of H (trainable scalars).
        num_examples: examples in the probe set.
        ritz_vectors: (n, k) float64 tensor **on the CPU**, orthonormal columns yᵢ in
            ``model.named_parameters()`` order (trainable only); what ``warm_start=`` takes.
            Kept on the CPU so that holding it between measurements costs no accelerator
            memory (k·n·8 bytes: 110 MB for ResNet32 at k=30).
        guard_band: g, the pairs beyond k converged too before the top k were reported
            (``max(5, k // 5)`` by default, fewer only where k + g would exceed n).
        separated: whether the whole band of k + g pairs converged, which is what makes
            the k-th eigenvalue trustworthy (no larger |λ| left out); False only when
            ``max_hvps`` stopped the iteration first.
        block_size: b, the vectors per expansion (one block product each).
        block_passes: backward sweeps over the probe set's graphs (one per single
            product, one per block product); ``hvps`` counts the vectors.
    """

    eigenvalues: tuple[float, ...]
    residuals: tuple[float, ...]
    converged: tuple[bool, ...]
    spectral_norm: float
    cond_k: float
    k: int
    which: str
    tol: float
    hvps: int
    seconds: float
    warm: bool
    num_params: int
    num_examples: int
    ritz_vectors: torch.Tensor = field(repr=False, compare=False)
    guard_band: int = 0
    separated: bool = True
    block_size: int = 1
    block_passes: int = 0

    @property
    def all_converged(self) -> bool:
        """Whether every one of the k eigenvalues met the tolerance."""
        return all(self.converged)


def cond_k(eigenvalues: tuple[float, ...]) -> float:
    """κ_k = |λ₁| / |λ_k| for eigenvalues ordered as in :class:`SpectrumResult`."""
    first, last = abs(eigenvalues[0]), abs(eigenvalues[-1])
    if math.isnan(first) or math.isnan(last) or first == last == 0:
        return math.nan
    return first / last if last > 0 else math.inf


def _warm_vectors(warm_start: SpectrumResult | torch.Tensor, n: int) -> torch.Tensor:
    vectors = warm_start.ritz_vectors if isinstance(warm_start, SpectrumResult) else warm_start
    if not isinstance(vectors, torch.Tensor):
        raise SpectrumInputError(
            "warm_start must be a SpectrumResult or an (n, k) tensor of Ritz vectors")
    if vectors.dim() == 1:
        vectors = vectors[:, None]
    if vectors.dim() != 2 or vectors.shape[0] != n:
        raise SpectrumInputError(
            f"warm_start vectors have shape {tuple(vectors.shape)}, but the model has "
            f"{n} trainable parameters")
    finite = torch.isfinite(vectors).all(0) & (vectors.abs().sum(0) > 0)
    return vectors[:, finite]


_BLOCK_CHOICES: dict[tuple[str, int, int, str], tuple[int, bool]] = {}
BLOCK_CANDIDATES: tuple[int, ...] = (4, 8)
BLOCK_MIN_GAIN: float = 0.75
"""A block size is chosen only if its seconds per vector are at most this fraction of a
single product's."""


CPU_BLOCK: int = 2
"""The expansion block on the CPU: 2 vectors share each pass over the basis, their
products issued one by one (measured, ``benchmarks/README.md``: top-30 of the
teacher-student MLP 1.27× faster than b = 1 for 6% more HVPs)."""


def choose_block_size(op: ProbeHessian) -> tuple[int, bool]:
    """The expansion block size b for ``op``'s device and whether its b products go
    through one batched backward (:meth:`ProbeHessian.matmat`), by measurement.

    On the CPU: ``(CPU_BLOCK, False)``, without measuring: a batched backward costs more
    per vector than single products there (measured on a 2-core CPU on the MLP and
    ResNet20, ``benchmarks/README.md``), while two vectors per expansion halve the reads
    of the basis per vector. Elsewhere: once per process and (device, n, probe size,
    model class), time one single product and one block of each of
    :data:`BLOCK_CANDIDATES` on random vectors (synchronizing the device) and take the b
    of least seconds per vector, batched, if that is at most ``BLOCK_MIN_GAIN`` of a
    single product's, else ``(CPU_BLOCK, False)``. Those products count in ``op.hvps``
    (14 of them, the first measurement only)."""
    if op.device.type == "cpu":
        return CPU_BLOCK, False
    key = (str(op.device), op.num_params, op.num_examples, type(op.model).__name__)
    if key in _BLOCK_CHOICES:
        return _BLOCK_CHOICES[key]
    gen = torch.Generator().manual_seed(0)

    def timed(b: int) -> float:
        v = torch.randn(op.num_params, b, dtype=torch.float64, generator=gen).to(op.device)
        _synchronize(op.device)
        t = time.perf_counter()
        op.matmat(v, block=b) if b > 1 else op.matvec(v[:, 0])
        _synchronize(op.device)
        return (time.perf_counter() - t) / b

    timed(1)  # builds the kept graphs
    single = timed(1)
    best, best_s = (CPU_BLOCK, False), single * BLOCK_MIN_GAIN
    for b in BLOCK_CANDIDATES:
        s = timed(b)
        if s < best_s:
            best, best_s = (b, True), s
    _BLOCK_CHOICES[key] = best
    return best


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _work_device(device: torch.device) -> torch.device:
    """Where the float64 Lanczos basis lives: the model's device where float64 is fast
    and supported (CPU, CUDA), else the CPU (e.g. Apple MPS has no float64)."""
    return device if device.type in ("cpu", "cuda") else torch.device("cpu")


def hessian_spectrum(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Batches,
    k: int = 30,
    which: str = "magnitude",
    tol: float = 1e-3,
    seed: int = 0,
    warm_start: SpectrumResult | torch.Tensor | None = None,
    *,
    progress: Progress | None = None,
    max_hvps: int | None = None,
    block_size: int | None = None,
    max_basis: int | None = None,
    method: str = DEFAULT_HVP_METHOD,
    graph_cache_bytes: int | None = None,
    batch_norm: str = "running",
    guard_band: int | None = None,
) -> SpectrumResult:
    """The top-k eigenvalues of the Hessian of the mean probe-set loss.

    Lanczos with full reorthogonalization (:mod:`sgdtop.spectrum.lanczos`) on
    Hessian-vector products (:mod:`sgdtop.spectrum.hvp`), with the model in eval mode and
    without side effects: parameters, buffers, train/eval flags, ``.grad`` and the global
    RNG state are as before (:mod:`sgdtop.spectrum.guard`).

    Args:
        model: the network; its parameters' device and dtype are used.
        loss_fn: ``loss_fn(outputs, targets)`` → mean loss of a micro-batch (no L2 term).
        batches: re-iterable of ``(inputs, targets)`` micro-batches: the probe set,
            iterated once to count it, then once per Hessian-vector product (only for the
            first one while the gradient graphs are kept); weighted by batch size.
        k: number of eigenvalues, 1 ≤ k ≤ number of trainable parameters.
        which: ``"magnitude"`` (largest |λ|, the paper's definition) or ``"largest"``.
        tol: relative residual tolerance (see :class:`SpectrumResult.converged`).
        seed: seed of the random start vector (drawn on the CPU: device-independent).
        warm_start: a previous :class:`SpectrumResult` (or its ``ritz_vectors``) of the same
            model. If the Hessian moved little since (its slowest Ritz vector is still
            within 8× the tolerance), the iteration starts from that whole subspace: about
            k HVPs plus a few; otherwise Lanczos starts from the sum of the Ritz vectors
            (a few % fewer HVPs than cold; see :mod:`sgdtop.spectrum.lanczos`).
        progress: called after each HVP (each block of them with ``block_size > 1``)
            with (HVPs so far, seconds so far); throttle it yourself.
        max_hvps: cap on HVPs; the result then flags unconverged eigenvalues (never raises
            for non-convergence).
        block_size: expansion vectors per step, applied as one block product
            (:meth:`ProbeHessian.matmat`); also ≥ the multiplicity of a repeated eigenvalue
            finds all its copies from a cold start. None: :func:`choose_block_size` (2
            vectors per expansion, products one by one on the CPU, where a batched
            backward costs more per vector than single ones).
        max_basis: restart size of the Lanczos basis (memory: 2·max_basis·n float64 on the
            model's device); default 2(k + g) + 20 + block_size, g the guard band.
        method: the HVP method (see :data:`sgdtop.spectrum.hvp.HVP_METHODS`).
        graph_cache_bytes: memory the probe set's gradient graphs may keep between HVPs
            (each HVP is then one backward pass instead of three); None for the default
            (1 GiB on the CPU, a quarter of the free memory on CUDA), 0 to never keep them.
        batch_norm: ``"running"`` (eval mode, the default) or ``"batch"`` (batch norm on
            each probe micro-batch's statistics, as in training; see
            :data:`sgdtop.spectrum.guard.BATCH_NORM_MODES`).
        guard_band: pairs beyond k that must converge too before the top k are reported
            (None: ``max(5, k // 5)``; 0: none). A Krylov method knows only the Ritz
            values it has: converged residuals of the top k do not prove that no
            eigenvalue of larger |λ| is still missing (a ± pair at the k-th place was
            returned as its smaller member about once in twenty measurements along SGD
            runs of the teacher-student MLP). Converging the band down past the k-th
            value first removed every such miss in the tests (``tests/test_spectrum_edge.py``);
            it is a heuristic, not a proof, like every Krylov stopping rule. Its cost is
            reported in ``benchmarks/README.md``.

    Raises:
        SpectrumInputError: bad k/which/tol, an empty probe set, a model without trainable
            parameters, a warm start of the wrong size.
        NonFiniteError: the loss or a Hessian-vector product is NaN/inf.
    """
    t0 = time.perf_counter()
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise SpectrumInputError(f"k must be a positive integer, got {k!r}")
    if max_hvps is not None and (isinstance(max_hvps, bool) or max_hvps < 1):
        raise SpectrumInputError(f"max_hvps must be a positive integer, got {max_hvps!r}")
    op = ProbeHessian(model, loss_fn, batches, method=method,
                      graph_cache_bytes=graph_cache_bytes)
    n = op.num_params
    check_eigen_args(n, k, which, tol)
    start = None if warm_start is None else _warm_vectors(warm_start, n)
    warm = start is not None and start.shape[1] > 0
    if not warm:
        start = None

    def matvec(v: torch.Tensor) -> torch.Tensor:
        out = op.matvec(v)
        if progress is not None:
            progress(op.hvps, time.perf_counter() - t0)
        return out

    def matmat(v: torch.Tensor) -> torch.Tensor:
        out = op.matmat(v)
        if progress is not None:
            progress(op.hvps, time.perf_counter() - t0)
        return out

    with measuring(model, batch_norm):
        try:
            batched = block_size is not None and block_size > 1
            if block_size is None:
                block_size, batched = choose_block_size(op)
            res = top_eigenpairs(
                matvec, n, k, which=which, tol=tol, start=start, seed=seed,
                block_size=block_size, max_matvecs=max_hvps, max_basis=max_basis,
                device=_work_device(op.device), guard_band=guard_band,
                matmat=matmat if batched else None,
            )
        except (RuntimeError, ValueError):
            op.check_finite()  # a NaN product surfaces in eigh first on non-CPU devices
            raise
        finally:
            op.release()
        op.check_finite()
        vectors = res.vectors.cpu()
    eig = tuple(float(x) for x in res.eigenvalues)
    finite = [abs(x) for x in eig if not math.isnan(x)]
    return SpectrumResult(
        eigenvalues=eig,
        residuals=tuple(float(x) for x in res.residuals),
        converged=tuple(bool(x) for x in res.converged),
        spectral_norm=max(finite) if finite else math.nan,
        cond_k=cond_k(eig),
        k=k,
        which=which,
        tol=tol,
        hvps=op.hvps,
        seconds=time.perf_counter() - t0,
        warm=warm,
        num_params=n,
        num_examples=op.num_examples,
        ritz_vectors=vectors,
        guard_band=res.guard_band,
        separated=res.separated,
        block_size=block_size,
        block_passes=op.block_passes,
    )
