"""The TUI's state (the fold of events, the bounded series, the replay cursor) as plain
Python: no terminal, no Textual."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
from pathlib import Path

import pytest
from tui_fixtures import K, cut_off_run, diverging_run, long_run, make_event, normal_run

from sgdtop.schema import BadLine, decode_line
from sgdtop.tui.draw.eigen_chart import chart_text
from sgdtop.tui.draw.sparkline import metric_row, metrics_text
from sgdtop.tui.draw.table import eigen_table
from sgdtop.tui.state import (
    LOST,
    RUNNING,
    STOPPING,
    WAITING,
    Backlog,
    Decimated,
    ReplayCursor,
    ReplayFold,
    Ring,
    RunState,
    fold,
)
from sgdtop.tui.state.run import stability_ratio


def test_ring_keeps_the_newest_values() -> None:
    ring = Ring(capacity=3)
    assert ring.last is None and ring.previous is None and ring.tail(2) == ()
    for i in range(5):
        ring.append(float(i), step=i)
    assert ring.tail(10) == (2.0, 3.0, 4.0)
    assert ring.tail(2) == (3.0, 4.0)
    assert (ring.last, ring.previous, len(ring)) == (4.0, 3.0, 3)
    assert list(ring.steps) == [2, 3, 4]


def test_decimated_is_bounded_uniform_and_ends_at_the_newest_point() -> None:
    dec: Decimated[int] = Decimated(capacity=8)
    for i in range(1000):
        dec.append(float(i), i)
        xs, ys = dec.points()
        assert len(xs) <= 9 and len(xs) == len(dec)
        assert xs[-1] == float(i) and ys[-1] == i
        assert xs[0] == 0.0
    xs, _ = dec.points()
    kept = xs[:-1] if (dec.count - 1) % dec.stride else xs
    gaps = {b - a for a, b in itertools.pairwise(kept)}
    assert gaps == {float(dec.stride)}
    assert dec.count == 1000
    with pytest.raises(ValueError):
        Decimated(capacity=1)


def test_fold_normal_run() -> None:
    s = fold(normal_run())
    assert s.info is not None and s.info.model == "mlp" and s.info.k == K
    assert s.info.task == "classification"
    assert s.status == "completed" and s.ended
    assert s.step == 500 and s.epoch == 9
    assert s.spectrum is not None and len(s.spectrum.eigenvalues) == K
    rows = s.eigen_rows()
    assert [r.rank for r in rows] == list(range(1, K + 1))
    prev = s.previous_spectrum
    assert prev is not None
    assert rows[0].delta == pytest.approx(s.spectrum.eigenvalues[0] - prev.eigenvalues[0])
    assert [r.mark for r in rows[-3:]] == ["no"] * 3
    assert all(r.mark == "converged" for r in rows[:-3])
    assert any(r.value < 0 for r in rows)  # the sign is kept
    sp = s.spectrum
    assert stability_ratio(sp) == pytest.approx(sp.eta_lambda1 / (2 * (1 + 0.9)))
    assert s.stability.last == pytest.approx(100 * stability_ratio(sp))
    assert s.dense_cond == 4.0e5
    assert s.layers[0].name == "fc1"
    levels = [line.level for line in s.log_lines()]
    assert "warning" in levels
    assert s.log_lines()[-1].message == "run completed: 10 epochs"


def test_views_are_snapshots() -> None:
    s = fold(normal_run())
    metrics = s.metric_views()
    assert [m.key for m in metrics] == [
        "rho", "stability", "cond", "train_loss", "test_loss", "test_acc", "dead"]
    assert metrics[2].label == "κ₃₀"
    assert metrics[1].limit == (s.spectrum.eta_lambda1, pytest.approx(3.8))  # type: ignore[union-attr]
    assert metrics[5].current == pytest.approx(88.0)
    chart = s.chart_view()
    assert len(chart.xs) == len(chart.eigenvalues) == 21
    assert chart.k == K and chart.x_unit == "epoch" and chart.x_div == 50.0
    assert chart.loss_label == "train loss" and len(chart.loss_xs) == 10
    header = s.header_view()
    assert header.status == "completed" and header.step == 500
    before = s.spectrum_view()
    s.apply(make_event("spectrum_progress", 99.0, step=501, hvps=5, seconds=0.1))
    assert before.progress is None and s.spectrum_view().progress is not None


def test_regression_has_no_accuracy_row_value() -> None:
    s = fold(normal_run(task="regression"))
    acc = s.metric_views()[5]
    assert acc.current is None and acc.note == "regression"
    assert "– (regression)" in metric_row(acc, 60).plain


def test_wide_rows_show_details() -> None:
    text = metrics_text(fold(normal_run()).metric_views(), 110).plain
    assert "dense κ 4e5" in text and "max fc1 10%" in text and "λ₁ 26.9 vs 38" in text


def test_status_transitions() -> None:
    s = RunState()
    assert s.status == WAITING
    evs = normal_run(end=False)
    s.apply(evs[0])
    assert s.status == RUNNING
    s.mark_stopping()
    assert s.status == STOPPING
    s.apply_all(evs[1:])
    assert s.status == STOPPING
    s.end_stream("trainer exited with code -9 before run_end")
    assert s.status == LOST and s.ended
    assert s.log_lines()[-1].level == "error"
    assert "code -9" in s.log_lines()[-1].message
    assert s.spectrum is not None  # the data stays


def test_end_stream_after_run_end_changes_nothing() -> None:
    s = fold(normal_run())
    seq = s.log_seq
    s.end_stream("whatever")
    assert s.status == "completed" and s.log_seq == seq
    s.mark_stopping()
    assert s.status == "completed"


def test_cut_off_run_is_measuring() -> None:
    s = fold(cut_off_run())
    assert s.status == RUNNING and s.progress is not None and s.progress.hvps == 20
    s.end_stream(None)
    assert s.status == LOST and "before run_end" in s.status_message
    assert s.progress is None


def test_diverging_run_keeps_non_finite_values() -> None:
    s = fold(diverging_run())
    assert s.status == "diverged"
    assert math.isnan(s.rho.last)  # type: ignore[arg-type]
    assert any(math.isinf(v) for v in s.rho.values)
    assert math.isnan(s.train_loss.last)  # type: ignore[arg-type]
    assert all(r.mark == "no" for r in s.eigen_rows())
    assert any("non-finite" in line.message for line in s.log_lines())
    # every view renders without raising, with the non-finite values spelled out
    table = eigen_table(s.spectrum_view(), 48).plain
    assert "nan" in table
    metrics = metrics_text(s.metric_views(), 60).plain
    assert "nan" in metrics and "×" in metrics and "↑" in metrics
    for log in (False, True):
        chart = chart_text(s.chart_view(), 60, 12, log=log)
        assert len(chart.plain.split("\n")) == 12


def test_odd_lines_stop_at_the_decoder_and_empty_values_do_not_break_the_fold() -> None:
    odd = ('{"v": 1, "kind": "spectrum", "t": 1.0, "eigenvalues": "oops", "residuals": null, '
           '"converged": null, "spectral_norm": null, "cond_k": "x", "lr": 0.1, '
           '"momentum": null, "eta_lambda1": null, "stability_limit": null, "hvps": true, '
           '"seconds": null, "warm": false}')
    assert isinstance(decode_line(odd, 7), BadLine)  # never reaches the state
    nan = math.nan
    s = RunState()
    s.apply(make_event("spectrum", 1.0, eigenvalues=[], residuals=[], converged=[],
                       spectral_norm=nan, cond_k=nan, lr=0.1, momentum=nan, eta_lambda1=nan,
                       stability_limit=nan, hvps=0, seconds=nan, warm=False))
    s.apply(make_event("neurons", 1.0, dead_pct=nan, threshold=0.0, layers=[
        {"name": "a", "units": 0, "dead": 0, "dead_pct": nan}]))
    s.apply(make_event("log", 1.0, level="warning", message="two\nlines", source="stderr"))
    assert s.spectrum is not None and s.spectrum.eigenvalues == ()
    assert s.eigen_rows() == []
    assert len(s.layers) == 1
    assert [line.message for line in s.log_lines()] == ["two", "lines"]
    assert s.status == WAITING
    rows = metrics_text(s.metric_views(), 50).plain.split("\n")
    assert len(rows) == 7 and all(len(row) == 50 for row in rows)
    assert "×" in rows[0] and rows[0].endswith("nan") and "nan/nan nan%" in rows[1]
    assert rows[3].endswith("–") and rows[6].endswith("nan%")
    chart = chart_text(s.chart_view(), 50, 10).plain.split("\n")
    assert len(chart) == 10 and all(len(row) == 50 for row in chart)
    assert not any("\u2800" < ch <= "\u28ff" for ch in "".join(chart))  # nothing to draw


def test_memory_is_bounded_on_a_long_run() -> None:
    evs = long_run(30_000, spectrum_every=20)
    s = fold(evs)
    assert len(s.rho) == 240 and len(s.eigen_history) <= 513
    assert len(s.batch_loss_history) <= 513 and len(s.log) <= 500
    assert s.eigen_history.count == sum(ev.kind == "spectrum" for ev in evs) > 1000


# -- the replay cursor ---------------------------------------------------------------


def test_replay_cursor_plays_in_event_time() -> None:
    evs = normal_run()
    c = ReplayCursor(evs, speed=2.0)
    assert c.playing and c.position == 0
    c.advance(0.0)
    assert c.position == 1  # run_start (t=0); the next event is at t=0.05
    c.advance(1.0)  # 2 s of run time
    assert all(ev.t <= 2.0 for ev in evs[: c.position])
    assert evs[c.position].t > 2.0
    c.toggle()
    pos = c.position
    c.advance(10.0)
    assert c.position == pos  # paused
    c.toggle()
    c.advance(1e6)
    assert c.at_end and not c.playing and c.position == len(evs)


def test_replay_cursor_steps_by_measurement() -> None:
    evs = normal_run()
    c = ReplayCursor(evs)
    n = len(c.measurements)
    assert n == 21
    c.next_measurement()
    assert c.measurement_index == 1 and not c.playing
    assert evs[c.position - 1].kind == "spectrum"
    c.next_measurement()
    c.next_measurement()
    assert c.measurement_index == 3
    c.previous_measurement()
    assert c.measurement_index == 2 and evs[c.position - 1].kind == "spectrum"
    c.previous_measurement()
    c.previous_measurement()
    assert c.measurement_index == 0 and c.position == c.measurements[0]
    c.to_end()
    assert c.at_end and c.measurement_index == n
    c.previous_measurement()
    assert c.measurement_index == n - 1
    c.to_start()
    assert c.measurement_index == 0 and c.position >= 1
    assert c.clock == c.t0


def test_replay_cursor_speed_and_restart() -> None:
    c = ReplayCursor(normal_run(), speed=1.0)
    assert c.faster() == 2.0 and c.slower() == 1.0
    for _ in range(40):
        c.faster()
    assert c.speed == ReplayCursor.MAX_SPEED
    for _ in range(80):
        c.slower()
    assert c.speed == ReplayCursor.MIN_SPEED
    c.to_end()
    assert c.toggle() and c.position < 5  # playing at the end restarts
    empty = ReplayCursor([])
    assert empty.at_end and empty.advance(1.0) == 0 and empty.duration == 0.0
    assert empty.next_measurement() == 0 and empty.previous_measurement() == 0


def test_state_and_drawing_import_no_textual_and_the_apps_no_torch() -> None:
    code = (
        "import sys, pkgutil, importlib\n"
        "import sgdtop.tui.state, sgdtop.tui.draw\n"
        "for pkg in (sgdtop.tui.state, sgdtop.tui.draw):\n"
        "    for m in pkgutil.iter_modules(pkg.__path__):\n"
        "        importlib.import_module(f'{pkg.__name__}.{m.name}')\n"
        "assert 'textual' not in sys.modules, 'state/draw import textual'\n"
        "import sgdtop.tui.run, sgdtop.tui.compare, sgdtop.tui.sweep\n"
        "assert 'torch' not in sys.modules, 'the TUI imports torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- folding within a budget ---------------------------------------------------------


def test_backlog_folds_what_was_queued() -> None:
    evs = normal_run()
    backlog, s = Backlog(), RunState()
    backlog.extend(evs[:100])
    backlog.extend(evs[100:])
    assert len(backlog) == len(evs)
    backlog.fold_into(s, None)
    assert len(backlog) == 0 and s.events_applied == len(evs) and s.status == "completed"


def test_replay_fold_follows_the_cursor_and_rebuilds_on_a_step_back() -> None:
    cursor = ReplayCursor(normal_run())
    replay = ReplayFold(cursor)
    cursor.to_end()
    assert not replay.catch_up(None) and replay.caught_up
    first = replay.state
    assert first.status == "completed" and first.spectrum is not None
    cursor.previous_measurement()
    assert replay.catch_up(None)  # rebuilt: a new state, up to the measurement before
    assert replay.state is not first and replay.state.status == RUNNING
    assert replay.state.spectrum is not None and replay.state.spectrum.step == 475
    cut = ReplayFold(ReplayCursor(cut_off_run()))
    cut.cursor.to_end()
    cut.catch_up(None)
    assert cut.state.status == LOST and "no run_end" in cut.state.status_message


def test_the_tui_tests_import_no_torch() -> None:
    """The TUI's tests run where torch is not installed (only their subprocesses train)."""
    here = Path(__file__).parent
    helpers = here.parent / "helpers"
    names = [*sorted(p.stem for p in here.glob("test_tui_*.py")), "tui_fixtures"]
    code = (
        f"import sys; sys.path[:0] = [{str(here)!r}, {str(helpers)!r}]\n"
        f"for name in {names!r}:\n"
        "    __import__(name)\n"
        "assert 'torch' not in sys.modules, 'a TUI test imports torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
