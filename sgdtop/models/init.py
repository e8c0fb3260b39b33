"""Initialisation schemes applied to a built model: PyTorch's, Keras 2's, and the authors'.

Jastrzębski et al. trained with Keras 2.2.2 on TensorFlow 1 (their
``kudkudak/dnn_sharpest_directions``, ``requirements.txt``); their models
(``src/models/{mlp,simple_cnn,vgg,resnet}.py``) are initialised by Keras, which differs
from PyTorch's defaults. The schemes (see ``docs/initialisation.md`` and
``docs/design.md``):

``"torch"``
    What the model's constructor does today: PyTorch's defaults (``nn.Linear`` and
    ``nn.Conv2d``: Kaiming-uniform with a = √5, i.e. U(±1/√fan_in) weights, and biases
    U(±1/√fan_in)), plus the reference implementations' own overrides (the CIFAR ResNet:
    Kaiming-normal on every conv and linear weight; VGG11: N(0, 2/(k²·out)) on convs, zero
    conv biases). :func:`initialise` leaves the model untouched (no RNG draw).
``"keras"``
    Keras 2's layer defaults, as the authors' MLP, simple CNN and VGG11 use: every
    ``nn.Linear`` / ``nn.Conv*d`` weight Glorot-uniform, U(±√(6/(fan_in + fan_out))), of
    variance 2/(fan_in + fan_out); every bias 0; batch norm weight (γ) 1, bias (β) 0.
``"he"``
    The authors' ResNet (``src/models/resnet.py``): every conv weight He-normal,
    ``VarianceScaling(scale=2, mode="fan_in", distribution="normal")``, which Keras 2.2.2
    draws from a normal truncated at ±2σ₀ with σ₀ = √(2/fan_in) / 0.8796… (the standard
    deviation of a unit normal truncated at ±2), so the weights' variance is exactly
    2/fan_in; the final ``Dense`` keeps Keras' default, Glorot-uniform; every bias 0; batch
    norm γ 1, β 0.
``"paper"``
    The authors' scheme for the model: :data:`PAPER_SCHEMES` (``resnet*`` → ``"he"``;
    ``mlp`` and ``vgg11`` → ``"keras"``).

Fans (as Keras' ``_compute_fans`` and PyTorch's ``_calculate_fan_in_and_fan_out``): a
Linear(in, out) has fan_in = in, fan_out = out; a Conv2d(c_in, c_out, k×k) has
fan_in = c_in·k², fan_out = c_out·k².

Every draw comes from torch's global RNG, in ``model.modules()`` order, so seeding it
(``torch.manual_seed``, as the trainer does from the profile's seed) makes the weights
reproducible. Custom models (``sgdtop run file.py:factory``) are never re-initialised.
"""

from __future__ import annotations

import math
from typing import Final

import torch
from torch import nn

INIT_SCHEMES: Final[tuple[str, ...]] = ("torch", "keras", "he", "paper")
"""Names accepted by :func:`initialise` and the profile's ``init`` key."""

PAPER_SCHEMES: Final[dict[str, str]] = {
    "mlp": "keras",
    "vgg11": "keras",
    "resnet8": "he",
    "resnet20": "he",
    "resnet32": "he",
    "resnet44": "he",
    "resnet56": "he",
}
"""Registry model name → the authors' scheme for it (``init = "paper"``)."""

TRUNCATED_NORMAL_STD: Final[float] = 0.87962566103423978
"""Standard deviation of a unit normal truncated to [-2, 2] (``scipy.stats.truncnorm``)."""

_CONV_TYPES: Final = nn.Conv1d | nn.Conv2d | nn.Conv3d


class InitError(ValueError):
    """An unknown scheme, or ``"paper"`` for a model without a known scheme (one line)."""


def resolve_scheme(scheme: str, model_name: str | None) -> str:
    """The concrete scheme (``"torch"``, ``"keras"`` or ``"he"``) ``scheme`` means for
    registry model ``model_name`` (``"paper"`` looks it up in :data:`PAPER_SCHEMES`).

    Raises:
        InitError: ``scheme`` is not in :data:`INIT_SCHEMES`, or ``"paper"`` for a model
            not in :data:`PAPER_SCHEMES`.
    """
    if scheme not in INIT_SCHEMES:
        raise InitError(f"unknown init {scheme!r}; valid: {', '.join(INIT_SCHEMES)}")
    if scheme != "paper":
        return scheme
    if model_name not in PAPER_SCHEMES:
        raise InitError(f"init 'paper' has no scheme for model {model_name!r}; models: "
                        f"{', '.join(PAPER_SCHEMES)}")
    return PAPER_SCHEMES[model_name]


def fans(weight: torch.Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a Linear (out, in) or conv (out, in, *kernel) weight."""
    if weight.dim() < 2:
        raise InitError(f"fans need a weight with at least 2 dimensions, got {weight.dim()}")
    receptive = math.prod(weight.shape[2:])
    return int(weight.shape[1]) * receptive, int(weight.shape[0]) * receptive


def glorot_uniform_(weight: torch.Tensor) -> torch.Tensor:
    """Keras' ``glorot_uniform`` in place: U(±√(6/(fan_in + fan_out))), variance
    2/(fan_in + fan_out). Draws from torch's global RNG."""
    fan_in, fan_out = fans(weight)
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        return weight.uniform_(-limit, limit)


def he_normal_(weight: torch.Tensor) -> torch.Tensor:
    """Keras 2.2.2's ``VarianceScaling(2, "fan_in", "normal")`` in place: a normal of
    σ₀ = √(2/fan_in) / :data:`TRUNCATED_NORMAL_STD` truncated to ±2σ₀, whose variance is
    2/fan_in. Draws from torch's global RNG."""
    fan_in, _ = fans(weight)
    std = math.sqrt(2.0 / fan_in) / TRUNCATED_NORMAL_STD
    with torch.no_grad():
        return nn.init.trunc_normal_(weight, 0.0, std, -2.0 * std, 2.0 * std)


def initialise(model: nn.Module, scheme: str, *, model_name: str | None = None) -> nn.Module:
    """Re-initialise ``model``'s layers in place by ``scheme`` and return it.

    ``"torch"`` leaves the model bit-identical and draws nothing. Otherwise every
    ``nn.Linear`` and ``nn.Conv*d`` weight gets its scheme's distribution (module docstring),
    every bias of them 0, and every batch-norm layer γ = 1, β = 0 (running mean 0,
    variance 1, batch count 0). Other parameters are left as they are.

    Args:
        model: a built model.
        scheme: one of :data:`INIT_SCHEMES`.
        model_name: the registry name, needed for ``"paper"``.

    Raises:
        InitError: an unknown scheme, or ``"paper"`` for an unknown model.
    """
    concrete = resolve_scheme(scheme, model_name)
    if concrete == "torch":
        return model
    for module in model.modules():
        if isinstance(module, nn.Linear | _CONV_TYPES):
            if concrete == "he" and isinstance(module, _CONV_TYPES):
                he_normal_(module.weight)
            else:
                glorot_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_parameters()
    return model
