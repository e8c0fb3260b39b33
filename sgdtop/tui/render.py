"""Drawing code: pure functions from the state's view snapshots to Rich ``Text``.

No Textual here (widgets only adapt state to these functions, at their own size), so all
of it is tested as plain functions. Every function is NaN/inf-safe: a non-finite value is
shown as such (``nan``, ``+inf``; ``×``/``↑``/``↓`` in sparklines) and never breaks the
drawing.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

from rich.text import Text

from sgdtop.tui.state import (
    ENDED_STATUSES,
    LOST,
    RUNNING,
    STOPPING,
    WAITING,
    ChartView,
    EigenRow,
    HeaderView,
    LogLine,
    MetricView,
    SliceView,
    SpectrumView,
    is_finite,
)

T = TypeVar("T")

# -- colors --------------------------------------------------------------------------

#: Rank 1 (largest |λ|) and rank k (smallest) in the chart and table (paper's Fig. 2).
RANK_FIRST: Final[tuple[int, int, int]] = (239, 68, 68)
RANK_LAST: Final[tuple[int, int, int]] = (59, 130, 246)
LOSS_COLOR: Final[str] = "#e5e7eb"
LIMIT_COLOR: Final[str] = "#f59e0b"
BAD: Final[str] = "bold #f87171"
WARN: Final[str] = "#facc15"
GOOD: Final[str] = "#4ade80"
DIM: Final[str] = "#8b949e"

METRIC_COLORS: Final[dict[str, str]] = {
    "rho": "#f87171",
    "stability": GOOD,
    "cond": "#c084fc",
    "train_loss": LOSS_COLOR,
    "test_loss": "#93c5fd",
    "test_acc": "#86efac",
    "dead": "#fdba74",
}

STATUS_STYLES: Final[dict[str, tuple[str, str]]] = {
    WAITING: ("○", DIM),
    RUNNING: ("●", GOOD),
    STOPPING: ("◌", WARN),
    "completed": ("■", GOOD),
    "interrupted": ("■", WARN),
    "diverged": ("✖", BAD),
    "failed": ("✖", BAD),
    LOST: ("✖", BAD),
}

LOG_STYLES: Final[dict[str, str]] = {"info": DIM, "warning": WARN, "error": BAD}

_BLOCKS: Final[str] = "▁▂▃▄▅▆▇█"


def ramp_color(first: tuple[int, int, int], last: tuple[int, int, int], f: float) -> str:
    """Hex color at fraction ``f`` (clamped to [0, 1]) of the way from ``first`` to ``last``."""
    f = min(max(f, 0.0), 1.0)
    r, g, b = (round(a + (z - a) * f) for a, z in zip(first, last, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def rank_color(rank: int, k: int) -> str:
    """Hex color of eigenvalue ``rank`` (0-based) among ``k``: red (largest) → blue."""
    return ramp_color(RANK_FIRST, RANK_LAST, 0.0 if k <= 1 else rank / (k - 1))


# -- numbers -------------------------------------------------------------------------


def fmt_num(x: float | int | None, digits: int = 4) -> str:
    """Compact number: ``digits`` significant digits, short exponent (``1.2e-5``);
    ``nan``/``+inf``/``-inf`` for non-finite; ``–`` for None."""
    if x is None:
        return "–"
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "+inf" if x > 0 else "-inf"
    s = f"{x:.{digits}g}"
    if "e" in s:
        mant, exp = s.split("e")
        s = f"{mant}e{int(exp)}"
    return s


def fmt_signed(x: float | None, digits: int = 4) -> str:
    """Like :func:`fmt_num` with an explicit sign for positive numbers and zero."""
    s = fmt_num(x, digits)
    if x is not None and not math.isnan(x) and not s.startswith(("-", "+")):
        s = "+" + s
    return s


def fmt_count(n: float | int | None) -> str:
    """Human count: 950, 12.3k, 4.5M, 1.2G."""
    if n is None or not is_finite(n):
        return fmt_num(n)
    n = float(n)
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.3g}{suffix}"
    return f"{n:.3g}" if n != int(n) else str(int(n))


def fmt_duration(seconds: float | None) -> str:
    """h:mm:ss or m:ss; ``?`` for None/non-finite."""
    if seconds is None or not is_finite(seconds) or seconds < 0:
        return "?"
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


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
    finite = [v for v in shown if is_finite(v)]
    lo = min(finite) if finite else 0.0
    hi = max(finite) if finite else 0.0
    span = hi - lo
    top = len(_BLOCKS) - 1
    chars: list[str] = []
    run_style: str | None = None

    def flush() -> None:
        if chars:
            text.append("".join(chars), run_style)
            chars.clear()

    for v in shown:
        if is_finite(v):
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
    bad = not is_finite(cur)
    if view.key == "stability" and view.limit is not None:
        eta_l1, eta_limit = view.limit
        pct_style = BAD if bad else stability_style(cur / 100.0)
        if extra and view.extra:
            out.append(view.extra + "  ", DIM)
        out.append(f"{fmt_num(eta_l1, 3)}/{fmt_num(eta_limit, 2)} ", DIM)
        out.append(f"{fmt_num(cur, 3)}%", pct_style)
        return out
    unit = view.unit
    if extra and view.extra:
        out.append(view.extra + "  ", DIM)
    out.append(fmt_num(cur, 4) + unit, BAD if bad else "bold")
    prev = view.previous
    if prev is not None and is_finite(prev) and is_finite(cur) and cur != prev:
        out.append(" ↑" if cur > prev else " ↓", DIM)
    return out


def stability_style(ratio: float) -> str:
    """Color of η·λ₁/2(1+β): green below 1/2, yellow below 1, red at or above 1."""
    if not is_finite(ratio) or ratio >= 1.0:
        return BAD
    return WARN if ratio >= 0.5 else GOOD


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


# -- header --------------------------------------------------------------------------


def status_text(status: str, message: str = "", *, verbose: bool = False) -> Text:
    """The status badge (``● running``, ``✖ diverged``, ...)."""
    glyph, style = STATUS_STYLES.get(status, ("?", WARN))
    label = {WAITING: "waiting", STOPPING: "stopping…", LOST: "trainer lost"}.get(status, status)
    out = Text(f"{glyph} {label}", style=style, no_wrap=True)
    if verbose and message and status in ENDED_STATUSES:
        out.append(f": {message}", style)
    return out


def fit_parts(parts: Sequence[Text], width: int, sep: str = "  ") -> Text:
    """Join the parts that fit in ``width`` (later parts are dropped first)."""
    out = Text(no_wrap=True, overflow="ellipsis")
    for i, part in enumerate(parts):
        extra = (len(sep) if i else 0) + part.cell_len
        if out.cell_len + extra > width:
            if i == 0:
                out.append_text(part)
                out.truncate(width, overflow="ellipsis")
            break
        if i:
            out.append(sep)
        out.append_text(part)
    return out


def pair(label: str, value: str, style: str = "bold") -> Text:
    """``label value``: the label dim, the value in ``style`` (header fields)."""
    out = Text(no_wrap=True)
    out.append(label + " ", DIM)
    out.append(value, style)
    return out


def header_text(view: HeaderView, width: int, *, mode: Text | None = None) -> Text:
    """Two lines: the run (model, data, size, device) with the mode (live/watch/replay)
    and the status on the right; then η, S, β, epoch, step, elapsed, throughput."""
    info = view.info
    sep = "  " if width >= 100 else " "
    status = status_text(view.status, view.status_message, verbose=width >= 120)
    right = Text(no_wrap=True)
    if mode is not None and mode.plain:
        right.append_text(mode)
        right.append(sep)
    right.append_text(status)
    right.truncate(max(10, width * 2 // 3), overflow="ellipsis")
    # line 1
    ident: list[Text] = [Text(" sgdtop ", style="bold reverse")]
    if info is not None:
        ident.append(Text(info.model, style="bold"))
        ident.append(Text(info.dataset))
        if info.num_params is not None:
            ident.append(pair("params", fmt_count(info.num_params)))
        ident.append(pair("on", info.device))
    else:
        ident.append(Text("waiting for run_start…", style=DIM))
    left = fit_parts(ident, max(0, width - right.cell_len - 1), sep)
    line1 = Text(no_wrap=True, overflow="crop")
    line1.append_text(left)
    line1.append(" " * max(1, width - left.cell_len - right.cell_len))
    line1.append_text(right)
    # line 2
    parts: list[Text] = []
    lr = view.lr if view.lr is not None else (info.lr if info is not None else None)
    parts.append(pair("η", fmt_num(lr, 3)))
    if info is not None:
        parts.append(pair("S", str(info.batch_size) if info.batch_size is not None else "?"))
        parts.append(pair("β", fmt_num(info.momentum, 3)))
    epoch = "–" if view.epoch is None else str(view.epoch + 1)
    if info is not None and info.epochs is not None:
        epoch += f"/{info.epochs}"
    parts.append(pair("epoch", epoch))
    parts.append(pair("step", "–" if view.step is None else f"{view.step:,}"))
    parts.append(pair("t", fmt_duration(view.elapsed)))
    if view.examples_per_s is not None:
        thru = Text(no_wrap=True)
        thru.append(fmt_count(view.examples_per_s), "bold")
        thru.append(" ex/s", DIM)
        parts.append(thru)
    line2 = fit_parts(parts, width, "   " if width >= 100 else "  ")
    return Text("\n").join([line1, line2])


# -- the top-k table -----------------------------------------------------------------

MARKS: Final[dict[str, tuple[str, str]]] = {
    "converged": ("✓", GOOD),
    "near": ("~", WARN),
    "no": ("✗", BAD),
}


def eigen_table(view: SpectrumView, width: int) -> Text:
    """The top-k eigenvalue table at ``width``: rank, signed λ, Δ since the previous
    measurement, convergence mark; the residual ‖Hv−λv‖ and a |λ|/ρ bar when wider."""
    rows = view.rows
    if not rows:
        msg = "no spectrum yet" if not view.ended else "no spectrum was measured"
        return Text(msg, style=DIM, no_wrap=True)
    k = len(rows)
    show_res = width >= 40
    bar_w = width - 40 if width >= 48 else 0
    head = Text(no_wrap=True, overflow="crop")
    head.append(f"{'#':>3} {'λ':>10} {'Δ':>9}", DIM)
    if show_res:
        head.append(f" {'resid':>8}", DIM)
    head.append("  ✓", DIM)
    lines = [head]
    rho = max((abs(r.value) for r in rows if is_finite(r.value)), default=0.0)
    for row in rows:
        lines.append(_eigen_line(row, k, show_res, bar_w, rho))
    return Text("\n", no_wrap=True).join(lines)


def _eigen_line(row: EigenRow, k: int, show_res: bool, bar_w: int, rho: float) -> Text:
    color = rank_color(row.rank - 1, k)
    line = Text(no_wrap=True, overflow="crop")
    line.append(f"{row.rank:>3}", color)
    value_style = "bold" if is_finite(row.value) and row.value >= 0 else (
        "bold #f0abfc" if is_finite(row.value) else BAD)
    line.append(" " + fmt_signed(row.value, 5).rjust(10), value_style)
    if row.delta is None:
        line.append(" " + "–".rjust(9), DIM)
    else:
        d = row.delta
        d_style = BAD if not is_finite(d) else ("#fca5a5" if d > 0 else "#93c5fd" if d < 0 else DIM)
        line.append(" " + fmt_signed(d, 3).rjust(9), d_style)
    if show_res:
        line.append(" " + fmt_num(row.residual, 2).rjust(8), DIM)
    glyph, style = MARKS.get(row.mark, ("?", DIM))
    line.append("  " + glyph, style)
    if bar_w > 0:
        frac = abs(row.value) / rho if rho > 0 and is_finite(row.value) else 0.0
        cells = frac * bar_w
        full = int(cells)
        bar = "█" * full + (_PARTIAL[int((cells - full) * 8)] if full < bar_w else "")
        line.append(" " + bar.rstrip(), color)
    return line


_PARTIAL: Final[str] = " ▏▎▍▌▋▊▉"


def spectrum_status(view: SpectrumView, width: int = 80) -> Text:
    """One line under the table: the measurement under way, or the last one's step, cost
    and how many Ritz pairs converged (compact below 36 columns)."""
    narrow = width < 36
    if view.progress is not None:
        p = view.progress
        hv = "?" if p.hvps is None else str(p.hvps)
        label = "⟳ " if narrow else "⟳ measuring: "
        return Text(f"{label}{hv} HVPs · {fmt_num(p.seconds, 3)} s", style=WARN, no_wrap=True)
    sp = view.last
    if sp is None:
        return Text("no measurement yet", style=DIM, no_wrap=True)
    hv = "?" if sp.hvps is None else str(sp.hvps)
    step = "–" if sp.step is None else f"{sp.step:,}"
    conv = f"{sum(sp.converged)}/{len(sp.eigenvalues)} ✓"
    secs = fmt_num(sp.seconds, 3)
    if narrow:
        text = f"@{step} · {hv} HVP · {secs}s · {conv.replace(' ', '')}"
    else:
        text = f"step {step} · {hv} HVPs · {secs} s · {conv}"
    return Text(text, style=DIM, no_wrap=True, overflow="ellipsis")


# -- the eigenvalue chart (Fig. 2) ---------------------------------------------------

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


def _thin(xs: Sequence[float], ys: Sequence[T], n: int) -> tuple[Sequence[float], Sequence[T]]:
    """At most ``n`` (≥ 2) points, evenly spread, the first and the last kept."""
    m = len(xs)
    if m <= n:
        return xs, ys
    idx = [round(i * (m - 1) / (n - 1)) for i in range(n)]
    return [xs[i] for i in idx], [ys[i] for i in idx]


def _transform(values: Sequence[float], log: bool) -> list[float]:
    """Values to plot: log10|v| in log mode (NaN where not positive/finite), else v
    (NaN where not finite). Values are floats (the state converts them)."""
    isfinite, nan = math.isfinite, math.nan
    if not log:
        return [v if isfinite(v) else nan for v in values]
    log10 = math.log10
    return [log10(abs(v)) if isfinite(v) and v != 0 else nan for v in values]


def _range(values: Sequence[float]) -> tuple[float, float] | None:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return None
    lo, hi = min(finite), max(finite)
    if hi - lo < 1e-12 * max(1.0, abs(hi)):
        pad = 0.5 if hi == 0 else abs(hi) * 0.1
        lo, hi = lo - pad, hi + pad
    return lo, hi


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
    eig_xs, eig_ys = _thin(view.xs, view.eigenvalues, max_points)
    loss_xs, loss_ys = _thin(view.loss_xs, view.loss_ys, max_points)
    eig_t = [_transform(e, log) for e in eig_ys]
    loss_t = _transform(loss_ys, log)
    eig_range = _range([v for e in eig_t for v in e])
    loss_range = _range(loss_t)
    limit_t: float | None = None
    if view.stability_limit is not None and is_finite(view.stability_limit) and eig_range:
        lt = _transform([view.stability_limit], log)[0]
        lo, hi = eig_range
        reach = hi + (math.log10(1.5) if log else 0.5 * max(abs(hi), hi - lo))
        if is_finite(lt) and lo <= lt <= reach:
            limit_t = lt  # shown when in range or a little above it: where λ₁ is heading
            eig_range = (lo, max(hi, lt))
    left_w = 7
    right_w = 7 if loss_range is not None and width >= 40 else 0
    plot_w = width - left_w - right_w
    plot_h = height - 1
    canvas = BrailleCanvas(plot_w, plot_h)
    xs_all = [x / view.x_div for x in (*view.xs, *view.loss_xs) if is_finite(x)]
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
            _trace(canvas, xs_px, [e[rank] if rank < len(e) else math.nan for e in eig_t],
                   to_eig_y, c)
    if loss_range is not None and right_w:
        c = canvas.color_index(LOSS_COLOR)
        _trace(canvas, [px(x) for x in loss_xs], loss_t, y_mapper(loss_range), c)
    rows = canvas.rows()
    out: list[Text] = []
    for r, row in enumerate(rows):
        line = Text(no_wrap=True, overflow="crop")
        line.append(_axis_label(r, plot_h, eig_range, log).rjust(left_w - 1)[: left_w - 1], DIM)
        line.append("┤" if r in (0, plot_h - 1) else "│", DIM)
        line.append_text(row)
        if right_w:
            line.append("│" if r not in (0, plot_h - 1) else "├", DIM)
            label = _axis_label(r, plot_h, loss_range, log)
            line.append(label[: right_w - 1].ljust(right_w - 1), LOSS_COLOR)
        out.append(line)
    out.append(_x_axis(x0, x1, view.x_unit, left_w, plot_w, right_w, scale))
    return Text("\n", no_wrap=True).join(out)


def _trace(canvas: BrailleCanvas, xs: Sequence[int], ys: Sequence[float],
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


def _axis_label(row: int, rows: int, rng: tuple[float, float] | None, log: bool) -> str:
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
    return fmt_num(10**v if log else v, 3)


def _x_axis(x0: float, x1: float, unit: str, left_w: int, plot_w: int, right_w: int,
            scale: str) -> Text:
    """The bottom row: x at the left, middle and right of the plot, the unit, the scale."""
    cells = [" "] * plot_w
    for frac, align in ((0.0, "left"), (0.5, "center"), (1.0, "right")):
        label = fmt_num(x0 + (x1 - x0) * frac, 3)
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


def chart_legend(view: ChartView | None, *, log: bool, width: int = 200) -> str:
    """Rich markup for the chart's border title (the color ramp, loss, limit, scale),
    shortened to fit ``width`` columns."""
    k = view.k if view is not None and view.k else 30
    lo, hi = rank_color(0, k), rank_color(k - 1, k)
    loss = view.loss_label if view is not None else "loss"
    scale = "log" if log else "lin"
    ramp = f"[{lo}]λ₁[/]→[{hi}]λ{str(k).translate(_SUB)}[/]"
    candidates = (
        f"top-{k} λ over training {ramp} [{LOSS_COLOR}]— {loss}[/] "
        f"[{LIMIT_COLOR}]┈ 2(1+β)/η[/] · {scale}",
        f"{ramp} over training [{LOSS_COLOR}]— loss[/] [{LIMIT_COLOR}]┈ 2(1+β)/η[/] · {scale}",
        f"{ramp} [{LOSS_COLOR}]— loss[/] [{LIMIT_COLOR}]┈ limit[/] · {scale}",
        f"{ramp} · {scale}",
    )
    return first_fitting(candidates, width - 4)


_SUB: Final = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def first_fitting(candidates: Sequence[str], width: int) -> str:
    """The first Rich markup of ``candidates`` (longest first) whose text fits ``width``
    cells, else the last one."""
    for markup in candidates:
        if Text.from_markup(markup).cell_len <= width:
            return markup
    return candidates[-1]


# -- several runs in one chart (sgdtop compare) --------------------------------------

#: One color per run, in order (cycled beyond eight runs): distinct on dark backgrounds.
RUN_COLORS: Final[tuple[str, ...]] = (
    "#f87171", "#60a5fa", "#4ade80", "#facc15", "#c084fc", "#fb923c", "#2dd4bf", "#f472b6",
)


def run_color(index: int) -> str:
    """Hex color of run ``index`` (0-based) in charts, legends and table headers."""
    return RUN_COLORS[index % len(RUN_COLORS)]


@dataclass(frozen=True, slots=True)
class ChartLine:
    """One run's trace in :func:`lines_chart`: ``xs``/``ys`` of equal length (any order;
    NaN ``y`` = no value there, ±inf = a measurement that blew up), drawn in ``color``."""

    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    color: str


def _line_points(line: ChartLine) -> tuple[list[float], list[float]]:
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
        xs, ys = _line_points(line)
        xs_l, ys_l = _thin(xs, ys, max_points)
        prepared.append((list(xs_l), list(ys_l), _transform(ys_l, log)))
    y_range = _range([v for _, _, yt in prepared for v in yt])
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
        _trace(canvas, xs_px, yt, to_y, c)
        for x, y in zip(xs_px, ys, strict=True):
            if math.isinf(y):
                top = 0 if y > 0 else bottom - 2
                canvas.line(x, top, x, top + 2, c)
    out = []
    for r, row in enumerate(canvas.rows()):
        text = Text(no_wrap=True, overflow="crop")
        label = _axis_label(r, plot_h, y_range, log)
        text.append(label.rjust(left_w - 1)[: left_w - 1], DIM)
        text.append("┤" if r in (0, plot_h - 1) else "│", DIM)
        text.append_text(row)
        out.append(text)
    out.append(_x_axis(x0, x1, "", left_w, plot_w, 0, "log" if log else "lin"))
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
        _, ys = _line_points(line)
        if not ys:
            out.append(" (none)", DIM)
        if any(y == math.inf for y in ys):
            out.append(" ↑inf", BAD)
        if any(y == -math.inf for y in ys):
            out.append(" ↓inf", BAD)
    out.truncate(max(0, width), overflow="ellipsis")
    return out


# -- the log -------------------------------------------------------------------------


# -- loss slices (Fig. 7) ------------------------------------------------------------

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
    newest = view.slices[-1] if view is not None and view.slices else None
    if newest is None:
        return "loss along the top eigenvectors"
    step = "-" if newest.step is None else f"{newest.step:,}"
    ramp = (f"[{slice_color(len(view.slices) - 1, len(view.slices))}]older[/]→"  # type: ignore[union-attr]
            f"[{slice_color(0, 1)}]step {step}[/]")
    span = max((abs(t) for t in newest.distances), default=math.nan)
    eta = f" = ±{span / newest.lr:.3g}η" if is_finite(newest.lr) and newest.lr > 0 else ""
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
        if is_finite(lam) and is_finite(slope) and is_finite(newest.loss0):
            quad = [newest.loss0 + slope * t + 0.5 * lam * t * t for t in newest.distances]
            lines.insert(0, ChartLine(label="", xs=newest.distances, ys=quad,
                                      color=QUADRATIC_COLOR))
        title = Text(no_wrap=True, overflow="crop")
        title.append(f"v{i + 1}".translate(_SUB), "bold")
        title.append(f" λ {fmt_num(lam)}  g {fmt_signed(slope, 3)}", DIM)
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


def log_text(line: LogLine) -> Text:
    """One log line: time, level mark, source, message."""
    style = LOG_STYLES.get(line.level, "")
    out = Text(no_wrap=False)
    out.append(fmt_duration(line.t).rjust(7) + " ", DIM)
    mark = {"warning": "! ", "error": "✖ "}.get(line.level, "  ")
    out.append(mark, style)
    if line.source not in ("trainer", "sgdtop"):
        out.append(f"[{line.source}] ", DIM)
    out.append(line.message, style if line.level != "info" else "")
    return out
