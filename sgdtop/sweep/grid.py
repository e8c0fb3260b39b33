"""The grid of a sweep: the axes it can vary, their command-line specs, and its cells.

A **cell** is one point of the Cartesian product of the axis values (``lr``,
``batch_size``, ``momentum``, ``seed``); see ``docs/design.md`` (sweeps).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from sgdtop.compare import format_value
from sgdtop.format import SETTING_SYMBOLS

#: The axes a sweep can vary, in grid order (the last varies fastest).
AXES: Final[tuple[str, ...]] = ("lr", "batch_size", "momentum", "seed")
#: The `sgdtop run` flag of each axis.
AXIS_FLAGS: Final[dict[str, str]] = {
    "lr": "--lr", "batch_size": "--batch-size", "momentum": "--momentum", "seed": "--seed",
}
#: Short symbols of the axes, for cell labels, tables and legends (the one spelling,
#: :data:`sgdtop.format.SETTING_SYMBOLS`).
AXIS_SYMBOLS: Final[dict[str, str]] = {k: SETTING_SYMBOLS[k] for k in AXES}
_NAME_TAGS: Final[dict[str, str]] = {"lr": "lr", "batch_size": "b", "momentum": "m",
                                     "seed": "s"}
_INT_AXES: Final[frozenset[str]] = frozenset({"batch_size", "seed"})


class SweepError(ValueError):
    """A sweep that cannot be planned, loaded or run; the message is one line."""


# ------------------------------------------------------------------------------ parsing
def _flag(axis: str) -> str:
    if axis not in AXES:
        raise SweepError(f"unknown sweep axis {axis!r}; axes: {', '.join(AXES)}")
    return "--seeds" if axis == "seed" else AXIS_FLAGS[axis]


def _number(text: str, axis: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SweepError(f"{_flag(axis)} {spec!r}: {text.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise SweepError(f"{_flag(axis)} {spec!r}: {text.strip()!r} is not a finite number")
    return value


def _check_value(axis: str, value: float, spec: str) -> float | int:
    flag = _flag(axis)
    if axis in _INT_AXES:
        if value != round(value):
            raise SweepError(f"{flag} {spec!r}: {value:g} is not an integer")
        value = round(value)
        if axis == "batch_size" and value < 1:
            raise SweepError(f"{flag} {spec!r}: batch sizes must be >= 1, got {value}")
        if axis == "seed" and value < 0:
            raise SweepError(f"{flag} {spec!r}: seeds must be >= 0, got {value}")
        return int(value)
    if axis == "lr" and value <= 0:
        raise SweepError(f"{flag} {spec!r}: learning rates must be > 0, got {value:g}")
    if axis == "momentum" and not 0 <= value < 1:
        raise SweepError(f"{flag} {spec!r}: momentum must be in [0, 1), got {value:g}")
    return float(value)


def parse_axis(spec: str, axis: str = "lr") -> list[float] | list[int]:
    """The values of one sweep axis from its command-line spec.

    - ``"LO:HI:N"``: N values log-spaced from LO to HI, both ends included (N=1: LO);
      LO and HI must be > 0. For the integer axes (``batch_size``) the values are rounded
      (``32:1024:6`` → 32, 64, …, 1024) and must stay distinct.
    - ``"A,B,C"``: exactly these values, in this order (a single ``"A"`` too).

    ``axis`` (one of :data:`AXES`) gives the type and the allowed range: ``lr`` > 0,
    ``batch_size`` a positive integer, ``momentum`` in [0, 1), ``seed`` an integer >= 0
    (lists only; ``--seeds N`` is :func:`seeds_axis`). Duplicates are refused. Raises
    :class:`SweepError` with a one-line message.
    """
    flag = _flag(axis)
    text = spec.strip()
    if not text:
        raise SweepError(f"{flag}: empty value; give LO:HI:N (log-spaced) or A,B,C")
    if ":" in text:
        parts = text.split(":")
        if axis == "seed":
            raise SweepError(f"{flag} {spec!r}: seeds take a count (--seeds N) or a list")
        if len(parts) != 3:
            raise SweepError(f"{flag} {spec!r}: a range is LO:HI:N (N log-spaced values, "
                             "ends included)")
        lo = _number(parts[0], axis, spec)
        hi = _number(parts[1], axis, spec)
        try:
            count = int(parts[2])
        except ValueError:
            raise SweepError(f"{flag} {spec!r}: the count {parts[2].strip()!r} is not an "
                             "integer") from None
        if count < 1:
            raise SweepError(f"{flag} {spec!r}: the count must be >= 1, got {count}")
        if lo <= 0 or hi <= 0:
            raise SweepError(f"{flag} {spec!r}: log-spaced ends must be > 0")
        raw = [lo] if count == 1 else [float(v) for v in np.geomspace(lo, hi, count)]
        if count > 1:
            raw[0], raw[-1] = lo, hi  # exact ends, not exp(log(x))
        if axis in _INT_AXES:
            raw = [float(round(v)) for v in raw]
    else:
        raw = [_number(p, axis, spec) for p in text.split(",")]
    values: list[Any] = [_check_value(axis, v, spec) for v in raw]
    dup = next((v for v, n in Counter(values).items() if n > 1), None)
    if dup is not None:
        raise SweepError(f"{flag} {spec!r}: the value {dup:g} appears more than once"
                         + (" after rounding" if ":" in text else ""))
    return values


def seeds_axis(n: int) -> list[int]:
    """Seeds ``0 .. n-1`` for ``--seeds N`` (N >= 1)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise SweepError(f"--seeds must be a positive integer, got {n!r}")
    return list(range(n))


@dataclass(slots=True)
class Cell:
    """One point of the grid: its ``settings`` (the swept axes' values), its file-safe
    ``name`` (``c003-lr0.01-b16``), and its runs: ``run_id`` the newest attempt (None
    before the first), ``previous`` the older ones, oldest first."""

    index: int
    name: str
    settings: dict[str, float | int]
    run_id: str | None = None
    previous: list[str] = field(default_factory=list)

    def label(self) -> str:
        """``η=0.01 S=16``: the settings for humans."""
        return " ".join(f"{AXIS_SYMBOLS[k]}={format_value(v)}" for k, v in self.settings.items())

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "name": self.name, "settings": dict(self.settings),
                "run_id": self.run_id, "previous": list(self.previous)}


def _cell_name(index: int, settings: Mapping[str, float | int]) -> str:
    parts = [f"c{index:03d}"]
    for key, value in settings.items():
        parts.append(f"{_NAME_TAGS[key]}{value:g}" if isinstance(value, float)
                     else f"{_NAME_TAGS[key]}{value}")
    return "-".join(parts)


def plan_cells(axes: Mapping[str, Sequence[float | int]]) -> list[Cell]:
    """The grid's cells: the Cartesian product of the given axes in :data:`AXES` order
    (``lr`` slowest, ``seed`` fastest). Axes not given are not swept (the profile's value)."""
    keys = [k for k in AXES if k in axes]
    unknown = set(axes) - set(AXES)
    if unknown:
        raise SweepError(f"unknown sweep axis {sorted(unknown)[0]!r}; axes: {', '.join(AXES)}")
    if not keys:
        raise SweepError("a sweep needs at least one axis: --lr, --batch-size, --momentum "
                         "or --seeds")
    for k in keys:
        if not axes[k]:
            raise SweepError(f"{_flag(k)} has no values")
    cells = []
    for i, combo in enumerate(itertools.product(*(axes[k] for k in keys))):
        settings = dict(zip(keys, combo, strict=True))
        cells.append(Cell(index=i, name=_cell_name(i, settings), settings=settings))
    return cells


