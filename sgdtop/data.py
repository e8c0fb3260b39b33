"""The training data: the paper's teacher-student task, CIFAR-10/100, generated gratings,
handwritten digits, and the probe set.

Five tasks, each returned as a :class:`TaskData`:

- ``teacher-student`` (regression; Advani & Saxe 2017, "High-dimensional dynamics of
  generalization error in neural networks", arXiv:1710.03667, as in §2 of Jastrzębski et
  al. 2018): inputs x ~ N(0, I/d) with d = 300, targets y = teacher(x) + ε with label noise
  ε ~ N(0, σ²), σ² = 0.2 (a *variance*). See :func:`teacher_student`.
- ``cifar10`` / ``cifar100`` (classification) through ``torchvision.datasets``, with the
  standard augmentation and per-channel normalisation. See :func:`cifar`.
- ``gratings`` (classification, generated, no download): small colour images of oriented
  sine gratings under Gaussian pixel noise, one orientation and colour per class — a
  stand-in for CIFAR where it cannot be downloaded, so the image models (ResNet) can be run
  through the paper's CNN experiments on any machine. See :func:`gratings`.
- ``digits`` (classification, real images, no download): the UCI handwritten digits that
  scikit-learn ships in its wheel (1,797 grey 8×8 images of 10 classes), split into 1,437
  training and 360 test images from the seed. Needs the ``digits`` extra
  (``pip install 'sgdtop[digits]'``). See :func:`digits`.

The **probe set** (docs/design.md) is a fixed subset of the *training* set, ``probe_size``
examples drawn once from the run's seed (:func:`draw_probe_indices`), always with the
evaluation transform (no augmentation), on which the Hessian spectrum and the dead-neuron
share are measured. :func:`probe_batches` materialises it once as tensors.

Randomness: every draw in this module comes from its own ``torch.Generator``, seeded from
``(seed, stream)`` through ``numpy.random.SeedSequence``, so the teacher, the training
inputs, the test inputs and the probe indices are independent streams and never touch
torch's global RNG: one seed gives identical data in every run, and changing ``n_test``
does not change the training set. (CIFAR's random crops and flips are drawn at load time
from torch's global RNG, as torchvision does; the trainer seeds that.)
"""

from __future__ import annotations

import copy
import itertools
import math
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset, TensorDataset, default_collate

if TYPE_CHECKING:  # torchvision is imported only for CIFAR (it costs ~1 s at start-up)
    from torchvision import datasets

TASK_NAMES: Final[tuple[str, ...]] = ("teacher-student", "cifar10", "cifar100", "gratings",
                                      "digits")
"""Names of the tasks this module builds (``TaskData.name``)."""

CIFAR_NAMES: Final[tuple[str, ...]] = ("cifar10", "cifar100")
"""Names accepted by :func:`cifar`."""

CIFAR_MEAN: Final[dict[str, tuple[float, float, float]]] = {
    "cifar10": (0.4914, 0.4822, 0.4465),
    "cifar100": (0.5071, 0.4865, 0.4409),
}
"""Per-channel (R, G, B) mean of the training images, pixel values scaled to [0, 1]."""

CIFAR_STD: Final[dict[str, tuple[float, float, float]]] = {
    "cifar10": (0.2470, 0.2435, 0.2616),
    "cifar100": (0.2673, 0.2564, 0.2762),
}
"""Per-channel (R, G, B) standard deviation over all training pixels, in [0, 1] units."""

CIFAR_PAD: Final[int] = 4
"""Zero padding (pixels) on each side before the random 32×32 crop."""



def _cifar_class(name: str) -> type[datasets.CIFAR10]:
    """torchvision's dataset class for ``name`` ("cifar10" or "cifar100")."""
    from torchvision import datasets

    return {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}[name]

_CIFAR_LABELS: Final[dict[str, str]] = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}
_CIFAR_ARCHIVE_MB: Final[dict[str, int]] = {"cifar10": 170, "cifar100": 169}

_STREAM_TEACHER: Final[int] = 0
_STREAM_TRAIN: Final[int] = 1
_STREAM_TEST: Final[int] = 2
_STREAM_PROBE: Final[int] = 3
_STREAM_SPLIT: Final[int] = 4

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


class DatasetMissingError(RuntimeError):
    """A dataset is not on disk (or is corrupted) and could not be downloaded.

    The message is one line: it names the directory and how to provide the data.

    Attributes:
        directory: the directory where the dataset was looked for.
    """

    def __init__(self, message: str, *, directory: Path | None = None) -> None:
        super().__init__(" ".join(message.split()))
        self.directory = directory


class MissingExtraError(DatasetMissingError):
    """A dataset needs an optional dependency that is not installed; the message (one line)
    names the extra to install."""


@dataclass(frozen=True)
class TaskData:
    """A task's datasets and its probe set.

    Attributes:
        name: one of :data:`TASK_NAMES`.
        task: ``"regression"`` (mean squared error) or ``"classification"`` (cross-entropy).
        train: the training set (with augmentation for CIFAR unless disabled).
        test: the test set (never augmented).
        probe: the probe set: ``probe_indices`` of ``train``, without augmentation.
        probe_indices: indices into ``train`` of the probe examples, sorted ascending.
        num_outputs: number of classes, or the output dimension for regression.
        in_features: input dimension of the vector tasks (300 for teacher-student); None
            for images.
        augment: for in-memory training sets, a function ``augment(inputs, generator)``
            the trainer applies to every training batch (never to the probe or test set);
            None: none (CIFAR augments inside its dataset's transform instead).
        in_channels: channels of the image tasks (3: CIFAR, gratings; 1: digits); 3 for
            the vector tasks, where it is unused.
    """

    name: str
    task: str
    train: Dataset[Any]
    test: Dataset[Any]
    probe: Dataset[Any]
    probe_indices: tuple[int, ...]
    num_outputs: int
    in_features: int | None
    augment: Callable[[Tensor, torch.Generator], Tensor] | None = None
    in_channels: int = 3


def _generator(seed: int, stream: int) -> torch.Generator:
    """A CPU generator for one independent random stream of ``seed``."""
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    words = np.random.SeedSequence([seed, stream]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed((int(words[0]) << 32) | int(words[1]))


def probe_size_for(n_train: int, fraction: float = 0.05, cap: int | None = None) -> int:
    """Number of probe examples for a training set of ``n_train`` examples.

    ``round(fraction · n_train)``, at least 1, at most ``cap`` (when given) and ``n_train``.
    The authors' code used 2250 probe examples (5% of 45,000).

    Raises:
        ValueError: ``n_train`` < 1, ``fraction`` outside (0, 1], or ``cap`` < 1.
    """
    if n_train < 1:
        raise ValueError(f"n_train must be positive, got {n_train}")
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"probe fraction must be in (0, 1], got {fraction}")
    if cap is not None and cap < 1:
        raise ValueError(f"probe size cap must be positive, got {cap}")
    size = max(1, math.floor(fraction * n_train + 0.5))
    if cap is not None:
        size = min(size, cap)
    return min(size, n_train)


def draw_probe_indices(n_train: int, probe_size: int, seed: int) -> tuple[int, ...]:
    """Draw the probe set: ``probe_size`` distinct indices in [0, n_train), sorted.

    Uniform without replacement, from the probe stream of ``seed`` (the same seed always
    gives the same indices). ``probe_size`` 0 gives an empty probe.

    Raises:
        ValueError: ``probe_size`` outside [0, n_train], or a negative seed.
    """
    if not 0 <= probe_size <= n_train:
        raise ValueError(
            f"probe size must be between 0 and the training set size {n_train}, got {probe_size}"
        )
    perm = torch.randperm(n_train, generator=_generator(seed, _STREAM_PROBE))
    return tuple(sorted(int(i) for i in perm[:probe_size]))


def probe_batches(probe: Dataset[Any], batch_size: int = 128) -> list[tuple[Tensor, Tensor]]:
    """Materialise the probe set once as a list of (inputs, targets) batches.

    Examples are taken in index order (0, 1, ..., len(probe) - 1) and collated with
    ``default_collate``: every batch has ``batch_size`` examples except possibly the last.
    Targets are class indices (int64, shape (b,)) for CIFAR and float32 of shape
    (b, out_dim) for teacher-student. The result is deterministic when ``probe`` is (the
    probe set never augments); measurements weight each batch by its size.

    Raises:
        ValueError: ``batch_size`` < 1.
    """
    if batch_size < 1:
        raise ValueError(f"probe batch size must be positive, got {batch_size}")
    n = len(probe)  # type: ignore[arg-type]
    batches: list[tuple[Tensor, Tensor]] = []
    for start in range(0, n, batch_size):
        items = [probe[i] for i in range(start, min(start + batch_size, n))]
        inputs, targets = default_collate(items)
        batches.append((inputs, targets))
    return batches


def _apply_teacher(x: Tensor, weights: list[Tensor]) -> Tensor:
    """Apply the teacher: the weight matrices in order, ReLU between them, no biases."""
    h = x
    for i, w in enumerate(weights):
        h = h @ w.T
        if i < len(weights) - 1:
            h = torch.relu(h)
    return h


def _generated_task(
    name: str, task: str, draw: Callable[..., TensorDataset], n_train: int,
    n_test: int, seed: int,
    probe_size: int, *, num_outputs: int, in_features: int | None,
) -> TaskData:
    """A generated task: ``draw(n, stream)`` gives the training and test sets from their
    own streams of ``seed``; the probe set is drawn from the probe stream."""
    train = draw(n_train, _STREAM_TRAIN)
    test = draw(n_test, _STREAM_TEST)
    indices = draw_probe_indices(n_train, probe_size, seed)
    return TaskData(name=name, task=task, train=train, test=test,
                    probe=Subset(train, list(indices)), probe_indices=indices,
                    num_outputs=num_outputs, in_features=in_features)


def teacher_student(
    *,
    n_train: int,
    n_test: int,
    d: int = 300,
    out_dim: int = 1,
    noise_var: float = 0.2,
    teacher: str = "linear",
    seed: int = 0,
    probe_size: int,
    teacher_hidden: tuple[int, ...] = (100, 100),
) -> TaskData:
    """The teacher-student regression task of Advani & Saxe (2017), as in the paper's §2.

    Inputs x ∈ R^d are drawn from N(0, I/d) (each coordinate has standard deviation
    1/√d, so ‖x‖ ≈ 1). Targets are y = f(x) + ε, ε ~ N(0, noise_var · I) (``noise_var`` is
    the *variance*; the paper's 0.2), with the teacher f:

    - ``"linear"``: f(x) = W x, W ∈ R^{out_dim×d}, W_ij ~ N(0, 1); each target coordinate
      then has signal variance ‖W_i‖²/d ≈ 1.
    - ``"mlp"``: a random ReLU network of the student's shape, d → ``teacher_hidden`` →
      out_dim, no biases, weights drawn from N(0, 1) and scaled for O(1) outputs: the first
      layer is left unscaled (the inputs already carry the 1/√d), every later layer is
      multiplied by √(2/fan_in) (He scaling, which undoes ReLU halving the second moment),
      so every pre-activation, and each output, has second moment E[f(x)²] ≈ 1 (averaged
      over teachers), as the linear teacher's signal. For one teacher part of it is a
      constant offset (ReLU features have a nonzero mean), which the student's bias learns:
      over seeds 0–4, one output had E[f²] 0.47–1.13 and variance over x 0.36–0.58.

    The training and test sets share the teacher and draw fresh inputs and noise from
    independent streams of ``seed``. Everything is determined by the arguments.

    Args:
        n_train: number of training examples.
        n_test: number of test examples.
        d: input dimension (300 in the paper).
        out_dim: output dimension (1 in the paper).
        noise_var: label noise variance σ² ≥ 0 (0.2 in the paper).
        teacher: ``"linear"`` or ``"mlp"``.
        seed: non-negative seed.
        probe_size: number of training examples in the probe set (0..n_train).
        teacher_hidden: hidden widths of the ``"mlp"`` teacher.

    Returns:
        A regression :class:`TaskData` whose datasets are ``TensorDataset(x, y)`` with
        float32 x of shape (n, d) and y of shape (n, out_dim).

    Raises:
        ValueError: a size is not positive, ``noise_var`` < 0, an unknown ``teacher``, or
            ``probe_size`` outside [0, n_train].
    """
    if n_train < 1 or n_test < 1 or d < 1 or out_dim < 1:
        raise ValueError(
            "teacher-student sizes must be positive: "
            f"n_train={n_train}, n_test={n_test}, d={d}, out_dim={out_dim}"
        )
    if not noise_var >= 0.0:
        raise ValueError(f"noise_var (label noise variance) must be ≥ 0, got {noise_var}")
    if teacher not in ("linear", "mlp"):
        raise ValueError(f"unknown teacher {teacher!r}; valid teachers: linear, mlp")
    if any(h < 1 for h in teacher_hidden):
        raise ValueError(f"teacher hidden widths must be positive, got {teacher_hidden}")

    g_teacher = _generator(seed, _STREAM_TEACHER)
    if teacher == "linear":
        weights = [torch.randn(out_dim, d, generator=g_teacher)]
    else:
        widths = (d, *teacher_hidden, out_dim)
        weights = []
        for layer, (fan_in, fan_out) in enumerate(itertools.pairwise(widths)):
            w = torch.randn(fan_out, fan_in, generator=g_teacher)
            weights.append(w if layer == 0 else w * math.sqrt(2.0 / fan_in))

    def draw(n: int, stream: int) -> TensorDataset:
        g = _generator(seed, stream)
        x = torch.randn(n, d, generator=g) / math.sqrt(d)
        noise = torch.randn(n, out_dim, generator=g) * math.sqrt(noise_var)
        y = _apply_teacher(x, weights) + noise
        return TensorDataset(x.float(), y.float())

    return _generated_task("teacher-student", "regression", draw, n_train, n_test, seed,
                           probe_size, num_outputs=out_dim, in_features=d)


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


def cifar_transforms(name: str, *, augment: bool = True) -> tuple[Any, Any]:
    """The (train, eval) transforms for ``name`` ("cifar10" or "cifar100").

    Train: ``RandomCrop(32, padding=4)`` (zero padding), ``RandomHorizontalFlip()`` (p=0.5),
    ``ToTensor()`` (to [0, 1]), ``Normalize(CIFAR_MEAN[name], CIFAR_STD[name])``. Eval: only
    the last two. With ``augment=False`` the train transform is the eval transform.
    """
    if name not in CIFAR_NAMES:
        raise ValueError(f"unknown CIFAR dataset {name!r}; valid: {', '.join(CIFAR_NAMES)}")
    from torchvision import transforms

    normalize = transforms.Normalize(CIFAR_MEAN[name], CIFAR_STD[name])
    eval_tf = transforms.Compose([transforms.ToTensor(), normalize])
    if not augment:
        return eval_tf, eval_tf
    train_tf = transforms.Compose(
        [
            transforms.RandomCrop(32, padding=CIFAR_PAD),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            normalize,
        ]
    )
    return train_tf, eval_tf


def _missing_message(name: str, problem: str) -> str:
    """One line: what is wrong with the CIFAR folder (``problem``), and how to provide it."""
    cls = _cifar_class(name)
    return (
        f"{_CIFAR_LABELS[name]} {problem}: pass --data-dir DIR where DIR "
        f"holds {cls.base_folder}/, or run once with internet access and download=True to "
        f"fetch it (about {_CIFAR_ARCHIVE_MB[name]} MB)"
    )


def _load_cifar(
    name: str, root: Path, *, train: bool, transform: Any, download: bool
) -> datasets.CIFAR10:
    """Construct the torchvision dataset, turning "missing" and "offline" into one error."""
    cls = _cifar_class(name)
    folder = root / cls.base_folder
    try:
        return cls(str(root), train=train, transform=transform, download=download)
    except (OSError, RuntimeError, tarfile.TarError, EOFError) as exc:
        # OSError: URLError (offline), HTTP errors, an unwritable or unreadable directory.
        # RuntimeError: torchvision's md5 check ("Dataset not found or corrupted") or a
        # corrupted download. TarError / EOFError: a truncated archive.
        detail = " ".join(str(exc).split()) or "no detail"
        if download:
            problem = (
                f"is not in {folder} and could not be downloaded ({type(exc).__name__}: {detail})"
            )
        elif isinstance(exc, RuntimeError):
            problem = f"not found (or corrupted) in {folder}"
        else:
            problem = f"could not be read from {folder} ({type(exc).__name__}: {detail})"
        raise DatasetMissingError(_missing_message(name, problem), directory=root) from exc


def cifar(
    name: str,
    *,
    data_dir: Path,
    download: bool,
    probe_size: int,
    seed: int = 0,
    augment: bool = True,
    subset: int | None = None,
    test_subset: int | None = None,
) -> TaskData:
    """CIFAR-10 or CIFAR-100 through ``torchvision.datasets``, with the probe set.

    Files live in ``data_dir/cifar-10-batches-py/`` or ``data_dir/cifar-100-python/``
    (torchvision's layout). With ``download=True`` a missing dataset is fetched with
    torchvision's progress bar; otherwise, or when the download fails (offline),
    :class:`DatasetMissingError` is raised with a one-line message.

    The training set uses :func:`cifar_transforms` (random crop with 4-pixel padding,
    horizontal flip, normalisation by :data:`CIFAR_MEAN` / :data:`CIFAR_STD`); the test set
    and the probe set use the evaluation transform (normalisation only). The probe is a
    second dataset object (a shallow copy of the training set, sharing its pixel array,
    with the evaluation transform) restricted to ``probe_indices``.

    Args:
        name: ``"cifar10"`` or ``"cifar100"``.
        data_dir: the directory holding (or to receive) torchvision's CIFAR folder.
        download: fetch the dataset if missing (needs internet).
        probe_size: number of training examples in the probe set (0..len(train)).
        seed: non-negative seed for the probe draw.
        augment: apply the random crop and flip to the training set.
        subset: if given, keep only the first ``subset`` training examples (the files are
            already in random order) for quick runs; the probe is drawn among them.
        test_subset: if given, keep only the first ``test_subset`` test examples.

    Raises:
        DatasetMissingError: the files are missing or corrupted and could not be fetched.
        ValueError: unknown ``name``, a subset outside [1, size], or a bad ``probe_size``.
    """
    if name not in CIFAR_NAMES:
        raise ValueError(f"unknown CIFAR dataset {name!r}; valid: {', '.join(CIFAR_NAMES)}")
    root = Path(data_dir).expanduser()
    train_tf, eval_tf = cifar_transforms(name, augment=augment)
    train_full = _load_cifar(name, root, train=True, transform=train_tf, download=download)
    test_full = _load_cifar(name, root, train=False, transform=eval_tf, download=False)

    from torchvision.datasets.vision import StandardTransform

    probe_base = copy.copy(train_full)
    probe_base.transform = eval_tf
    probe_base.transforms = StandardTransform(eval_tf, None)

    train_idx = _first(len(train_full), subset, "subset")
    test_idx = _first(len(test_full), test_subset, "test_subset")
    train: Dataset[Any] = train_full if train_idx is None else Subset(train_full, train_idx)
    test: Dataset[Any] = test_full if test_idx is None else Subset(test_full, test_idx)

    n_train = len(train_full) if train_idx is None else len(train_idx)
    indices = draw_probe_indices(n_train, probe_size, seed)
    base_indices = list(indices) if train_idx is None else [train_idx[i] for i in indices]
    return TaskData(
        name=name,
        task="classification",
        train=train,
        test=test,
        probe=Subset(probe_base, base_indices),
        probe_indices=indices,
        num_outputs=len(train_full.classes),
        in_features=None,
    )


def _first(size: int, limit: int | None, what: str) -> list[int] | None:
    """Indices of the first ``limit`` examples, or None for all of them."""
    if limit is None:
        return None
    if not 1 <= limit <= size:
        raise ValueError(f"{what} must be between 1 and {size}, got {limit}")
    return list(range(limit))
