"""The run app driven by Pilot: live/watch feeds (a thread), replay keys, run end,
trainer crash, broken pipe, NaN values, pause, screenshots, resize, NO_COLOR.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from textual.app import App
from textual.pilot import Pilot
from tui_fixtures import (
    ListFeed,
    cut_off_run,
    diverging_run,
    drive,
    long_run,
    normal_run,
    screen_text,
    wait_for,
)

from sgdtop.tui.help import HelpScreen
from sgdtop.tui.run import LiveSource, ReplaySource, SgdtopApp, run_live, run_replay, run_watch
from sgdtop.tui.run.messages import EventsArrived
from sgdtop.tui.run.widgets import (
    EigenBody,
    EigenChart,
    HeaderBar,
    LogPanel,
    MetricsPanel,
)
from sgdtop.tui.state import LOST, STOPPING


def header_plain(app: SgdtopApp) -> str:
    header = app.query_one(HeaderBar)
    return header.render().plain


# -- replay --------------------------------------------------------------------------


def test_replay_instant_shows_the_whole_run() -> None:
    async def body(app: SgdtopApp, pilot: Pilot[str | None]) -> None:
        assert app.caught_up and app.state.status == "completed"
        assert "completed" in header_plain(app)
        table = app.query_one(EigenBody)
        assert table.view is not None and len(table.view.rows) == 30
        assert app.query_one(EigenChart).view is not None
        assert len(app.query_one(LogPanel).lines) >= 4
        assert app.cursor is not None and not app.cursor.playing

    drive(SgdtopApp(ReplaySource(normal_run(), instant=True)), body)


def test_replay_keys_step_seek_and_speed() -> None:
    events = normal_run()

    async def body(app: SgdtopApp, pilot: Pilot[str | None]) -> None:
        c = app.cursor
        assert c is not None and c.measurement_index == 21
        await pilot.press("left")
        assert c.measurement_index == 20 and app.caught_up
        assert app.state.spectrum is not None and app.state.spectrum.step == 475
        assert app.state.status != "completed"  # rebuilt: the run_end is not reached yet
        await pilot.press("left", "left")
        assert app.state.spectrum.step == 425  # type: ignore[union-attr]
        await pilot.press("right")
        assert app.state.spectrum.step == 450  # type: ignore[union-attr]
        await pilot.press("g")
        assert c.measurement_index == 0 and app.state.spectrum is None
        assert app.state.info is not None  # run_start is shown at the start
        await pilot.press("right")
        assert app.state.spectrum is not None and app.state.spectrum.step == 1
        await pilot.press("G")
        assert c.at_end and app.state.status == "completed"
        speed = c.speed
        await pilot.press("plus")
        assert c.speed == speed * 2
        await pilot.press("minus", "minus")
        assert c.speed == speed / 2
        assert "0.5×" in header_plain(app)
        await pilot.press("space")  # at the end: restarts from the start, playing
        assert c.playing and c.measurement_index == 0
        await pilot.press("space")
        assert not c.playing

    drive(SgdtopApp(ReplaySource(events, instant=True)), body)


def test_replay_plays_to_the_end() -> None:
    async def body(app: SgdtopApp, pilot: Pilot[str | None]) -> None:
        assert app.cursor is not None
        await wait_for(pilot, lambda: app.state.status == "completed")
        assert app.cursor.at_end and not app.cursor.playing

    app = SgdtopApp(ReplaySource(normal_run(), speed=60_000.0))
    assert app.cursor is not None and app.cursor.playing
    drive(app, body)


def test_replay_of_a_cut_off_run_says_so() -> None:
    async def body(app: SgdtopApp, pilot: Pilot[str | None]) -> None:
        assert app.state.status == LOST
        assert "no run_end" in app.state.status_message
        assert "trainer lost" in header_plain(app)
        assert app.state.spectrum is not None  # data kept

    drive(SgdtopApp(ReplaySource(cut_off_run(), instant=True)), body)


def test_diverging_run_shows_nan_and_inf() -> None:
    async def body(app: SgdtopApp, pilot: Pilot[str | None]) -> None:
        assert app.state.status == "diverged"
        text = screen_text(app)
        assert "nan" in text and "diverged" in text
        await pilot.press("l")  # the log scale copes with inf/nan too
        assert app.query_one(EigenChart).log_scale
        await pilot.press("left", "left", "left")  # through the inf/nan measurements
        await pilot.pause()
        assert app.state.spectrum is not None

    drive(SgdtopApp(ReplaySource(diverging_run(), instant=True)), body)


def test_replay_keys_do_nothing_live() -> None:
    feed = ListFeed(normal_run(end=False), hold=True)

    async def body(app: SgdtopApp, pilot: Pilot[str | None]) -> None:
        assert app.check_action("step_back", ()) is False
        await pilot.press("left", "space", "g")
        assert app.cursor is None
        feed.close()

    drive(SgdtopApp(LiveSource(feed)), body)


# -- live and watch ------------------------------------------------------------------


def test_live_q_stops_the_trainer_then_quits() -> None:
    feed = ListFeed(normal_run(end=False), hold=True)
    app = SgdtopApp(LiveSource(feed))

    async def body(app: SgdtopApp, pilot: Pilot[str | None]) -> None:
        await wait_for(pilot, lambda: app.caught_up and app.state.step == 500)
        assert app.state.status == "running" and feed.stop_calls == 0
        await pilot.press("q")
        assert feed.stop_calls == 1 and app.is_running
        assert app.state.status in (STOPPING, "interrupted")
        await wait_for(pilot, lambda: "interrupted" in header_plain(app))  # next redraw
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running)

    drive(app, body)
    assert app.return_value == "interrupted" and app.final_status == "interrupted"
    assert feed.stop_calls == 1


def test_live_q_after_the_end_quits_at_once() -> None:
    feed = ListFeed(normal_run())
    app = SgdtopApp(LiveSource(feed))

    async def body(app: SgdtopApp, pilot: Pilot[str | None]) -> None:
        await wait_for(pilot, lambda: app.feed_finished)
        assert app.state.status == "completed"
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running)

    drive(app, body)
    assert feed.stop_calls == 0 and app.return_value == "completed"


def test_after_a_sigterm_the_view_quits_when_the_run_ends() -> None:
    """`sgdtop run` got SIGTERM (nobody may be at the terminal): the trainer was asked to
    stop; once its stream ends the live view quits by itself, without a q."""
    terminated = [False]
    feed = ListFeed(normal_run(end=False), hold=True)
    app = SgdtopApp(LiveSource(feed, quit_when_ended=lambda: terminated[0]))

    async def body(app: SgdtopApp, pilot: Pilot[str | None]) -> None:
        await wait_for(pilot, lambda: app.caught_up and app.state.step == 500)
        terminated[0] = True
        await pilot.pause(0.3)
        assert app.is_running  # the run has not ended yet
        feed.stop()  # what the signal handler does: the trainer writes run_end, exits
        await wait_for(pilot, lambda: not app.is_running)

    drive(app, body)
    assert app.return_value == "interrupted"


def test_watch_q_never_stops_the_trainer() -> None:
    feed = ListFeed(normal_run(end=False), hold=True)
    app = SgdtopApp(LiveSource(feed, stoppable=False))

    async def body(app: SgdtopApp, pilot: Pilot[str | None]) -> None:
        await wait_for(pilot, lambda: app.state.step == 500)
        assert "watching" in header_plain(app)
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running)

    drive(app, body)
    feed.close()
    assert feed.stop_calls == 0 and app.final_status is None


def test_trainer_crash_is_shown_and_the_data_kept() -> None:
    reason = "trainer exited with code -9 before run_end"
    feed = ListFeed(cut_off_run(), ended_reason=reason)

    async def body(app: SgdtopApp, pilot: Pilot[str | None]) -> None:
        await wait_for(pilot, lambda: app.feed_finished)
        assert app.state.status == LOST and app.state.status_message == reason
        await wait_for(pilot, lambda: "trainer lost" in header_plain(app))
        log = app.query_one(LogPanel)
        assert any(reason in strip.text for strip in log.lines)
        assert app.query_one(EigenBody).view.rows  # type: ignore[union-attr]
        assert app.final_status is None

    drive(SgdtopApp(LiveSource(feed)), body)


def test_broken_pipe_is_shown() -> None:
    feed = ListFeed(normal_run(end=False)[:150], error=BrokenPipeError(32, "Broken pipe"))

    async def body(app: SgdtopApp, pilot: Pilot[str | None]) -> None:
        await wait_for(pilot, lambda: app.feed_finished)
        assert app.state.status == LOST
        assert "event stream broken" in app.state.status_message
        assert "Broken pipe" in app.state.status_message
        assert app.state.events_applied == 150

    drive(SgdtopApp(LiveSource(feed)), body)


def test_a_flood_of_events_is_ingested_in_batches() -> None:
    events = long_run(20_000)
    feed = ListFeed(events, hold=True)
    wakes: list[int] = []

    class Counting(SgdtopApp):
        def on_events_arrived(self, message: EventsArrived) -> None:
            wakes.append(1)
            super().on_events_arrived(message)

    async def body(app: SgdtopApp, pilot: Pilot[str | None]) -> None:
        await wait_for(pilot, lambda: app.state.events_applied == len(events), timeout=30)
        assert len(wakes) < len(events) / 50  # coalesced, not one message per event
        feed.close()

    drive(Counting(LiveSource(feed)), body)


def test_ingest_and_end_feed_drive_the_app_deterministically() -> None:
    feed = ListFeed([], hold=True)
    events = normal_run(end=False)

    async def body(app: SgdtopApp, pilot: Pilot[str | None]) -> None:
        app.ingest(events[:100])
        assert app.state.events_applied == 100
        app.ingest(events[100:])
        app.end_feed("trainer exited with code 1 before run_end")
        assert app.state.status == LOST and app.feed_finished
        feed.close()

    drive(SgdtopApp(LiveSource(feed)), body)


# -- keys common to all modes --------------------------------------------------------


def test_pause_freezes_the_view_while_data_is_ingested() -> None:
    feed = ListFeed([], hold=True)
    events = normal_run(end=False)

    async def body(app: SgdtopApp, pilot: Pilot[str | None]) -> None:
        app.ingest(events[:100])
        header = app.query_one(HeaderBar)
        step_before = header.view.step  # type: ignore[union-attr]
        await pilot.press("p")
        assert app.display_paused and "paused" in header_plain(app)
        app.ingest(events[100:])
        await pilot.pause(0.15)
        assert app.state.step == 500
        assert header.view.step == step_before  # type: ignore[union-attr]
        await pilot.resize_terminal(100, 30)  # a resize does not leak new data
        await pilot.pause()
        assert header.view.step == step_before  # type: ignore[union-attr]
        await pilot.press("p")
        assert not app.display_paused and header.view.step == 500  # type: ignore[union-attr]
        feed.close()

    drive(SgdtopApp(LiveSource(feed)), body)


def test_help_log_scale_and_tab() -> None:
    async def body(app: SgdtopApp, pilot: Pilot[str | None]) -> None:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        chart = app.query_one(EigenChart)
        await pilot.press("l")
        assert chart.log_scale and "log" in str(chart.border_title)
        await pilot.press("l")
        assert not chart.log_scale
        seen = set()
        for _ in range(4):
            await pilot.press("tab")
            assert app.focused is not None
            seen.add(app.focused.id)
        assert {"eigen", "chart", "log"} <= seen

    drive(SgdtopApp(ReplaySource(normal_run(), instant=True)), body)


def test_data_keeps_flowing_under_the_help_screen() -> None:
    events = normal_run()
    feed = ListFeed(events[:50], hold=True)

    async def body(app: SgdtopApp, pilot: Pilot[str | None]) -> None:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        app.ingest(events[50:])
        await pilot.pause(0.3)  # a few refresh ticks with the modal on top
        await pilot.press("escape")
        await wait_for(pilot, lambda: "completed" in header_plain(app))
        feed.close()

    drive(SgdtopApp(LiveSource(feed)), body)


def test_screenshot_goes_to_the_run_directory(tmp_path: Path) -> None:
    async def body(app: SgdtopApp, pilot: Pilot[str | None]) -> None:
        await pilot.press("s")
        await pilot.press("s")
        assert [p.name for p in app.screenshots] == [
            "sgdtop-step0000500.svg", "sgdtop-step0000500-2.svg"]
        assert all(p.parent == tmp_path and p.read_text().startswith("<svg")
                   for p in app.screenshots)

    drive(SgdtopApp(ReplaySource(normal_run(), run_dir=tmp_path, instant=True)), body)


def test_resize_any_time() -> None:
    async def body(app: SgdtopApp, pilot: Pilot[str | None]) -> None:
        for size in ((40, 12), (200, 60), (20, 6), (80, 24)):
            await pilot.resize_terminal(*size)
            await pilot.pause()
            assert app.size == size
            width = size[0]
            header = app.query_one(HeaderBar).render().plain.split("\n")
            assert len(header) == 2 and all(len(line) <= width for line in header)
            assert ("✖ diverged" in header[0]) == (width >= 80)  # cut short below 80
            for panel in (MetricsPanel, EigenChart):  # (20 columns leave them 0 wide)
                widget = app.query_one(panel)
                rows = widget.render().plain.split("\n")
                if width >= 40:
                    assert widget.size.width > 0
                    assert all(len(row) <= widget.size.width for row in rows), (size, panel)
        await pilot.press("left", "l")
        await pilot.resize_terminal(160, 48)
        await pilot.pause()
        assert app.screen.has_class("-wide") and app.screen.has_class("-tall")

    drive(SgdtopApp(ReplaySource(diverging_run(), instant=True)), body)


def test_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = SgdtopApp(ReplaySource(normal_run(), instant=True))
    assert app.no_color

    async def body(app: SgdtopApp, pilot: Pilot[str | None]) -> None:
        svg = app.export_screenshot()
        assert "#ef4444" not in svg  # the rank-1 red is gone: monochrome

    drive(app, body)


# -- the entry points ----------------------------------------------------------------


def _headless(apps: list[SgdtopApp]) -> Callable[..., object]:
    """A stand-in for App.run: headless; once caught up it presses q (live: waits for
    the stream to end after that first q, then presses q again). Each app run is
    appended to ``apps``."""

    def run(self: SgdtopApp, **_: object) -> object:
        apps.append(self)

        async def auto(pilot: Pilot[str | None]) -> None:
            await wait_for(pilot, lambda: self.state.step is not None and self.caught_up)
            await pilot.press("q")
            if self.mode == "live":  # the first q asked the trainer to stop
                await wait_for(pilot, lambda: self.feed_finished)
                await pilot.press("q")
            await wait_for(pilot, lambda: not self.is_running)

        return App.run(self, headless=True, size=(80, 24), auto_pilot=auto)

    return run


def test_run_live_returns_the_status_and_closes_the_feed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    apps: list[SgdtopApp] = []
    monkeypatch.setattr(SgdtopApp, "run", _headless(apps))
    feed = ListFeed(normal_run(end=False), hold=True)
    status = run_live(feed)
    assert feed.stop_calls == 1 and feed.close_calls == 1
    assert status == "interrupted" and apps[0].mode == "live"


def test_run_watch_and_run_replay(monkeypatch: pytest.MonkeyPatch) -> None:
    apps: list[SgdtopApp] = []
    monkeypatch.setattr(SgdtopApp, "run", _headless(apps))
    feed = ListFeed(normal_run())
    assert run_watch(feed) == "completed"
    assert feed.stop_calls == 0 and feed.close_calls == 1
    assert run_replay(normal_run(), run_dir=None, instant=True) is None
    watch, replay = apps
    assert watch.mode == "watch" and replay.mode == "replay"
    assert replay.cursor is not None and replay.cursor.at_end
    assert replay.state.status == "completed" and replay.return_value == "completed"
