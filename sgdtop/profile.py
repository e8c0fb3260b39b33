"""Run profiles: one typed dataclass, TOML files of short overrides, CLI overrides.

A profile is everything a run needs to be reproduced: model, data, optimizer, the
measurement schedule. The bundled profiles live in ``profiles/*.toml`` (shipped inside the
wheel as ``sgdtop/_profiles``); each file overrides the defaults below, which are the
paper's CIFAR settings (S=128, η=0.1, momentum 0.9, L2 5e-4, top-30 on a ~5% probe set).

An unknown key or a value of the wrong type is a :class:`ProfileError` naming the key and
what is allowed — in a file, in ``--set key=value`` and in flags alike.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final

MODEL_ALIASES: Final[dict[str, str]] = {
    # What `sgdtop run MODEL` starts when MODEL is a model name, not a profile name.
    "mlp": "mlp-teacher-student",
    "resnet8": "digits-cnn-cpu",
    "resnet20": "resnet32-cifar10",
    "resnet32": "resnet32-cifar10",
    "resnet44": "resnet32-cifar10",
    "resnet56": "resnet32-cifar10",
    "vgg11": "vgg11-cifar10",
}
DEFAULT_PROFILE: Final[str] = "mlp-teacher-student"
CUSTOM_PROFILE: Final[str] = "custom"  # for `sgdtop run file.py:factory`
DATASETS: Final[tuple[str, ...]] = ("teacher-student", "cifar10", "cifar100", "gratings",
                                    "digits")
INIT_SCHEMES: Final[tuple[str, ...]] = ("torch", "keras", "he", "paper")  # sgdtop.models.init
LR_SCHEDULES: Final[tuple[str, ...]] = ("constant", "step", "cosine")
DEVICES: Final[tuple[str, ...]] = ("auto", "cpu", "cuda")
WHICH: Final[tuple[str, ...]] = ("magnitude", "largest")


class ProfileError(ValueError):
    """A profile that cannot be used; the message is one line naming what and why."""


@dataclass
class Profile:
    """A complete, resolved run configuration. Units are in the field comments."""

    name: str = "custom"
    description: str = ""
    # --- model and data
    model: str = "resnet32"  # a name in sgdtop.models.MODEL_NAMES
    init: str = "torch"  # one of INIT_SCHEMES: "torch" (as built), "keras" (Glorot-uniform,
    #   zero biases), "he" (He-normal convs), "paper" (the authors' scheme for the model);
    #   see docs/initialisation.md. Custom models are never re-initialised.
    dataset: str = "cifar10"  # one of DATASETS
    data_dir: str = "data"  # CIFAR root (torchvision layout); relative to the working dir
    download: bool = True  # download CIFAR when missing (needs internet)
    train_subset: int = 0  # CIFAR, digits: use only the first N training examples (0: all)
    augment: bool = True  # CIFAR: random crops and flips; digits: random 1-pixel shifts
    n_train: int = 1000  # teacher-student, gratings: training examples
    n_test: int = 1000  # teacher-student, gratings: test examples
    input_dim: int = 300  # teacher-student: input dimension d
    output_dim: int = 1  # teacher-student: output dimension
    hidden: list[int] = field(default_factory=lambda: [100, 100])  # MLP hidden widths
    noise_var: float = 0.2  # teacher-student: label-noise variance
    teacher: str = "linear"  # teacher-student: "linear" or "mlp"
    num_classes: int = 10  # gratings: classes
    image_size: int = 16  # gratings: image side, pixels (VGG11 needs 32)
    pixel_noise: float = 1.0  # gratings: std of the Gaussian pixel noise (signal ≤ 1)
    fresh_noise: bool = False  # gratings: new training noise every batch (augmentation)
    # --- optimization
    epochs: int = 200
    batch_size: int = 128  # S, examples per SGD step
    lr: float = 0.1  # η
    momentum: float = 0.9  # β
    weight_decay: float = 5e-4  # L2 coefficient (not part of the measured Hessian)
    lr_schedule: str = "constant"  # one of LR_SCHEDULES
    lr_milestones: list[int] = field(default_factory=lambda: [100, 150])  # epochs ("step")
    lr_gamma: float = 0.1  # factor at each milestone ("step")
    seed: int = 0
    device: str = "auto"  # one of DEVICES
    threads: int = 0  # CPU threads for torch (0: 1 for models under 200k params, else default)
    # --- measurement
    k: int = 30  # number of top eigenvalues
    which: str = "magnitude"  # order of the top-k: by |λ| or largest algebraic
    tol: float = 1e-3  # relative Ritz-residual tolerance
    hessian_bn: str = "running"  # batch norm in the measured loss: "running" stats (eval
    #   mode, the paper) or each probe micro-batch's "batch" stats (as SGD sees it)
    max_hvps: int = 0  # cap on Lanczos iterations per measurement (0: automatic)
    warm_start: bool = True  # start Lanczos from the previous Ritz vectors
    probe_fraction: float = 0.05  # probe set size as a share of the training set
    probe_cap: int = 2250  # at most this many probe examples (the authors' 2250)
    probe_batch: int = 128  # micro-batch size for the probe forward/backward passes
    measure_every: int = 0  # also measure every N steps (0: off)
    measure_each_epoch: bool = True  # measure at the end of every epoch ...
    measure_every_epochs: int = 1  # ... or only of every N-th epoch (and the last one)
    first_epoch_every: int = 0  # measure every N steps during the first epoch (0: off)
    measure_at_start: bool = True  # measure once before the first step
    slice_every: int = 0  # loss slices (Fig. 7): every N steps up to slice_until (0: off)
    slice_until: int = 100  # last step with slices; each slice comes with a measurement
    slice_k: int = 4  # slices along this many top eigenvectors (at most k are used)
    slice_points: int = 21  # points per slice (odd: t = 0 is one)
    slice_step: float = 1.0  # distance between points, in units of η (t = j·slice_step·η)
    dead_threshold: float = 1e-3  # a unit is dead when mean |activation| < this
    dense_max_params: int = 2000  # exact full spectrum for models up to this size
    step_event_seconds: float = 0.2  # at most one step event per this many seconds

    def validate(self) -> None:
        """Raise :class:`ProfileError` for values outside their allowed range."""
        _choice("dataset", self.dataset, DATASETS)
        _choice("init", self.init, INIT_SCHEMES)
        _choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _choice("device", self.device, DEVICES)
        _choice("which", self.which, WHICH)
        _choice("hessian_bn", self.hessian_bn, ("running", "batch"))
        _choice("teacher", self.teacher, ("linear", "mlp"))
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ProfileError(f"lr must be a positive number, got {self.lr}")
        if self.batch_size <= 0:
            raise ProfileError(f"batch_size must be a positive integer, got {self.batch_size}")
        if not 0 <= self.momentum < 1:
            raise ProfileError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.weight_decay < 0:
            raise ProfileError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.epochs <= 0:
            raise ProfileError(f"epochs must be a positive integer, got {self.epochs}")
        if self.k <= 0:
            raise ProfileError(f"k must be a positive integer, got {self.k}")
        if not 0 < self.tol < 1:
            raise ProfileError(f"tol must be in (0, 1), got {self.tol}")
        if not 0 < self.probe_fraction <= 1:
            raise ProfileError(f"probe_fraction must be in (0, 1], got {self.probe_fraction}")
        for name in ("probe_cap", "probe_batch", "n_train", "n_test", "input_dim",
                     "output_dim", "num_classes", "image_size"):
            if getattr(self, name) <= 0:
                raise ProfileError(f"{name} must be a positive integer, got "
                                   f"{getattr(self, name)}")
        for name in ("measure_every", "first_epoch_every", "max_hvps", "train_subset",
                     "dense_max_params", "threads"):
            if getattr(self, name) < 0:
                raise ProfileError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.hidden or any(h <= 0 for h in self.hidden):
            raise ProfileError(f"hidden must be a non-empty list of positive widths, got "
                               f"{self.hidden}")
        if self.measure_every_epochs < 1:
            raise ProfileError(f"measure_every_epochs must be a positive integer, got "
                               f"{self.measure_every_epochs}")
        for name in ("slice_every", "slice_until"):
            if getattr(self, name) < 0:
                raise ProfileError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.slice_k < 1:
            raise ProfileError(f"slice_k must be a positive integer, got {self.slice_k}")
        if self.slice_points < 3 or self.slice_points % 2 == 0:
            raise ProfileError(f"slice_points must be an odd number >= 3, got "
                               f"{self.slice_points}")
        if not (self.slice_step > 0 and math.isfinite(self.slice_step)):
            raise ProfileError(f"slice_step must be a positive number, got {self.slice_step}")
        if self.pixel_noise < 0 or not math.isfinite(self.pixel_noise):
            raise ProfileError(f"pixel_noise must be a number >= 0, got {self.pixel_noise}")
        if self.dead_threshold <= 0:
            raise ProfileError(f"dead_threshold must be > 0, got {self.dead_threshold}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON/TOML-safe) of every field."""
        return dataclasses.asdict(self)


def field_names() -> tuple[str, ...]:
    """The keys a profile accepts, in declaration order."""
    return tuple(f.name for f in fields(Profile))


def _choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ProfileError(f"{key} must be one of {', '.join(allowed)}; got {value!r}")


_HINTS: Final[dict[str, Any]] = typing.get_type_hints(Profile)


def _coerce(key: str, value: Any) -> Any:
    """Check ``value`` against the type of field ``key`` (TOML/JSON values)."""
    hint = _HINTS[key]
    origin = typing.get_origin(hint)
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ProfileError(f"{key} must be a list of {item.__name__}, got {value!r}")
        return [_scalar(key, item, v) for v in value]
    if origin in (types.UnionType, typing.Union):
        raise ProfileError(f"unsupported type for {key}")  # no unions in Profile
    return _scalar(key, hint, value)


def _scalar(key: str, typ: type, value: Any) -> Any:
    if typ is bool:
        if isinstance(value, bool):
            return value
    elif typ is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif typ is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif typ is str and isinstance(value, str):
        return value
    raise ProfileError(f"{key} must be {typ.__name__}, got {value!r}")


def apply_overrides(profile: Profile, overrides: dict[str, Any]) -> Profile:
    """A copy of ``profile`` with ``overrides`` applied; unknown keys are errors."""
    allowed = field_names()
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in allowed:
            raise ProfileError(f"unknown profile key {key!r}; allowed: {', '.join(allowed)}")
        changes[key] = _coerce(key, value)
    return dataclasses.replace(profile, **changes)


def parse_set(items: list[str]) -> dict[str, Any]:
    """Parse ``--set key=value`` items. Values are read as TOML values (``0.1``, ``true``,
    ``[64, 64]``, ``"cosine"``); a bare word is taken as a string."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ProfileError(f"--set takes key=value, got {item!r}")
        if key not in _HINTS:
            raise ProfileError(f"unknown profile key {key!r}; allowed: "
                               f"{', '.join(field_names())}")
        raw = raw.strip()
        try:
            value = tomllib.loads(f"x = {raw}")["x"]
        except tomllib.TOMLDecodeError:
            value = raw
        if _HINTS[key] is str and not isinstance(value, str):
            value = raw
        out[key] = value
    return out


def profiles_dir() -> Path:
    """The bundled profiles: ``sgdtop/_profiles`` in a wheel, ``profiles/`` in a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_profiles", here.parent / "profiles"):
        if candidate.is_dir():
            return candidate
    raise ProfileError("the bundled profiles are missing from this installation")


def bundled_names() -> list[str]:
    """Names of the bundled profiles, sorted."""
    return sorted(p.stem for p in profiles_dir().glob("*.toml"))


def load_file(path: Path) -> Profile:
    """Load a profile TOML file: top-level keys override :class:`Profile` defaults."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"cannot read profile {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"profile {path} is not valid TOML: {exc}") from None
    try:
        profile = apply_overrides(Profile(name=path.stem), data)
    except ProfileError as exc:
        raise ProfileError(f"{path.name}: {exc}") from None
    return profile


def resolve_name(name: str) -> Path:
    """Path of profile ``name``: a bundled name, a model alias, or a .toml path."""
    if name.endswith(".toml"):
        path = Path(name)
        if not path.is_file():
            raise ProfileError(f"profile file {name} does not exist")
        return path
    name = MODEL_ALIASES.get(name, name)
    path = profiles_dir() / f"{name}.toml"
    if not path.is_file():
        raise ProfileError(
            f"unknown profile or model {name!r}; profiles: {', '.join(bundled_names())}; "
            f"models: {', '.join(MODEL_ALIASES)}"
        )
    return path


def load(name: str | None = None, *, model: str | None = None,
         overrides: dict[str, Any] | None = None) -> Profile:
    """Resolve the profile a run uses.

    ``name`` is a profile name or file (default: the profile for ``model``, else
    :data:`DEFAULT_PROFILE`); ``model``, when it is a model name, replaces the profile's
    model (``sgdtop run resnet56`` runs the ResNet32 profile with ResNet56);
    ``overrides`` (flags and ``--set``) are applied last. The result is validated.
    """
    if model is not None and name is None and model not in MODEL_ALIASES and ":" not in model:
        name = model  # `sgdtop run smoke` names a profile
        model = None
    if name is None:
        if model and ":" in model:
            name = CUSTOM_PROFILE
        else:
            name = MODEL_ALIASES.get(model, DEFAULT_PROFILE) if model else DEFAULT_PROFILE
    profile = load_file(resolve_name(name))
    if model is not None:
        profile = dataclasses.replace(profile, model=model)
    if overrides:
        profile = apply_overrides(profile, overrides)
    profile.validate()
    return profile


def describe_all() -> list[tuple[str, str]]:
    """(name, one-line description) of every bundled profile."""
    return [(n, load_file(profiles_dir() / f"{n}.toml").description) for n in bundled_names()]
