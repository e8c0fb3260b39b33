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

Randomness: every draw comes from its own seeded ``torch.Generator``, never from torch's
global RNG (:mod:`sgdtop.data.task`), so one seed gives identical data in every run.

Modules: ``task`` (:class:`TaskData`, the random streams, the probe set, the errors, the
builder the generated tasks share), ``_teacher_student``, ``_gratings``, ``_digits`` and
``_cifar`` (transforms, torchvision loading, the CIFAR constants). Import from
``sgdtop.data``; the task modules are private and named apart from their functions, so
``sgdtop.data.cifar`` is the function and ``sgdtop.data._cifar`` the module (a test that
patches a name patches it where it is looked up: ``sgdtop.data._cifar._load_cifar``).
"""

from __future__ import annotations

from sgdtop.data._cifar import (
    CIFAR_MEAN,
    CIFAR_NAMES,
    CIFAR_PAD,
    CIFAR_STD,
    cifar,
    cifar_transforms,
)
from sgdtop.data._digits import (
    DIGITS_EXTRA_MESSAGE,
    DIGITS_MAX_PIXEL,
    DIGITS_SIZE,
    DIGITS_TEST_SIZE,
    digits,
    shift_images,
)
from sgdtop.data._gratings import gratings
from sgdtop.data._teacher_student import teacher_student
from sgdtop.data.task import (
    TASK_NAMES,
    DatasetMissingError,
    MissingExtraError,
    TaskData,
    draw_probe_indices,
    probe_batches,
    probe_size_for,
)

__all__ = [
    "CIFAR_MEAN",
    "CIFAR_NAMES",
    "CIFAR_PAD",
    "CIFAR_STD",
    "DIGITS_EXTRA_MESSAGE",
    "DIGITS_MAX_PIXEL",
    "DIGITS_SIZE",
    "DIGITS_TEST_SIZE",
    "TASK_NAMES",
    "DatasetMissingError",
    "MissingExtraError",
    "TaskData",
    "cifar",
    "cifar_transforms",
    "digits",
    "draw_probe_indices",
    "gratings",
    "probe_batches",
    "probe_size_for",
    "shift_images",
    "teacher_student",
]
