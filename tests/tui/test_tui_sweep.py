"""The live view of ``sgdtop sweep`` (sgdtop.tui.sweep): the board folding synthetic
cell updates, the app driven by Pilot on synthetic updates and on real tiny ``smoke``
sweeps (to completion with the Fig. 3 summary; stopped with ``q`` and resumable), SVG
snapshots at 80×24 (fixed clock, no disk), the CLI wiring, and ``sgdtop runs`` listing
sweeps.

Update the snapshots after a deliberate change:
``pytest tests/tui/test_tui_sweep.py --snapshot-update``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import DataTable
from tui_fixtures import SMALL, SnapCompare, drive, make_event, wait_for
from typer.testing import CliRunner

from sgdtop import cli
from sgdtop.schema import encode
from sgdtop.store import live_pid
from sgdtop.sweep import (
    FINISHED,
    PENDING,
    SWEEP_LOCK_FILE,
    Cell,
    CellSummary,
    CellUpdate,
    LinearFit,
    Sweep,
    SweepFit,
    SweepResult,
    SweepSummary,
    create_sweep,
    fits_title,
    load_sweep,
    summarize_sweep,
)
from sgdtop.sweep.sweepfile import hold_lock, lock_pid
from sgdtop.tui.draw.sweep import header_text, note_text, row_cells, state_text
from sgdtop.tui.state.sweep import STOPPING, SweepBoard
from sgdtop.tui.sweep import SweepApp
from sgdtop.tui.sweep.widgets import SweepHelpScreen

#: Base overrides that make a smoke cell take a few seconds (as in test_sweep.py).
FAST = ["first_epoch_every=0", "epochs=1", "k=10", "dense_max_params=0"]
#: A smoke cell long enough to be stopped while it trains.
LONG = ["first_epoch_every=0", "epochs=20", "k=10", "dense_max_params=0"]


#: Seconds a real smoke sweep may take to reach what a test waits for.
SWEEP_S = 180.0


def drive_sweep(app: SweepApp, body: Callable[[SweepApp, Pilot[Any]], Awaitable[None]],
                ) -> None:
    """:func:`~tui_fixtures.drive` that never leaves a sweep running behind a failed
    test."""
    drive(app, body, cleanup=app.wait_for_sweep)


def plain(table: DataTable[Any], row: int, key: str) -> str:
    """The text of one cell of a DataTable."""
    value = table.get_cell(str(row), key)
    return value.plain if isinstance(value, Text) else str(value)


# ----------------------------------------------------------------------------- synthetic
def synthetic_sweep() -> Sweep:
    """Three η × two S, never written to disk (a fixed relative path, for snapshots)."""
    cells = []
    for i, (lr, s) in enumerate((lr, s) for lr in (0.1, 0.05, 0.01) for s in (32, 128)):
        cells.append(Cell(index=i, name=f"c{i:03d}-lr{lr:g}-b{s}",
                          settings={"lr": lr, "batch_size": s}))
    return Sweep(path=Path("runs/sweeps/smoke-0123abcd"), sweep_id="smoke-0123abcd",
                 profile="smoke", set_items=["epochs=4"],
                 axes={"lr": [0.1, 0.05, 0.01], "batch_size": [32, 128]}, cells=cells,
                 created="")


def updates(sweep: Sweep) -> list[CellUpdate]:
    """A sweep two jobs wide, midway: cell 0 skipped (finished before), 1 completed,
    2 failed before its run started, 3 and 4 running, 5 pending."""
    c = sweep.cells
    n = len(c)
    return [
        CellUpdate("skip", 0, n, c[0], "completed", run_id="r0", step=40, spectral_norm=3.5,
                   test_acc=0.875, message="finished before: not run again"),
        CellUpdate("start", 1, n, c[1], "running", run_id=None, slot=0),
        CellUpdate("progress", 1, n, c[1], "running", run_id="r1", step=20, epoch=1,
                   epochs=4, spectral_norm=12.25, test_acc=0.5, test_loss=1.5, seconds=4.0,
                   slot=0),
        CellUpdate("end", 1, n, c[1], "completed", run_id="r1", step=40, epoch=3, epochs=4,
                   spectral_norm=10.5, test_acc=0.8125, test_loss=0.75, seconds=9.0, slot=0),
        CellUpdate("start", 2, n, c[2], "running", slot=0),
        CellUpdate("end", 2, n, c[2], "failed", seconds=1.0, slot=0,
                   message="sgdtop run exited with code 1 before its run started"),
        CellUpdate("start", 3, n, c[3], "running", slot=1),
        CellUpdate("progress", 3, n, c[3], "running", run_id="r3", step=1234, epoch=2,
                   epochs=4, spectral_norm=7.0, test_acc=0.625, test_loss=1.0, seconds=75.0,
                   slot=1),
        CellUpdate("start", 4, n, c[4], "running", run_id="r4", seconds=2.0, slot=0),
    ]


def synthetic_summary(sweep: Sweep) -> SweepSummary:
    """A finished sweep's Fig. 3 summary: cells 0, 1, 3, 4 completed, 2 failed (no run),
    5 interrupted; lines against 1/η per S."""
    status = ["completed", "completed", PENDING, "completed", "completed", "interrupted"]
    cells = []
    for c in sweep.cells:
        lr, s = float(c.settings["lr"]), int(c.settings["batch_size"])
        rho = 2.0 + 0.05 / lr + 0.01 * s
        done = status[c.index] != PENDING
        cells.append(CellSummary(
            index=c.index, name=c.name, settings=dict(c.settings),
            run_id=f"r{c.index}" if done else None, status=status[c.index], lr=lr,
            batch_size=s, momentum=0.9, seed=0, steps=40 if done else 0,
            n_spectra=4 if done else 0, mean_spectral_norm=rho if done else None,
            mean_top10_mean=rho / 2 if done else None,
            final_spectral_norm=rho if done else None,
            final_test_acc=0.8 if done else None, final_test_loss=0.5 if done else None))
    fits = []
    for s in (32, 128):
        xs = np.array([1 / 0.1, 1 / 0.05, 1 / 0.01])
        ys = 2.0 + 0.05 * xs + 0.01 * s
        for q, scale in (("spectral_norm", 1.0), ("top10_mean", 0.5)):
            fits.append(SweepFit(quantity=q, x_axis="inv_lr", group={"batch_size": s},
                                 x=xs, y=ys * scale,
                                 fit=LinearFit(0.05 * scale, (2.0 + 0.01 * s) * scale, 1.0, 3)))
    return SweepSummary(sweep_id=sweep.sweep_id, profile=sweep.profile,
                        varying=["lr", "batch_size"], cells=cells, fits=fits)


def test_board_folds_synthetic_updates() -> None:
    sweep = synthetic_sweep()
    now = [100.0]
    board = SweepBoard(sweep, clock=lambda: now[0])
    assert board.axes == ["lr", "batch_size"]
    assert [k for k, _ in board.columns()] == [
        "index", "axis-lr", "axis-batch_size", "status", "epoch", "step", "rho", "test",
        "time"]
    assert [lab for _, lab in board.columns()][1:3] == ["η", "S"]
    assert all(r.status == PENDING for r in board.rows)
    for u in updates(sweep):
        assert board.apply(u) == u.index

    def row(i: int) -> list[str]:
        return [t.plain for t in row_cells(board, i)]

    assert row(0) == ["1", "0.1", "32", "■ completed", "–", "40", "3.5", "87.5%", "–"]
    assert row(1) == ["2", "0.1", "128", "■ completed", "4/4", "40", "10.5", "81.2%", "0:09"]
    assert row(2) == ["3", "0.05", "32", "✖ failed", "–", "–", "–", "–", "0:01"]
    assert row(3) == ["4", "0.05", "128", "● running", "3/4", "1,234", "7", "62.5%", "1:15"]
    assert row(4) == ["5", "0.01", "32", "● running", "–", "–", "–", "–", "0:02"]
    assert row(5) == ["6", "0.01", "128", "○ pending", "–", "–", "–", "–", "–"]
    now[0] += 60  # running cells' time goes on with the clock; ended ones stay
    assert row(3)[-1] == "2:15" and row(1)[-1] == "0:09"
    counts = board.counts()
    assert (counts.total, counts.done, counts.running, counts.pending, counts.failed,
            counts.interrupted) == (6, 2, 2, 1, 1, 0)
    assert board.note is not None and "c002-lr0.05-b32 ✖ failed: sgdtop run exited" in \
        note_text(board.note).plain

    # A new attempt starts from scratch; stopping shows on running rows only.
    board.apply(CellUpdate("start", 1, 6, sweep.cells[1], "running", seconds=0.0))
    assert row(1)[3:] == ["● running", "–", "–", "–", "–", "0:00"]
    board.mark_stopping()
    assert row(3)[3] == "◌ stopping…" and row(0)[3] == "■ completed"
    assert board.display_status(board.rows[4]) == STOPPING
    board.apply(CellUpdate("end", 3, 6, sweep.cells[3], "interrupted", run_id="r3",
                           seconds=80.0, message="stopped"))
    assert row(3)[3] == "■ interrupted" and board.counts().interrupted == 1


def test_board_shows_the_test_loss_for_regression() -> None:
    sweep = synthetic_sweep()
    board = SweepBoard(sweep, clock=lambda: 0.0)
    assert board.test_label() == "test acc" and not board.regression
    board.apply(CellUpdate("progress", 0, 6, sweep.cells[0], "running", step=5, epoch=0,
                           epochs=2, spectral_norm=2.0, test_acc=math.nan, test_loss=0.0625,
                           seconds=1.0))
    assert board.regression and board.test_label() == "test loss"
    assert ("test", "test loss") in board.columns()
    assert row_cells(board, 0)[7].plain == "0.0625"
    assert row_cells(board, 1)[7].plain == "–"


def test_header_and_state_texts() -> None:
    sweep = synthetic_sweep()
    board = SweepBoard(sweep, clock=lambda: 0.0)
    for u in updates(sweep):
        board.apply(u)
    head = header_text(sweep, board.counts(), Text("● running"), 3725.0, 2, 100).plain
    line1, line2 = head.split("\n")
    assert line1.startswith(" sgdtop sweep   smoke-0123abcd  profile smoke  jobs 2")
    assert line1.endswith("t 1:02:05  ● running") and len(line1) == 100
    assert line2 == "cells 6  ■ 2 done  ● 2 running  ○ 1 pending  ✖ 1 failed"
    board.apply(CellUpdate("end", 5, 6, sweep.cells[5], "interrupted"))
    narrow = header_text(sweep, board.counts(), Text("● running"), 5.0, 2, 70).plain
    assert narrow.split("\n")[1] == (
        "cells 6 ■ 2 done ● 2 running ○ 0 pending ■ 1 interrupted ✖ 1 failed")
    narrow = header_text(sweep, board.counts(), Text("● running"), 5.0, 2, 40).plain
    assert all(len(line) <= 40 for line in narrow.split("\n"))
    done = SweepResult(statuses=["completed"] * 6, ran=6, interrupted=False)
    assert state_text(done, stopping=False, escalated=False, failed=False).plain == "■ done"
    stopped = SweepResult(statuses=["interrupted"] * 6, ran=6, interrupted=True)
    assert state_text(stopped, stopping=True, escalated=False,
                      failed=False).plain == "■ interrupted"
    failed = SweepResult(statuses=["failed"] * 6, ran=6, interrupted=False)
    assert "failed" in state_text(failed, stopping=False, escalated=False, failed=True).plain
    assert state_text(None, stopping=True, escalated=True,
                      failed=False).plain == "◌ stopping hard…"
    assert fits_title(synthetic_summary(sweep)).startswith("linear fits")


def test_app_on_synthetic_updates_stop_escalate_summary_quit() -> None:
    sweep = synthetic_sweep()
    app = SweepApp(sweep, start=False, clock=lambda: 0.0)

    async def body(app: SweepApp, pilot: Pilot[SweepResult | None]) -> None:
        table = app.query_one("#sweep-cells", DataTable)
        assert table.row_count == 6
        assert [c.label.plain for c in table.columns.values()] == [
            "#", "η", "S", "status", "epoch", "step", "ρ(H)", "test acc", "time"]
        for u in updates(sweep):
            app.apply_update(u)
        await pilot.pause()
        assert plain(table, 1, "status") == "■ completed"
        assert plain(table, 3, "step") == "1,234"
        assert plain(table, 3, "test") == "62.5%"
        note = app.query_one("#sweep-note")
        assert "failed" in str(note.render())
        # ? shows the help; v does nothing before the summary
        await pilot.press("question_mark")
        assert isinstance(app.screen, SweepHelpScreen)
        await pilot.press("escape", "v")
        assert not app.showing_summary
        # 1st q: stop (cells get SIGINT); 2nd: escalate; 3rd: only a reminder
        await pilot.press("q")
        assert app.stop_event.is_set() and not app.escalate_event.is_set()
        assert plain(table, 3, "status") == "◌ stopping…"
        assert "stopping…" in app.state_text().plain
        await pilot.press("ctrl+c")
        assert app.escalate_event.is_set() and app.is_running
        await pilot.press("q")
        assert app.is_running  # the sweep has not returned: no quitting yet
        # The sweep returns: the summary replaces the table; v switches; q quits.
        result = SweepResult(statuses=["completed", "completed", PENDING, "completed",
                                       "completed", "interrupted"], ran=5, interrupted=True)
        app.apply_update(CellUpdate("end", 3, 6, sweep.cells[3], "completed", seconds=80.0))
        app.apply_update(CellUpdate("end", 4, 6, sweep.cells[4], "completed", seconds=9.0))
        app.finish(result, synthetic_summary(sweep))
        await pilot.pause()
        assert app.showing_summary and app.query_one("#sweep-summary").display
        assert not table.display
        sum_cells = app.query_one("#sum-cells", DataTable)
        assert sum_cells.row_count == 6
        assert app.query_one("#sum-fits", DataTable).row_count == 4
        assert app.state_text().plain == "■ interrupted"
        await pilot.press("v")
        assert not app.showing_summary and table.display
        await pilot.press("v", "q")
        await pilot.pause()

    drive_sweep(app, body)
    assert app.return_value is not None and app.return_value.exit_code == 130


def test_the_sweep_view_imports_no_torch() -> None:
    code = (
        "import sys\n"
        "import sgdtop.tui.sweep\n"
        "assert 'torch' not in sys.modules, 'the sweep view imports torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# ----------------------------------------------------------------------------- real sweeps
def test_live_sweep_runs_every_cell_and_shows_the_summary(tmp_path: Path) -> None:
    sweep = create_sweep("smoke", {"lr": [0.01, 0.05]}, set_items=FAST, runs_dir=tmp_path)
    app = SweepApp(sweep, jobs=2, gpus=[], poll_s=0.1)

    async def body(app: SweepApp, pilot: Pilot[SweepResult | None]) -> None:
        table = app.query_one("#sweep-cells", DataTable)
        await wait_for(pilot, lambda: app.finished, timeout=SWEEP_S, what="the sweep ends")
        await pilot.pause()
        assert app.result is not None and app.result.statuses == ["completed"] * 2, [
            sweep.log_path(c).read_text(encoding="utf-8") for c in sweep.cells]
        for i in range(2):
            assert plain(table, i, "status") == "■ completed"
            assert plain(table, i, "epoch") == "1/1"
            assert float(plain(table, i, "rho")) > 0
            assert math.isfinite(float(plain(table, i, "test")))  # regression: test loss
        assert table.columns[next(k for k in table.columns if k.value == "test")
                             ].label.plain == "test loss"
        assert app.showing_summary
        sum_cells = app.query_one("#sum-cells", DataTable)
        assert sum_cells.row_count == 2
        assert app.query_one("#sum-fits", DataTable).row_count == 2  # ρ(H), top-10 vs 1/η
        assert "■ done" in app.state_text().plain
        assert app.board.counts().done == 2
        await pilot.press("q")
        await pilot.pause()

    drive_sweep(app, body)
    result = app.return_value
    assert result is not None and result.exit_code == 0 and result.ran == 2
    assert [c.status for c in summarize_sweep(sweep.path).cells] == ["completed"] * 2
    assert not (sweep.path / "sweep.pid").exists()
    assert lock_pid(sweep.path / SWEEP_LOCK_FILE) is None  # released


def test_q_mid_sweep_interrupts_and_the_sweep_resumes(tmp_path: Path) -> None:
    axes = {"lr": [0.01, 0.05]}
    sweep = create_sweep("smoke", axes, set_items=LONG, runs_dir=tmp_path)
    app = SweepApp(sweep, jobs=1, gpus=[], poll_s=0.1)

    async def body(app: SweepApp, pilot: Pilot[SweepResult | None]) -> None:
        await wait_for(pilot, lambda: app.board.rows[0].step is not None,
                       timeout=SWEEP_S, what="the first cell measures")
        await pilot.press("q")
        assert app.stop_event.is_set() and not app.finished
        await wait_for(pilot, lambda: app.finished, timeout=SWEEP_S, what="the sweep stops")
        await pilot.pause()
        table = app.query_one("#sweep-cells", DataTable)
        assert plain(table, 0, "status") == "■ interrupted"
        assert plain(table, 1, "status") == "○ pending"
        assert app.showing_summary and app.is_running  # waits for q
        await pilot.press("q")
        await pilot.pause()

    drive_sweep(app, body)
    result = app.return_value
    assert result is not None and result.interrupted and result.exit_code == 130
    assert result.statuses == ["interrupted", PENDING] and result.ran == 1
    saved = load_sweep(sweep.path)
    assert live_pid(sweep.runs_dir / str(saved.cells[0].run_id)) is None
    assert not (sweep.path / "sweep.pid").exists()
    assert lock_pid(sweep.path / SWEEP_LOCK_FILE) is None  # released
    # The same command reopens the same sweep, and neither cell counts as finished.
    again = create_sweep("smoke", axes, set_items=LONG, runs_dir=tmp_path)
    assert again.path == sweep.path
    assert [again.cell_status(c) for c in again.cells] == ["interrupted", PENDING]
    assert not any(again.cell_status(c) in FINISHED for c in again.cells)


def test_an_error_of_the_sweep_quits_the_app_and_is_kept(tmp_path: Path) -> None:
    sweep = create_sweep("smoke", {"lr": [0.01, 0.05]}, set_items=FAST, runs_dir=tmp_path)
    held = hold_lock(sweep.path / SWEEP_LOCK_FILE)  # another sweep process holds it
    app = SweepApp(sweep, jobs=1, gpus=[])

    async def body(app: SweepApp, pilot: Pilot[SweepResult | None]) -> None:
        await wait_for(pilot, lambda: not app.is_running or app.error is not None,
                       timeout=30, what="the error")

    drive_sweep(app, body)
    assert app.return_value is None
    assert app.error is not None and "already running" in str(app.error)
    os.close(held)


# ----------------------------------------------------------------------------- snapshots
def test_snapshot_live_view(snap_compare: SnapCompare) -> None:
    sweep = synthetic_sweep()
    app = SweepApp(sweep, jobs=2, start=False, clock=lambda: 0.0)

    async def feed(pilot: Pilot[SweepResult | None]) -> None:
        for u in updates(sweep):
            app.apply_update(u)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SMALL, run_before=feed)


def test_snapshot_summary_view(snap_compare: SnapCompare) -> None:
    sweep = synthetic_sweep()
    app = SweepApp(sweep, jobs=2, start=False, clock=lambda: 0.0)

    async def feed(pilot: Pilot[SweepResult | None]) -> None:
        for u in updates(sweep):
            app.apply_update(u)
        summary = synthetic_summary(sweep)
        app.finish(SweepResult(statuses=[c.status for c in summary.cells], ran=5,
                               interrupted=True), summary)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SMALL, run_before=feed)


# ----------------------------------------------------------------------------- CLI
def test_cli_sweep_uses_the_live_view_on_a_terminal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sgdtop.tui.sweep import app as sweep_app

    calls: list[tuple[str, int]] = []

    def fake_live(sweep: Sweep, *, jobs: int = 1) -> SweepResult:
        calls.append((sweep.sweep_id, jobs))
        return SweepResult(statuses=["interrupted", PENDING], ran=1, interrupted=True)

    monkeypatch.setattr(cli, "use_tui", lambda log, json_out: not log)
    monkeypatch.setattr(sweep_app, "run_sweep_live", fake_live)
    res = CliRunner().invoke(cli.app, ["sweep", "smoke", "--lr", "0.01,0.05", "--set",
                                       "epochs=1", "--jobs", "2", "--runs-dir",
                                       str(tmp_path)])
    assert res.exit_code == 130, res.output
    assert len(calls) == 1 and calls[0][1] == 2 and calls[0][0].startswith("smoke-")
    assert "Fig. 3 summary" in res.output


def _finished_run(run_dir: Path, lr: float) -> None:
    """A minimal completed run (run_start, one spectrum, run_end) in ``run_dir``."""
    run_dir.mkdir(parents=True)
    (run_dir / "profile.json").write_text(json.dumps({"lr": lr}), encoding="utf-8")
    evs = [
        make_event("run_start", 0.0, step=0, epoch=0, run_id=run_dir.name,
                   profile={"seed": 0}, model="mlp", num_params=625, device="cpu",
                   versions={}, dataset="teacher-student", train_size=256, test_size=128,
                   probe_size=256, lr=lr, batch_size=32, momentum=0.9, weight_decay=0.0,
                   k=1, epochs=1, steps_per_epoch=8),
        make_event("spectrum", 1.0, step=8, epoch=0, eigenvalues=[2.0], residuals=[0.0],
                   converged=[True], spectral_norm=2.0, cond_k=1.0, lr=lr, momentum=0.9,
                   eta_lambda1=2.0 * lr, stability_limit=3.8 / lr, hvps=5, seconds=0.1,
                   warm=False),
        make_event("run_end", 1.0, step=8, epoch=0, status="completed", message="",
                   steps=8, seconds=1.0),
    ]
    (run_dir / "events.jsonl").write_text("".join(encode(e) for e in evs), encoding="utf-8")


def test_runs_lists_the_sweeps(tmp_path: Path) -> None:
    runner = CliRunner()
    listing = runner.invoke(cli.app, ["runs", "--runs-dir", str(tmp_path)])
    assert listing.exit_code == 0
    assert listing.output.splitlines() == [f"no runs in {tmp_path}"]  # no sweeps: as before

    sweep = create_sweep("smoke", {"lr": [0.01, 0.05], "batch_size": [16]},
                         set_items=FAST, runs_dir=tmp_path)
    sweep.cells[0].run_id = "20260101-000000-aaaa"
    _finished_run(sweep.runs_dir / sweep.cells[0].run_id, 0.01)
    sweep.save()
    listing = runner.invoke(cli.app, ["runs", "--runs-dir", str(tmp_path)])
    assert listing.exit_code == 0, listing.output
    lines = listing.output.splitlines()
    assert lines[0] == f"no runs in {tmp_path}"  # the runs part as before
    assert any("sweeps in" in line for line in lines)
    row = next(line for line in lines if sweep.sweep_id in line)
    assert "smoke" in row and "η 0.01…0.05 ×2" in row and "S=16" in row
    assert "1/2 finished" in row

    # With runs: the runs table is unchanged, the sweeps follow it.
    _finished_run(tmp_path / "20260102-000000-bbbb", 0.1)
    listing = runner.invoke(cli.app, ["runs", "--runs-dir", str(tmp_path)])
    out = listing.output
    assert listing.exit_code == 0 and out.count("completed") == 1
    assert out.index("20260102-000000-bbbb") < out.index(sweep.sweep_id)
