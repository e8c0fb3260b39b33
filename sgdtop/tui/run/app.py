"""The Textual app: live (``sgdtop run``), followed (``sgdtop watch``) and replayed
(``sgdtop replay``) runs, one screen, one code path.

Data flow: events → :class:`~sgdtop.tui.state.run.RunState` (plain Python) → view
snapshots → widgets. A live or followed feed is read by a daemon thread that queues events
and posts at most one :class:`~sgdtop.tui.run.messages.EventsArrived` message per refresh
tick; the refresh timer (:attr:`SgdtopApp.refresh_hz`) folds the queued events into the
state within a time budget (:class:`~sgdtop.tui.state.run.Backlog`: a flood never blocks
the UI) and redraws only the areas whose version changed. A replay moves a
:class:`~sgdtop.tui.state.replay.ReplayCursor` on the same timer
(:class:`~sgdtop.tui.state.run.ReplayFold` folds what is due).

The feed's reader is a plain daemon thread (:mod:`sgdtop.tui.run.reader`);
:func:`run_live` closes the feed after the app returns.

Never imports torch (a test checks it in a fresh interpreter). See docs/design.md (the TUI).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import ClassVar, Final

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer

from sgdtop.feed import EventFeed
from sgdtop.schema import RUN_STATUSES, Record
from sgdtop.tui.draw.header import mode_text
from sgdtop.tui.help import HelpScreen
from sgdtop.tui.run.messages import EventsArrived, FeedEnded
from sgdtop.tui.run.reader import FeedReader
from sgdtop.tui.run.sources import LiveSource, ReplaySource, Source
from sgdtop.tui.run.widgets import (
    EigenChart,
    EigenPanel,
    HeaderBar,
    LogPanel,
    MetricsPanel,
    RunHelpScreen,
    SliceChart,
    SpectrumStatus,
)
from sgdtop.tui.screenshot import save_svg
from sgdtop.tui.state.ingest import Backlog, ReplayFold
from sgdtop.tui.state.replay import ReplayCursor
from sgdtop.tui.state.run import RunState

#: Seconds of event folding allowed per refresh tick (the rest waits for the next tick).
INGEST_BUDGET_S: Final[float] = 0.05
#: Longest wall-clock step the replay clock takes per tick (a stalled UI does not jump).
MAX_TICK_S: Final[float] = 0.5
#: The chart (the costliest panel: up to ~50 ms at 200 columns) redraws on the refresh
#: timer at most this often; keys (seek, scale) redraw it at once.
CHART_MIN_INTERVAL_S: Final[float] = 0.5


_REPLAY_ACTIONS: Final[frozenset[str]] = frozenset(
    {"play_pause", "step_back", "step_forward", "faster", "slower", "to_start", "to_end"}
)


class SgdtopApp(App[str | None]):
    """sgdtop's screen. Construct with a :class:`LiveSource` or :class:`ReplaySource`; for
    tests, :meth:`ingest` and :meth:`end_feed` drive it deterministically (a
    ``ReplaySource(events, instant=True)`` shows a whole recording at mount)."""

    CSS_PATH = Path(__file__).parent.parent / "sgdtop.tcss"
    TITLE = "sgdtop"
    ENABLE_COMMAND_PALETTE = False
    # instance variables on App that a class-level default sets for every instance
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]  # noqa: RUF012
    VERTICAL_BREAKPOINTS = [(0, "-short"), (36, "-tall")]  # noqa: RUF012
    step_group = Binding.Group("step", compact=True)
    speed_group = Binding.Group("speed", compact=True)
    ends_group = Binding.Group("ends", compact=True)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "request_quit", "quit"),
        Binding("ctrl+c", "request_quit", "quit", show=False, priority=True),
        Binding("question_mark", "help", "help"),
        Binding("space", "play_pause", "play", priority=True),
        Binding("left", "step_back", "step", priority=True, group=step_group),
        Binding("right", "step_forward", "step", priority=True, group=step_group),
        Binding("plus", "faster", "speed", group=speed_group),
        Binding("minus", "slower", "speed", group=speed_group),
        Binding("equals_sign", "faster", "speed", show=False),
        Binding("g", "to_start", "start/end", group=ends_group),
        Binding("G", "to_end", "start/end", group=ends_group),
        Binding("l", "toggle_log", "lin/log"),
        Binding("v", "toggle_slices", "slices"),
        Binding("p", "toggle_pause", "pause view"),
        Binding("s", "save_svg", "svg"),
        Binding("tab", "focus_next", "panel"),
    ]

    _header: HeaderBar
    _metrics: MetricsPanel
    _eigen: EigenPanel
    _spectrum_status: SpectrumStatus
    _chart: EigenChart
    _log_panel: LogPanel

    def __init__(
        self,
        source: Source,
        *,
        refresh_hz: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.source = source
        self.refresh_hz = refresh_hz
        self.state = RunState()
        self.cursor: ReplayCursor | None = None
        self._replay: ReplayFold | None = None
        if isinstance(source, ReplaySource):
            self.mode = "replay"
            self.cursor = ReplayCursor(source.events, speed=source.speed)
            self.cursor.playing = source.autoplay and not source.instant
            self._replay = ReplayFold(self.cursor)
            self.state = self._replay.state
        else:
            self.mode = "live" if source.stoppable else "watch"
        self.display_paused = False
        self.log_scale = False
        self.screenshots: list[Path] = []
        self._clock = clock
        self._last_tick: float | None = None
        self._backlog = Backlog()
        self._pending_end: FeedEnded | None = None
        self._stop_requested = False
        self._reader: FeedReader | None = None
        self._shown: dict[str, object] = {}
        self._reset_log = False
        self._chart_drawn = 0.0
        self.feed_finished = False
        """True once the feed ended and every event it gave was folded (live/watch)."""

    # -- layout ------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield HeaderBar(id="header")
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield MetricsPanel(id="metrics")
                yield EigenChart(id="chart")
                yield SliceChart(id="slices")
            with Vertical(id="right"):
                yield EigenPanel(id="eigen")
                yield SpectrumStatus(id="spectrum-status")
        yield LogPanel(id="log")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        # Kept once: the refresh timer touches them ten times a second.
        self._header = self.query_one(HeaderBar)
        self._metrics = self.query_one(MetricsPanel)
        self._eigen = self.query_one(EigenPanel)
        self._spectrum_status = self.query_one(SpectrumStatus)
        self._chart = self.query_one(EigenChart)
        self._slices = self.query_one(SliceChart)
        self._slices.display = False
        self._log_panel = self.query_one(LogPanel)
        self._metrics.border_title = "curvature"
        self._eigen.border_title = "top-k eigenvalues"
        self._log_panel.border_title = "log"
        self._chart.show(self.state.chart_view())
        if self.cursor is not None:
            if isinstance(self.source, ReplaySource) and self.source.instant:
                self.cursor.to_end()
            else:
                self.cursor.to_start()
            self._replay_catch_up(budget=None)
        elif isinstance(self.source, LiveSource):
            self._reader = FeedReader(self.source.feed, self.post_message)
            self._reader.start()
        self._render(force=True)
        self.set_interval(1.0 / self.refresh_hz, self._tick)

    # -- the feed ----------------------------------------------------------------------

    @property
    def _on_screen(self) -> bool:
        """False while starting or shutting down (no screen to draw on)."""
        return self.is_running and bool(self.screen_stack)

    def on_events_arrived(self, _: EventsArrived) -> None:
        self._drain_inbox(reset_wake=False)
        self._fold_backlog(INGEST_BUDGET_S / 2)

    def on_feed_ended(self, message: FeedEnded) -> None:
        self._pending_end = message
        if self._on_screen:
            self._finish_feed()

    def _drain_inbox(self, *, reset_wake: bool) -> None:
        if self._reader is not None:
            self._backlog.extend(self._reader.drain(reset_wake=reset_wake))

    @property
    def _inbox_pending(self) -> bool:
        return self._reader is not None and self._reader.pending

    def _fold_backlog(self, budget: float | None) -> None:
        """Fold queued events, for at most ``budget`` seconds (None: all of them)."""
        self._backlog.fold_into(self.state, budget)

    def _finish_feed(self) -> None:
        """Apply the end of the feed once everything before it is folded."""
        end = self._pending_end
        if end is None or self._backlog or self._inbox_pending:
            return
        self._pending_end = None
        self.state.end_stream(end.reason)
        self.feed_finished = True

    def ingest(self, events: Iterable[Record]) -> None:
        """Fold ``events`` now and redraw (tests; also usable by an embedding program)."""
        self._backlog.extend(events)
        self._fold_backlog(None)
        self._render()

    def end_feed(self, reason: str | None = None, *, broken: bool = False) -> None:
        """The stream ended (as a feed would report it), now."""
        self._pending_end = FeedEnded(reason, broken=broken)
        self._finish_feed()
        self._render()

    # -- the clock ---------------------------------------------------------------------

    def _tick(self) -> None:
        if not self._on_screen:
            return
        now = self._clock()
        dt = 0.0 if self._last_tick is None else min(max(now - self._last_tick, 0.0), MAX_TICK_S)
        self._last_tick = now
        if self.cursor is not None:
            self.cursor.advance(dt)
            self._replay_catch_up(INGEST_BUDGET_S)
        else:
            self._drain_inbox(reset_wake=True)
            self._fold_backlog(INGEST_BUDGET_S)
            self._finish_feed()
            source = self.source
            if (self.feed_finished and isinstance(source, LiveSource)
                    and source.quit_when_ended is not None and source.quit_when_ended()):
                self._render(force=True)
                self.exit(self.final_status)
                return
        self._render(throttle=True)

    def _replay_catch_up(self, budget: float | None) -> None:
        """Bring the state to the cursor's position (rebuilding it after a step back)."""
        replay = self._replay
        assert replay is not None
        if replay.catch_up(budget):
            self.state = replay.state
            self._shown.clear()
            self._reset_log = True

    @property
    def caught_up(self) -> bool:
        """True when every event received (live) or due (replay) has been folded."""
        if self._replay is not None:
            return self._replay.caught_up
        return not self._backlog and not self._inbox_pending

    @property
    def final_status(self) -> str | None:
        """run_end's status once the run ended with one, else None."""
        return self.state.status if self.state.status in RUN_STATUSES else None

    # -- drawing -----------------------------------------------------------------------

    def _mode_text(self) -> Text:
        return mode_text(self.mode, self.cursor, paused=self.display_paused)

    def _changed(self, key: str, value: object, force: bool) -> bool:
        if force or self._shown.get(key) != value:
            self._shown[key] = value
            return True
        return False

    def _render(self, *, force: bool = False, throttle: bool = False) -> None:
        """Push fresh snapshots to the widgets whose area changed (not while paused);
        with ``throttle`` (the timer) the chart waits for :data:`CHART_MIN_INTERVAL_S`."""
        if self.display_paused and not force:
            return
        s = self.state
        mode = self._mode_text()
        if self._changed("header", (s.header_version, mode.plain), force):
            self._header.show(s.header_view(), mode)
        if self._changed("metrics", s.metrics_version, force):
            self._metrics.show(s.metric_views())
        if self._changed("spectrum", s.spectrum_version, force):
            view = s.spectrum_view()
            self._eigen.show(view)
            self._spectrum_status.show(view)
            k = view.k or len(view.rows)
            self._eigen.border_title = f"top-{k} eigenvalues" if k else "eigenvalues"
        now = time.monotonic()
        chart_due = not throttle or now - self._chart_drawn >= CHART_MIN_INTERVAL_S
        if chart_due and self._changed("chart", s.chart_version, force):
            self._chart.show(s.chart_view())
            self._chart_drawn = now
        if self._changed("slices", s.slices_version, force):
            self._slices.show(s.slice_view())
        if self._changed("log", s.log_seq, force) or self._reset_log:
            self._log_panel.sync(s.log_lines(), s.log_seq, reset=self._reset_log)
            self._reset_log = False

    # -- actions -----------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in _REPLAY_ACTIONS:
            return self.cursor is not None
        return True

    def action_request_quit(self) -> None:
        """Live: the first q asks the trainer to stop (it writes run_end); a second q, or a
        q once the run has ended, quits. Watch and replay: quit."""
        source = self.source
        if (
            isinstance(source, LiveSource)
            and source.stoppable
            and not self._stop_requested
            and not self.state.ended
            and not self.feed_finished
        ):
            self._stop_requested = True
            source.feed.stop()
            self.state.mark_stopping()
            self._render()
            self.notify("stopping the trainer… press q again to quit now", timeout=4)
            return
        self.exit(self.final_status)

    def action_help(self) -> None:
        """Show the keys and definitions."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(RunHelpScreen())

    def action_toggle_log(self) -> None:
        """Linear / log scale of the eigenvalue chart."""
        self.log_scale = not self.log_scale
        self._chart.set_log_scale(self.log_scale)

    def action_toggle_slices(self) -> None:
        """Show the loss slices along the top eigenvectors in place of the eigenvalue
        chart, or back."""
        show = not self._slices.display
        self._slices.display = show
        self._chart.display = not show
        (self._slices if show else self._chart).focus()

    def action_toggle_pause(self) -> None:
        """Freeze / unfreeze the display; events keep being folded meanwhile."""
        self.display_paused = not self.display_paused
        header = self._header
        if self.display_paused:
            if header.view is not None:
                header.show(header.view, self._mode_text())
        else:
            self._render(force=True)

    def action_save_svg(self) -> None:
        """Save an SVG of the screen into the run directory (else the current one)."""
        run_dir = (
            self.source.run_dir if isinstance(self.source, ReplaySource)
            else self.source.feed.run_dir
        )
        folder = run_dir if run_dir is not None else Path.cwd()
        stem = f"sgdtop-step{self.state.step or 0:07d}"
        saved = save_svg(self, folder, stem)
        if saved is not None:
            self.screenshots.append(saved)

    def _after_seek(self) -> None:
        self._replay_catch_up(budget=None)
        self._render()

    def action_play_pause(self) -> None:
        """Replay: play / pause."""
        if self.cursor is not None:
            self.cursor.toggle()
            self._after_seek()

    def action_step_back(self) -> None:
        """Replay: one measurement back (pauses)."""
        if self.cursor is not None:
            self.cursor.previous_measurement()
            self._after_seek()

    def action_step_forward(self) -> None:
        """Replay: one measurement forward (pauses)."""
        if self.cursor is not None:
            self.cursor.next_measurement()
            self._after_seek()

    def action_faster(self) -> None:
        """Replay: double the speed."""
        if self.cursor is not None:
            self.cursor.faster()
            self._render()

    def action_slower(self) -> None:
        """Replay: halve the speed."""
        if self.cursor is not None:
            self.cursor.slower()
            self._render()

    def action_to_start(self) -> None:
        """Replay: back to the start of the run."""
        if self.cursor is not None:
            self.cursor.to_start()
            self._after_seek()

    def action_to_end(self) -> None:
        """Replay: jump to the end of the run (pauses)."""
        if self.cursor is not None:
            self.cursor.to_end()
            self._after_seek()


# -- entry points (called by the CLI) ------------------------------------------------------


def run_live(feed: EventFeed, *, quit_when_ended: Callable[[], bool] | None = None,
             ) -> str | None:
    """Show a live run until the user quits; returns run_end's status, or None when the
    run did not end with one. The first ``q`` asks the trainer to stop cleanly
    (``feed.stop()``); a second ``q``, or a ``q`` after the end, quits; so does the end of
    the feed once ``quit_when_ended()`` is True. The feed is always closed on the way
    out."""
    app = SgdtopApp(LiveSource(feed, stoppable=True, quit_when_ended=quit_when_ended))
    try:
        app.run()
    finally:
        feed.close()
    return app.final_status


def run_watch(feed: EventFeed) -> str | None:
    """Follow a run written elsewhere; ``q`` quits (never stops the trainer). Returns
    run_end's status if it was seen, else None. The feed is closed on the way out."""
    app = SgdtopApp(LiveSource(feed, stoppable=False))
    try:
        app.run()
    finally:
        feed.close()
    return app.final_status


def run_replay(
    records: Sequence[Record], *, run_dir: Path | None, speed: float = 1.0,
    instant: bool = False,
) -> None:
    """Replay a saved run: time runs at the events' ``t`` × ``speed``; ``instant`` opens at
    the end. Keys: space play/pause, ←/→ one measurement, +/- speed, g/G start/end."""
    SgdtopApp(ReplaySource(records, run_dir=run_dir, speed=speed, instant=instant)).run()
