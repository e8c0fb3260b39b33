"""A small CNN on synthetic images, for ``sgdtop run``:

    sgdtop run examples/small_cnn.py:factory --profile smoke

The data are generated here (nothing to download): 3×16×16 images of 4 classes, each
class a grating of its own orientation (horizontal, vertical, diagonal, anti-diagonal) and
colour mix, with a random phase and Gaussian pixel noise. The model is a two-block CNN
(conv–batch norm–ReLU–max-pool, twice) with dropout before a linear classifier: 2,468
trainable parameters, small enough for a CPU.

This file is the whole contract: a function ``factory`` (taking nothing or ``seed``)
returning a :class:`sgdtop.custom.CustomTask`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from sgdtop.custom import CustomTask

NUM_CLASSES = 4
SIZE = 16  # image side, pixels
NOISE_STD = 1.5  # standard deviation of the Gaussian pixel noise (signal amplitude ≤ 1)
# Per class: grating direction (radians) and colour weights for (R, G, B).
_ANGLES = (0.0, math.pi / 2, math.pi / 4, 3 * math.pi / 4)
_COLOURS = ((1.0, 0.3, 0.3), (0.3, 1.0, 0.3), (0.3, 0.3, 1.0), (0.8, 0.8, 0.2))
_FREQ = 2 * math.pi / 5  # grating angular frequency, radians per pixel


def synthetic_gratings(n: int, seed: int) -> TensorDataset:
    """``n`` images (float32, n×3×16×16) with labels (int64, n), classes balanced up to
    one, drawn from ``seed`` alone (a private generator: torch's global RNG is not used)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % NUM_CLASSES
    labels = labels[torch.randperm(n, generator=g)]
    coords = torch.arange(SIZE, dtype=torch.float32)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    angles = torch.tensor(_ANGLES)[labels]  # (n,)
    phase = torch.rand(n, generator=g) * 2 * math.pi
    proj = (torch.cos(angles)[:, None, None] * xx + torch.sin(angles)[:, None, None] * yy)
    wave = torch.sin(_FREQ * proj + phase[:, None, None])  # (n, H, W)
    colours = torch.tensor(_COLOURS)[labels]  # (n, 3)
    images = colours[:, :, None, None] * wave[:, None]
    images = images + NOISE_STD * torch.randn(images.shape, generator=g)
    return TensorDataset(images.float(), labels)


class SmallCNN(nn.Module):
    """conv3×3(3→8)–BN–ReLU–pool2 → conv3×3(8→16)–BN–ReLU–pool2 → dropout → linear(256→4).

    Every ReLU is its own module, so sgdtop's dead-neuron probe sees each layer."""

    def __init__(self, num_classes: int = NUM_CLASSES, dropout: float = 0.2) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(16 * (SIZE // 4) ** 2, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


def factory(seed: int = 0) -> CustomTask:
    """The task: a fresh :class:`SmallCNN` (sgdtop seeds torch before calling), 1024
    training and 256 test images."""
    return CustomTask(
        model=SmallCNN(),
        train=synthetic_gratings(1024, seed=seed),
        test=synthetic_gratings(256, seed=seed + 10_000),
        loss_fn=nn.CrossEntropyLoss(),
        task="classification",
        num_outputs=NUM_CLASSES,
        name="synthetic-gratings",
    )


if __name__ == "__main__":
    print(__doc__)
