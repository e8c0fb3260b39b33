"""Hessian-vector products over a probe set, and side-effect freedom of every measurement."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

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

from sgdtop.neurons import dead_neurons
from sgdtop.spectrum import (
    HVP_METHODS,
    ProbeHessian,
    SpectrumInputError,
    dense_spectrum,
    hessian_spectrum,
    spectral_density,
)
from sgdtop.spectrum.guard import measuring


@pytest.mark.parametrize("method", HVP_METHODS)
@pytest.mark.parametrize("make", [tiny_mlp, tiny_cnn_bn, tiny_dropout])
def test_hvp_matches_reference(make: Callable[[], nn.Module], method: str) -> None:
    model = make().double()
    model.train()
    x, y = probe_for(model)
    ref = reference_hessian(model, x, y)
    op = ProbeHessian(model, F.cross_entropy, split(x, y, [4, 9]), method=method)
    v = torch.randn(op.num_params, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with measuring(model):
        hv = op.matvec(v)
    assert hv.dtype == torch.float64 and op.hvps == 1
    assert torch.allclose(hv, ref @ v, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("budget", [None, 0, 1])
def test_cached_gradient_graphs_give_the_same_products(budget: int | None) -> None:
    """Kept graphs (default budget), never kept (0), or over budget (1 byte): same H v."""
    model = tiny_cnn_bn().double()
    x, y = probe_for(model)
    batches = split(x, y, [4, 9])
    ref = reference_hessian(model, x, y)
    op = ProbeHessian(model, F.cross_entropy, batches, graph_cache_bytes=budget)
    gen = torch.Generator().manual_seed(0)
    with measuring(model):
        for _ in range(3):
            v = torch.randn(op.num_params, dtype=torch.float64, generator=gen)
            assert torch.allclose(op.matvec(v), ref @ v, rtol=1e-9, atol=1e-12)
    assert (op.graph_bytes > 0) == (budget is None)
    op.release()
    assert op.graph_bytes == 0


def test_micro_batches_are_weighted_by_size() -> None:
    """Unequal batches: the mean over all examples, not the mean of batch means."""
    model = tiny_mlp().double()
    x, y = probe_for(model, n=10)
    v = torch.ones(75, dtype=torch.float64)
    with measuring(model):
        whole = ProbeHessian(model, F.cross_entropy, [(x, y)]).matvec(v)
        parts = ProbeHessian(model, F.cross_entropy, split(x, y, [1, 9])).matvec(v)
        grad_whole = ProbeHessian(model, F.cross_entropy, [(x, y)]).gradient()
        grad_parts = ProbeHessian(model, F.cross_entropy, split(x, y, [3, 7])).gradient()
    assert torch.allclose(parts, whole, rtol=1e-12, atol=1e-14)
    assert torch.allclose(grad_parts, grad_whole, rtol=1e-12, atol=1e-14)


def test_inputs_follow_the_model_dtype() -> None:
    model = tiny_mlp().double()
    x, y = probe_for(model)  # float32 inputs
    op = ProbeHessian(model, F.cross_entropy, [(x, y)])
    assert op.dtype == torch.float64
    with measuring(model):
        assert op.matvec(torch.ones(op.num_params)).dtype == torch.float64
        assert op.loss() > 0


def test_probe_set_changing_size_is_an_error() -> None:
    model = tiny_mlp()
    x, y = probe_for(model)

    class Shrinking:
        def __init__(self) -> None:
            self.passes = 0

        def __iter__(self) -> Any:
            self.passes += 1
            return iter([(x, y)] if self.passes == 1 else [(x[:3], y[:3])])

    op = ProbeHessian(model, F.cross_entropy, Shrinking())
    with measuring(model), pytest.raises(SpectrumInputError, match="changed size"):
        op.matvec(torch.ones(op.num_params))


def test_loss_must_be_a_scalar() -> None:
    model = tiny_mlp()
    x, y = probe_for(model)
    with pytest.raises(SpectrumInputError, match="scalar"):
        hessian_spectrum(model, lambda o, t: F.cross_entropy(o, t, reduction="none"),
                         [(x, y)], k=2)


# -- side-effect freedom ----------------------------------------------------------------


class Meddler(nn.Module):
    """Draws from the global RNG and writes a buffer on every call, even in eval mode."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return x + 0.0 * torch.rand_like(x)


class Mixed(nn.Module):
    """BN (train mode), dropout, a frozen parameter, a functional ReLU, mixed flags, and
    a module that touches the RNG and a buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.body = tiny_cnn_bn()
        self.drop = nn.Dropout(0.3)
        self.meddler = Meddler()
        self.head = nn.Linear(3, 3)
        self.frozen = nn.Parameter(torch.ones(3), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.relu(self.meddler(self.drop(self.body(x))))) * self.frozen


def _mixed() -> tuple[nn.Module, list[tuple[torch.Tensor, torch.Tensor]]]:
    model = Mixed()
    x, y = probe_for(model.body, n=12)
    model.train()
    model.body[1].eval()  # one BN in eval, the rest in train mode
    model.head.weight.grad = torch.full_like(model.head.weight, 0.5)
    model.body[0].weight.grad = torch.zeros_like(model.body[0].weight)
    return model, split(x, y, [5, 7])


def _snapshot(model: nn.Module) -> dict[str, Any]:
    return {
        "state": {k: v.clone() for k, v in model.state_dict(keep_vars=True).items()},
        "ptrs": {k: v.data_ptr() for k, v in model.state_dict(keep_vars=True).items()},
        "grads": {k: (p.grad, None if p.grad is None else p.grad.clone())
                  for k, p in model.named_parameters()},
        "requires_grad": {k: p.requires_grad for k, p in model.named_parameters()},
        "training": {k: m.training for k, m in model.named_modules()},
        "rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "grad_enabled": torch.is_grad_enabled(),
    }


def _assert_unchanged(before: dict[str, Any], model: nn.Module) -> None:
    after = _snapshot(model)
    assert before["state"].keys() == after["state"].keys()
    for k, v in before["state"].items():
        assert torch.equal(v, after["state"][k]), k
    assert before["ptrs"] == after["ptrs"]
    for k, (obj, val) in before["grads"].items():
        obj_after, _ = after["grads"][k]
        assert obj_after is obj, k  # None stays None; a tensor stays the same tensor
        if val is not None:
            assert torch.equal(val, obj_after), k
    assert before["requires_grad"] == after["requires_grad"]
    assert before["training"] == after["training"]
    assert torch.equal(before["rng"], after["rng"])
    if before["cuda_rng"] is not None:
        assert all(torch.equal(a, b)
                   for a, b in zip(before["cuda_rng"], after["cuda_rng"], strict=True))
    assert before["grad_enabled"] == after["grad_enabled"]


MEASUREMENTS: dict[str, Callable[[nn.Module, Any], object]] = {
    "hessian_spectrum": lambda m, b: hessian_spectrum(m, F.cross_entropy, b, k=4),
    "hessian_spectrum_warm": lambda m, b: hessian_spectrum(
        m, F.cross_entropy, b, k=4,
        warm_start=hessian_spectrum(m, F.cross_entropy, b, k=4)),
    "dense_spectrum": lambda m, b: dense_spectrum(m, F.cross_entropy, b),
    "spectral_density": lambda m, b: spectral_density(
        m, F.cross_entropy, b, steps=5, num_vectors=2),
    "dead_neurons": lambda m, b: dead_neurons(m, b),
}


@pytest.mark.parametrize("name", sorted(MEASUREMENTS))
def test_measurement_has_no_side_effects(name: str) -> None:
    model, batches = _mixed()
    torch.manual_seed(123)
    before = _snapshot(model)
    MEASUREMENTS[name](model, batches)
    _assert_unchanged(before, model)


@pytest.mark.parametrize("name", sorted(MEASUREMENTS))
def test_measurement_restores_state_when_it_fails(name: str) -> None:
    model, batches = _mixed()
    before = _snapshot(model)

    def bad_batches() -> Any:
        x, y = batches[0]
        return [(x, y), (x[:, :, :2], y)]  # the second batch breaks the forward pass

    with pytest.raises(RuntimeError):
        MEASUREMENTS[name](model, bad_batches())
    _assert_unchanged(before, model)


def test_measurement_works_under_no_grad_and_inference_mode() -> None:
    model, batches = _mixed()
    with torch.no_grad():
        a = hessian_spectrum(model, F.cross_entropy, batches, k=3)
    with torch.inference_mode():
        b = hessian_spectrum(model, F.cross_entropy, batches, k=3)
    assert a.eigenvalues == pytest.approx(b.eigenvalues)


def test_train_mode_batch_norm_is_not_updated_even_by_a_forward() -> None:
    """A model whose running statistics would move in train mode keeps them."""
    model, batches = _mixed()
    stats = copy.deepcopy(model.body[4].running_mean)
    hessian_spectrum(model, F.cross_entropy, batches, k=2)
    assert torch.equal(stats, model.body[4].running_mean)
    assert model.body[4].num_batches_tracked.item() == 3


def test_loss_linear_in_the_parameters_has_a_zero_hessian() -> None:
    model = nn.Linear(3, 2)
    x = torch.randn(5, 3)
    s = hessian_spectrum(model, lambda out, _: out.mean(), [(x, torch.zeros(5))], k=3)
    assert s.eigenvalues == (0.0, 0.0, 0.0) and s.all_converged
    assert s.spectral_norm == 0.0 and s.cond_k != s.cond_k  # NaN
