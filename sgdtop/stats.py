"""Per-run statistics and time series, computed from a list of records.

The headless core behind ``sgdtop compare``, ``plot`` and ``export``: everything here works
on plain lists of :mod:`sgdtop.schema` records (live, replayed or read from a run directory)
and imports neither torch, Textual nor matplotlib.

Definitions (``docs/design.md``, "Statistics"; every quantity is dimensionless unless a
unit is given):

- **ρ(H)** (``spectral_norm``): max |λ| of the probe-set loss Hessian, one value per
  ``spectrum`` event.
- **top-10 mean**: the mean of |λ| over the 10 eigenvalues of largest |λ| of one
  ``spectrum`` event (fewer if fewer were computed); NaN when any of them is non-finite.
- **time average over training** (``mean_*``): the mean over the run's ``spectrum``
  events of a per-event quantity, non-finite values left out. With ``weighting="events"``
  (the default, the paper's Fig. 3 quantity: measurements are taken on a regular schedule)
  every measurement counts once; with ``weighting="steps"`` the measurements are weighted
  by the optimizer steps they span (trapezoidal rule), which is fairer when the schedule
  is denser early in training.
- **κ_k** (``cond_k``): |λ₁| / |λ_k| over the computed top k.
- **dead %**: share of units with mean |activation| below the threshold, in percent.
- **axes**: ``"step"`` = optimizer steps taken; ``"epoch"`` = fractional epochs trained,
  ``step / steps_per_epoch`` (from ``run_start``; the event's integer epoch when unknown);
  ``"time"`` = seconds since the run started (the event's ``t``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np

from sgdtop.format import number_or_none
from sgdtop.schema import (
    RECORD_TYPES,
    DenseSpectrum,
    Record,
    RunEnd,
    RunStart,
    Spectrum,
)

Axis = Literal["step", "epoch", "time"]
Weighting = Literal["events", "steps"]

AXES: Final[tuple[str, ...]] = ("step", "epoch", "time")

#: Human labels (with units) of the axes, for tables and plots.
AXIS_LABELS: Final[dict[str, str]] = {
    "step": "optimizer step",
    "epoch": "epoch",
    "time": "time since start (s)",
}

#: How many of the top eigenvalues the "top-10 mean" averages (the paper's Fig. 3).
TOP_MEAN_COUNT: Final[int] = 10

#: Status shown for a run whose events hold no ``run_end`` (still running, or the trainer
#: died before writing it; the store can tell which).
STATUS_UNFINISHED: Final[str] = "unfinished"

#: Derived (computed) series of ``spectrum`` events, besides its numeric fields:
#: ``top10_mean`` and ``lambda_NN`` (the signed eigenvalue of rank NN, 1 = largest |λ|).
_LAMBDA_RE: Final[re.Pattern[str]] = re.compile(r"^lambda_(\d+)$")
_DERIVED_SPECTRUM: Final[frozenset[str]] = frozenset({"top10_mean"})
#: The header every record has (not a measured field).
_HEADER: Final[frozenset[str]] = frozenset({"t", "step", "epoch", "extra"})


@dataclass(frozen=True, slots=True)
class RunEvents:
    """The events of one run, with its id, an optional display label and where it was read.

    ``run_id`` names the run (the run directory's name); ``label`` overrides it in tables,
    legends and titles; ``path`` is the run directory or events file it came from, if any.
    """

    run_id: str
    events: list[Record]
    path: Path | None = None
    label: str | None = None

    @property
    def name(self) -> str:
        """The label to show: ``label`` if set, else ``run_id``."""
        return self.label or self.run_id

    @classmethod
    def from_events(
        cls, events: Sequence[Record], *, label: str | None = None, path: Path | None = None
    ) -> RunEvents:
        """Wrap ``events``, taking the run id from its ``run_start`` event.

        The run id falls back to the name of ``path`` (its parent's when it is a file) and
        then to ``"run"``.
        """
        start = run_start(events)
        if start is not None:
            run_id = start.run_id
        elif path is not None:
            run_id = (path.parent if path.suffix else path).name or "run"
        else:
            run_id = "run"
        return cls(run_id=run_id, events=list(events), path=path, label=label)


@dataclass(frozen=True, slots=True)
class RunStats:
    """The numbers that describe one run, for tables (``sgdtop compare``) and reports.

    Settings come from ``run_start`` (None when it is missing). A number is None when the
    run has no such measurement at all, NaN when it has some but none usable. ``final_*``
    is the value in the last event of that kind (which may itself be NaN/inf, e.g. in a
    diverged run); ``mean_*`` are time averages over training (see the module docstring),
    non-finite values left out; ``max_spectral_norm`` the largest finite ρ(H).
    """

    run_id: str
    label: str
    model: str | None
    dataset: str | None
    lr: float | None  #: learning rate η at the start
    batch_size: int | None  #: batch size S, examples
    momentum: float | None  #: momentum β
    weight_decay: float | None  #: L2 coefficient
    num_params: int | None  #: trainable parameters
    k: int | None  #: eigenvalues requested per spectrum measurement
    status: str  #: run_end status, or :data:`STATUS_UNFINISHED`
    steps: int  #: optimizer steps taken
    epochs: float  #: epochs trained (fractional when steps_per_epoch is known)
    seconds: float  #: wall-clock duration, s
    n_spectra: int  #: spectrum measurements
    n_nonfinite_spectra: int  #: spectrum measurements whose ρ(H) is NaN or inf
    final_spectral_norm: float | None  #: last ρ(H)
    mean_spectral_norm: float | None  #: ρ(H) averaged over training
    max_spectral_norm: float | None  #: largest finite ρ(H) seen
    final_top10_mean: float | None  #: last top-10 mean |λ|
    mean_top10_mean: float | None  #: top-10 mean |λ| averaged over training (Fig. 3)
    final_cond_k: float | None  #: last κ_k = |λ₁|/|λ_k|
    final_eta_lambda1: float | None  #: last η·λ₁
    final_train_loss: float | None  #: last probe-set training loss (eval)
    final_test_loss: float | None  #: last test loss
    final_test_acc: float | None  #: last test accuracy in [0, 1] (NaN for regression)
    final_dead_pct: float | None  #: last dead-neuron share, %
    final_dense_cond: float | None  #: last dense κ = λmax/λmin⁺

    def settings(self) -> dict[str, Any]:
        """The run's settings: model, dataset, η, S, β, weight decay."""
        return {
            "model": self.model,
            "dataset": self.dataset,
            "lr": self.lr,
            "batch_size": self.batch_size,
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
        }


def run_start(events: Sequence[Record]) -> RunStart | None:
    """The first ``run_start`` record, or None."""
    return next((ev for ev in events if isinstance(ev, RunStart)), None)


def run_end(events: Sequence[Record]) -> RunEnd | None:
    """The last ``run_end`` record, or None."""
    return next((ev for ev in reversed(events) if isinstance(ev, RunEnd)), None)


def _as_float(x: object) -> float:
    """``x`` as a float; NaN for None, bools and other non-numbers (a field looked up
    by name may be any of them)."""
    value = number_or_none(x)
    return math.nan if value is None else value


def top_mean_abs(eigenvalues: Sequence[float], count: int = TOP_MEAN_COUNT) -> float:
    """Mean of |λ| over the ``count`` eigenvalues of largest |λ| (all if fewer).

    NaN when the list is empty or any eigenvalue is non-finite (the ranking is then
    meaningless).
    """
    values = np.array(eigenvalues, dtype=float)
    if values.size == 0 or not np.all(np.isfinite(values)):
        return math.nan
    mags = np.sort(np.abs(values))[::-1][:count]
    return float(mags.mean())


def steps_per_epoch(events: Sequence[Record]) -> int | None:
    """Optimizer steps per epoch from ``run_start``, or None when unknown or not positive."""
    start = run_start(events)
    if start is None or start.steps_per_epoch <= 0:
        return None
    return start.steps_per_epoch


def axis_value(ev: Record, axis: Axis, spe: int | None) -> float | None:
    """Where ``ev`` lies on ``axis`` (see the module docstring), or None if it has no
    position there (e.g. no step)."""
    if axis == "time":
        return ev.t
    if axis == "step":
        return None if ev.step is None else float(ev.step)
    if axis == "epoch":
        if spe is not None and ev.step is not None:
            return ev.step / spe
        return None if ev.epoch is None else float(ev.epoch)
    raise ValueError(f"unknown axis {axis!r} (known: {', '.join(AXES)})")


def _infer_kind(field_name: str) -> str:
    if field_name in _DERIVED_SPECTRUM or _LAMBDA_RE.match(field_name):
        return "spectrum"
    kinds = [cls.kind for cls in RECORD_TYPES
             if field_name in {f.name for f in fields(cls)} - _HEADER]
    if len(kinds) == 1:
        return kinds[0]
    if not kinds:
        raise ValueError(
            f"no event kind has a field {field_name!r}; pass kind= for an extra field"
        )
    raise ValueError(f"field {field_name!r} is in several kinds ({', '.join(kinds)}): pass kind=")


def field_value(ev: Record, field_name: str) -> float:
    """The numeric value of ``field_name`` in ``ev`` (NaN when missing or not a number).

    Besides the event's own fields, ``spectrum`` events have the derived fields
    ``top10_mean`` (see :func:`top_mean_abs`) and ``lambda_NN`` (the signed eigenvalue of
    rank NN, 1-based by |λ|; NaN when fewer were computed).
    """
    if isinstance(ev, Spectrum) and not hasattr(ev, field_name):
        if field_name == "top10_mean":
            return top_mean_abs(ev.eigenvalues)
        m = _LAMBDA_RE.match(field_name)
        if m:
            rank = int(m.group(1))
            eigs = ev.eigenvalues
            return eigs[rank - 1] if 1 <= rank <= len(eigs) else math.nan
    if field_name in _HEADER:
        return math.nan
    return _as_float(getattr(ev, field_name, ev.extra.get(field_name)))


def series(
    events: Sequence[Record],
    field_name: str,
    kind: str | None = None,
    *,
    axis: Axis = "step",
) -> tuple[np.ndarray, np.ndarray]:
    """The time series of a numeric field: ``(x, y)`` float arrays of equal length.

    ``x`` is the position of each event of ``kind`` on ``axis`` (events with no position
    there are left out), ``y`` the field's value (NaN/inf kept: a diverged measurement is
    data). ``kind`` may be omitted when only one kind has the field. See
    :func:`field_value` for the derived spectrum fields. Events keep their file order.
    """
    if axis not in AXES:
        raise ValueError(f"unknown axis {axis!r} (known: {', '.join(AXES)})")
    kind = kind or _infer_kind(field_name)
    spe = steps_per_epoch(events) if axis == "epoch" else None
    xs: list[float] = []
    ys: list[float] = []
    for ev in events:
        if ev.kind != kind:
            continue
        x = axis_value(ev, axis, spe)
        if x is None:
            continue
        xs.append(x)
        ys.append(field_value(ev, field_name))
    return np.array(xs, dtype=float), np.array(ys, dtype=float)


def eigenvalue_matrix(
    events: Sequence[Record], *, axis: Axis = "step"
) -> tuple[np.ndarray, np.ndarray]:
    """All top-k eigenvalues through training: ``x`` (n,) and ``lam`` (n, k_max), signed,
    column j = rank j+1 by |λ|; NaN where a measurement computed fewer than k_max."""
    spe = steps_per_epoch(events) if axis == "epoch" else None
    xs: list[float] = []
    rows: list[list[float]] = []
    for ev in events:
        if not isinstance(ev, Spectrum):
            continue
        x = axis_value(ev, axis, spe)
        if x is None:
            continue
        xs.append(x)
        rows.append(list(ev.eigenvalues))
    k_max = max((len(r) for r in rows), default=0)
    lam = np.full((len(rows), k_max), np.nan)
    for i, r in enumerate(rows):
        lam[i, : len(r)] = r
    return np.array(xs, dtype=float), lam


def time_average(x: np.ndarray, y: np.ndarray, weighting: Weighting = "events") -> float:
    """Average of ``y`` over training, non-finite values (and their x) left out.

    ``"events"``: the plain mean of the measurements. ``"steps"``: the trapezoidal mean
    over ``x`` (∫y dx / span); the plain mean when the finite points span no interval.
    NaN when no value is finite.
    """
    ok = np.isfinite(y) & np.isfinite(x)
    if not ok.any():
        return math.nan
    xf, yf = x[ok], y[ok]
    if weighting == "events":
        return float(yf.mean())
    if weighting != "steps":
        raise ValueError(f"unknown weighting {weighting!r} (known: events, steps)")
    order = np.argsort(xf, kind="stable")
    xf, yf = xf[order], yf[order]
    span = float(xf[-1] - xf[0])
    if span <= 0:
        return float(yf.mean())
    area = float(np.sum((yf[1:] + yf[:-1]) * np.diff(xf)) / 2.0)
    return area / span


def _last(events: Sequence[Record], kind: str, field_name: str) -> float | None:
    """``field_name`` of the last event of ``kind``; None when there is no such event."""
    ev = next((e for e in reversed(events) if e.kind == kind), None)
    return None if ev is None else field_value(ev, field_name)


def summarize(run: RunEvents, *, weighting: Weighting = "events") -> RunStats:
    """The :class:`RunStats` of one run (see the module docstring for the definitions)."""
    events = run.events
    start = run_start(events)
    end = run_end(events)
    spe = steps_per_epoch(events)

    steps_seen = [ev.step for ev in events if ev.step is not None]
    steps = end.steps if end is not None else max(steps_seen, default=0)
    if spe is not None:
        epochs = steps / spe
    else:
        epochs_seen = [ev.epoch for ev in events if ev.epoch is not None]
        epochs = float(max(epochs_seen) + 1) if epochs_seen else 0.0
    seconds = end.seconds if end is not None else max((ev.t for ev in events), default=0.0)

    x_rho, rho = series(events, "spectral_norm", "spectrum", axis="step")
    x_top, top = series(events, "top10_mean", "spectrum", axis="step")
    finite_rho = rho[np.isfinite(rho)]

    return RunStats(
        run_id=run.run_id,
        label=run.name,
        model=start.model if start else None,
        dataset=start.dataset if start else None,
        lr=start.lr if start else None,
        batch_size=start.batch_size if start else None,
        momentum=start.momentum if start else None,
        weight_decay=start.weight_decay if start else None,
        num_params=start.num_params if start else None,
        k=start.k if start else None,
        status=end.status if end is not None else STATUS_UNFINISHED,
        steps=steps,
        epochs=float(epochs),
        seconds=seconds,
        n_spectra=sum(1 for ev in events if ev.kind == "spectrum"),
        n_nonfinite_spectra=int(np.count_nonzero(~np.isfinite(rho))),
        final_spectral_norm=_last(events, "spectrum", "spectral_norm"),
        mean_spectral_norm=time_average(x_rho, rho, weighting) if rho.size else None,
        max_spectral_norm=(
            float(finite_rho.max()) if finite_rho.size else math.nan if rho.size else None
        ),
        final_top10_mean=_last(events, "spectrum", "top10_mean"),
        mean_top10_mean=time_average(x_top, top, weighting) if top.size else None,
        final_cond_k=_last(events, "spectrum", "cond_k"),
        final_eta_lambda1=_last(events, "spectrum", "eta_lambda1"),
        final_train_loss=_last(events, "eval", "train_loss"),
        final_test_loss=_last(events, "eval", "test_loss"),
        final_test_acc=_last(events, "eval", "test_acc"),
        final_dead_pct=_last(events, "neurons", "dead_pct"),
        final_dense_cond=_last(events, "dense_spectrum", "cond"),
    )


@dataclass(frozen=True, slots=True)
class DenseHistogram:
    """The last dense spectrum of a run: bin ``edges`` (n_bins+1) and ``counts`` (n_bins)
    of the n exact Hessian eigenvalues, with its summary numbers (see the schema)."""

    x: float | None  #: where it was measured on the axis asked for
    edges: np.ndarray
    counts: np.ndarray
    n: int
    lambda_max: float
    lambda_min: float
    min_positive: float
    cond: float
    n_negative: int


def last_dense_spectrum(events: Sequence[Record], *,
                        axis: Axis = "epoch") -> DenseHistogram | None:
    """The run's last ``dense_spectrum`` record as a :class:`DenseHistogram`, or None."""
    ev = next((e for e in reversed(events) if isinstance(e, DenseSpectrum)), None)
    if ev is None:
        return None
    return DenseHistogram(
        x=axis_value(ev, axis, steps_per_epoch(events)),
        edges=np.array(ev.hist_edges, dtype=float),
        counts=np.array(ev.hist_counts, dtype=float),
        n=ev.n,
        lambda_max=ev.lambda_max,
        lambda_min=ev.lambda_min,
        min_positive=ev.min_positive,
        cond=ev.cond,
        n_negative=ev.n_negative,
    )
