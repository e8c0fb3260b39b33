"""Several traces over one x axis in one braille chart, one color per line (the runs of
``sgdtop compare``; the loss slices), and their legend.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text

from sgdtop.tui.draw.canvas import (
    BrailleCanvas,
    axis_label,
    thin,
    trace,
    transform,
    value_range,
    x_axis,
)
from sgdtop.tui.draw.palette import BAD, DIM


@dataclass(frozen=True, slots=True)
class ChartLine:
    """One run's trace in :func:`lines_chart`: ``xs``/``ys`` of equal length (any order;
    NaN ``y`` = no value there, ±inf = a measurement that blew up), drawn in ``color``."""

    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    color: str


def line_points(line: ChartLine) -> tuple[list[float], list[float]]:
    """The line's points sorted by x: finite x only, NaN y dropped (±inf kept)."""
    pts = sorted(
        ((float(x), float(y)) for x, y in zip(line.xs, line.ys, strict=False)
         if math.isfinite(x) and not math.isnan(y)),
        key=lambda p: p[0],
    )
    return [p[0] for p in pts], [p[1] for p in pts]


def lines_chart(lines: Sequence[ChartLine], width: int, height: int, *, log: bool = False,
                empty: str = "no data") -> Text:
    """Several traces over one x axis in one braille chart, one color per line (the
    runs of ``sgdtop compare``): the y scale (linear, or log₁₀|y| with ``log``) on the
    left, the x range on the bottom row.

    Per line, points with no value (NaN) are skipped, so runs measured at different x
    are drawn as lines; a ±inf value breaks the line and is marked by a tick at the
    top (+inf) or bottom (-inf) edge; in log mode a zero breaks it too. ``empty`` is
    shown when no line has a drawable value."""
    if width < 12 or height < 3:
        return Text("")
    max_points = 2 * width
    prepared: list[tuple[list[float], list[float], list[float]]] = []
    for line in lines:
        xs, ys = line_points(line)
        xs_l, ys_l = thin(xs, ys, max_points)
        prepared.append((list(xs_l), list(ys_l), transform(ys_l, log)))
    y_range = value_range([v for _, _, yt in prepared for v in yt])
    has_inf = any(math.isinf(v) for _, ys, _ in prepared for v in ys)
    if y_range is None and not has_inf:
        out = [Text(" " * width) for _ in range(height)]
        out[(height - 1) // 2] = Text(empty[:width].center(width), style=DIM)
        return Text("\n", no_wrap=True).join(out)
    left_w = 7
    plot_w = width - left_w
    plot_h = height - 1
    canvas = BrailleCanvas(plot_w, plot_h)
    xs_all = [x for xs, _, _ in prepared for x in xs]
    x0, x1 = (min(xs_all), max(xs_all)) if xs_all else (0.0, 1.0)
    if x1 - x0 <= 0:
        x0, x1 = x0 - 0.5, x0 + 0.5
    lo, hi = y_range if y_range is not None else (0.0, 1.0)
    y_scale = (canvas.dot_height - 1) / (hi - lo)
    bottom = canvas.dot_height - 1

    def to_y(y: float) -> int:
        return round((hi - y) * y_scale)

    for line, (xs, ys, yt) in zip(lines, prepared, strict=True):
        c = canvas.color_index(line.color)
        xs_px = [round((x - x0) / (x1 - x0) * (canvas.dot_width - 1)) for x in xs]
        trace(canvas, xs_px, yt, to_y, c)
        for x, y in zip(xs_px, ys, strict=True):
            if math.isinf(y):
                top = 0 if y > 0 else bottom - 2
                canvas.line(x, top, x, top + 2, c)
    out = []
    for r, row in enumerate(canvas.rows()):
        text = Text(no_wrap=True, overflow="crop")
        label = axis_label(r, plot_h, y_range, log)
        text.append(label.rjust(left_w - 1)[: left_w - 1], DIM)
        text.append("┤" if r in (0, plot_h - 1) else "│", DIM)
        text.append_text(row)
        out.append(text)
    out.append(x_axis(x0, x1, "", left_w, plot_w, 0, "log" if log else "lin"))
    return Text("\n", no_wrap=True).join(out)


def lines_legend(lines: Sequence[ChartLine], width: int = 200) -> Text:
    """``━ label`` per line in its color (``↑inf``/``↓inf`` when it has such values;
    ``(none)`` when it has no value at all), cut to ``width`` cells."""
    out = Text(no_wrap=True, overflow="ellipsis")
    for i, line in enumerate(lines):
        if i:
            out.append("  ")
        out.append("━ ", line.color)
        out.append(line.label, f"bold {line.color}")
        _, ys = line_points(line)
        if not ys:
            out.append(" (none)", DIM)
        if any(y == math.inf for y in ys):
            out.append(" ↑inf", BAD)
        if any(y == -math.inf for y in ys):
            out.append(" ↓inf", BAD)
    out.truncate(max(0, width), overflow="ellipsis")
    return out
