"""How numbers, durations, symbols and run labels are spelled — once, for every view:
the headless log, the TUI, ``compare``, ``show``/``runs``, sweeps and plots.

Standard library only (the TUI imports it). Spellings:

- a number: ``digits`` significant digits with a short exponent (``1.2e-5``), ``nan``,
  ``+inf``/``-inf``, and :data:`UNKNOWN` (``–``) for a value that is not known;
- a clock (elapsed time in a column, like ``top``'s TIME+): ``m:ss`` or ``h:mm:ss``;
- a duration (a span in a sentence: an ETA, a cost): ``12s``, ``3m05s``, ``1h02m``;
- κ_k and λᵢ with subscript digits: ``κ₃₀``, ``λ₁``; ``κₖ`` when k is not known;
- the settings' symbols: η (learning rate), S (batch size), β (momentum), wd (L2).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from typing import Final, TypeGuard

#: What a value that is not known is shown as.
UNKNOWN: Final[str] = "–"

_SUBSCRIPTS: Final[dict[int, int]] = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")

#: Short symbols of the run settings, in the order labels list them.
SETTING_SYMBOLS: Final[dict[str, str]] = {
    "lr": "η", "batch_size": "S", "momentum": "β", "weight_decay": "wd", "seed": "seed",
}


def is_number(x: object) -> TypeGuard[int | float]:
    """Whether ``x`` is an int or float (not a bool)."""
    return isinstance(x, int | float) and not isinstance(x, bool)


def number_or_none(x: object) -> float | None:
    """A number read from a file or a mapping (int or float, not bool) as a float; None
    for anything else, and for an int too large for a float."""
    if not is_number(x):
        return None
    try:
        return float(x)
    except OverflowError:
        return None


def finite(x: object) -> bool:
    """Whether ``x`` is a finite number (not a bool, not None)."""
    return is_number(x) and math.isfinite(x)


def number(x: float | int | None, digits: int = 4) -> str:
    """``digits`` significant digits, short exponent (``1.2e-5``); ``nan``, ``+inf``,
    ``-inf`` for non-finite; :data:`UNKNOWN` for None."""
    if x is None:
        return UNKNOWN
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


def signed(x: float | None, digits: int = 4) -> str:
    """Like :func:`number`, with an explicit ``+`` on positive numbers and zero."""
    s = number(x, digits)
    if x is not None and not math.isnan(x) and not s.startswith(("-", "+")):
        s = "+" + s
    return s


def fixed(x: float | int | None, decimals: int = 1) -> str:
    """``decimals`` digits after the point (``12.5``); non-finite and None as
    :func:`number` spells them."""
    if x is None or not math.isfinite(float(x)):
        return number(x)
    return f"{float(x):.{decimals}f}"


def percent(x: float | int | None, decimals: int = 1) -> str:
    """A share already in % (``12.5%``); non-finite and None as :func:`number`."""
    s = fixed(x, decimals)
    return s + "%" if x is not None and math.isfinite(float(x)) else s


def count(n: float | int | None) -> str:
    """A count for humans: ``950``, ``12.3k``, ``4.5M``, ``1.2G``."""
    if n is None or not finite(n):
        return number(n)
    n = float(n)
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.3g}{suffix}"
    return f"{n:.3g}" if n != int(n) else str(int(n))


def clock(seconds: float | None) -> str:
    """Elapsed time for a column: ``m:ss`` or ``h:mm:ss``; ``?`` when unknown."""
    if seconds is None or not finite(seconds) or seconds < 0:
        return "?"
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def duration(seconds: float | None) -> str:
    """A span for a sentence: ``12s``, ``3m05s``, ``1h02m``; ``?`` when unknown."""
    if seconds is None or not finite(seconds) or seconds < 0:
        return "?"
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def subscript(n: int) -> str:
    """``n`` in subscript digits (``30`` → ``₃₀``)."""
    return str(n).translate(_SUBSCRIPTS)


def kappa_label(k: int | None) -> str:
    """The name of κ_k = |λ₁|/|λ_k|: ``κ₃₀``, or ``κₖ`` when k is not known."""
    return "κ" + (subscript(k) if k else "ₖ")


def eigen_label(i: int) -> str:
    """The name of the i-th eigenvalue (1-based): ``λ₁``."""
    return "λ" + subscript(i)


def setting(value: object) -> str:
    """A run setting's value: floats to 3 significant digits, others as they are;
    ``?`` when unknown."""
    if value is None:
        return "?"
    if isinstance(value, float):
        return number(value, 3)
    return str(value)


def run_labels(settings: Sequence[Mapping[str, object]], names: Sequence[str],
               differing: Collection[str], *,
               given: Sequence[str | None] | None = None) -> list[str]:
    """One short label per run, by the settings in which the runs differ: ``η=0.1``,
    ``S=32 β=0.9`` (``differing`` keys in :data:`SETTING_SYMBOLS` order, then any other
    differing key's bare value: the model, the dataset, then the rest by name). A label
    the user ``given`` is kept as it is; a run with no differing setting is labelled by
    its name; labels that are still equal get ``#1``, ``#2``, ... appended."""
    first = [*SETTING_SYMBOLS, "model", "dataset"]
    order = [k for k in first if k in differing]
    order += sorted(k for k in differing if k not in first)
    labels: list[str] = []
    for i, (values, name) in enumerate(zip(settings, names, strict=True)):
        user = given[i] if given is not None else None
        if user:
            labels.append(user)
            continue
        parts = [(SETTING_SYMBOLS[k] + "=" if k in SETTING_SYMBOLS else "")
                 + setting(values.get(k)) for k in order]
        labels.append(" ".join(parts) or name)
    totals = Counter(labels)
    seen: Counter[str] = Counter()
    for i, lab in enumerate(labels):
        if totals[lab] > 1:
            seen[lab] += 1
            labels[i] = f"{lab} #{seen[lab]}"
    return labels


def clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, ending in ``…`` when cut."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"
