"""One typed record per event kind: the contract between every producer (the trainer,
``sgdtop.Monitor``) and every consumer (TUI, headless log, store, summary, sweep, export,
plot, compare). Definitions and units: ``docs/design.md``, "Events".

Each record is a frozen, keyword-only dataclass whose attribute names are the wire keys.
All share the header ``t`` (seconds since the run started, the trainer's monotonic clock),
``step`` (optimizer steps taken so far, 0 before the first; None where it does not apply)
and ``epoch`` (0-based, the epoch being trained). Sequences are tuples. Unknown wire keys
are kept in ``extra`` and written back, so a record read from a newer minor revision of a
producer loses nothing on the way through.

``to_wire()`` gives the JSON object (``v`` and ``kind`` first; optional fields left out
while None); ``from_wire(obj)`` checks every field's type and raises only
:class:`~sgdtop.schema.wire.WireError`. The coercion is driven by the annotations, so a
field is declared once, here.

Standard library only (the TUI imports this and must never pull in torch).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal, Self, cast, get_args, get_origin

from sgdtop.schema.wire import (
    WireError,
    as_bool,
    as_dict,
    as_float,
    as_int,
    as_list,
    as_str,
)

SCHEMA_VERSION: Final[int] = 1

RunStatus = Literal["completed", "interrupted", "diverged", "failed"]
LogLevel = Literal["info", "warning", "error"]
LogSource = Literal["trainer", "stdout", "stderr"]

RUN_STATUSES: Final[tuple[str, ...]] = get_args(RunStatus)
LOG_LEVELS: Final[tuple[str, ...]] = get_args(LogLevel)
LOG_SOURCES: Final[tuple[str, ...]] = get_args(LogSource)

_HEADER: Final[frozenset[str]] = frozenset({"t", "step", "epoch"})
_RESERVED: Final[frozenset[str]] = frozenset({"v", "kind"})

Coercer = Callable[[object, str], Any]

#: Exact element types a list of that annotation may hold without a per-item check.
_FAST_TYPES: Final[dict[object, tuple[type, ...]]] = {
    float: (float, int), int: (int,), bool: (bool,), str: (str,)}


def _coercer(tp: Any) -> Coercer:
    """A function ``(value, field name) -> value`` checking/converting one wire value to
    the annotation ``tp`` (raises WireError)."""
    origin = get_origin(tp)
    if tp is float:
        return as_float
    if tp is int:
        return as_int
    if tp is bool:
        return as_bool
    if tp is str:
        return as_str
    if tp is object:
        return lambda x, name: x
    if origin is dict:
        return as_dict
    if origin is Literal:
        allowed = get_args(tp)

        def literal(x: object, name: str) -> object:
            if x not in allowed or not isinstance(x, str):
                raise WireError(f"'{name}' must be one of {', '.join(map(str, allowed))}, "
                                f"got {x!r:.40}")
            return x
        return literal
    if origin in (types.UnionType, typing.Union):
        args = [a for a in get_args(tp) if a is not type(None)]
        inner = _coercer(args[0]) if len(args) == 1 else None
        if inner is None:
            raise TypeError(f"unsupported union {tp}")

        def optional(x: object, name: str) -> object:
            return None if x is None else inner(x, name)
        return optional
    if origin is tuple:
        targs = get_args(tp)
        if len(targs) != 2 or targs[1] is not Ellipsis:
            raise TypeError(f"only tuple[X, ...] is supported, got {tp}")
        item = _coercer(targs[0])
        fast = _FAST_TYPES.get(targs[0])
        to_float = targs[0] is float

        def seq(x: object, name: str) -> tuple[object, ...]:
            values = as_list(x, name)
            if fast is not None and all(type(v) in fast for v in values):
                return tuple(map(float, cast("list[float]", values))) if to_float \
                    else tuple(values)
            return tuple(item(v, f"{name}[{i}]") for i, v in enumerate(values))
        return seq
    if isinstance(tp, type) and issubclass(tp, _Struct):
        struct = tp

        def nested(x: object, name: str) -> object:
            return struct.from_wire(as_dict(x, name))
        return nested
    raise TypeError(f"unsupported field type {tp!r}")


class _Struct:
    """Annotation-driven ``from_wire``/``to_wire`` for the dataclasses below."""

    __slots__ = ()
    _plan_cache: ClassVar[dict[type, _Plan]] = {}

    @classmethod
    def _plan(cls) -> _Plan:
        plan = _Struct._plan_cache.get(cls)
        if plan is None:
            plan = _Plan.of(cls)
            _Struct._plan_cache[cls] = plan
        return plan

    @classmethod
    def from_wire(cls, obj: Mapping[str, object]) -> Self:
        """Build from a decoded JSON object; unknown keys go to ``extra`` (records only).
        Raises :class:`WireError` for a missing required field or a value of the wrong
        type."""
        plan = cls._plan()
        kwargs: dict[str, object] = {}
        for name, coerce, required in plan.fields:
            if name in obj:
                kwargs[name] = coerce(obj[name], name)
            elif required:
                raise WireError(f"{getattr(cls, 'kind', cls.__name__)} lacks field '{name}'")
        if plan.has_extra and len(obj) > len(kwargs):  # keys beyond the fields (or v, kind)
            kwargs["extra"] = {k: v for k, v in obj.items() if k not in plan.known}
        return cls(**kwargs)

    def to_wire(self) -> dict[str, object]:
        """The JSON object (non-finite floats are tagged by the encoder)."""
        plan = self._plan()
        out: dict[str, object] = dict(plan.head)
        for name, _, required in plan.fields:
            value = getattr(self, name)
            if value is None and not required:
                continue
            out[name] = _plain(value) if isinstance(value, tuple | _Struct) else value
        if plan.has_extra:
            out.update(getattr(self, "extra", {}))
        return out


@dataclass(frozen=True, slots=True)
class _Plan:
    """What from_wire/to_wire need of a class, computed once."""

    fields: tuple[tuple[str, Coercer, bool], ...]  # (name, coercer, required)
    known: frozenset[str]
    has_extra: bool
    head: tuple[tuple[str, object], ...]  # ("v", 1), ("kind", kind) for records

    @staticmethod
    def of(cls: type) -> _Plan:
        hints = typing.get_type_hints(cls)
        all_fields = dataclasses.fields(cls)
        fields = tuple(
            (f.name, _coercer(hints[f.name]),
             f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
            for f in all_fields if f.name != "extra")
        kind = getattr(cls, "kind", None)
        head = (("v", SCHEMA_VERSION), ("kind", kind)) if kind else ()
        return _Plan(fields=fields, known=frozenset(n for n, _, _ in fields) | _RESERVED,
                     has_extra=any(f.name == "extra" for f in all_fields), head=head)


def _plain(x: object) -> object:
    if isinstance(x, _Struct):
        return x.to_wire()
    if isinstance(x, tuple):
        return [_plain(v) for v in x]
    return x


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordBase(_Struct):
    """The header every event carries (see the module docstring)."""

    kind: ClassVar[str] = ""
    t: float
    step: int | None = None
    epoch: int | None = None
    extra: dict[str, object] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStart(RecordBase):
    """The run began. ``profile``: the resolved settings; ``versions``: of what produced
    it; sizes in examples; ``lr`` η, ``momentum`` β, ``weight_decay`` (None: unknown, a
    Monitor without an optimizer); ``epochs``/``steps_per_epoch`` 0 when unknown.
    Optional: ``wall_time`` (Unix seconds at t = 0), ``task`` ("classification" |
    "regression"), ``model_class``, ``optimizer``, ``source`` ("trainer" | "monitor")."""

    kind: ClassVar[str] = "run_start"
    run_id: str
    profile: dict[str, object]
    model: str
    num_params: int
    device: str
    versions: dict[str, object]
    dataset: str | None
    train_size: int | None
    test_size: int | None
    probe_size: int
    lr: float | None
    batch_size: int | None
    momentum: float | None
    weight_decay: float | None
    k: int
    epochs: int
    steps_per_epoch: int
    wall_time: float | None = None
    task: str | None = None
    model_class: str | None = None
    optimizer: str | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Step(RecordBase):
    """Training progress (throttled). ``lr``: η in force; ``loss``: mean batch loss since
    the previous step event; throughput since then in examples/s and steps/s (NaN when
    unknown)."""

    kind: ClassVar[str] = "step"
    lr: float | None
    loss: float
    examples_per_s: float
    steps_per_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Eval(RecordBase):
    """Losses over the probe set (train, without the L2 term) and the test set; accuracies
    in [0, 1], NaN for regression."""

    kind: ClassVar[str] = "eval"
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Spectrum(RecordBase):
    """Top-k Hessian eigenvalues of the probe-set loss, signed, ordered by |λ| descending,
    with residuals ‖Hv−λv‖ and converged flags; ``spectral_norm`` ρ(H) = max|λ|;
    ``cond_k`` κ_k = |λ₁|/|λ_k|; ``eta_lambda1`` η·λ₁; ``stability_limit`` 2(1+β)/η;
    cost in ``hvps`` (vector products) and ``seconds``; ``warm``: started from the
    previous Ritz vectors. Optional: ``k``, ``which``, ``tol``, ``batch_norm``
    ("running" | "batch"); the solver's ``guard_band`` (pairs converged beyond k),
    ``separated`` (whether the band separated the top k), ``block_size`` (vectors per
    expansion) and ``block_passes`` (backward sweeps over the probe's graphs)."""

    kind: ClassVar[str] = "spectrum"
    eigenvalues: tuple[float, ...]
    residuals: tuple[float, ...]
    converged: tuple[bool, ...]
    spectral_norm: float
    cond_k: float
    lr: float
    momentum: float
    eta_lambda1: float
    stability_limit: float
    hvps: int
    seconds: float
    warm: bool
    k: int | None = None
    which: str | None = None
    tol: float | None = None
    batch_norm: str | None = None
    guard_band: int | None = None
    separated: bool | None = None
    block_size: int | None = None
    block_passes: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SpectrumProgress(RecordBase):
    """A spectrum measurement under way: HVPs done and seconds so far (throttled)."""

    kind: ClassVar[str] = "spectrum_progress"
    hvps: int
    seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class DenseSpectrum(RecordBase):
    """The exact full spectrum of a small model: ``n`` eigenvalues as a histogram (edges
    n_bins+1, counts n_bins); ``min_positive`` the smallest eigenvalue above ``floor`` =
    rel_floor·max|λ|; ``cond`` = lambda_max / min_positive. Optional ``seconds``."""

    kind: ClassVar[str] = "dense_spectrum"
    n: int
    hist_edges: tuple[float, ...]
    hist_counts: tuple[int, ...]
    lambda_max: float
    lambda_min: float
    min_positive: float
    cond: float
    floor: float
    n_negative: int
    seconds: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LossSlice(RecordBase):
    """The probe loss along the top eigenvectors (Fig. 7): ``distances`` tⱼ = j·step·η
    (parameter-space L2, ascending); per direction i its eigenvalue λᵢ, slope gᵢ = ∇L·vᵢ
    and the row ``losses[i]`` of L(θ + tⱼ·vᵢ); ``loss0`` L(θ); ``lr`` η."""

    kind: ClassVar[str] = "loss_slice"
    distances: tuple[float, ...]
    eigenvalues: tuple[float, ...]
    slopes: tuple[float, ...]
    losses: tuple[tuple[float, ...], ...]
    loss0: float
    lr: float
    seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class NeuronLayer(_Struct):
    """One ReLU site: units (dense features or conv channels), dead units, their %."""

    name: str
    units: int
    dead: int
    dead_pct: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Neurons(RecordBase):
    """Dead units: % of all units whose mean |activation| over the probe batch is below
    ``threshold``, overall and per layer."""

    kind: ClassVar[str] = "neurons"
    dead_pct: float
    layers: tuple[NeuronLayer, ...]
    threshold: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Log(RecordBase):
    """A line from the trainer: its own message, or a captured stdout/stderr line.
    Optional ``rank``: the process rank of a distributed run that wrote it."""

    kind: ClassVar[str] = "log"
    level: LogLevel
    message: str
    source: LogSource
    rank: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunEnd(RecordBase):
    """The run ended: ``status``, a one-line ``message``, total ``steps`` and ``seconds``.
    Optional: ``measurements`` (spectrum updates taken), ``measure_seconds``."""

    kind: ClassVar[str] = "run_end"
    status: RunStatus
    message: str
    steps: int
    seconds: float
    measurements: int | None = None
    measure_seconds: float | None = None


Record = (RunStart | Step | Eval | Spectrum | SpectrumProgress | DenseSpectrum | LossSlice
          | Neurons | Log | RunEnd)
"""Any event record."""

RECORD_TYPES: Final[tuple[type[RecordBase], ...]] = (
    RunStart, Step, Eval, Spectrum, SpectrumProgress, DenseSpectrum, LossSlice, Neurons,
    Log, RunEnd)
BY_KIND: Final[dict[str, type[RecordBase]]] = {cls.kind: cls for cls in RECORD_TYPES}
KINDS: Final[tuple[str, ...]] = tuple(BY_KIND)
