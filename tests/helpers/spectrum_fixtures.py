"""Tiny models, probe sets and trusted references for the measurement-core tests.

The reference Hessian is ``torch.func.hessian`` of the mean loss over the whole probe set
(one concatenated batch), in float64, model in eval mode: independent of the code under
test (which uses double backward over micro-batches).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, hessian

Batch = tuple[torch.Tensor, torch.Tensor]


def tiny_mlp(seed: int = 0) -> nn.Module:
    """5 → 8 → 3 ReLU MLP: 75 parameters."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))


def tiny_cnn_bn(seed: int = 0) -> nn.Module:
    """Conv-BN-ReLU ×2 + linear on 1×6×6 inputs: 123 parameters, BN running statistics
    moved away from their defaults (a few forward passes in train mode)."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(),
        nn.Conv2d(2, 2, 3, stride=2, padding=1), nn.BatchNorm2d(2), nn.ReLU(),
        nn.Flatten(), nn.Linear(18, 3),
    )
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(16, 1, 6, 6) * 2 + 0.5)
    return model


def tiny_dropout(seed: int = 0) -> nn.Module:
    """5 → 10 → 3 MLP with dropout 0.5 after the ReLU: 93 parameters."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 10), nn.ReLU(), nn.Dropout(0.5), nn.Linear(10, 3))


def probe_for(model: nn.Module, n: int = 13, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Random classification inputs (shaped for ``model``) and labels in 0..2."""
    g = torch.Generator().manual_seed(seed)
    first = next(m for m in model.modules() if isinstance(m, nn.Linear | nn.Conv2d))
    shape = (n, 1, 6, 6) if isinstance(first, nn.Conv2d) else (n, first.in_features)
    return torch.randn(*shape, generator=g), torch.randint(0, 3, (n,), generator=g)


def split(x: torch.Tensor, y: torch.Tensor, sizes: list[int]) -> list[Batch]:
    """Micro-batches of the given (unequal) sizes."""
    return list(zip(x.split(sizes), y.split(sizes), strict=True))


def reference_hessian(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor,
    loss_fn: Callable[..., torch.Tensor] = F.cross_entropy,
) -> torch.Tensor:
    """The (n, n) float64 Hessian of the mean loss over (x, y), eval mode, trainable
    parameters in ``named_parameters`` order, by ``torch.func.hessian``."""
    m = copy.deepcopy(model).double().eval()
    names = [k for k, p in m.named_parameters() if p.requires_grad]
    params = {k: p.detach() for k, p in m.named_parameters() if p.requires_grad}
    xd = x.double()

    def loss(p: dict[str, torch.Tensor]) -> torch.Tensor:
        return loss_fn(functional_call(m, p, (xd,)), y)

    h = hessian(loss)(params)
    rows = [torch.cat([h[a][b].reshape(params[a].numel(), -1) for b in names], 1)
            for a in names]
    return torch.cat(rows, 0)


def by_magnitude(values: torch.Tensor) -> torch.Tensor:
    """Values sorted by |λ| descending (the order hessian_spectrum reports)."""
    return values[torch.argsort(values.abs(), descending=True, stable=True)]


def reference_eigenvalues(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """All eigenvalues of :func:`reference_hessian`, ordered by |λ| descending."""
    return by_magnitude(torch.linalg.eigvalsh(reference_hessian(model, x, y)))
