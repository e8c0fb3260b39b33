"""The handwritten digits task: :func:`digits` (scikit-learn's bundled UCI digits, split
from the seed), its constants, and :func:`shift_images`, its one-pixel shift augmentation
(definitions: ``docs/design.md``). Needs the ``digits`` extra (scikit-learn)."""

from __future__ import annotations

from typing import Final

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import TensorDataset

from sgdtop.data.task import (
    _STREAM_SPLIT,
    MissingExtraError,
    TaskData,
    _generator,
    draw_probe_indices,
    probe_size_for,
)

DIGITS_SIZE: Final[int] = 1797
"""Images in scikit-learn's UCI handwritten digits (``sklearn.datasets.load_digits``)."""

DIGITS_TEST_SIZE: Final[int] = 360
"""Images the seed's split puts in the digits test set (20%); the other 1,437 train."""

DIGITS_MAX_PIXEL: Final[float] = 16.0
"""The digits' pixel values are integer counts 0..16 (set pixels of a 4×4 block of the
original 32×32 bitmap)."""

DIGITS_EXTRA_MESSAGE: Final[str] = (
    "dataset 'digits' needs scikit-learn, which is not installed: "
    "pip install 'sgdtop[digits]' (or pip install scikit-learn)"
)



def _load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits as (images (1797, 8, 8) float64 in 0..16, labels
    (1797,) int64 in 0..9). Raises :class:`MissingExtraError` without scikit-learn."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise MissingExtraError(DIGITS_EXTRA_MESSAGE) from exc
    bunch = load_digits()
    return np.asarray(bunch.images, dtype=np.float64), np.asarray(bunch.target, np.int64)


def shift_images(x: Tensor, generator: torch.Generator, *, fill: float,
                 max_shift: int = 1) -> Tensor:
    """Shift every image of ``x`` (B, C, H, W) by its own random (dy, dx), each drawn
    uniformly from {-max_shift, ..., max_shift} (pixels) by ``generator``; the pixels
    shifted in take the value ``fill``. The shape is kept.

    Implemented as a random crop of the image padded by ``max_shift`` on every side (as
    CIFAR's ``RandomCrop(32, padding=4)``); the offsets are drawn on the CPU and then moved
    to ``x``'s device.
    """
    if max_shift < 0:
        raise ValueError(f"max_shift must be ≥ 0, got {max_shift}")
    b, _, h, w = x.shape
    if b == 0 or max_shift == 0:
        return x
    offsets = torch.randint(0, 2 * max_shift + 1, (2, b), generator=generator)
    padded = torch.nn.functional.pad(x, (max_shift,) * 4, value=fill)
    rows = (offsets[0][:, None] + torch.arange(h)).to(x.device)  # (B, H)
    cols = (offsets[1][:, None] + torch.arange(w)).to(x.device)  # (B, W)
    batch = torch.arange(b, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()


def digits(
    *,
    seed: int = 0,
    probe_size: int | None = None,
    probe_fraction: float = 0.05,
    probe_cap: int | None = None,
    augment: bool = True,
    subset: int | None = None,
) -> TaskData:
    """The UCI handwritten digits bundled with scikit-learn, as a CIFAR-like task (the
    probe set and augmentation as in ``docs/design.md``).

    Data: ``sklearn.datasets.load_digits()``, 1,797 grey-scale 8×8 images of the digits
    0–9 (174–183 per class), no download: the test set of the UCI "optdigits" data
    (Alpaydin & Kaynak 1998), 13 writers. The split below mixes the writers between the
    training and the test set, so the test accuracy is that of known writers.

    Split: a uniform random permutation from the split stream of ``seed`` puts
    :data:`DIGITS_TEST_SIZE` = 360 images in the test set and the other 1,437 in the
    training set (not stratified: the class shares vary by a few images between seeds).
    ``subset`` keeps only the first ``subset`` training images of that split.

    Pixels: divided by 16 (to [0, 1]), then standardised by the mean m and standard
    deviation s of all training pixels of the split, (x − m)/s (one channel, as CIFAR's
    per-channel normalisation; m ≈ 0.31 and s ≈ 0.38 in [0, 1] units), the same m and s
    for the test and probe images. A per-pixel standardisation would divide the always-blank
    border pixels by a zero deviation.

    Augmentation (``augment=True``): the trainer shifts every training batch's images by
    one pixel at most in each direction (:func:`shift_images`, offsets uniform in
    {-1, 0, 1}², from the trainer's generator), filling with the blank value −m/s — the
    8×8 counterpart of CIFAR's 4-pixel random crop. No flips (digits are not mirror
    symmetric). The probe and test sets are never augmented.

    Probe: ``probe_size`` training images (default :func:`probe_size_for` of the training
    set with ``probe_fraction`` and ``probe_cap``: 72 of 1,437 at 5%), drawn by
    :func:`draw_probe_indices` from the seed, as for CIFAR.

    Returns:
        A classification :class:`TaskData` with ``TensorDataset(x, y)`` datasets: float32
        x of shape (n, 1, 8, 8), int64 labels y of shape (n,); ``in_channels`` 1.

    Raises:
        MissingExtraError: scikit-learn is not installed (the message names the extra).
        ValueError: a negative seed, a subset outside [1, 1437], or a bad probe size.
    """
    images, labels = _load_digits_arrays()
    n = len(images)
    perm = torch.randperm(n, generator=_generator(seed, _STREAM_SPLIT)).numpy()
    n_train_full = n - DIGITS_TEST_SIZE
    train_idx, test_idx = perm[:n_train_full], perm[n_train_full:]
    if subset is not None:
        if not 1 <= subset <= n_train_full:
            raise ValueError(f"subset must be between 1 and {n_train_full}, got {subset}")
        train_idx = train_idx[:subset]
    scaled = images / DIGITS_MAX_PIXEL
    mean = float(scaled[train_idx].mean())
    std = float(scaled[train_idx].std())
    if not std > 0:
        raise ValueError("the digits training images are all blank (subset too small)")

    def tensors(idx: np.ndarray) -> tuple[Tensor, Tensor]:
        x = torch.from_numpy((scaled[idx] - mean) / std).float().unsqueeze(1)
        return x, torch.from_numpy(labels[idx].copy())

    x_train, y_train = tensors(train_idx)
    n_train = len(train_idx)
    if probe_size is None:
        probe_size = probe_size_for(n_train, probe_fraction, probe_cap)
    indices = draw_probe_indices(n_train, probe_size, seed)
    idx = list(indices)
    blank = -mean / std

    def shift(x: Tensor, generator: torch.Generator) -> Tensor:
        return shift_images(x, generator, fill=blank)

    return TaskData(name="digits", task="classification",
                    train=TensorDataset(x_train, y_train),
                    test=TensorDataset(*tensors(test_idx)),
                    probe=TensorDataset(x_train[idx], y_train[idx]),
                    probe_indices=indices, num_outputs=10, in_features=None,
                    augment=shift if augment else None, in_channels=1)
