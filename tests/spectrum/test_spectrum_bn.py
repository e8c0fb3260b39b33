"""``batch_norm="batch"``: the Hessian of the loss with batch norm on each probe
micro-batch's statistics (as in a training step), against a dense reference; side-effect
free; and the trainer's ``hessian_bn`` setting."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from spectrum_fixtures import by_magnitude, probe_for, tiny_cnn_bn
from torch import nn

from sgdtop.spectrum import dense_spectrum, hessian_spectrum
from sgdtop.spectrum.guard import measuring


def _batch_stats_copy(model: nn.Module) -> nn.Module:
    """A copy whose batch norms always normalise by the batch (no running statistics)."""
    m = copy.deepcopy(model)
    for mod in m.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            mod.track_running_stats = False
            mod.running_mean = None
            mod.running_var = None
            mod.num_batches_tracked = None
    return m


def _finite_difference_hessian(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                               eps: float = 1e-5) -> torch.Tensor:
    """The float64 Hessian of the mean cross-entropy by central differences of gradients.

    An independent reference: ``torch.func.hessian`` (forward over reverse) was 3% off
    finite differences for batch norm on batch statistics (torch 2.14), while double
    backward agreed to 1e-10."""
    m = _batch_stats_copy(model)
    params = list(m.parameters())
    theta = torch.cat([p.detach().reshape(-1) for p in params]).clone()

    def grad_at(flat: torch.Tensor) -> torch.Tensor:
        i = 0
        with torch.no_grad():
            for p in params:
                p.copy_(flat[i:i + p.numel()].view_as(p))
                i += p.numel()
        g = torch.autograd.grad(F.cross_entropy(m(x), y), params)
        return torch.cat([t.reshape(-1) for t in g])

    eye = torch.eye(theta.numel(), dtype=torch.float64)
    cols = [(grad_at(theta + eps * e) - grad_at(theta - eps * e)) / (2 * eps) for e in eye]
    h = torch.stack(cols, 1)
    return (h + h.T) / 2


def test_batch_mode_matches_the_reference_and_differs_from_running() -> None:
    model = tiny_cnn_bn().double()
    x, y = probe_for(model)
    x = x.double()
    ref = by_magnitude(torch.linalg.eigvalsh(_finite_difference_hessian(model, x, y)))
    got = hessian_spectrum(model, F.cross_entropy, [(x, y)], k=6, tol=1e-10,
                           batch_norm="batch")
    assert got.eigenvalues == pytest.approx(ref[:6].tolist(), rel=1e-6)
    dense = dense_spectrum(model, F.cross_entropy, [(x, y)], batch_norm="batch")
    assert dense.lambda_max == pytest.approx(float(ref.max()), rel=1e-6)
    running = hessian_spectrum(model, F.cross_entropy, [(x, y)], k=6, tol=1e-10)
    assert abs(running.eigenvalues[0] - got.eigenvalues[0]) > 1e-3 * abs(got.eigenvalues[0])


def test_batch_mode_is_side_effect_free() -> None:
    model = tiny_cnn_bn()
    model.train()
    x, y = probe_for(model)
    before = copy.deepcopy(model.state_dict())
    hessian_spectrum(model, F.cross_entropy, [(x[:7], y[:7]), (x[7:], y[7:])], k=3, tol=1e-4,
                     batch_norm="batch")
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key  # running stats put back
    assert all(m.training for m in model.modules())
    model.eval()
    with measuring(model, "batch"):
        assert not model.training
        assert all(m.training for m in model.modules()
                   if isinstance(m, nn.modules.batchnorm._BatchNorm))
    assert not any(m.training for m in model.modules())
    with pytest.raises(ValueError, match="batch_norm"), measuring(model, "train"):
        pass


def test_trainer_setting_reaches_the_events() -> None:
    from sgdtop.profile import ProfileError, load
    from sgdtop.recorder import RunRecorder
    from sgdtop.train import prepare, train

    events = []
    p = load("resnet20-gratings-cpu", overrides={
        "n_train": 64, "n_test": 16, "epochs": 1, "batch_size": 32, "k": 2,
        "probe_cap": 16, "image_size": 8, "measure_each_epoch": False,
        "hessian_bn": "batch"})
    train(prepare(p), RunRecorder(sink=events.append))
    (sp,) = [ev for ev in events if ev.kind == "spectrum"]
    assert sp.batch_norm == "batch"
    with pytest.raises(ProfileError, match="hessian_bn"):
        load("smoke", overrides={"hessian_bn": "train"})


def test_eval_mode_curvature_beyond_the_limit_is_flagged_once() -> None:
    """A batch-norm model measured on running statistics at initialization reads η·λ₁ far
    above 2(1+β) (ResNet20: ~300 at η=0.1): the trainer says so once and names the fix;
    with hessian_bn=batch, or without batch norm, it says nothing."""
    from sgdtop.profile import load
    from sgdtop.recorder import RunRecorder
    from sgdtop.train import prepare, train

    def warnings_of(**over: object) -> list[str]:
        events: list = []
        p = load("resnet20-gratings-cpu", overrides={
            "n_train": 64, "n_test": 16, "epochs": 2, "batch_size": 32, "k": 2,
            "probe_cap": 16, "image_size": 8, **over})
        train(prepare(p), RunRecorder(sink=events.append))
        return [ev.message for ev in events
                if ev.kind == "log" and "hessian_bn=batch" in ev.message]

    (msg,) = warnings_of()
    assert "far above 2(1+β) = 3.8" in msg
    assert warnings_of(hessian_bn="batch") == []
    assert not any("hessian_bn" in m for m in _smoke_warnings())


def _smoke_warnings() -> list[str]:
    from sgdtop.profile import load
    from sgdtop.recorder import RunRecorder
    from sgdtop.train import prepare, train

    events: list = []
    train(prepare(load("smoke", overrides={"lr": 5.0, "epochs": 1})),
          RunRecorder(sink=events.append))
    return [ev.message for ev in events if ev.kind == "log"]
