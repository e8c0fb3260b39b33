"""The event schema and its JSON Lines codec: the one contract between the trainer and
every sink (TUI, headless log, replay, watch, compare, plot, export).

Standard library only: the TUI imports this module and must never pull in torch.

Wire format: one JSON object per line, UTF-8, ``\\n``-terminated. Every object carries

- ``"v"``: the schema version (:data:`SCHEMA_VERSION`);
- ``"kind"``: one of :data:`KINDS`;
- ``"t"``: seconds since the run started (float, wall clock of the trainer);
- ``"step"`` / ``"epoch"`` where they apply: the number of optimizer steps taken so far
  (int, 0 before the first step) and the epoch (int, 0-based, the epoch being trained).

All other keys are the kind's fields (see :data:`REQUIRED_FIELDS`; extra fields are allowed
and kept). Non-finite floats are not valid JSON, so they are written explicitly as
``{"$float": "nan"}``, ``{"$float": "inf"}`` or ``{"$float": "-inf"}`` and decoded back to
``float`` — wherever they appear, also inside lists.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

SCHEMA_VERSION: Final[int] = 1

#: The kinds of event and the fields each must carry (beyond v, kind, t).
REQUIRED_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    # run id, resolved profile (dict), model name, parameter count, device, versions (dict),
    # dataset name, train/test/probe sizes (examples), and the optimizer settings.
    # Optional: wall_time (Unix seconds at t=0), task ("classification" | "regression").
    "run_start": (
        "run_id", "profile", "model", "num_params", "device", "versions", "dataset",
        "train_size", "test_size", "probe_size", "lr", "batch_size", "momentum",
        "weight_decay", "k", "epochs", "steps_per_epoch",
    ),
    # lr: learning rate in force; loss: mean loss of the last batch;
    # examples_per_s / steps_per_s: training throughput since the previous step event.
    "step": ("lr", "loss", "examples_per_s", "steps_per_s"),
    # train_loss/test_loss: mean loss over the set (train_loss over the probe set,
    # without the L2 term); *_acc: accuracy in [0, 1] (nan for regression tasks).
    "eval": ("train_loss", "train_acc", "test_loss", "test_acc"),
    # Top-k Hessian eigenvalues of the probe-set loss, signed, ordered by |λ| descending;
    # residuals ‖Hv−λv‖; converged flags; spectral_norm ρ(H)=max|λ|; cond_k=|λ₁|/|λ_k|;
    # eta_lambda1 = η·λ₁ (λ₁ the signed top eigenvalue); stability_limit = 2(1+β)/η, the
    # largest curvature gradient descent with momentum β is stable on; hvps and seconds:
    # the measurement's cost; warm: whether it started from the previous Ritz vectors.
    # Optional: batch_norm, "running" (eval mode) or "batch" (probe micro-batch statistics).
    "spectrum": (
        "eigenvalues", "residuals", "converged", "spectral_norm", "cond_k", "lr",
        "momentum", "eta_lambda1", "stability_limit", "hvps", "seconds", "warm",
    ),
    # Progress of a spectrum measurement under way (throttled): HVPs done, seconds so far.
    "spectrum_progress": ("hvps", "seconds"),
    # Exact full spectrum of a small model: n eigenvalues; histogram edges (n_bins+1) and
    # counts (n_bins); lambda_max, lambda_min; min_positive = smallest eigenvalue above
    # floor = rel_floor·|λ|max; cond = lambda_max / min_positive; n_negative.
    "dense_spectrum": (
        "n", "hist_edges", "hist_counts", "lambda_max", "lambda_min", "min_positive",
        "cond", "floor", "n_negative",
    ),
    # The probe-set loss along the top Hessian eigenvectors (paper Fig. 7): distances t
    # (P, parameter-space L2, ascending; tⱼ = j·step·η); eigenvalues λᵢ and slopes
    # gᵢ = ∇L·vᵢ of the m directions; losses (m rows of P values) L(θ + tⱼ·vᵢ); loss0 L(θ);
    # lr η the distances were scaled by; seconds spent.
    "loss_slice": ("distances", "eigenvalues", "slopes", "losses", "loss0", "lr", "seconds"),
    # dead_pct: % of units (all layers) with mean |activation| < threshold over the probe
    # batch; layers: list of {"name", "units", "dead", "dead_pct"}.
    "neurons": ("dead_pct", "layers", "threshold"),
    # level: "info" | "warning" | "error"; source: "trainer" | "stdout" | "stderr".
    "log": ("level", "message", "source"),
    # status: one of RUN_STATUSES; message: one line; steps, seconds: totals.
    # Optional: measurements (spectrum updates taken), measure_seconds (time in them).
    "run_end": ("status", "message", "steps", "seconds"),
}

KINDS: Final[tuple[str, ...]] = tuple(REQUIRED_FIELDS)
RUN_STATUSES: Final[tuple[str, ...]] = ("completed", "interrupted", "diverged", "failed")
LOG_LEVELS: Final[tuple[str, ...]] = ("info", "warning", "error")

_RESERVED: Final[frozenset[str]] = frozenset({"v", "kind", "t", "step", "epoch"})
_FLOAT_TAG: Final[str] = "$float"


class EventError(ValueError):
    """An event line that is not valid under the schema (bad JSON, missing field, ...)."""


class SchemaVersionError(EventError):
    """An event written by an unknown (newer) schema version."""


@dataclass(frozen=True, slots=True)
class Event:
    """One event. ``data`` holds the kind's fields; ``step``/``epoch`` may be None."""

    kind: str
    t: float
    data: Mapping[str, Any] = field(default_factory=dict)
    step: int | None = None
    epoch: int | None = None

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def to_dict(self) -> dict[str, Any]:
        """The wire object (before non-finite float encoding)."""
        out: dict[str, Any] = {"v": SCHEMA_VERSION, "kind": self.kind, "t": self.t}
        if self.step is not None:
            out["step"] = self.step
        if self.epoch is not None:
            out["epoch"] = self.epoch
        out.update(self.data)
        return out


def make_event(
    kind: str, t: float, *, step: int | None = None, epoch: int | None = None, **data: Any
) -> Event:
    """Build and validate an event of ``kind`` (raises :class:`EventError`)."""
    ev = Event(kind=kind, t=float(t), data=data, step=step, epoch=epoch)
    validate(ev)
    return ev


def validate(ev: Event) -> None:
    """Raise :class:`EventError` unless ``ev`` has a known kind and all its fields."""
    if ev.kind not in REQUIRED_FIELDS:
        raise EventError(f"unknown event kind {ev.kind!r} (known: {', '.join(KINDS)})")
    missing = [f for f in REQUIRED_FIELDS[ev.kind] if f not in ev.data]
    if missing:
        raise EventError(f"{ev.kind} event lacks field(s): {', '.join(missing)}")
    clash = _RESERVED.intersection(ev.data)
    if clash:
        raise EventError(f"{ev.kind} event uses reserved key(s): {', '.join(sorted(clash))}")


def _encode_value(x: Any) -> Any:
    if isinstance(x, float):
        if math.isnan(x):
            return {_FLOAT_TAG: "nan"}
        if math.isinf(x):
            return {_FLOAT_TAG: "inf" if x > 0 else "-inf"}
        return x
    if isinstance(x, Mapping):
        return {str(k): _encode_value(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_encode_value(v) for v in x]
    return x


def _decode_hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and _FLOAT_TAG in obj:
        tag = obj[_FLOAT_TAG]
        if tag == "nan":
            return math.nan
        if tag == "inf":
            return math.inf
        if tag == "-inf":
            return -math.inf
        raise EventError(f"bad non-finite float tag {tag!r}")
    return obj


def encode(ev: Event) -> str:
    """One line of JSON, newline-terminated, with non-finite floats tagged."""
    return json.dumps(_encode_value(ev.to_dict()), allow_nan=False, ensure_ascii=False) + "\n"


def decode(line: str | bytes) -> Event:
    """Parse one line into an :class:`Event`.

    Raises :class:`SchemaVersionError` for an unknown version, :class:`EventError` for
    anything else that is not a valid event.
    """
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EventError(f"not UTF-8: {exc}") from None
    try:
        obj = json.loads(line, object_hook=_decode_hook, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise EventError(f"not JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(obj, dict):
        raise EventError("not a JSON object")
    v = obj.get("v")
    if v != SCHEMA_VERSION:
        if isinstance(v, int) and v > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"event schema version {v} is newer than this sgdtop reads "
                f"({SCHEMA_VERSION}); upgrade sgdtop"
            )
        raise EventError(f"unknown event schema version {v!r} (expected {SCHEMA_VERSION})")
    kind = obj.pop("kind", None)
    t = obj.pop("t", None)
    step = obj.pop("step", None)
    epoch = obj.pop("epoch", None)
    obj.pop("v")
    if not isinstance(t, int | float):
        raise EventError("event lacks a numeric 't'")
    if step is not None and not isinstance(step, int):
        raise EventError("'step' must be an integer")
    if epoch is not None and not isinstance(epoch, int):
        raise EventError("'epoch' must be an integer")
    ev = Event(kind=str(kind), t=float(t), data=obj, step=step, epoch=epoch)
    validate(ev)
    return ev


def _reject_constant(name: str) -> Any:
    raise EventError(f"bare {name} is not JSON (non-finite floats must be tagged)")


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line that could not be decoded: 1-based line number and the reason."""

    lineno: int
    reason: str


@dataclass(slots=True)
class ReadResult:
    """Events read from a file, the lines skipped, and whether the last line was cut."""

    events: list[Event]
    bad_lines: list[BadLine]
    truncated_tail: bool


def iter_lines(lines: Iterable[str]) -> Iterator[tuple[int, Event | BadLine]]:
    """Decode numbered lines, yielding an Event or a BadLine for each non-empty line.

    A :class:`SchemaVersionError` is raised, not skipped: a newer run cannot be read.
    """
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield lineno, decode(line)
        except SchemaVersionError:
            raise
        except EventError as exc:
            yield lineno, BadLine(lineno, str(exc))


def read_events(path: str | Path) -> ReadResult:
    """Read a whole events.jsonl. A last line without its newline is a write cut short
    (e.g. the trainer was killed): it is skipped and reported as ``truncated_tail``,
    never as an error. Other bad lines are skipped and listed with their line numbers.
    """
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    truncated = bool(text) and not text.endswith("\n")
    lines = text.split("\n")
    if truncated:
        lines = lines[:-1]
    events: list[Event] = []
    bad: list[BadLine] = []
    for _, item in iter_lines(lines):
        if isinstance(item, Event):
            events.append(item)
        else:
            bad.append(item)
    return ReadResult(events=events, bad_lines=bad, truncated_tail=truncated)
