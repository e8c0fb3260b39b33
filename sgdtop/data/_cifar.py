"""CIFAR-10/100 through ``torchvision.datasets``: :func:`cifar`, its transforms
(:func:`cifar_transforms`), the per-channel constants, and the loading that turns a
missing or offline dataset into one :class:`DatasetMissingError` (definitions:
``docs/design.md``). torchvision is imported only when a CIFAR function runs."""

from __future__ import annotations

import copy
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from torch.utils.data import Dataset, Subset

from sgdtop.data.task import DatasetMissingError, TaskData, draw_probe_indices

if TYPE_CHECKING:  # torchvision is imported only for CIFAR (it costs ~1 s at start-up)
    from torchvision import datasets

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
