"""Laying out Rich text in a width: header fields, parts that fit, the first title
that fits.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

from sgdtop.tui.draw.palette import DIM


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


def first_fitting(candidates: Sequence[str], width: int) -> str:
    """The first Rich markup of ``candidates`` (longest first) whose text fits ``width``
    cells, else the last one."""
    for markup in candidates:
        if Text.from_markup(markup).cell_len <= width:
            return markup
    return candidates[-1]
