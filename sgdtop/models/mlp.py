"""The teacher-student student network: a fully connected ReLU MLP.

Source: the teacher-student setup of Advani & Saxe (2017), "High-dimensional dynamics of
generalization error in neural networks" (arXiv:1710.03667), as used in §2 of Jastrzębski
et al., "SGD Smooths the Sharpest Directions" (ICLR 2018 workshop): inputs of dimension
d = 300, two hidden layers of 100 ReLU units, a linear read-out.

Layout for the defaults (``in_features=300``, ``hidden=(100, 100)``, ``out_features=1``)::

    Linear(300, 100) → ReLU → Linear(100, 100) → ReLU → Linear(100, 1)

Parameters: 300·100+100 + 100·100+100 + 100·1+1 = 40,301 (41,210 with 10 outputs).
Weights keep PyTorch's default ``nn.Linear`` initialisation (Kaiming-uniform, a=√5, and
uniform biases ±1/√fan_in); ``init = "keras"`` (the authors' Keras ``Dense`` default:
Glorot-uniform, zero biases) is :mod:`sgdtop.models.init`.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

DEFAULT_IN_FEATURES = 300
"""Input dimension d of the paper's teacher-student task."""

DEFAULT_HIDDEN: tuple[int, ...] = (100, 100)
"""Hidden layer widths (units) of the paper's student network."""


class MLP(nn.Module):
    """A fully connected network: ``Linear → ReLU`` per hidden layer, then a linear read-out.

    Modules are named ``net.fc1``, ``net.relu1``, ``net.fc2``, ``net.relu2``, ..., ``net.out``.
    Every activation site is its own ``nn.ReLU`` instance, so a
    forward hook on each ``nn.ReLU`` sees exactly one layer's units (dead-neuron probe).

    Args:
        in_features: input dimension d.
        hidden: width (units) of each hidden layer, in order.
        out_features: number of outputs (classes, or the regression output dimension).
    """

    def __init__(self, in_features: int, hidden: tuple[int, ...], out_features: int) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1 or any(h < 1 for h in hidden):
            raise ValueError(
                f"MLP sizes must be positive: in_features={in_features}, "
                f"hidden={hidden}, out_features={out_features}"
            )
        self.in_features = in_features
        self.hidden = tuple(hidden)
        self.out_features = out_features
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        width = in_features
        for i, h in enumerate(hidden, start=1):
            layers[f"fc{i}"] = nn.Linear(width, h)
            layers[f"relu{i}"] = nn.ReLU(inplace=False)
            width = h
        layers["out"] = nn.Linear(width, out_features)
        self.net = nn.Sequential(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map inputs of shape (batch, in_features) to outputs of shape (batch, out_features).

        Inputs of any other trailing shape are flattened to (batch, -1) first.
        """
        if x.dim() != 2:
            x = x.flatten(1)
        return self.net(x)


def mlp(
    *,
    num_outputs: int,
    in_features: int = DEFAULT_IN_FEATURES,
    hidden: tuple[int, ...] = DEFAULT_HIDDEN,
) -> MLP:
    """The teacher-student student: ``in_features`` → ``hidden`` (ReLU) → ``num_outputs``."""
    return MLP(in_features, hidden, num_outputs)
