"""One line of the run view's log panel: time, level mark, source, message."""

from __future__ import annotations

from rich.text import Text

from sgdtop import format as fmt
from sgdtop.tui.draw.palette import DIM, LOG_STYLES
from sgdtop.tui.state.views import LogLine


def log_text(line: LogLine) -> Text:
    """One log line: time, level mark, source, message."""
    style = LOG_STYLES.get(line.level, "")
    out = Text(no_wrap=False)
    out.append(fmt.clock(line.t).rjust(7) + " ", DIM)
    mark = {"warning": "! ", "error": "✖ "}.get(line.level, "  ")
    out.append(mark, style)
    if line.source not in ("trainer", "sgdtop"):
        out.append(f"[{line.source}] ", DIM)
    out.append(line.message, style if line.level != "info" else "")
    return out
