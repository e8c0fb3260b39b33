"""Stand-ins for the event records the run view keeps (until ``sgdtop.schema`` lands and
the state keeps the records themselves). Tolerant of odd values: a display never raises.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sgdtop.events import Event
from sgdtop.tui.state.views import as_float, is_finite


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What run_start says about the run (fields the screen shows)."""

    run_id: str
    model: str
    dataset: str
    num_params: int | None
    device: str
    lr: float
    batch_size: int | None
    momentum: float
    weight_decay: float
    k: int | None
    epochs: int | None
    steps_per_epoch: int | None
    task: str | None = None  # "classification" | "regression" (optional in run_start)

    @classmethod
    def from_event(cls, ev: Event) -> RunInfo:
        """Build from a run_start event (tolerant of odd types: it is only displayed)."""

        def opt_int(x: Any) -> int | None:
            return x if isinstance(x, int) and not isinstance(x, bool) else None

        return cls(
            run_id=str(ev.get("run_id", "?")),
            model=str(ev.get("model", "?")),
            dataset=str(ev.get("dataset", "?")),
            num_params=opt_int(ev.get("num_params")),
            device=str(ev.get("device", "?")),
            lr=as_float(ev.get("lr")),
            batch_size=opt_int(ev.get("batch_size")),
            momentum=as_float(ev.get("momentum")),
            weight_decay=as_float(ev.get("weight_decay")),
            k=opt_int(ev.get("k")),
            epochs=opt_int(ev.get("epochs")),
            steps_per_epoch=opt_int(ev.get("steps_per_epoch")),
            task=str(ev["task"]) if isinstance(ev.get("task"), str) else None,
        )


@dataclass(frozen=True, slots=True)
class Spectrum:
    """One spectrum measurement (see ``REQUIRED_FIELDS['spectrum']`` for the meanings)."""

    step: int | None
    epoch: int | None
    t: float
    eigenvalues: tuple[float, ...]
    residuals: tuple[float, ...]
    converged: tuple[bool, ...]
    spectral_norm: float
    cond_k: float
    lr: float
    momentum: float
    eta_lambda1: float
    stability_limit: float
    hvps: int | None
    seconds: float
    warm: bool

    @classmethod
    def from_event(cls, ev: Event) -> Spectrum:
        """Build from a spectrum event; lists of the wrong type become empty tuples."""

        def floats(x: Any) -> tuple[float, ...]:
            return tuple(as_float(v) for v in x) if isinstance(x, list | tuple) else ()

        conv = ev.get("converged")
        hvps = ev.get("hvps")
        return cls(
            step=ev.step,
            epoch=ev.epoch,
            t=ev.t,
            eigenvalues=floats(ev.get("eigenvalues")),
            residuals=floats(ev.get("residuals")),
            converged=tuple(bool(c) for c in conv) if isinstance(conv, list | tuple) else (),
            spectral_norm=as_float(ev.get("spectral_norm")),
            cond_k=as_float(ev.get("cond_k")),
            lr=as_float(ev.get("lr")),
            momentum=as_float(ev.get("momentum")),
            eta_lambda1=as_float(ev.get("eta_lambda1")),
            stability_limit=as_float(ev.get("stability_limit")),
            hvps=hvps if isinstance(hvps, int) and not isinstance(hvps, bool) else None,
            seconds=as_float(ev.get("seconds")),
            warm=bool(ev.get("warm", False)),
        )

    @property
    def stability_ratio(self) -> float:
        """λ₁ / (2(1+β)/η) = η·λ₁ / 2(1+β): 1.0 is the edge of stability of GD with momentum."""
        denom = self.eta_limit
        if not is_finite(denom) or denom == 0.0:
            return math.nan
        return self.eta_lambda1 / denom  # NaN and ±inf carry through

    @property
    def eta_limit(self) -> float:
        """2(1+β): the threshold η·λ₁ is compared against."""
        return 2.0 * (1.0 + self.momentum)



@dataclass(frozen=True, slots=True)
class Progress:
    """A spectrum measurement under way: HVPs done and seconds so far."""

    hvps: int | None
    seconds: float


@dataclass(frozen=True, slots=True)
class Layer:
    """Dead units in one layer: name, units, dead units, dead %."""

    name: str
    units: int | None
    dead: int | None
    dead_pct: float


@dataclass(frozen=True, slots=True)
class LossSlice:
    """One ``loss_slice`` event: the probe loss L(θ + t·vᵢ) along the top eigenvectors vᵢ
    at distances t (parameter units), with λᵢ, the slopes gᵢ = ∇L·vᵢ and L(θ)."""

    step: int | None
    distances: tuple[float, ...]
    eigenvalues: tuple[float, ...]
    slopes: tuple[float, ...]
    losses: tuple[tuple[float, ...], ...]
    loss0: float
    lr: float

    @classmethod
    def from_event(cls, ev: Event) -> LossSlice | None:
        """The slice of ``ev``, or None when its fields are malformed (a display never
        raises on odd values)."""
        ts, rows = ev.get("distances"), ev.get("losses")
        if not isinstance(ts, list) or not isinstance(rows, list):
            return None
        distances = tuple(as_float(t) for t in ts)
        losses = tuple(tuple(as_float(v) for v in row) for row in rows
                       if isinstance(row, list) and len(row) == len(distances))
        m = len(losses)
        lams, slopes = ev.get("eigenvalues"), ev.get("slopes")
        return cls(
            step=ev.step, distances=distances, losses=losses,
            eigenvalues=tuple(as_float(x) for x in (lams if isinstance(lams, list) else []))[:m],
            slopes=tuple(as_float(x) for x in (slopes if isinstance(slopes, list) else []))[:m],
            loss0=as_float(ev.get("loss0")), lr=as_float(ev.get("lr")))

