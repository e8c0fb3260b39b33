"""Block Hessian products: ``ProbeHessian.matmat`` against repeated ``matvec`` and against
a dense ``torch.func.hessian`` (float64) on tiny models, micro-batches of unequal size."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from spectrum_fixtures import (
    probe_for,
    reference_hessian,
    split,
    tiny_cnn_bn,
    tiny_dropout,
    tiny_mlp,
)
from torch import nn

from sgdtop.spectrum import ProbeHessian
from sgdtop.spectrum.guard import measuring

MODELS = [tiny_mlp, tiny_cnn_bn, tiny_dropout]


@pytest.mark.parametrize("budget", [None, 0])
@pytest.mark.parametrize("make", MODELS)
def test_matmat_matches_dense_hessian(make: Callable[[], nn.Module], budget: int | None) -> None:
    """float64 models: H V equals the dense Hessian times V to rounding, with the graphs
    kept (default budget) or rebuilt for every pass (budget 0); blocks of 2 and of all."""
    model = make().double()
    model.train()
    x, y = probe_for(model)
    ref = reference_hessian(model, x, y)
    op = ProbeHessian(model, F.cross_entropy, split(x, y, [4, 9]), graph_cache_bytes=budget)
    v = torch.randn(op.num_params, 5, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(0))
    with measuring(model):
        whole = op.matmat(v)
        pairs = op.matmat(v, block=2)
    for hv in (whole, pairs):
        assert hv.shape == v.shape and hv.dtype == torch.float64
        assert torch.allclose(hv, ref @ v, rtol=1e-9, atol=1e-12)
    assert op.hvps == 10
    # Kept graphs: the first column is a matvec that builds them, then one batched pass
    # of 4 (2 passes), then blocks of 2 (3). Rebuilt: no graph to size the block from,
    # so blocks of MATMAT_UNKNOWN_BLOCK = 4 (2 passes), then of 2 (3).
    assert op.block_passes == 5


@pytest.mark.parametrize("make", MODELS)
def test_matmat_equals_repeated_matvec_in_float32(make: Callable[[], nn.Module]) -> None:
    """float32 models (as measured): b products in one pass equal b matvecs within float32
    rounding, over micro-batches of unequal size (1, 5, 7)."""
    model = make()
    x, y = probe_for(model)
    op = ProbeHessian(model, F.cross_entropy, split(x, y, [1, 5, 7]))
    v = torch.randn(op.num_params, 6, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(1))
    with measuring(model):
        block = op.matmat(v)
        single = torch.stack([op.matvec(v[:, j]) for j in range(6)], 1)
    scale = single.abs().max()
    assert (block - single).abs().max() <= 1e-5 * scale


def test_block_limit_from_memory_budget() -> None:
    model = tiny_mlp()
    x, y = probe_for(model)
    op = ProbeHessian(model, F.cross_entropy, split(x, y, [4, 9]))
    v = torch.ones(op.num_params, 1, dtype=torch.float64)
    with measuring(model):
        op.matmat(v)
    assert op.graph_bytes > 0
    assert op.block_limit() == 32  # a tiny graph: the cap
    tight = ProbeHessian(model, F.cross_entropy, split(x, y, [4, 9]),
                         graph_cache_bytes=3 * op.graph_bytes)
    with measuring(model):
        tight.matmat(v)
    assert tight.block_limit() == 2  # (budget − graph) // graph


def test_block_solver_on_a_model_matches_dense_eigenvalues() -> None:
    """hessian_spectrum with 4-vector block expansions (matmat) on the BN CNN: the dense
    top 10, fewer backward sweeps than vectors; the default (b = 2 on the CPU, products
    one by one) agrees."""
    from spectrum_fixtures import reference_eigenvalues

    from sgdtop.spectrum import hessian_spectrum

    model = tiny_cnn_bn()
    x, y = probe_for(model, n=24)
    ref = reference_eigenvalues(model, x, y)[:10]
    batches = split(x, y, [10, 14])
    block = hessian_spectrum(model, F.cross_entropy, batches, k=10, tol=1e-6, block_size=4)
    single = hessian_spectrum(model, F.cross_entropy, batches, k=10, tol=1e-6)
    assert block.block_size == 4 and single.block_size == 2
    for res in (block, single):
        assert res.all_converged and res.separated
        assert torch.allclose(torch.tensor(res.eigenvalues, dtype=torch.float64), ref,
                              rtol=1e-4, atol=1e-6)
    assert block.block_passes < block.hvps / 2
    assert single.block_passes == single.hvps  # not batched on the CPU
