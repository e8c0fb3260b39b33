"""The braille canvas (2×4 dots per cell, one color per cell) and the plotting helpers
the charts share: thinning, the linear/log transform, value ranges, traces and axes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Final, TypeVar

from rich.text import Text

from sgdtop import format as fmt
from sgdtop.tui.draw.palette import DIM

T = TypeVar("T")

#: Braille dot bits by (column in cell, row in cell).
_DOTS: Final[tuple[tuple[int, ...], tuple[int, ...]]] = (
    (0x01, 0x02, 0x04, 0x40),
    (0x08, 0x10, 0x20, 0x80),
)


class BrailleCanvas:
    """A ``width``×``height`` cell canvas of 2×4 braille dots; each cell takes the color
    of the last dot drawn in it."""

    __slots__ = ("_palette", "bits", "colors", "height", "width")

    def __init__(self, width: int, height: int) -> None:
        self.width = max(0, width)
        self.height = max(0, height)
        self.bits = [bytearray(self.width) for _ in range(self.height)]
        self.colors = [[-1] * self.width for _ in range(self.height)]
        self._palette: list[str] = []

    @property
    def dot_width(self) -> int:
        """Dots across."""
        return self.width * 2

    @property
    def dot_height(self) -> int:
        """Dots down."""
        return self.height * 4

    def color_index(self, style: str) -> int:
        """Register a style; returns its index for :meth:`dot`/:meth:`line`."""
        try:
            return self._palette.index(style)
        except ValueError:
            self._palette.append(style)
            return len(self._palette) - 1

    def dot(self, x: int, y: int, color: int) -> None:
        """Set dot (x, y), (0, 0) top left; outside the canvas is ignored."""
        if 0 <= x < self.width * 2 and 0 <= y < self.height * 4:
            cy, cx = y >> 2, x >> 1
            self.bits[cy][cx] |= _DOTS[x & 1][y & 3]
            self.colors[cy][cx] = color

    def line(self, x0: int, y0: int, x1: int, y1: int, color: int) -> None:
        """Dots from (x0, y0) to (x1, y1) inclusive (the hot loop of the chart: inlined)."""
        dx, dy = x1 - x0, y1 - y0
        n = max(abs(dx), abs(dy))
        if n == 0:
            self.dot(x0, y0, color)
            return
        bits, colors = self.bits, self.colors
        w, h = self.width * 2, self.height * 4
        two_n = 2 * n
        for i in range(n + 1):
            x = x0 + (2 * dx * i + n) // two_n
            y = y0 + (2 * dy * i + n) // two_n
            if 0 <= x < w and 0 <= y < h:
                cy, cx = y >> 2, x >> 1
                bits[cy][cx] |= _DOTS[x & 1][y & 3]
                colors[cy][cx] = color

    def rows(self) -> list[Text]:
        """One Text per cell row."""
        out: list[Text] = []
        for bits, colors in zip(self.bits, self.colors, strict=True):
            text = Text(no_wrap=True, overflow="crop")
            run: list[str] = []
            run_color = -2
            for b, c in zip(bits, colors, strict=True):
                if c != run_color and run:
                    text.append("".join(run), self._palette[run_color] if run_color >= 0 else None)
                    run = []
                run_color = c
                run.append(chr(0x2800 + b) if b else " ")
            if run:
                text.append("".join(run), self._palette[run_color] if run_color >= 0 else None)
            out.append(text)
        return out


def thin(xs: Sequence[float], ys: Sequence[T], n: int) -> tuple[Sequence[float], Sequence[T]]:
    """At most ``n`` (≥ 2) points, evenly spread, the first and the last kept."""
    m = len(xs)
    if m <= n:
        return xs, ys
    idx = [round(i * (m - 1) / (n - 1)) for i in range(n)]
    return [xs[i] for i in idx], [ys[i] for i in idx]


def transform(values: Sequence[float], log: bool) -> list[float]:
    """Values to plot: log10|v| in log mode (NaN where not positive/finite), else v
    (NaN where not finite). Values are floats (the state converts them)."""
    isfinite, nan = math.isfinite, math.nan
    if not log:
        return [v if isfinite(v) else nan for v in values]
    log10 = math.log10
    return [log10(abs(v)) if isfinite(v) and v != 0 else nan for v in values]


def value_range(values: Sequence[float]) -> tuple[float, float] | None:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return None
    lo, hi = min(finite), max(finite)
    if hi - lo < 1e-12 * max(1.0, abs(hi)):
        pad = 0.5 if hi == 0 else abs(hi) * 0.1
        lo, hi = lo - pad, hi + pad
    return lo, hi


def trace(canvas: BrailleCanvas, xs: Sequence[int], ys: Sequence[float],
           to_y: Callable[[float], int], color: int) -> None:
    """Connect consecutive finite points; a non-finite (NaN) value breaks the line."""
    px: int | None = None
    py = 0
    line, dot = canvas.line, canvas.dot
    for x, y in zip(xs, ys, strict=False):
        if y != y:  # NaN (the transform made every non-finite value NaN)
            px = None
            continue
        ty = to_y(y)
        if px is None:
            dot(x, ty, color)
        elif x != px or ty != py:
            line(px, py, x, ty, color)
        px, py = x, ty


def axis_label(row: int, rows: int, rng: tuple[float, float] | None, log: bool) -> str:
    """Label for cell row ``row``: top, bottom and (when tall enough) middle rows."""
    if rng is None:
        return ""
    lo, hi = rng
    if row == 0:
        v = hi
    elif row == rows - 1:
        v = lo
    elif rows >= 5 and row == (rows - 1) // 2:
        v = hi - (hi - lo) * row / (rows - 1)
    else:
        return ""
    return fmt.number(10**v if log else v, 3)


def x_axis(x0: float, x1: float, unit: str, left_w: int, plot_w: int, right_w: int,
            scale: str) -> Text:
    """The bottom row: x at the left, middle and right of the plot, the unit, the scale."""
    cells = [" "] * plot_w
    for frac, align in ((0.0, "left"), (0.5, "center"), (1.0, "right")):
        label = fmt.number(x0 + (x1 - x0) * frac, 3)
        pos = round(frac * (plot_w - 1))
        start = pos if align == "left" else (pos - len(label) + 1 if align == "right"
                                             else pos - len(label) // 2)
        start = max(0, min(start, plot_w - len(label)))
        if all(c == " " for c in cells[max(0, start - 1): start + len(label) + 1]):
            cells[start: start + len(label)] = label
    line = Text(no_wrap=True, overflow="crop")
    line.append(scale[: left_w - 1].rjust(left_w - 1) + " ", DIM)
    line.append("".join(cells), DIM)
    line.append((" " + unit)[:right_w].ljust(right_w), DIM)
    return line
