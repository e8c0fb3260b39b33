"""Stand-in for ``sgdtop.schema``'s record classes until the typed schema lands on main:
each name builds an :class:`sgdtop.events.Event` from the same keyword arguments the
record class takes (``t``, ``step``, ``epoch`` and the kind's fields). Only the recorder
imports this module; switching to the typed records is this one file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sgdtop.events import Event as Record
from sgdtop.events import encode, make_event

__all__ = ["DenseSpectrum", "Eval", "Log", "LossSlice", "NeuronLayer", "Neurons", "Record",
           "RunEnd", "RunStart", "Spectrum", "SpectrumProgress", "Step", "encode"]


#: Optional fields left off the wire when None (the typed records default them to None).
_OPTIONAL = frozenset({"wall_time", "task", "model_class", "optimizer", "source", "k",
                       "which", "tol", "batch_norm", "measurements", "measure_seconds",
                       "rank", "seconds"})


def _kind(kind: str) -> Callable[..., Record]:
    def build(*, t: float, step: int | None = None, epoch: int | None = None,
              **fields: Any) -> Record:
        return make_event(kind, t, step=step, epoch=epoch,
                          **{k: v for k, v in fields.items()
                             if v is not None or k not in _OPTIONAL})
    build.__name__ = kind
    return build


def NeuronLayer(*, name: str, units: int, dead: int, dead_pct: float) -> dict[str, Any]:
    """One layer of a ``neurons`` record (a dict on the old wire)."""
    return {"name": name, "units": units, "dead": dead, "dead_pct": dead_pct}


RunStart = _kind("run_start")
Step = _kind("step")
Eval = _kind("eval")
Spectrum = _kind("spectrum")
SpectrumProgress = _kind("spectrum_progress")
DenseSpectrum = _kind("dense_spectrum")
LossSlice = _kind("loss_slice")
Neurons = _kind("neurons")
Log = _kind("log")
RunEnd = _kind("run_end")
