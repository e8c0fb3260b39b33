"""Loss slices along the top eigenvectors (paper Fig. 7): exact on quadratic losses,
side-effect free, scheduled by the trainer as ``loss_slice`` events."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from spectrum_fixtures import probe_for, tiny_cnn_bn
from torch import nn

from sgdtop.recorder.records import slice_record
from sgdtop.schema import LossSlice, decode_line, encode
from sgdtop.spectrum import SpectrumInputError, hessian_spectrum, loss_slices, slice_distances


def _quadratic(n_features: int = 12, n_examples: int = 40, seed: int = 0
               ) -> tuple[nn.Module, list[tuple[torch.Tensor, torch.Tensor]]]:
    """A linear model without bias under MSE to zero targets: L(θ) = θᵀAθ with
    A = XᵀX/N, so H = 2A everywhere and L(θ + tv) = L(θ) + t·∇L·v + ½λt² exactly."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_examples, n_features, generator=g, dtype=torch.float64)
    x = x * torch.linspace(0.2, 3.0, n_features, dtype=torch.float64)  # spread the spectrum
    y = torch.zeros(n_examples, 1, dtype=torch.float64)
    model = nn.Linear(n_features, 1, bias=False).double()
    return model, [(x[:25], y[:25]), (x[25:], y[25:])]  # unequal micro-batches


def test_slice_is_half_lambda_t_squared_at_the_minimum() -> None:
    model, batches = _quadratic()
    with torch.no_grad():
        model.weight.zero_()  # θ = 0: the minimum, gradient zero
    res = hessian_spectrum(model, F.mse_loss, batches, k=4, tol=1e-10)
    ts = slice_distances(0.1, points=11, step=2.0)
    sl = loss_slices(model, F.mse_loss, batches, res.ritz_vectors[:, :4], ts,
                     eigenvalues=res.eigenvalues[:4], lr=0.1)
    assert sl.distances == pytest.approx([j * 0.2 for j in range(-5, 6)])
    assert sl.loss0 == 0.0
    for lam, slope, row in zip(sl.eigenvalues, sl.slopes, sl.losses, strict=True):
        assert slope == pytest.approx(0.0, abs=1e-12)
        assert row == pytest.approx([0.5 * lam * t * t for t in ts], rel=1e-8, abs=1e-14)
    # The curvatures differ, so the slices do: the sharpest direction rises fastest.
    assert sl.losses[0][-1] > sl.losses[1][-1] > sl.losses[3][-1]


def test_slice_is_the_exact_parabola_away_from_the_minimum() -> None:
    model, batches = _quadratic(seed=1)
    with torch.no_grad():
        model.weight.normal_(generator=torch.Generator().manual_seed(3))
    res = hessian_spectrum(model, F.mse_loss, batches, k=3, tol=1e-10)
    ts = slice_distances(0.05, points=9)
    sl = loss_slices(model, F.mse_loss, batches, res.ritz_vectors[:, :3], ts,
                     eigenvalues=res.eigenvalues[:3], lr=0.05)
    x = torch.cat([b[0] for b in batches])
    grad = 2 * (x.T @ (x @ model.weight.detach().T)).squeeze() / len(x)
    for i, (lam, slope, row) in enumerate(zip(sl.eigenvalues, sl.slopes, sl.losses,
                                              strict=True)):
        g_v = float(grad @ res.ritz_vectors[:, i])
        assert slope == pytest.approx(-abs(g_v), rel=1e-8)  # oriented: slope ≤ 0
        expected = [sl.loss0 + slope * t + 0.5 * lam * t * t for t in ts]
        assert row == pytest.approx(expected, rel=1e-9)


def test_slices_are_side_effect_free() -> None:
    model = tiny_cnn_bn()
    model.train()
    x, y = probe_for(model)
    before = copy.deepcopy(model.state_dict())
    modes = [m.training for m in model.modules()]
    rng = torch.get_rng_state()
    res = hessian_spectrum(model, F.cross_entropy, [(x, y)], k=3, tol=1e-4)
    sl = loss_slices(model, F.cross_entropy, [(x, y)], res.ritz_vectors[:, :2],
                     slice_distances(0.1, 5), eigenvalues=res.eigenvalues[:2])
    assert len(sl.losses) == 2 and all(len(r) == 5 for r in sl.losses)
    assert all(math.isfinite(v) for r in sl.losses for v in r)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert [m.training for m in model.modules()] == modes
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(torch.get_rng_state(), rng)


def test_the_loss_slice_record_round_trips() -> None:
    model, batches = _quadratic()
    res = hessian_spectrum(model, F.mse_loss, batches, k=2, tol=1e-8)
    sl = loss_slices(model, F.mse_loss, batches, res.ritz_vectors, slice_distances(0.1, 3),
                     eigenvalues=res.eigenvalues, lr=0.1)
    rec = slice_record({"t": 1.0, "step": 0, "epoch": 0}, sl)
    assert isinstance(rec, LossSlice) and rec.distances == tuple(sl.distances)
    assert rec.losses == tuple(tuple(row) for row in sl.losses)
    assert decode_line(encode(rec)) == rec


@pytest.mark.parametrize(("args", "message"), [
    ((0.1, 4), "odd"), ((0.1, 1), "odd"), ((0.1, 5, 0.0), "step"), ((0.0, 5), "η"),
    ((math.nan, 5), "η"),
])
def test_bad_distances(args: tuple[float, ...], message: str) -> None:
    with pytest.raises(SpectrumInputError, match=message):
        slice_distances(*args)  # type: ignore[arg-type]


def test_bad_directions() -> None:
    model, batches = _quadratic()
    with pytest.raises(SpectrumInputError, match="shape"):
        loss_slices(model, F.mse_loss, batches, torch.zeros(5, 2), [0.0, 1.0])
    with pytest.raises(SpectrumInputError, match="eigenvalues"):
        loss_slices(model, F.mse_loss, batches, torch.eye(12, 2, dtype=torch.float64),
                    [0.0], eigenvalues=[1.0])
    with pytest.raises(SpectrumInputError, match="empty"):
        loss_slices(model, F.mse_loss, [], torch.eye(12, 2), [0.0])
