"""The measurement core on CUDA (skipped without a GPU; ``benchmarks/gpu_check.sh`` runs
these): block products, the block-size choice and the top-k against the CPU."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from spectrum_fixtures import probe_for, split, tiny_cnn_bn

from sgdtop.spectrum import ProbeHessian, hessian_spectrum
from sgdtop.spectrum.guard import measuring
from sgdtop.spectrum.hvp import MATMAT_MAX_BLOCK
from sgdtop.spectrum.topk import BLOCK_CANDIDATES, choose_block_size

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _cuda_case() -> tuple[torch.nn.Module, list[tuple[torch.Tensor, torch.Tensor]]]:
    model = tiny_cnn_bn().cuda()
    x, y = probe_for(model.cpu(), n=24)
    model.cuda()
    return model, split(x.cuda(), y.cuda(), [10, 14])


def test_matmat_equals_matvec_on_cuda() -> None:
    model, batches = _cuda_case()
    op = ProbeHessian(model, F.cross_entropy, batches)
    v = torch.randn(op.num_params, 6, dtype=torch.float64, device="cuda")
    with measuring(model):
        block = op.matmat(v)
        single = torch.stack([op.matvec(v[:, j]) for j in range(6)], 1)
    assert block.device.type == "cuda"
    assert (block - single).abs().max() <= 1e-5 * single.abs().max()
    assert 1 <= op.block_limit() <= MATMAT_MAX_BLOCK


def test_block_choice_and_topk_match_the_cpu() -> None:
    model, batches = _cuda_case()
    op = ProbeHessian(model, F.cross_entropy, batches)
    with measuring(model):
        b, batched = choose_block_size(op)
    assert (b, batched) in [(2, False), *((c, True) for c in BLOCK_CANDIDATES)]
    gpu = hessian_spectrum(model, F.cross_entropy, batches, k=10, tol=1e-6)
    cpu_model = copy.deepcopy(model).cpu()
    cpu_batches = [(x.cpu(), y.cpu()) for x, y in batches]
    cpu = hessian_spectrum(cpu_model, F.cross_entropy, cpu_batches, k=10, tol=1e-6)
    assert gpu.all_converged and gpu.separated and gpu.block_size == b
    assert torch.allclose(torch.tensor(gpu.eigenvalues), torch.tensor(cpu.eigenvalues),
                          rtol=1e-4, atol=1e-6)
