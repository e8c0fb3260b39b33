"""VGG11 with batch norm for CIFAR (32×32 inputs), dropout 0.5 in the classifier.

Source: Simonyan & Zisserman (2014), "Very Deep Convolutional Networks for Large-Scale
Image Recognition" (arXiv:1409.1556), configuration "A" (11 weight layers), in the CIFAR
adaptation of Cheng-Yang Fu's https://github.com/chengyangfu/pytorch-vgg-cifar10
(``vgg.py``, ``vgg11_bn``), with the last layer sized to ``num_classes``. Jastrzębski et
al. use VGG11 on CIFAR-10/100 with dropout 0.5 (their Fig. 6).

Layout (C = conv 3×3, padding 1, with bias → BatchNorm2d → ReLU; M = max-pool 2×2 stride 2)::

    features:   C64 M  C128 M  C256 C256 M  C512 C512 M  C512 C512 M     (32×32 → 1×1×512)
    classifier: Dropout(0.5) → Linear(512, 512) → ReLU
                → Dropout(0.5) → Linear(512, 512) → ReLU
                → Linear(512, num_classes)

Initialisation as in that repository: conv weights ~ N(0, 2/(k·k·out_channels)), conv biases
0; BN and linear layers keep PyTorch's defaults. The authors' Keras VGG11 uses Keras'
defaults (Glorot-uniform, zero biases): ``init = "keras"`` (:mod:`sgdtop.models.init`).

Parameters (trainable): 9,756,426 for 10 classes, 9,802,596 for 100 classes
(conv+BN 9,225,984; the two hidden linear layers 525,312; read-out 512·C + C).

Every activation site is its own ``nn.ReLU`` (8 in ``features``, 2 in ``classifier``), so
the dead-neuron probe hooks one module per layer.
"""

from __future__ import annotations

import math

import torch
from torch import nn

# fmt: off
VGG11_CONFIG: tuple[int | str, ...] = (
    64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M",
)
# fmt: on
"""Configuration "A": output channels of each 3×3 conv, "M" for a 2×2 max-pool."""

DROPOUT_P = 0.5
"""Dropout probability in the classifier."""


class CifarVGG(nn.Module):
    """VGG with batch norm for 3×32×32 inputs.

    Args:
        config: conv widths and "M" (max-pool) markers; five pools take 32×32 to 1×1.
        num_classes: number of output logits.
        dropout: dropout probability before each hidden linear layer.
    """

    def __init__(
        self,
        config: tuple[int | str, ...] = VGG11_CONFIG,
        num_classes: int = 10,
        dropout: float = DROPOUT_P,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.num_classes = num_classes
        layers: list[nn.Module] = []
        in_channels = 3
        for v in config:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                out_channels = int(v)
                layers += [
                    nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
                    nn.BatchNorm2d(out_channels),
                    nn.ReLU(inplace=False),
                ]
                in_channels = out_channels
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(in_channels, 512),
            nn.ReLU(inplace=False),
            nn.Dropout(dropout),
            nn.Linear(512, 512),
            nn.ReLU(inplace=False),
            nn.Linear(512, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
                assert m.bias is not None
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map images (B, 3, 32, 32) to logits (B, num_classes)."""
        return self.classifier(self.features(x).flatten(1))


def vgg11(*, num_classes: int) -> CifarVGG:
    """VGG11 with batch norm for CIFAR, dropout 0.5 in the classifier."""
    return CifarVGG(VGG11_CONFIG, num_classes=num_classes)
