"""The run view's header: the run, the mode (live, watching, the replay's play state) and
the status badge; η, S, β, epoch, step, elapsed time and throughput.
"""

from __future__ import annotations

from rich.text import Text

from sgdtop import format as fmt
from sgdtop.tui.draw.layout import fit_parts, pair
from sgdtop.tui.draw.palette import DIM, STATUS_STYLES, WARN
from sgdtop.tui.state.replay import ReplayCursor
from sgdtop.tui.state.views import ENDED_STATUSES, LOST, STOPPING, WAITING, HeaderView


def status_text(status: str, message: str = "", *, verbose: bool = False) -> Text:
    """The status badge (``● running``, ``✖ diverged``, ...)."""
    glyph, style = STATUS_STYLES.get(status, ("?", WARN))
    label = {WAITING: "waiting", STOPPING: "stopping…", LOST: "trainer lost"}.get(status, status)
    out = Text(f"{glyph} {label}", style=style, no_wrap=True)
    if verbose and message and status in ENDED_STATUSES:
        out.append(f": {message}", style)
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
        ident.append(Text(info.dataset or "?"))
        ident.append(pair("params", fmt.count(info.num_params)))
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
    parts.append(pair("η", fmt.number(lr, 3)))
    if info is not None:
        parts.append(pair("S", str(info.batch_size) if info.batch_size is not None else "?"))
        parts.append(pair("β", fmt.number(info.momentum, 3)))
    epoch = "–" if view.epoch is None else str(view.epoch + 1)
    if info is not None and info.epochs:  # 0: not known (a Monitor)
        epoch += f"/{info.epochs}"
    parts.append(pair("epoch", epoch))
    parts.append(pair("step", "–" if view.step is None else f"{view.step:,}"))
    parts.append(pair("t", fmt.clock(view.elapsed)))
    if view.examples_per_s is not None:
        thru = Text(no_wrap=True)
        thru.append(fmt.count(view.examples_per_s), "bold")
        thru.append(" ex/s", DIM)
        parts.append(thru)
    line2 = fit_parts(parts, width, "   " if width >= 100 else "  ")
    return Text("\n").join([line1, line2])


def mode_text(mode: str, cursor: ReplayCursor | None, *, paused: bool = False) -> Text:
    """The mode at the header's right: ``live``, ``watching``, or the replay's play state,
    speed and measurement (``replay ▶ 4× λ 3/21``); ``‖ view paused`` first when the
    display is frozen."""
    out = Text(no_wrap=True)
    if paused:
        out.append("‖ view paused  ", WARN)
    if cursor is not None:
        out.append("replay ", DIM)
        out.append("▶ " if cursor.playing else "‖ ", "bold")
        out.append(f"{fmt.number(cursor.speed, 3)}×", "bold")
        out.append(f" λ {cursor.measurement_index}/{len(cursor.measurements)}", DIM)
    elif mode == "watch":
        out.append("watching", DIM)
    else:
        out.append("live", DIM)
    return out
