"""What every task shares: :class:`TaskData`, the seeded random streams, the probe set, and
the dataset errors (definitions: ``docs/design.md``).

- :data:`TASK_NAMES`, :class:`TaskData` (a task's datasets and its probe set);
- :class:`DatasetMissingError` and :class:`MissingExtraError`;
- the random streams: :func:`_generator` and the ``_STREAM_*`` numbers;
- the probe set: :func:`probe_size_for`, :func:`draw_probe_indices`, :func:`probe_batches`;
- :func:`_generated_task`, the builder the generated tasks (teacher-student, gratings)
  share.

Randomness: every draw of the tasks comes from its own ``torch.Generator``, seeded from
``(seed, stream)`` through ``numpy.random.SeedSequence``, so the teacher, the training
inputs, the test inputs and the probe indices are independent streams and never touch
torch's global RNG: one seed gives identical data in every run, and changing ``n_test``
does not change the training set. (CIFAR's random crops and flips are drawn at load time
from torch's global RNG, as torchvision does; the trainer seeds that.)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset, TensorDataset, default_collate

TASK_NAMES: Final[tuple[str, ...]] = ("teacher-student", "cifar10", "cifar100", "gratings",
                                      "digits")
"""Names of the tasks this module builds (``TaskData.name``)."""


_STREAM_TEACHER: Final[int] = 0
_STREAM_TRAIN: Final[int] = 1
_STREAM_TEST: Final[int] = 2
_STREAM_PROBE: Final[int] = 3
_STREAM_SPLIT: Final[int] = 4


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
