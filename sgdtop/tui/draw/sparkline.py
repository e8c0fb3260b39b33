"""Sparklines: one block character per value, and the run view's metric rows
(``label sparkline value``) built on them. NaN is ``×``, +inf ``↑``, -inf ``↓``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from rich.text import Text

from sgdtop import format as fmt
from sgdtop.tui.draw.palette import BAD, DIM, LOSS_COLOR, METRIC_COLORS, stability_style
from sgdtop.tui.state.views import MetricView

_BLOCKS: Final[str] = "▁▂▃▄▅▆▇█"


# -- sparklines ----------------------------------------------------------------------


def sparkline(values: Sequence[float], width: int, color: str) -> Text:
    """The last ``width`` values as block characters, right-aligned (one column per value:
    a short history is not stretched). Scaled to the finite values shown; NaN is ``×``,
    +inf ``↑``, -inf ``↓`` (all in red)."""
    text = Text(no_wrap=True, overflow="crop")
    if width <= 0:
        return text
    shown = list(values[-width:])
    if len(shown) < width:
        text.append(" " * (width - len(shown)))
    shown_finite = [v for v in shown if fmt.finite(v)]
    lo = min(shown_finite) if shown_finite else 0.0
    hi = max(shown_finite) if shown_finite else 0.0
    span = hi - lo
    top = len(_BLOCKS) - 1
    chars: list[str] = []
    run_style: str | None = None

    def flush() -> None:
        if chars:
            text.append("".join(chars), run_style)
            chars.clear()

    for v in shown:
        if fmt.finite(v):
            level = top // 2 if span <= 0 else round((v - lo) / span * top)
            ch, style = _BLOCKS[level], color
        else:
            ch, style = ("×" if math.isnan(v) else ("↑" if v > 0 else "↓")), BAD
        if style != run_style:
            flush()
            run_style = style
        chars.append(ch)
    flush()
    return text


def _metric_value(view: MetricView, *, extra: bool = False) -> Text:
    """The value column of a sparkline row: the current value, its trend, and (with
    ``extra``) the view's detail."""
    cur = view.current
    out = Text(no_wrap=True, overflow="ellipsis")
    if cur is None:
        return out.append(f"– ({view.note})" if view.note else "–", DIM)
    bad = not fmt.finite(cur)
    if view.key == "stability" and view.limit is not None:
        eta_l1, eta_limit = view.limit
        pct_style = BAD if bad else stability_style(cur / 100.0)
        if extra and view.extra:
            out.append(view.extra + "  ", DIM)
        out.append(f"{fmt.number(eta_l1, 3)}/{fmt.number(eta_limit, 2)} ", DIM)
        out.append(f"{fmt.number(cur, 3)}%", pct_style)
        return out
    unit = view.unit
    if extra and view.extra:
        out.append(view.extra + "  ", DIM)
    out.append(fmt.number(cur, 4) + unit, BAD if bad else "bold")
    prev = view.previous
    if prev is not None and fmt.finite(prev) and fmt.finite(cur) and cur != prev:
        out.append(" ↑" if cur > prev else " ↓", DIM)
    return out


def metric_row(view: MetricView, width: int, *, label_width: int = 9,
               value_width: int = 15) -> Text:
    """``label sparkline value`` in exactly ``width`` cells (the value may be cut)."""
    if width < label_width + 4:
        label_width = max(0, width // 3)
    value_width = min(value_width, max(0, width - label_width - 2))
    spark_width = max(0, width - label_width - value_width - 2)
    color = METRIC_COLORS.get(view.key, LOSS_COLOR)
    if view.key == "stability" and view.current is not None:
        color = stability_style(view.current / 100.0)
    line = Text(no_wrap=True, overflow="crop")
    line.append(view.label[:label_width].ljust(label_width), "bold")
    line.append(" ")
    line.append_text(sparkline(view.values, spark_width, color))
    line.append(" ")
    value = _metric_value(view, extra=value_width >= 26)
    value.truncate(value_width, overflow="ellipsis")
    line.append(" " * (value_width - value.cell_len))
    line.append_text(value)
    return line


def metrics_text(views: Sequence[MetricView], width: int) -> Text:
    """All sparkline rows, one per line."""
    value_width = 30 if width >= 90 else (15 if width >= 44 else 11)
    label_width = 9 if width >= 40 else 6
    return Text("\n", no_wrap=True).join(
        metric_row(v, width, label_width=label_width, value_width=value_width) for v in views
    )
