"""Drawing the sweep view: cell status badges, the cells table's rows, the note, the
header, the state badge, and the Fig. 3 summary tables as Rich text.
"""

from __future__ import annotations

from typing import Final

from rich.text import Text

from sgdtop import format as fmt
from sgdtop.compare import format_value
from sgdtop.sweep import PENDING, Sweep, SweepResult, SweepSummary, cell_rows, fit_rows
from sgdtop.tui.draw import palette
from sgdtop.tui.draw.layout import fit_parts, pair
from sgdtop.tui.state.sweep import STOPPING, BoardNote, SweepBoard, SweepCounts

#: Glyph and style of each cell status.
CELL_STATUS_STYLES: Final[dict[str, tuple[str, str]]] = {
    PENDING: ("○", palette.DIM),
    "running": ("●", palette.GOOD),
    STOPPING: ("◌", palette.WARN),
    "completed": ("■", palette.GOOD),
    "interrupted": ("■", palette.WARN),
    "diverged": ("✖", palette.BAD),
    "failed": ("✖", palette.BAD),
    "died": ("✖", palette.BAD),
}


def cell_status_text(status: str) -> Text:
    """The status badge of a cell: ``● running``, ``■ completed``, ``✖ failed``, ..."""
    glyph, style = CELL_STATUS_STYLES.get(status, ("?", palette.WARN))
    label = "stopping…" if status == STOPPING else status
    return Text(f"{glyph} {label}", style=style, no_wrap=True)


def note_text(note: BoardNote) -> Text:
    """The note line: the cell's name, its status badge, the message."""
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append(note.cell, "bold")
    out.append(" ")
    out.append_text(cell_status_text(note.status))
    out.append(f": {note.message}", palette.DIM)
    return out


def row_cells(board: SweepBoard, index: int) -> list[Text]:
    """Row ``index`` of the cells table, in the order of :meth:`SweepBoard.columns`."""
    row = board.rows[index]
    status = board.display_status(row)
    dim = status == PENDING

    def num(text: str) -> Text:
        return Text(text, justify="right", style=palette.DIM if dim else "")

    out = [Text(str(index + 1), justify="right", style=palette.DIM)]
    out += [num(format_value(row.cell.settings.get(k))) for k in board.axes]
    out.append(cell_status_text(status))
    epoch = "–" if row.epoch is None else str(row.epoch + 1)
    if row.epochs is not None:
        epoch += f"/{row.epochs}"
    out.append(num(epoch if row.epoch is not None or row.epochs is not None else "–"))
    out.append(num("–" if row.step is None else f"{row.step:,}"))
    out.append(num(fmt.number(row.spectral_norm, 4)))
    out.append(num(_test_text(board, index)))
    elapsed = board.elapsed(row)
    out.append(num("–" if elapsed is None else fmt.clock(elapsed)))
    return out


def _test_text(board: SweepBoard, index: int) -> str:
    row = board.rows[index]
    if board.regression:
        return fmt.number(row.test_loss, 4)
    acc = row.test_acc
    return fmt.percent(None if acc is None else 100 * acc)


def state_text(result: SweepResult | None, *, stopping: bool, escalated: bool,
               failed: bool) -> Text:
    """The sweep's state badge: running, stopping, done, interrupted or failed."""
    if result is not None:
        if result.interrupted:
            return cell_status_text("interrupted")
        if result.exit_code == 0:
            return Text("■ done", style=palette.GOOD, no_wrap=True)
        return Text("✖ failed cells", style=palette.BAD, no_wrap=True)
    if stopping:
        return Text("◌ stopping hard…" if escalated else "◌ stopping…", style=palette.WARN,
                    no_wrap=True)
    return Text("● running", style=palette.BAD if failed else palette.GOOD, no_wrap=True)


def header_text(sweep: Sweep, counts: SweepCounts, state: Text, elapsed: float | None,
                jobs: int, width: int) -> Text:
    """Two lines: ``sgdtop sweep``, the id, profile and jobs, the elapsed time and the
    state on the right; then the cells done, running, pending, (interrupted,) failed."""
    right = pair("t", fmt.clock(elapsed))
    right.append("  ")
    right.append_text(state)
    right.truncate(max(10, width // 2), overflow="ellipsis")
    ident = [Text(" sgdtop sweep ", style="bold reverse"), Text(sweep.sweep_id, style="bold"),
             pair("profile", sweep.profile_name, ""), pair("jobs", str(jobs))]
    left = fit_parts(ident, max(0, width - right.cell_len - 1))
    line1 = Text(no_wrap=True, overflow="crop")
    line1.append_text(left)
    line1.append(" " * max(1, width - left.cell_len - right.cell_len))
    line1.append_text(right)

    def count(n: int, status: str, label: str) -> Text:
        glyph, style = CELL_STATUS_STYLES[status]
        out = Text(no_wrap=True)
        out.append(f"{glyph} ", style if n else palette.DIM)
        out.append(str(n), "bold")
        out.append(f" {label}", palette.DIM)
        return out

    parts = [pair("cells", str(counts.total)), count(counts.done, "completed", "done"),
             count(counts.running, "running", "running"),
             count(counts.pending, PENDING, "pending")]
    if counts.interrupted:
        parts.append(count(counts.interrupted, "interrupted", "interrupted"))
    parts.append(count(counts.failed, "failed", "failed"))
    line2 = fit_parts(parts, width)
    if len(line2.plain) < len("  ".join(p.plain for p in parts)):
        line2 = fit_parts(parts, width, " ")  # narrow: one space between the counts
    return Text("\n").join([line1, line2])


def summary_table_rows(summary: SweepSummary) -> tuple[list[str], list[list[Text]]]:
    """The Fig. 3 per-cell table (:func:`~sgdtop.sweep.cell_rows`) as a header and rows of
    Rich text: the cell name left, numbers right, the status in its color."""
    rows = cell_rows(summary)
    header = rows[0]
    status_col = header.index("status")
    out = []
    for row in rows[1:]:
        cells = []
        for i, value in enumerate(row):
            if i == status_col:
                cells.append(cell_status_text(value))
            elif i == 0:
                cells.append(Text(value, style=palette.DIM))
            else:
                cells.append(Text(value, justify="right"))
        out.append(cells)
    return header, out


def fit_table_rows(summary: SweepSummary) -> tuple[list[str], list[list[Text]]]:
    """The fitted lines (:func:`~sgdtop.sweep.fit_rows`) as a header and rows of text."""
    rows = fit_rows(summary)
    return rows[0], [[Text(v, justify="left" if i < 3 else "right") for i, v in enumerate(r)]
                     for r in rows[1:]]
