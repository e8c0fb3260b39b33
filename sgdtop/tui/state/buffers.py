"""Bounded series for the run view: the sparklines' window and the whole-run chart.

- :class:`Ring` keeps the most recent values of a scalar (the sparklines' window);
- :class:`Decimated` keeps the whole history at a bounded, uniform resolution (the
  eigenvalue chart, Fig. 2 of the paper): when full it drops every other point and from
  then on keeps every 2nd (4th, 8th, ...) new one, plus always the latest point.

Plain Python; see docs/design.md (the TUI).
"""

from __future__ import annotations

from collections import deque
from typing import Final, Generic, TypeVar

T = TypeVar("T")

#: Values kept per sparkline (the widest sparkline that shows them all: 240 columns).
SPARK_WINDOW: Final[int] = 240
#: Points kept per whole-run chart series before decimation.
CHART_POINTS: Final[int] = 512


class Ring:
    """The most recent ``capacity`` values of a scalar series, with the step of each."""

    __slots__ = ("steps", "values")

    def __init__(self, capacity: int = SPARK_WINDOW) -> None:
        self.values: deque[float] = deque(maxlen=capacity)
        self.steps: deque[int | None] = deque(maxlen=capacity)

    def append(self, value: float, step: int | None = None) -> None:
        """Add one value (any float, non-finite included)."""
        self.values.append(value)
        self.steps.append(step)

    @property
    def last(self) -> float | None:
        """The newest value, or None when empty."""
        return self.values[-1] if self.values else None

    @property
    def previous(self) -> float | None:
        """The value before the newest one, or None."""
        return self.values[-2] if len(self.values) > 1 else None

    def __len__(self) -> int:
        return len(self.values)

    def tail(self, n: int) -> tuple[float, ...]:
        """The last ``n`` values, oldest first."""
        if n <= 0:
            return ()
        if n >= len(self.values):
            return tuple(self.values)
        return tuple(self.values)[-n:]


class Decimated(Generic[T]):
    """A whole-history series at bounded resolution: at most ``capacity`` + 1 points.

    Point number n (0-based, in arrival order) is kept iff n is a multiple of
    :attr:`stride`; the stride doubles each time the kept points overflow ``capacity``.
    The newest point is always available (:meth:`points` appends it when it is not kept),
    so the right edge of a chart is always the latest measurement.
    """

    __slots__ = ("_count", "_last", "capacity", "stride", "xs", "ys")

    def __init__(self, capacity: int = CHART_POINTS) -> None:
        if capacity < 2:
            raise ValueError("capacity must be at least 2")
        self.capacity = capacity
        self.stride = 1
        self.xs: list[float] = []
        self.ys: list[T] = []
        self._count = 0
        self._last: tuple[float, T] | None = None

    def append(self, x: float, y: T) -> None:
        """Add the point (x, y)."""
        if self._count % self.stride == 0:
            self.xs.append(x)
            self.ys.append(y)
            if len(self.xs) > self.capacity:
                self.xs = self.xs[::2]
                self.ys = self.ys[::2]
                self.stride *= 2
        self._count += 1
        self._last = (x, y)

    def __len__(self) -> int:
        """Number of points :meth:`points` returns."""
        if self._last is None:
            return 0
        return len(self.xs) + (0 if (self._count - 1) % self.stride == 0 else 1)

    @property
    def count(self) -> int:
        """Points appended in total (kept or not)."""
        return self._count

    def points(self) -> tuple[tuple[float, ...], tuple[T, ...]]:
        """(xs, ys) of the kept points plus the newest one, oldest first."""
        if self._last is None:
            return (), ()
        if (self._count - 1) % self.stride == 0:
            return tuple(self.xs), tuple(self.ys)
        return (*self.xs, self._last[0]), (*self.ys, self._last[1])

