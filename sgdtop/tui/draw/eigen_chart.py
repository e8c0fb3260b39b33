"""The eigenvalue chart (the paper's Fig. 2): the top-k eigenvalues over training, one
braille trace per rank, the loss on its own axis, the stability limit 2(1+β)/η.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from rich.text import Text

from sgdtop import format as fmt
from sgdtop.tui.draw.canvas import (
    BrailleCanvas,
    axis_label,
    thin,
    trace,
    transform,
    value_range,
    x_axis,
)
from sgdtop.tui.draw.layout import first_fitting
from sgdtop.tui.draw.palette import DIM, LIMIT_COLOR, LOSS_COLOR, rank_color
from sgdtop.tui.state.views import ChartView


def chart_text(view: ChartView | None, width: int, height: int, *, log: bool = False) -> Text:
    """The top-k eigenvalues over training, one braille trace per rank (red = largest,
    blue = smallest), the loss on its own right-hand axis, the stability limit
    2(1+β)/η as a dotted amber line when it is in range; x in epochs (or steps)."""
    if width < 12 or height < 3:
        return Text("")
    if view is None or (not view.xs and not view.loss_xs):
        msg = "waiting for the first spectrum"
        return Text(msg[:width].center(width) if height else "", style=DIM)
    scale = "log|λ|" if log else "λ"
    max_points = 2 * width  # at most about one point per dot column
    eig_xs, eig_ys = thin(view.xs, view.eigenvalues, max_points)
    loss_xs, loss_ys = thin(view.loss_xs, view.loss_ys, max_points)
    eig_t = [transform(e, log) for e in eig_ys]
    loss_t = transform(loss_ys, log)
    eig_range = value_range([v for e in eig_t for v in e])
    loss_range = value_range(loss_t)
    limit_t: float | None = None
    if view.stability_limit is not None and fmt.finite(view.stability_limit) and eig_range:
        lt = transform([view.stability_limit], log)[0]
        lo, hi = eig_range
        reach = hi + (math.log10(1.5) if log else 0.5 * max(abs(hi), hi - lo))
        if fmt.finite(lt) and lo <= lt <= reach:
            limit_t = lt  # shown when in range or a little above it: where λ₁ is heading
            eig_range = (lo, max(hi, lt))
    left_w = 7
    right_w = 7 if loss_range is not None and width >= 40 else 0
    plot_w = width - left_w - right_w
    plot_h = height - 1
    canvas = BrailleCanvas(plot_w, plot_h)
    xs_all = [x / view.x_div for x in (*view.xs, *view.loss_xs) if fmt.finite(x)]
    x0, x1 = (min(xs_all), max(xs_all)) if xs_all else (0.0, 1.0)
    if x1 - x0 <= 0:
        x1 = x0 + 1.0

    def px(x: float) -> int:
        return round((x / view.x_div - x0) / (x1 - x0) * (canvas.dot_width - 1))

    def y_mapper(rng: tuple[float, float]) -> Callable[[float], int]:
        hi, scale = rng[1], (canvas.dot_height - 1) / (rng[1] - rng[0])
        return lambda y: round((hi - y) * scale)

    to_eig_y = y_mapper(eig_range) if eig_range is not None else None
    if limit_t is not None and to_eig_y is not None:
        c = canvas.color_index(LIMIT_COLOR)
        y = to_eig_y(limit_t)
        for x in range(0, canvas.dot_width, 3):
            canvas.dot(x, y, c)
    if to_eig_y is not None:
        k = max(view.k, 1)
        xs_px = [px(x) for x in eig_xs]
        for rank in range(k - 1, -1, -1):
            c = canvas.color_index(rank_color(rank, k))
            trace(canvas, xs_px, [e[rank] if rank < len(e) else math.nan for e in eig_t],
                   to_eig_y, c)
    if loss_range is not None and right_w:
        c = canvas.color_index(LOSS_COLOR)
        trace(canvas, [px(x) for x in loss_xs], loss_t, y_mapper(loss_range), c)
    rows = canvas.rows()
    out: list[Text] = []
    for r, row in enumerate(rows):
        line = Text(no_wrap=True, overflow="crop")
        line.append(axis_label(r, plot_h, eig_range, log).rjust(left_w - 1)[: left_w - 1], DIM)
        line.append("┤" if r in (0, plot_h - 1) else "│", DIM)
        line.append_text(row)
        if right_w:
            line.append("│" if r not in (0, plot_h - 1) else "├", DIM)
            label = axis_label(r, plot_h, loss_range, log)
            line.append(label[: right_w - 1].ljust(right_w - 1), LOSS_COLOR)
        out.append(line)
    out.append(x_axis(x0, x1, view.x_unit, left_w, plot_w, right_w, scale))
    return Text("\n", no_wrap=True).join(out)


def chart_legend(view: ChartView | None, *, log: bool, width: int = 200) -> str:
    """Rich markup for the chart's border title (the color ramp, loss, limit, scale),
    shortened to fit ``width`` columns."""
    k = view.k if view is not None and view.k else 30
    lo, hi = rank_color(0, k), rank_color(k - 1, k)
    loss = view.loss_label if view is not None else "loss"
    scale = "log" if log else "lin"
    ramp = f"[{lo}]{fmt.eigen_label(1)}[/]→[{hi}]{fmt.eigen_label(k)}[/]"
    candidates = (
        f"top-{k} λ over training {ramp} [{LOSS_COLOR}]— {loss}[/] "
        f"[{LIMIT_COLOR}]┈ 2(1+β)/η[/] · {scale}",
        f"{ramp} over training [{LOSS_COLOR}]— loss[/] [{LIMIT_COLOR}]┈ 2(1+β)/η[/] · {scale}",
        f"{ramp} [{LOSS_COLOR}]— loss[/] [{LIMIT_COLOR}]┈ limit[/] · {scale}",
        f"{ramp} · {scale}",
    )
    return first_fitting(candidates, width - 4)
