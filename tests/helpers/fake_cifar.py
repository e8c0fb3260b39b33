"""Write small CIFAR-10 / CIFAR-100 datasets in torchvision's real on-disk format.

The files are the pickled batches torchvision reads (``pickle.load(f, encoding="latin1")``):

- ``cifar-10-batches-py/``: ``data_batch_1`` .. ``data_batch_5`` and ``test_batch``, each
  ``{"batch_label", "labels", "data", "filenames"}`` with ``data`` a uint8 array of shape
  (n, 3072) (the 1024 red, then green, then blue values of a 32×32 image, row-major), and
  ``batches.meta`` ``{"label_names", "num_cases_per_batch", "num_vis"}``;
- ``cifar-100-python/``: ``train`` and ``test``, each ``{"filenames", "batch_label",
  "fine_labels", "coarse_labels", "data"}``, and ``meta`` ``{"fine_label_names",
  "coarse_label_names"}``.

torchvision's ``CIFAR10``/``CIFAR100`` check the md5 of every file against the real
dataset's checksums (class attributes ``train_list``, ``test_list``, ``meta``). Generated
files cannot match them, so :func:`accept_fake_cifar` (pytest ``monkeypatch``) or
:func:`fake_cifar_md5s` (a context manager) replaces only those checksum attributes with
the md5 of the files written here. Everything else (the integrity check itself, reading the
pickles, the transforms) runs torchvision's real code, with ``download=False``.

This cannot reach a child process: an end-to-end test that runs ``sgdtop`` as a subprocess
on fake CIFAR files would need the child to apply the same patch.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from torchvision import datasets

if TYPE_CHECKING:
    import pytest

CIFAR10_LABEL_NAMES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
"""CIFAR-10's class names, in label order (as in the real ``batches.meta``)."""

_CLASSES: dict[str, type[datasets.CIFAR10]] = {
    "cifar10": datasets.CIFAR10,
    "cifar100": datasets.CIFAR100,
}


@dataclass(frozen=True)
class FakeCifar:
    """What was written, for tests to compare against.

    Attributes:
        name: ``"cifar10"`` or ``"cifar100"``.
        root: the directory to pass as ``data_dir`` / torchvision's ``root``.
        folder: ``root / "cifar-10-batches-py"`` or ``root / "cifar-100-python"``.
        train_images: uint8 array (n_train, 32, 32, 3), HWC, in file order.
        train_labels: class index of each training image (fine labels for CIFAR-100).
        test_images: uint8 array (n_test, 32, 32, 3).
        test_labels: class index of each test image.
        num_classes: 10 or 100.
        md5: file name (inside ``folder``) → md5 hex digest of the written file.
    """

    name: str
    root: Path
    folder: Path
    train_images: np.ndarray
    train_labels: tuple[int, ...]
    test_images: np.ndarray
    test_labels: tuple[int, ...]
    num_classes: int
    md5: dict[str, str]


def _rows(images: np.ndarray) -> np.ndarray:
    """(n, 32, 32, 3) HWC uint8 → (n, 3072) rows: all R, then all G, then all B."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2).reshape(len(images), 3072))


def _dump(path: Path, obj: dict[str, Any]) -> str:
    """Pickle ``obj`` to ``path`` (protocol 2, as the real Python-2 era files) → md5."""
    path.write_bytes(pickle.dumps(obj, protocol=2))
    return hashlib.md5(path.read_bytes()).hexdigest()


def _draw(rng: np.random.Generator, n: int, num_classes: int) -> tuple[np.ndarray, list[int]]:
    images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    labels = [(i + int(rng.integers(num_classes))) % num_classes for i in range(n)]
    return images, labels


def write_fake_cifar10(
    root: Path, *, n_per_batch: int = 4, n_test: int = 8, seed: int = 0
) -> FakeCifar:
    """Write a CIFAR-10 with ``5 · n_per_batch`` training and ``n_test`` test images.

    Pixels are uniform random uint8 from ``seed``; labels cycle through the 10 classes
    with a random offset. Returns what was written (see :class:`FakeCifar`).
    """
    rng = np.random.default_rng(seed)
    folder = Path(root) / datasets.CIFAR10.base_folder
    folder.mkdir(parents=True, exist_ok=True)
    md5: dict[str, str] = {}
    train_images: list[np.ndarray] = []
    train_labels: list[int] = []
    for b, (filename, _) in enumerate(datasets.CIFAR10.train_list, start=1):
        images, labels = _draw(rng, n_per_batch, 10)
        md5[filename] = _dump(
            folder / filename,
            {
                "batch_label": f"training batch {b} of 5",
                "labels": labels,
                "data": _rows(images),
                "filenames": [f"fake_{b}_{i}.png" for i in range(n_per_batch)],
            },
        )
        train_images.append(images)
        train_labels += labels
    test_images, test_labels = _draw(rng, n_test, 10)
    md5["test_batch"] = _dump(
        folder / "test_batch",
        {
            "batch_label": "testing batch 1 of 1",
            "labels": test_labels,
            "data": _rows(test_images),
            "filenames": [f"fake_test_{i}.png" for i in range(n_test)],
        },
    )
    md5["batches.meta"] = _dump(
        folder / "batches.meta",
        {
            "num_cases_per_batch": n_per_batch,
            "label_names": list(CIFAR10_LABEL_NAMES),
            "num_vis": 3072,
        },
    )
    return FakeCifar(
        name="cifar10",
        root=Path(root),
        folder=folder,
        train_images=np.concatenate(train_images),
        train_labels=tuple(train_labels),
        test_images=test_images,
        test_labels=tuple(test_labels),
        num_classes=10,
        md5=md5,
    )


def write_fake_cifar100(
    root: Path, *, n_train: int = 20, n_test: int = 8, seed: int = 0
) -> FakeCifar:
    """Write a CIFAR-100 with ``n_train`` training and ``n_test`` test images.

    Pixels are uniform random uint8 from ``seed``; fine labels in [0, 100), coarse labels
    ``fine // 5``; class names ``fine_00`` .. ``fine_99``.
    """
    rng = np.random.default_rng(seed)
    folder = Path(root) / datasets.CIFAR100.base_folder
    folder.mkdir(parents=True, exist_ok=True)
    md5: dict[str, str] = {}
    splits: dict[str, tuple[np.ndarray, list[int]]] = {}
    for filename, n in (("train", n_train), ("test", n_test)):
        images, labels = _draw(rng, n, 100)
        splits[filename] = (images, labels)
        md5[filename] = _dump(
            folder / filename,
            {
                "filenames": [f"fake_{filename}_{i}.png" for i in range(n)],
                "batch_label": f"{filename}ing batch 1 of 1",
                "fine_labels": labels,
                "coarse_labels": [label // 5 for label in labels],
                "data": _rows(images),
            },
        )
    md5["meta"] = _dump(
        folder / "meta",
        {
            "fine_label_names": [f"fine_{i:02d}" for i in range(100)],
            "coarse_label_names": [f"coarse_{i:02d}" for i in range(20)],
        },
    )
    return FakeCifar(
        name="cifar100",
        root=Path(root),
        folder=folder,
        train_images=splits["train"][0],
        train_labels=tuple(splits["train"][1]),
        test_images=splits["test"][0],
        test_labels=tuple(splits["test"][1]),
        num_classes=100,
        md5=md5,
    )


def _checksum_attributes(fake: FakeCifar) -> dict[str, Any]:
    """The torchvision class attributes naming each file with the fake files' md5."""
    cls = _CLASSES[fake.name]
    return {
        "train_list": [[f, fake.md5[f]] for f, _ in cls.train_list],
        "test_list": [[f, fake.md5[f]] for f, _ in cls.test_list],
        "meta": {**cls.meta, "md5": fake.md5[cls.meta["filename"]]},
    }


def accept_fake_cifar(monkeypatch: pytest.MonkeyPatch, fake: FakeCifar) -> None:
    """Make torchvision's dataset class accept ``fake``'s files (undone after the test).

    Replaces only the md5 checksums in the class attributes ``train_list``, ``test_list``
    and ``meta`` of ``CIFAR10`` (or ``CIFAR100``); ``CIFAR100`` defines its own, so the
    two never interfere.
    """
    cls = _CLASSES[fake.name]
    for attr, value in _checksum_attributes(fake).items():
        monkeypatch.setattr(cls, attr, value)


@contextmanager
def fake_cifar_md5s(fake: FakeCifar) -> Iterator[None]:
    """Context manager form of :func:`accept_fake_cifar`, for code without pytest."""
    cls = _CLASSES[fake.name]
    attrs = _checksum_attributes(fake)
    saved = {attr: cls.__dict__[attr] for attr in attrs}
    try:
        for attr, value in attrs.items():
            setattr(cls, attr, value)
        yield
    finally:
        for attr, value in saved.items():
            setattr(cls, attr, value)
