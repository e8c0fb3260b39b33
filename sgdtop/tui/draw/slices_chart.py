"""The loss-slice panel (the paper's Fig. 7): the loss along each top eigenvector for
the newest slices (older ones bluer), the quadratic model of the newest in grey.
"""

from __future__ import annotations

import math
import textwrap
from typing import Final

from rich.text import Text

from sgdtop import format as fmt
from sgdtop.tui.draw.layout import first_fitting
from sgdtop.tui.draw.lines_chart import ChartLine, lines_chart
from sgdtop.tui.draw.palette import DIM, ramp_color
from sgdtop.tui.state.views import SliceView

#: The newest slice is red, older ones fade to blue (the paper's Fig. 7: blue → red in time).
SLICE_NEW: Final[tuple[int, int, int]] = (248, 113, 113)
SLICE_OLD: Final[tuple[int, int, int]] = (59, 130, 246)
#: The quadratic model L(θ) + g·t + ½λt² of the newest slice.
QUADRATIC_COLOR: Final[str] = "#6b7280"
#: Narrowest column of the slice panel (one chart per eigenvector).
SLICE_MIN_COLUMN: Final[int] = 24


def slice_color(age: int, count: int) -> str:
    """Hex color of the slice ``age`` measurements old (0: newest) of ``count`` shown."""
    return ramp_color(SLICE_NEW, SLICE_OLD, 0.0 if count <= 1 else age / (count - 1))


def slices_legend(view: SliceView | None, width: int = 200) -> str:
    """Rich markup for the slice panel's border title."""
    slices = view.slices if view is not None else ()
    if not slices:
        return "loss along the top eigenvectors"
    newest = slices[-1]
    step = "-" if newest.step is None else f"{newest.step:,}"
    ramp = (f"[{slice_color(len(slices) - 1, len(slices))}]older[/]→"
            f"[{slice_color(0, 1)}]step {step}[/]")
    span = max((abs(t) for t in newest.distances), default=math.nan)
    eta = f" = ±{span / newest.lr:.3g}η" if fmt.finite(newest.lr) and newest.lr > 0 else ""
    candidates = (
        f"loss L(θ+t·vᵢ) along the top eigenvectors {ramp} [{QUADRATIC_COLOR}]— "
        f"L+gt+½λt²[/] · t ∈ ±{span:.3g}{eta}",
        f"loss along vᵢ {ramp} [{QUADRATIC_COLOR}]— quadratic[/] · ±{span:.3g}{eta}",
        f"loss along vᵢ {ramp}",
    )
    return first_fitting(candidates, width - 4)


def slices_text(view: SliceView | None, width: int, height: int) -> Text:
    """One braille chart per eigenvector (as many as fit side by side, at least
    :data:`SLICE_MIN_COLUMN` columns each): the loss along it for the newest slices
    (older ones bluer), the quadratic model of the newest in grey, λᵢ and gᵢ above."""
    if width < 12 or height < 4:
        return Text("")
    if view is None or not view.slices:
        out = [Text(" " * width) for _ in range(height)]
        msg = ("no loss slices in this run: a profile with slice_every > 0 measures them "
               "(--set slice_every=5)")
        for i, chunk in enumerate(textwrap.wrap(msg, width)[: height]):
            out[min(height - 1, (height - 1) // 2 + i)] = Text(chunk.center(width), style=DIM)
        return Text("\n", no_wrap=True).join(out)
    newest = view.slices[-1]
    m = len(newest.losses)
    cols = max(1, min(m, width // SLICE_MIN_COLUMN))
    col_w = width // cols
    charts: list[list[Text]] = []
    for i in range(cols):
        lines = []
        shown = [sl for sl in view.slices if len(sl.losses) > i]
        for age, sl in enumerate(reversed(shown)):
            lines.append(ChartLine(label="", xs=sl.distances, ys=sl.losses[i],
                                   color=slice_color(age, len(shown))))
        lines.reverse()  # the newest drawn last, on top
        lam = newest.eigenvalues[i] if i < len(newest.eigenvalues) else math.nan
        slope = newest.slopes[i] if i < len(newest.slopes) else math.nan
        if fmt.finite(lam) and fmt.finite(slope) and fmt.finite(newest.loss0):
            quad = [newest.loss0 + slope * t + 0.5 * lam * t * t for t in newest.distances]
            lines.insert(0, ChartLine(label="", xs=newest.distances, ys=quad,
                                      color=QUADRATIC_COLOR))
        title = Text(no_wrap=True, overflow="crop")
        title.append("v" + fmt.subscript(i + 1), "bold")
        title.append(f" λ {fmt.number(lam)}  g {fmt.signed(slope, 3)}", DIM)
        title.truncate(col_w - 1)
        title.pad_right(col_w - title.cell_len)
        body = lines_chart(lines, col_w - 1, height - 1).split("\n")
        rows = [title]
        for row in body:
            row.truncate(col_w - 1)
            row.pad_right(col_w - row.cell_len)
            rows.append(row)
        charts.append(rows)
    out = []
    for r in range(height):
        line = Text(no_wrap=True, overflow="crop")
        for rows in charts:
            line.append_text(rows[r] if r < len(rows) else Text(" " * col_w))
        out.append(line)
    return Text("\n", no_wrap=True).join(out)
