"""Number spellings of the TUI: compact numbers, signed numbers, counts, durations and
subscript digits (until ``sgdtop.format`` holds the one spelling of each).

Every function is NaN/inf-safe (``nan``, ``+inf``, ``-inf``). See docs/design.md.
"""

from __future__ import annotations

import math
from typing import Final

from sgdtop.tui.state.views import is_finite

#: Digits to subscript digits (κ₃₀, λ₁, v₂).
SUBSCRIPTS: Final = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


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
