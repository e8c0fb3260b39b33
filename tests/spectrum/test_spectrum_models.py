"""hessian_spectrum on tiny models against torch.func.hessian + eigvalsh (float64)."""

from __future__ import annotations

import copy
import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from spectrum_fixtures import (
    probe_for,
    reference_eigenvalues,
    split,
    tiny_cnn_bn,
    tiny_dropout,
    tiny_mlp,
)
from torch import nn

from sgdtop.recorder.records import spectrum_record
from sgdtop.schema import Spectrum, decode_line, encode
from sgdtop.spectrum import (
    NonFiniteError,
    SpectrumInputError,
    SpectrumResult,
    hessian_spectrum,
)


def _t(values: tuple[float, ...]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


MODELS = {"mlp": tiny_mlp, "cnn_bn": tiny_cnn_bn, "dropout": tiny_dropout}
K = 10


@pytest.fixture(scope="module", params=sorted(MODELS))
def case(request: pytest.FixtureRequest) -> tuple[nn.Module, torch.Tensor, torch.Tensor,
                                                  torch.Tensor]:
    model = MODELS[request.param]()
    model.train()  # the measurement must switch to eval itself
    x, y = probe_for(model)
    return model, x, y, reference_eigenvalues(model, x, y)


def test_top_k_matches_dense_reference_float64(case) -> None:
    model, x, y, ref = case
    m64 = copy.deepcopy(model).double()
    s = hessian_spectrum(m64, F.cross_entropy, [(x, y)], k=K, tol=1e-8)
    assert s.all_converged
    got = _t(s.eigenvalues)
    assert torch.allclose(got, ref[:K], rtol=1e-4, atol=0)
    assert s.spectral_norm == pytest.approx(float(ref[0].abs()), rel=1e-4)
    assert s.cond_k == pytest.approx(float(ref[0].abs() / ref[K - 1].abs()), rel=1e-4)


def test_unequal_micro_batches_equal_one_batch(case) -> None:
    model, x, y, _ = case
    m64 = copy.deepcopy(model).double()
    one = hessian_spectrum(m64, F.cross_entropy, [(x, y)], k=K, tol=1e-8)
    parts = hessian_spectrum(m64, F.cross_entropy, split(x, y, [5, 1, 7]), k=K, tol=1e-8)
    assert parts.num_examples == one.num_examples == x.shape[0]
    assert torch.allclose(_t(parts.eigenvalues), _t(one.eigenvalues),
                          rtol=1e-9, atol=0)


def test_float32_model_default_tolerance(case) -> None:
    """The model's own dtype: every eigenvalue within tol = 1e-3 of the reference."""
    model, x, y, ref = case
    s = hessian_spectrum(model, F.cross_entropy, split(x, y, [6, 7]), k=K)
    assert s.all_converged and s.hvps > 0 and s.seconds > 0
    got = _t(s.eigenvalues)
    assert torch.all((got - ref[:K]).abs() <= 1e-3 * ref[:K].abs())
    assert all(r <= 1e-3 * max(abs(e), 1e-3 * s.spectral_norm)
               for r, e in zip(s.residuals, s.eigenvalues, strict=True))
    assert s.ritz_vectors.shape == (s.num_params, K)
    assert s.ritz_vectors.dtype == torch.float64 and s.ritz_vectors.device.type == "cpu"


def test_largest_algebraic_order() -> None:
    model = tiny_mlp()
    x, y = probe_for(model)
    ref = reference_eigenvalues(model, x, y)
    s = hessian_spectrum(copy.deepcopy(model).double(), F.cross_entropy, [(x, y)], k=5,
                         which="largest", tol=1e-8)
    assert torch.allclose(_t(s.eigenvalues),
                          ref.sort(descending=True).values[:5], rtol=1e-6, atol=1e-12)


def test_warm_start_after_a_small_step_needs_fewer_hvps() -> None:
    model = tiny_cnn_bn().double()
    x, y = probe_for(model, n=24)
    batches = split(x, y, [10, 14])
    first = hessian_spectrum(model, F.cross_entropy, batches, k=K)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    model.eval()
    opt.zero_grad()
    F.cross_entropy(model(x.double()), y).backward()
    opt.step()
    cold = hessian_spectrum(model, F.cross_entropy, batches, k=K)
    warm = hessian_spectrum(model, F.cross_entropy, batches, k=K, warm_start=first)
    assert warm.warm and not cold.warm
    assert cold.all_converged and warm.all_converged
    assert torch.allclose(_t(warm.eigenvalues), _t(cold.eigenvalues),
                          rtol=1e-3, atol=0)
    assert warm.hvps <= cold.hvps // 2, (warm.hvps, cold.hvps)


def test_progress_and_max_hvps() -> None:
    model = tiny_mlp()
    x, y = probe_for(model)
    calls: list[tuple[int, float]] = []
    s = hessian_spectrum(model, F.cross_entropy, [(x, y)], k=K, tol=1e-9, max_hvps=7,
                         progress=lambda h, t: calls.append((h, t)))
    assert s.hvps == 7 and [h for h, _ in calls] == list(range(1, 8))
    assert all(b >= a for (_, a), (_, b) in itertools.pairwise(calls))
    assert len(s.eigenvalues) == K and len(s.converged) == K
    assert not s.all_converged


def test_the_spectrum_record_of_a_result() -> None:
    model = tiny_mlp()
    x, y = probe_for(model)
    s = hessian_spectrum(model, F.cross_entropy, [(x, y)], k=3)
    rec = spectrum_record({"t": 1.0, "step": 3, "epoch": 0}, s, lr=0.1, momentum=0.9,
                          batch_norm="running")
    assert isinstance(rec, Spectrum) and rec.eigenvalues == tuple(s.eigenvalues)
    assert rec.eta_lambda1 == pytest.approx(0.1 * s.eigenvalues[0])
    assert rec.stability_limit == pytest.approx(2 * 1.9 / 0.1)
    assert rec.k == 3 and rec.hvps == s.hvps
    assert rec.guard_band == s.guard_band and rec.separated == s.separated
    assert rec.block_size == s.block_size and rec.block_passes == s.block_passes
    assert decode_line(encode(rec)) == rec


def test_dataloader_probe_set() -> None:
    model = tiny_mlp()
    x, y = probe_for(model)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=4)
    a = hessian_spectrum(copy.deepcopy(model).double(), F.cross_entropy, loader, k=3, tol=1e-8)
    b = hessian_spectrum(copy.deepcopy(model).double(), F.cross_entropy, [(x, y)], k=3,
                         tol=1e-8)
    assert torch.allclose(_t(a.eigenvalues), _t(b.eigenvalues), rtol=1e-9)


def _frozen() -> nn.Module:
    model = tiny_mlp()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


BAD = [
    ({"k": 0}, "positive integer"),
    ({"k": -1}, "positive integer"),
    ({"k": 76}, "exceeds"),
    ({"batches": []}, "empty"),
    ({"batches": iter([])}, "re-iterable"),
    ({"batches": [(torch.zeros(0, 5), torch.zeros(0, dtype=torch.long))]}, "no examples"),
    ({"batches": [torch.zeros(2, 5)]}, "pair"),
    ({"model": _frozen}, "no trainable parameters"),
    ({"which": "top"}, "which"),
    ({"tol": -1.0}, "tol"),
    ({"warm_start": torch.zeros(10, 3)}, "75 trainable parameters"),
]


@pytest.mark.parametrize(("override", "match"), BAD)
def test_bad_input_gives_a_clear_error(override: dict, match: str) -> None:
    model = tiny_mlp()
    x, y = probe_for(model)
    args = {"model": model, "loss_fn": F.cross_entropy, "batches": [(x, y)], "k": 3}
    args.update(override)
    if callable(args["model"]) and not isinstance(args["model"], nn.Module):
        args["model"] = args["model"]()
    with pytest.raises(SpectrumInputError, match=match) as err:
        hessian_spectrum(**args)
    assert "\n" not in str(err.value)


def test_diverged_model_raises_non_finite() -> None:
    model = tiny_mlp()
    with torch.no_grad():
        model[0].weight[0, 0] = math.nan
    x, y = probe_for(model)
    with pytest.raises(NonFiniteError):
        hessian_spectrum(model, F.cross_entropy, [(x, y)], k=3)


def test_result_is_frozen() -> None:
    model = tiny_mlp()
    x, y = probe_for(model)
    s = hessian_spectrum(model, F.cross_entropy, [(x, y)], k=2)
    assert isinstance(s, SpectrumResult)
    with pytest.raises(AttributeError):
        s.k = 3  # type: ignore[misc]
