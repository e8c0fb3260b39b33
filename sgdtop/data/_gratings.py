"""The generated gratings task: :func:`gratings`, small colour images of oriented sine
gratings under Gaussian pixel noise, one orientation and colour per class (a stand-in for
CIFAR that needs no download; definitions: ``docs/design.md``)."""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.utils.data import TensorDataset

from sgdtop.data.task import (
    _STREAM_TEACHER,
    _STREAM_TEST,
    _STREAM_TRAIN,
    TaskData,
    _generated_task,
    _generator,
    draw_probe_indices,
)


def gratings(
    *,
    n_train: int,
    n_test: int,
    num_classes: int = 10,
    size: int = 16,
    pixel_noise: float = 1.0,
    fresh_noise: bool = False,
    seed: int = 0,
    probe_size: int,
) -> TaskData:
    """Generated image classification: oriented colour gratings under pixel noise.

    Class c of C has orientation θ_c = π·c/C and a colour (R, G, B) weights drawn once from
    U(0.2, 1) per channel (the teacher stream of ``seed``). An example of class c is the
    3×``size``×``size`` image colour_c · sin(2π/5 · (x cos θ_c + y sin θ_c) + φ) with a
    random phase φ ~ U(0, 2π), plus N(0, ``pixel_noise``²) noise on every pixel (the
    signal amplitude is at most 1). Labels are balanced (up to one) and shuffled. With
    C = 10 neighbouring orientations are 18° apart.

    With ``fresh_noise`` the training set holds the clean gratings and the trainer draws
    new pixel noise for every batch (``TaskData.augment``, from the trainer's seeded
    generator) — the role data augmentation plays for CIFAR: a finite training set whose
    noise a network cannot memorise, so the training loss stays above the task's Bayes
    error instead of reaching 0 within a few epochs. The probe set is then a fixed noisy
    draw of the probe examples (the measured loss is a fixed function), like the test set.

    Args:
        n_train, n_test: examples in the training and test sets.
        num_classes: C ≥ 2.
        size: image side in pixels (≥ 8; VGG11 needs 32).
        pixel_noise: standard deviation of the Gaussian pixel noise, ≥ 0.
        fresh_noise: draw the training images' noise anew for every batch (see above).
        seed: non-negative seed (classes, training and test draws, probe indices).
        probe_size: training examples in the probe set.

    Returns:
        A classification :class:`TaskData` with ``TensorDataset(x, y)`` datasets: float32
        x of shape (n, 3, size, size), int64 labels y of shape (n,).

    Raises:
        ValueError: a size or count out of range, or a negative ``pixel_noise``.
    """
    if n_train < 1 or n_test < 1:
        raise ValueError(f"gratings sizes must be positive: n_train={n_train}, n_test={n_test}")
    if num_classes < 2:
        raise ValueError(f"gratings need at least 2 classes, got {num_classes}")
    if size < 8:
        raise ValueError(f"gratings image size must be at least 8 pixels, got {size}")
    if not pixel_noise >= 0.0:
        raise ValueError(f"pixel_noise must be ≥ 0, got {pixel_noise}")
    colours = 0.2 + 0.8 * torch.rand(num_classes, 3, generator=_generator(seed, _STREAM_TEACHER))
    angles = math.pi * torch.arange(num_classes, dtype=torch.float64) / num_classes
    coords = torch.arange(size, dtype=torch.float64)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")

    def draw(n: int, stream: int) -> tuple[Tensor, Tensor, Tensor]:
        """(clean images, their noise, labels) of ``n`` examples from ``stream``."""
        g = _generator(seed, stream)
        labels = (torch.arange(n) % num_classes)[torch.randperm(n, generator=g)]
        phase = torch.rand(n, generator=g, dtype=torch.float64) * 2 * math.pi
        a = angles[labels]
        proj = torch.cos(a)[:, None, None] * xx + torch.sin(a)[:, None, None] * yy
        wave = torch.sin(2 * math.pi / 5 * proj + phase[:, None, None])
        images = colours[labels].double()[:, :, None, None] * wave[:, None]
        noise = pixel_noise * torch.randn(images.shape, generator=g, dtype=torch.float64)
        return images, noise, labels

    def noisy(n: int, stream: int) -> TensorDataset:
        images, noise, labels = draw(n, stream)
        return TensorDataset((images + noise).float(), labels)

    if not fresh_noise:
        return _generated_task("gratings", "classification", noisy, n_train, n_test, seed,
                               probe_size, num_outputs=num_classes, in_features=None)
    images, noise, labels = draw(n_train, _STREAM_TRAIN)
    indices = draw_probe_indices(n_train, probe_size, seed)
    idx = list(indices)  # the probe: one fixed noise draw of its examples
    probe = TensorDataset((images[idx] + noise[idx]).float(), labels[idx])

    def add_noise(x: Tensor, generator: torch.Generator) -> Tensor:
        noise = torch.randn(x.shape, generator=generator, dtype=torch.float32)
        return x + pixel_noise * noise.to(x.device)

    return TaskData(name="gratings", task="classification",
                    train=TensorDataset(images.float(), labels),
                    test=noisy(n_test, _STREAM_TEST), probe=probe,
                    probe_indices=indices, num_outputs=num_classes, in_features=None,
                    augment=add_noise)
