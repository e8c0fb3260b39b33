"""The top-k eigenvalue table (rank, signed λ, Δ, residual, convergence mark, |λ|/ρ bar)
and the measurement status line under it.
"""

from __future__ import annotations

from typing import Final

from rich.text import Text

from sgdtop import format as fmt
from sgdtop.tui.draw.palette import BAD, DIM, GOOD, WARN, rank_color
from sgdtop.tui.state.views import EigenRow, SpectrumView

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
    rho = max((abs(r.value) for r in rows if fmt.finite(r.value)), default=0.0)
    for row in rows:
        lines.append(_eigen_line(row, k, show_res, bar_w, rho))
    return Text("\n", no_wrap=True).join(lines)


def _eigen_line(row: EigenRow, k: int, show_res: bool, bar_w: int, rho: float) -> Text:
    color = rank_color(row.rank - 1, k)
    line = Text(no_wrap=True, overflow="crop")
    line.append(f"{row.rank:>3}", color)
    value_style = "bold" if fmt.finite(row.value) and row.value >= 0 else (
        "bold #f0abfc" if fmt.finite(row.value) else BAD)
    line.append(" " + fmt.signed(row.value, 5).rjust(10), value_style)
    if row.delta is None:
        line.append(" " + "–".rjust(9), DIM)
    else:
        d = row.delta
        d_style = BAD if not fmt.finite(d) else (
            "#fca5a5" if d > 0 else "#93c5fd" if d < 0 else DIM)
        line.append(" " + fmt.signed(d, 3).rjust(9), d_style)
    if show_res:
        line.append(" " + fmt.number(row.residual, 2).rjust(8), DIM)
    glyph, style = MARKS.get(row.mark, ("?", DIM))
    line.append("  " + glyph, style)
    if bar_w > 0:
        frac = abs(row.value) / rho if rho > 0 and fmt.finite(row.value) else 0.0
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
        hv = str(p.hvps)
        label = "⟳ " if narrow else "⟳ measuring: "
        return Text(f"{label}{hv} HVPs · {fmt.number(p.seconds, 3)} s", style=WARN, no_wrap=True)
    sp = view.last
    if sp is None:
        return Text("no measurement yet", style=DIM, no_wrap=True)
    hv = str(sp.hvps)
    step = "–" if sp.step is None else f"{sp.step:,}"
    conv = f"{sum(sp.converged)}/{len(sp.eigenvalues)} ✓"
    secs = fmt.number(sp.seconds, 3)
    if narrow:
        text = f"@{step} · {hv} HVP · {secs}s · {conv.replace(' ', '')}"
    else:
        text = f"step {step} · {hv} HVPs · {secs} s · {conv}"
    return Text(text, style=DIM, no_wrap=True, overflow="ellipsis")
