"""Sweeps (sgdtop.sweep): grid parsing, the sweep directory, running cells as real
`sgdtop run` subprocesses (parallel, resumable, stoppable), the Fig. 3 summary and plot."""

from __future__ import annotations

import io
import json
import math
import os
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from schema_samples import make_record as make_event
from typer.testing import CliRunner

from sgdtop.schema import encode, read_events
from sgdtop.store import list_run_dirs, live_pid, run_info
from sgdtop.sweep import (
    FINISHED,
    PENDING,
    Cell,
    CellUpdate,
    Sweep,
    SweepError,
    SweepLogPrinter,
    cell_command,
    create_sweep,
    fit_line,
    gpu_for_slot,
    load_sweep,
    parse_axis,
    plan_cells,
    plot_sweep,
    render_sweep_text,
    resolve_sweep,
    run_sweep,
    seeds_axis,
    stop_on_signals,
    summarize_sweep,
    sweep_id_for,
    sweep_tables,
    visible_gpus,
)

#: Base overrides that make a smoke cell take a few seconds: 1 epoch, top-10, no
#: first-epoch measurements, no dense spectrum.
FAST = ["first_epoch_every=0", "epochs=1", "k=10", "dense_max_params=0"]


# ----------------------------------------------------------------------------- parsing
def test_log_range_has_n_values_with_both_ends() -> None:
    values = parse_axis("1e-4:1e-1:11")
    assert len(values) == 11
    assert values[0] == 1e-4 and values[-1] == 1e-1
    ratios = np.diff(np.log10(values))
    assert np.allclose(ratios, 0.3)
    assert parse_axis("0.1:0.1:1") == [0.1]
    assert parse_axis("32:1024:6", "batch_size") == [32, 64, 128, 256, 512, 1024]


def test_lists_keep_order_and_type() -> None:
    assert parse_axis("32,64,128", "batch_size") == [32, 64, 128]
    assert all(isinstance(v, int) for v in parse_axis("32, 64", "batch_size"))
    assert parse_axis("0,0.5,0.9", "momentum") == [0.0, 0.5, 0.9]
    assert parse_axis("0.1,0.01") == [0.1, 0.01]
    assert parse_axis("7", "seed") == [7]
    assert seeds_axis(3) == [0, 1, 2]


@pytest.mark.parametrize(
    ("spec", "axis", "match"),
    [
        ("0:1e-1:11", "lr", "ends must be > 0"),
        ("-1e-4:1e-1:11", "lr", "ends must be > 0"),
        ("1e-4:1e-1:0", "lr", "count must be >= 1"),
        ("1e-4:1e-1:x", "lr", "not an integer"),
        ("1e-4:1e-1", "lr", "LO:HI:N"),
        ("abc", "lr", "not a number"),
        ("", "lr", "empty value"),
        ("nan", "lr", "not a finite number"),
        ("0.1,0", "lr", "must be > 0"),
        ("0.1,0.1", "lr", "more than once"),
        ("32,x", "batch_size", "not a number"),
        ("16.5", "batch_size", "not an integer"),
        ("0,32", "batch_size", ">= 1"),
        ("16:17:5", "batch_size", "after rounding"),
        ("0.9,1", "momentum", r"\[0, 1\)"),
        ("0:3:3", "seed", "--seeds"),
        ("0.1", "weight_decay", "unknown sweep axis"),
    ],
)
def test_bad_specs_are_one_line_errors(spec: str, axis: str, match: str) -> None:
    with pytest.raises(SweepError, match=match) as info:
        parse_axis(spec, axis)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_bad_seed_count() -> None:
    with pytest.raises(SweepError, match="--seeds"):
        seeds_axis(0)


# ----------------------------------------------------------------------------- planning
def test_grid_order_and_names() -> None:
    cells = plan_cells({"batch_size": [16, 32], "lr": [0.01, 0.05], "seed": [0]})
    assert [c.settings for c in cells] == [
        {"lr": 0.01, "batch_size": 16, "seed": 0},
        {"lr": 0.01, "batch_size": 32, "seed": 0},
        {"lr": 0.05, "batch_size": 16, "seed": 0},
        {"lr": 0.05, "batch_size": 32, "seed": 0},
    ]
    assert cells[2].name == "c002-lr0.05-b16-s0"
    assert cells[2].label() == "η=0.05 S=16 seed=0"
    with pytest.raises(SweepError, match="at least one axis"):
        plan_cells({})


def test_create_writes_sweep_json_and_reopens_the_same_sweep(tmp_path: Path) -> None:
    axes = {"lr": [0.01, 0.05], "batch_size": [16, 32]}
    sw = create_sweep("smoke", axes, set_items=FAST, runs_dir=tmp_path)
    assert sw.path == tmp_path / "sweeps" / sweep_id_for("smoke", FAST, axes)
    assert sw.sweep_id.startswith("smoke-")
    data = json.loads((sw.path / "sweep.json").read_text(encoding="utf-8"))
    assert data["profile"] == "smoke" and data["set"] == FAST
    assert data["overrides"] == {"first_epoch_every": 0, "epochs": 1, "k": 10,
                                 "dense_max_params": 0}
    assert data["axes"] == {"lr": [0.01, 0.05], "batch_size": [16, 32]}
    assert [c["settings"] for c in data["cells"]][1] == {"lr": 0.01, "batch_size": 32}
    assert all(c["run_id"] is None for c in data["cells"])
    assert sw.runs_dir.is_dir() and sw.logs_dir.is_dir()
    assert sw.varying == ["lr", "batch_size"]
    assert all(sw.cell_status(c) == PENDING for c in sw.cells)
    # The same inputs (in another order of --set) name the same sweep: it is reopened.
    again = create_sweep("smoke", axes, set_items=list(reversed(FAST)), runs_dir=tmp_path)
    assert again.path == sw.path
    # Other inputs under the same id are refused.
    with pytest.raises(SweepError, match="other settings"):
        create_sweep("smoke", {"lr": [0.1]}, runs_dir=tmp_path, sweep_id=sw.sweep_id)
    assert resolve_sweep(sw.sweep_id, tmp_path) == sw.path
    assert resolve_sweep("smoke-", tmp_path) == sw.path
    assert resolve_sweep("latest", tmp_path) == sw.path
    assert resolve_sweep(str(sw.path), tmp_path) == sw.path
    with pytest.raises(SweepError, match="no sweep"):
        resolve_sweep("nope", tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"set_items": ["lr=0.1"]}, "conflicts with the swept axis --lr"),
        ({"set_items": ["nonsense=1"]}, "unknown profile key 'nonsense'"),
        ({"set_items": ["epochs"]}, "key=value"),
        ({"profile": "no-such-profile"}, "unknown profile"),
        ({"axes": {"momentum": [0.5]}, "set_items": ["k=0"]}, "k must be a positive"),
        ({"sweep_id": "../escape"}, "not a sweep id"),
    ],
)
def test_create_refuses_bad_input_before_running(tmp_path: Path, kwargs: dict, match: str
                                                 ) -> None:
    args = {"profile": "smoke", "axes": {"lr": [0.01, 0.05]}, **kwargs}
    with pytest.raises(SweepError, match=match):
        create_sweep(args.pop("profile"), args.pop("axes"), runs_dir=tmp_path, **args)
    assert not (tmp_path / "sweeps").exists() or not any((tmp_path / "sweeps").iterdir())


def test_cell_command_is_a_headless_sgdtop_run(tmp_path: Path) -> None:
    sw = create_sweep("smoke", {"lr": [0.05], "seed": [3]}, set_items=["epochs=1"],
                      runs_dir=tmp_path)
    cmd = cell_command(sw, sw.cells[0], python="py")
    # -P: the working directory stays off sys.path (issue 12.7).
    assert cmd == ["py", "-P", "-m", "sgdtop", "run", "--profile", "smoke", "--lr", "0.05",
                   "--seed", "3", "--log", "--runs-dir", str(sw.runs_dir), "--set", "epochs=1"]
    sw.cells[0].run_id = "r1"  # chosen by the sweep before the cell starts (issue 12.2)
    assert cell_command(sw, sw.cells[0], python="py")[-4:] == [
        "--run-id", "r1", "--set", "epochs=1"]


# ----------------------------------------------------------------------------- devices
def test_gpus_round_robin_only_with_several() -> None:
    assert gpu_for_slot(0, []) is None
    assert gpu_for_slot(3, ["0"]) is None
    assert [gpu_for_slot(s, ["0", "1"]) for s in range(4)] == ["0", "1", "0", "1"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "2, 5"}) == ["2", "5"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []
    assert isinstance(visible_gpus({"PATH": ""}), list)  # no nvidia-smi: no GPUs, no error


def _fake_python(tmp_path: Path) -> str:
    """A stand-in for the interpreter: prints its CUDA device and fails like a bad run."""
    script = tmp_path / "fake-python"
    script.write_text('#!/bin/sh\necho "device=$CUDA_VISIBLE_DEVICES"\n'
                      'echo "sgdtop: error: boom" >&2\nexit 1\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_parallel_slots_get_their_gpu_and_failures_are_reported(tmp_path: Path) -> None:
    sw = create_sweep("smoke", {"lr": [0.01, 0.02, 0.05]}, runs_dir=tmp_path)
    updates: list[CellUpdate] = []
    result = run_sweep(sw, jobs=2, on_update=updates.append, gpus=["4", "7"],
                       python=_fake_python(tmp_path), handle_signals=False, poll_s=0.05)
    starts = [u for u in updates if u.kind == "start"]
    assert sorted(u.index for u in starts) == [0, 1, 2]
    for u in starts:
        assert u.device == ["4", "7"][u.slot or 0]
        log = sw.log_path(u.cell).read_text(encoding="utf-8")
        assert f"device={u.device}" in log and "sgdtop run --profile smoke" in log
    ends = [u for u in updates if u.kind == "end"]
    assert {u.status for u in ends} == {"failed"}
    assert all("boom" in u.message for u in ends)
    assert result.statuses == [PENDING] * 3  # no run was created: a resume runs them
    assert result.exit_code == 1 and not result.interrupted
    assert not (sw.path / "sweep.pid").exists()


def test_signals_set_the_stop_flag_instead_of_raising() -> None:
    stop = threading.Event()
    escalated: list[bool] = []
    with stop_on_signals(stop, lambda: escalated.append(True)):
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.wait(5)
        os.kill(os.getpid(), signal.SIGTERM)
    assert escalated == [True]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# ----------------------------------------------------------------------------- end to end
def _mark_interrupted(run_dir: Path) -> None:
    """Rewrite a finished run's run_end as if it had been stopped."""
    events = read_events(run_dir / "events.jsonl").records
    end = events[-1]
    assert end.kind == "run_end"
    events[-1] = make_event("run_end", end.t, step=end.step, epoch=end.epoch,
                            status="interrupted", message="stopped", steps=end.steps,
                            seconds=end.seconds)
    (run_dir / "events.jsonl").write_text("".join(encode(e) for e in events),
                                          encoding="utf-8")


def test_smoke_sweep_end_to_end_then_resume(tmp_path: Path) -> None:
    axes = {"lr": parse_axis("0.01,0.05"), "batch_size": parse_axis("16,32", "batch_size")}
    sw = create_sweep("smoke", axes, set_items=FAST, runs_dir=tmp_path)
    updates: list[CellUpdate] = []
    result = run_sweep(sw, jobs=2, on_update=updates.append, gpus=[], handle_signals=False)
    assert result.statuses == ["completed"] * 4, [
        sw.log_path(c).read_text(encoding="utf-8") for c in sw.cells]
    assert result.ran == 4 and result.exit_code == 0

    # sweep.json names each cell's run; each is a normal run directory in <sweep>/runs.
    saved = load_sweep(sw.path)
    run_ids = [c.run_id for c in saved.cells]
    assert all(run_ids) and len(set(run_ids)) == 4
    assert sorted(d.name for d in list_run_dirs(sw.runs_dir)) == sorted(map(str, run_ids))
    for cell in saved.cells:
        prof = json.loads((sw.runs_dir / str(cell.run_id) / "profile.json").read_text())
        assert (prof["lr"], prof["batch_size"]) == (cell.settings["lr"],
                                                    cell.settings["batch_size"])
        assert prof["epochs"] == 1 and prof["k"] == 10
        assert "run completed" in sw.log_path(cell).read_text(encoding="utf-8")
    listing = CliRunner().invoke(__import__("sgdtop.cli").cli.app,
                                 ["runs", "--runs-dir", str(sw.runs_dir)])
    assert listing.exit_code == 0 and listing.output.count("completed") == 4

    # The callback saw every cell start, measure and end, with headline numbers.
    assert sorted(u.index for u in updates if u.kind == "start") == [0, 1, 2, 3]
    assert {u.index for u in updates if u.kind == "progress"} == {0, 1, 2, 3}
    ends = [u for u in updates if u.kind == "end"]
    assert len(ends) == 4
    for u in ends:
        assert u.status == "completed" and u.run_id == run_ids[u.index]
        assert u.spectral_norm is not None and u.spectral_norm > 0
        assert u.test_loss is not None and math.isfinite(u.test_loss)
        assert u.test_acc is not None and math.isnan(u.test_acc)  # regression

    # Resume after an interrupted cell: only that cell runs again, in a fresh run dir.
    old = str(saved.cells[2].run_id)
    _mark_interrupted(sw.runs_dir / old)
    resumed = create_sweep("smoke", axes, set_items=FAST, runs_dir=tmp_path)
    assert resumed.path == sw.path and resumed.cell_status(resumed.cells[2]) == "interrupted"
    updates.clear()
    result = run_sweep(resumed, jobs=2, on_update=updates.append, gpus=[],
                       handle_signals=False)
    assert result.statuses == ["completed"] * 4 and result.ran == 1
    assert [u.index for u in updates if u.kind == "start"] == [2]
    skips = [u for u in updates if u.kind == "skip"]
    assert sorted(u.index for u in skips) == [0, 1, 3]
    assert all(u.status == "completed" and u.spectral_norm for u in skips)
    again = load_sweep(sw.path)
    assert [c.run_id for i, c in enumerate(again.cells) if i != 2] == [
        r for i, r in enumerate(run_ids) if i != 2]
    assert again.cells[2].run_id not in (None, old)
    assert again.cells[2].previous == [old]
    assert run_info(sw.runs_dir / old).status == "interrupted"  # kept
    assert len(list_run_dirs(sw.runs_dir)) == 5

    # The Fig. 3 summary of the real runs: finite averages and one line per group.
    summary = summarize_sweep(sw.path)
    assert [c.status for c in summary.cells] == ["completed"] * 4
    for c in summary.cells:
        assert c.mean_spectral_norm is not None and c.mean_spectral_norm > 0
        assert c.mean_top10_mean is not None and 0 < c.mean_top10_mean <= c.mean_spectral_norm
        assert c.n_spectra >= 2
    assert len(summary.fits) == 8  # 2 quantities × (2 groups vs 1/η + 2 groups vs S)
    assert all(f.fit is not None and f.fit.n == 2 for f in summary.fits)


def test_stop_interrupts_running_cells_cleanly(tmp_path: Path) -> None:
    sw = create_sweep("smoke", {"lr": [0.05]},
                      set_items=["epochs=20", "k=10", "first_epoch_every=0",
                                 "dense_max_params=0"], runs_dir=tmp_path)
    stop = threading.Event()

    def on_update(u: CellUpdate) -> None:
        if u.kind == "progress":  # training is under way: ask it to stop
            stop.set()

    result = run_sweep(sw, jobs=1, on_update=on_update, stop=stop, gpus=[],
                       handle_signals=False)
    assert result.interrupted and result.exit_code == 130
    assert result.statuses == ["interrupted"]
    run_dir = sw.runs_dir / str(load_sweep(sw.path).cells[0].run_id)
    assert run_info(run_dir).status == "interrupted"
    assert live_pid(run_dir) is None  # no trainer left behind


# ----------------------------------------------------------------------------- Fig. 3 fit
def test_fit_line_recovers_a_known_line_and_matches_numpy() -> None:
    x = np.array([10.0, 20.0, 50.0, 100.0, 1000.0])
    fit = fit_line(x, 0.02 * x + 3.0)
    assert fit.slope == pytest.approx(0.02) and fit.intercept == pytest.approx(3.0)
    assert fit.r2 == pytest.approx(1.0) and fit.n == 5
    rng = np.random.default_rng(0)
    y = 0.02 * x + 3.0 + rng.normal(0, 2.0, x.size)
    noisy = fit_line(np.append(x, np.nan), np.append(y, 1.0))  # non-finite pairs dropped
    slope, intercept = np.polyfit(x, y, 1)
    assert noisy.n == 5
    assert noisy.slope == pytest.approx(slope) and noisy.intercept == pytest.approx(intercept)
    assert noisy.r2 == pytest.approx(np.corrcoef(x, y)[0, 1] ** 2)
    assert 0 < noisy.r2 < 1
    assert fit_line([1.0, 2.0], [5.0, 5.0]).r2 == 1.0  # flat and fitted exactly
    with pytest.raises(ValueError, match="two distinct"):
        fit_line([1.0, 1.0], [2.0, 3.0])


#: The synthetic sweep's law: time-averaged ρ(H) = A + B/η + C·S; top-10 mean = ρ/2.
A, B, C = 2.0, 0.05, 0.01
LRS = [0.1, 0.05, 0.02, 0.01]
SIZES = [32, 128]


def _synthetic_run(run_dir: Path, lr: float, batch_size: int, status: str,
                   rho_mean: float) -> None:
    """A recorded run whose ρ(H) oscillates around ``rho_mean`` (so its time average is
    exactly that) and whose top-10 mean |λ| is ρ(H)/2 at every measurement."""
    run_dir.mkdir(parents=True)
    (run_dir / "profile.json").write_text(json.dumps(
        {"model": "mlp", "dataset": "teacher-student", "lr": lr, "batch_size": batch_size,
         "momentum": 0.9}))
    evs = [make_event(
        "run_start", 0.0, step=0, epoch=0, run_id=run_dir.name, profile={"seed": 0},
        model="mlp", num_params=625, device="cpu", versions={}, dataset="teacher-student",
        train_size=256, test_size=128, probe_size=256, lr=lr, batch_size=batch_size,
        momentum=0.9, weight_decay=0.0, k=10, epochs=4, steps_per_epoch=10)]
    for j in range(4):
        rho = rho_mean * (1.0 + 0.1 * (-1) ** j)
        rest = (5.0 * rho - rho) / 9.0  # mean of the top 10 = rho / 2
        eigs = [rho] + [rest * (-1) ** i for i in range(9)]
        evs.append(make_event(
            "spectrum", float(j), step=10 * j, epoch=j, eigenvalues=eigs,
            residuals=[0.0] * 10, converged=[True] * 10, spectral_norm=rho,
            cond_k=rho / rest, lr=lr, momentum=0.9, eta_lambda1=lr * rho,
            stability_limit=3.8 / lr, hvps=20, seconds=0.1, warm=j > 0))
    evs.append(make_event("eval", 4.0, step=40, epoch=3, train_loss=0.1, train_acc=0.9,
                          test_loss=0.2, test_acc=0.8))
    evs.append(make_event("run_end", 4.0, step=40, epoch=3, status=status, message="",
                          steps=40, seconds=4.0))
    (run_dir / "events.jsonl").write_text("".join(encode(e) for e in evs), encoding="utf-8")


def _synthetic_sweep(tmp_path: Path) -> Sweep:
    """4 η × 2 S following the law exactly, except η=0.01, S=128: interrupted, with a
    wild ρ(H) that the fit must leave out."""
    sw = create_sweep("smoke", {"lr": LRS, "batch_size": SIZES}, runs_dir=tmp_path)
    for cell in sw.cells:
        lr, s = float(cell.settings["lr"]), int(cell.settings["batch_size"])
        odd = (lr, s) == (0.01, 128)
        cell.run_id = f"run-{cell.name}"
        _synthetic_run(sw.runs_dir / cell.run_id, lr, s,
                       "interrupted" if odd else "completed",
                       1000.0 if odd else A + B / lr + C * s)
    sw.save()
    return sw


def test_fig3_fit_recovers_the_known_slopes(tmp_path: Path) -> None:
    sw = _synthetic_sweep(tmp_path)
    summary = summarize_sweep(sw.path)
    assert summary.varying == ["lr", "batch_size"]
    cell = summary.cells[0]
    assert (cell.lr, cell.batch_size, cell.status) == (0.1, 32, "completed")
    assert cell.mean_spectral_norm == pytest.approx(A + B / 0.1 + C * 32)
    assert cell.mean_top10_mean == pytest.approx((A + B / 0.1 + C * 32) / 2)
    assert cell.final_test_acc == pytest.approx(0.8) and cell.inv_lr == pytest.approx(10)
    fits = {(f.quantity, f.x_axis, tuple(f.group.values())): f for f in summary.fits}
    assert len(fits) == 2 * (len(SIZES) + len(LRS))
    for s in SIZES:
        rho = fits[("spectral_norm", "inv_lr", (s,))]
        top = fits[("top10_mean", "inv_lr", (s,))]
        assert rho.fit is not None and top.fit is not None
        assert rho.fit.n == (3 if s == 128 else 4)  # the interrupted cell is left out
        assert rho.fit.slope == pytest.approx(B) and rho.fit.r2 == pytest.approx(1.0)
        assert rho.fit.intercept == pytest.approx(A + C * s)
        assert top.fit.slope == pytest.approx(B / 2)
        assert top.fit.intercept == pytest.approx((A + C * s) / 2)
        assert np.all(np.diff(rho.x) > 0)  # sorted by 1/η
    for lr in LRS[:-1]:
        rho = fits[("spectral_norm", "batch_size", (lr,))]
        assert rho.fit is not None
        assert rho.fit.slope == pytest.approx(C) and rho.fit.intercept == pytest.approx(A + B / lr)
        assert rho.group_label == f"η={lr:g}"
    lone = fits[("spectral_norm", "batch_size", (0.01,))]
    assert lone.fit is None and lone.x.size == 1  # one completed cell: no line

    text = render_sweep_text(summary)
    assert "0.05" in text and "slope" in text and "interrupted" in text and "1/η" in text
    buf = io.StringIO()
    Console(file=buf, width=200, no_color=True).print(*sweep_tables(summary))
    assert "linear fits" in buf.getvalue() and "r²" in buf.getvalue()


def test_plot_sweep_draws_fig3(tmp_path: Path) -> None:
    mpl_image = pytest.importorskip("matplotlib.image")
    sw = _synthetic_sweep(tmp_path)
    out = plot_sweep(sw.path, tmp_path / "fig" / "fig3.png")
    assert out.is_file() and out.stat().st_size > 30_000
    img = mpl_image.imread(out)
    assert img.shape[1] > img.shape[0] > 300  # two panels side by side
    rgb = img[..., :3]
    assert float(rgb.var()) > 1e-3
    assert float(((rgb.max(axis=2) - rgb.min(axis=2)) > 0.2).mean()) > 1e-3  # colored ink
    svg = plot_sweep(sw, tmp_path / "fig3.svg")
    assert "slope" in svg.read_text(encoding="utf-8")
    with pytest.raises(ValueError, match=r"\.png"):
        plot_sweep(sw, tmp_path / "fig3.jpg")


def test_plot_sweep_needs_eta_or_s_and_a_completed_cell(tmp_path: Path) -> None:
    from sgdtop.plot import PlotDataError

    sw = create_sweep("smoke", {"momentum": [0.0, 0.9]}, runs_dir=tmp_path)
    with pytest.raises(PlotDataError, match="neither η nor S"):
        plot_sweep(sw, tmp_path / "a.png")
    sw2 = create_sweep("smoke", {"lr": [0.01, 0.1]}, runs_dir=tmp_path)
    with pytest.raises(PlotDataError, match="no completed cell"):
        plot_sweep(sw2, tmp_path / "b.png")
    assert "no completed cells" in render_sweep_text(summarize_sweep(sw2))


# ----------------------------------------------------------------------------- printer
def test_log_printer_lines() -> None:
    buf = io.StringIO()
    printer = SweepLogPrinter(buf, progress_every_s=3600)
    cell = Cell(index=1, name="c001-lr0.05-b16", settings={"lr": 0.05, "batch_size": 16},
                run_id="r1")
    base = {"index": 1, "n_cells": 12, "cell": cell, "run_id": "r1"}
    printer(CellUpdate(kind="skip", status="completed", message="not run again", **base))
    printer(CellUpdate(kind="start", status="running", device="1", **base))
    printer(CellUpdate(kind="progress", status="running", step=5, epoch=0, epochs=2,
                       spectral_norm=3.5, test_acc=0.5, **base))  # throttled
    printer(CellUpdate(kind="end", status="completed", spectral_norm=3.25, test_acc=0.875,
                       seconds=12.0, **base))
    printer(CellUpdate(kind="end", status="failed", spectral_norm=None,
                       test_acc=math.nan, test_loss=0.5, message="boom", **base))
    lines = buf.getvalue().splitlines()
    assert lines == [
        "[ 2/12] c001-lr0.05-b16 completed (run r1): not run again",
        "[ 2/12] c001-lr0.05-b16 started: η=0.05 S=16 on CUDA device 1",
        "[ 2/12] c001-lr0.05-b16 completed (run r1, 12s): ρ(H) 3.25  test acc 87.5%",
        "[ 2/12] c001-lr0.05-b16 failed (run r1): ρ(H) —  test loss 0.5  [boom]",
    ]
    assert set(FINISHED) == {"completed", "diverged"}


def test_plot_a_sweeps_runs_with_any_kind(tmp_path: Path) -> None:
    """`sgdtop plot SWEEP --kind cond` draws the sweep's cell runs (newest attempts)."""
    pytest.importorskip("matplotlib")
    sw = _synthetic_sweep(tmp_path)
    root = sw.path.parent.parent  # <runs>/sweeps/<id> → <runs>
    out = tmp_path / "cond.png"
    proc = subprocess.run(
        [sys.executable, "-m", "sgdtop", "plot", sw.sweep_id, "--kind", "cond", "--out",
         str(out), "--runs-dir", str(root)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.is_file() and out.stat().st_size > 20_000
    empty = create_sweep("smoke", {"lr": [0.01, 0.1]}, runs_dir=root)
    proc = subprocess.run(
        [sys.executable, "-m", "sgdtop", "plot", empty.sweep_id, "--kind", "cond", "--out",
         str(tmp_path / "x.png"), "--runs-dir", str(root)], capture_output=True, text=True,
        timeout=120)
    assert proc.returncode == 2 and "no runs yet" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_parallel_cells_share_the_cpus() -> None:
    from sgdtop.sweep import cell_cpu_threads

    assert cell_cpu_threads(1, {}, cpus=16) is None  # one cell: torch's default
    assert cell_cpu_threads(2, {}, cpus=2) == "1"
    assert cell_cpu_threads(4, {}, cpus=16) == "4"
    assert cell_cpu_threads(8, {}, cpus=2) == "1"  # never 0
    assert cell_cpu_threads(2, {"OMP_NUM_THREADS": "3"}, cpus=16) is None  # the user's own


def test_regression_sweeps_show_the_test_loss(tmp_path: Path) -> None:
    from sgdtop.sweep import cell_rows

    sw = create_sweep("smoke", {"lr": [0.01, 0.05]}, runs_dir=tmp_path, set_items=FAST)
    result = run_sweep(sw, handle_signals=False)
    assert result.exit_code == 0
    rows = cell_rows(summarize_sweep(sw))
    assert "test loss" in rows[0] and "test acc" not in rows[0]
    col = rows[0].index("test loss")
    assert all(float(r[col]) > 0 for r in rows[1:])


def test_a_changed_profile_is_not_resumed_silently(tmp_path: Path) -> None:
    """The finished cells of a sweep were trained with the profile as it was; after the
    file changes, the same command is refused with the changed field named, unless the
    file is restored. A sweep.json from before resolved profiles were stored resumes."""
    prof = tmp_path / "mine.toml"
    prof.write_text('model = "mlp"\ndataset = "teacher-student"\nepochs = 1\n'
                    'n_train = 64\ninput_dim = 8\nhidden = [4]\n', encoding="utf-8")
    sw = create_sweep(str(prof), {"lr": [0.01, 0.1]}, runs_dir=tmp_path / "runs")
    assert sw.resolved is not None and sw.resolved["epochs"] == 1
    assert create_sweep(str(prof), {"lr": [0.01, 0.1]}, runs_dir=tmp_path / "runs").path == sw.path
    prof.write_text(prof.read_text().replace("epochs = 1", "epochs = 3"), encoding="utf-8")
    with pytest.raises(SweepError, match=r"changed since .*epochs 1 → 3.*--name"):
        create_sweep(str(prof), {"lr": [0.01, 0.1]}, runs_dir=tmp_path / "runs")
    other = create_sweep(str(prof), {"lr": [0.01, 0.1]}, runs_dir=tmp_path / "runs",
                         sweep_id="mine-3-epochs")
    assert other.path != sw.path and other.resolved["epochs"] == 3  # type: ignore[index]
    data = json.loads((sw.path / "sweep.json").read_text(encoding="utf-8"))
    del data["resolved_profile"]  # written by an older sgdtop
    (sw.path / "sweep.json").write_text(json.dumps(data), encoding="utf-8")
    assert create_sweep(str(prof), {"lr": [0.01, 0.1]}, runs_dir=tmp_path / "runs").path == sw.path


def test_plot_a_momentum_sweep_draws_its_runs(tmp_path: Path) -> None:
    """A sweep with no η or S axis has no Fig. 3: `sgdtop plot SWEEP` draws its runs."""
    pytest.importorskip("matplotlib")
    sw = create_sweep("smoke", {"momentum": [0.0, 0.9]}, runs_dir=tmp_path, set_items=FAST)
    assert run_sweep(sw, handle_signals=False).exit_code == 0
    out = tmp_path / "mom.png"
    proc = subprocess.run(
        [sys.executable, "-m", "sgdtop", "plot", sw.sweep_id, "--out", str(out),
         "--runs-dir", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.is_file() and out.stat().st_size > 20_000


# ----------------------------------------------------------------------------- faults (#12)
def _sweep_cli(tmp_path: Path, *extra: str) -> list[str]:
    cmd = [sys.executable, "-m", "sgdtop", "sweep", "smoke", "--lr", "0.05", "--log",
           "--runs-dir", str(tmp_path), *extra]
    for item in FAST:
        cmd += ["--set", item]
    return cmd


def test_a_sweep_killed_as_a_cell_starts_trains_it_once(tmp_path: Path) -> None:
    """Issue 12.2: SIGKILL `sgdtop sweep` right after a cell started, resume at once: the
    cell (still starting, no run directory yet) is followed, not trained a second time."""
    proc = subprocess.Popen(_sweep_cli(tmp_path), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if " started: " in line:
            break
    proc.kill()
    proc.wait()
    (sweep_dir,) = (tmp_path / "sweeps").iterdir()
    recorded = json.loads((sweep_dir / "sweep.json").read_text())["cells"][0]["run_id"]
    assert recorded  # chosen and saved before the cell was spawned

    resumed = subprocess.run(_sweep_cli(tmp_path), capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "not started again" in resumed.stderr
    runs = list_run_dirs(sweep_dir / "runs")
    assert [d.name for d in runs] == [recorded]  # trained once, under the recorded id
    assert run_info(runs[0]).status == "completed"
    cell = load_sweep(sweep_dir).cells[0]
    assert (cell.run_id, cell.previous) == (recorded, [])
    log = (sweep_dir / "logs" / f"{cell.name}.log").read_text(encoding="utf-8")
    assert log.count("\n=== ") + log.startswith("=== ") == 1  # one attempt, no interleaving
    assert log.count("run completed") == 1


@pytest.mark.parametrize("field,value", [
    ("name", "../../../../x"), ("name", "a/b"), ("run_id", "../../escape"),
    ("run_id", ".hidden"), ("previous", ["../x"]), ("sweep_id", "a\nb"),
])
def test_names_from_a_tampered_sweep_json_are_refused(tmp_path: Path, field: str,
                                                      value: object) -> None:
    """Issue 12.6: names and run ids read from sweep.json are checked like the command
    line's: a resume of a tampered sweep writes nothing outside the sweep directory."""
    sw = create_sweep("smoke", {"lr": [0.05]}, set_items=FAST, runs_dir=tmp_path)
    data = json.loads((sw.path / "sweep.json").read_text())
    if field == "sweep_id":
        data[field] = value
    else:
        data["cells"][0][field] = value
    (sw.path / "sweep.json").write_text(json.dumps(data))
    before = sorted(p for p in tmp_path.rglob("*"))
    with pytest.raises(SweepError, match=r"sweep\.json: .* is not a (cell name|run id|sweep "
                                         r"id)") as info:
        load_sweep(sw.path)
    assert "\n" not in str(info.value)
    proc = subprocess.run(_sweep_cli(tmp_path), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "sgdtop: error: " in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p for p in tmp_path.rglob("*")) == before
    assert not (tmp_path.parent / "x.log").exists()


@pytest.mark.parametrize("name", ["bad\nname", "   ", "", "../x", "-x"])
def test_a_sweep_name_must_be_a_plain_name(tmp_path: Path, name: str) -> None:
    """Issue 12.6: `--name` with a newline or only spaces is refused: one line, exit 2."""
    proc = subprocess.run(_sweep_cli(tmp_path, "--name", name), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("sgdtop: error: ")
    assert "is not a sweep id" in proc.stderr
    assert not (tmp_path / "sweeps").exists() or not any((tmp_path / "sweeps").iterdir())


def test_cells_do_not_import_modules_from_the_working_directory(tmp_path: Path) -> None:
    """Issue 12.7: a `json.py` in the working directory is not what the cells import."""
    work = tmp_path / "work"
    work.mkdir()
    marker = tmp_path / "imported"
    (work / "json.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n"
                                  "raise SystemExit('planted json.py imported')\n")
    sw = create_sweep("smoke", {"lr": [0.05]}, set_items=FAST, runs_dir=tmp_path / "runs")
    cwd = os.getcwd()
    os.chdir(work)
    try:
        result = run_sweep(sw, handle_signals=False)
    finally:
        os.chdir(cwd)
    assert not marker.exists()
    assert result.statuses == ["completed"], sw.log_path(sw.cells[0]).read_text()


def test_a_cells_newer_schema_line_is_reported_not_dropped(tmp_path: Path) -> None:
    """The cell tail decodes with the schema's decoder: a line of a newer schema is one
    clear message naming the file and line (it used to be dropped silently)."""
    from sgdtop.sweep.tail import CellTail

    path = tmp_path / "events.jsonl"
    good = make_event("eval", 1.0, step=5, epoch=0, train_loss=0.5, train_acc=0.9,
                      test_loss=0.25, test_acc=0.75)
    path.write_text(encode(good) + '{"v": 99, "kind": "eval", "t": 2.0}\n' + encode(good),
                    encoding="utf-8")
    tail = CellTail(path)
    seen = tail.read()
    assert (seen.step, seen.test_loss, seen.test_acc, seen.measured) == (5, 0.25, 0.75, True)
    assert tail.newer is not None and "\n" not in tail.newer
    assert f"{path} line 2" in tail.newer and "newer sgdtop" in tail.newer
    out = io.StringIO()
    cell = Cell(index=0, name="c000-lr0.1", settings={"lr": 0.1})
    SweepLogPrinter(out)(CellUpdate(kind="progress", index=0, n_cells=1, cell=cell,
                                    status="running", message=tail.newer))
    assert tail.newer in out.getvalue()
    tail.close()


def test_a_cell_run_by_a_newer_sgdtop_is_one_line(tmp_path: Path) -> None:
    """A resume over a cell whose run was written by a newer schema says so in one line
    (it used to end in a SchemaVersionError traceback)."""
    sw = create_sweep("smoke", {"lr": [0.05]}, set_items=FAST, runs_dir=tmp_path)
    sw.cells[0].run_id = "newer-run"
    (sw.runs_dir / "newer-run").mkdir(parents=True)
    (sw.runs_dir / "newer-run" / "events.jsonl").write_text(
        '{"v": 99, "kind": "run_end", "t": 1.0}\n', encoding="utf-8")
    sw.save()
    with pytest.raises(SweepError, match="written by a newer sgdtop") as info:
        run_sweep(load_sweep(sw.path), handle_signals=False)
    assert "\n" not in str(info.value) and "newer-run/events.jsonl" in str(info.value)
    proc = subprocess.run(_sweep_cli(tmp_path), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("sgdtop: error: ")


def test_the_sweep_lock_is_held_for_life_not_read_from_a_pid(tmp_path: Path) -> None:
    """A resume is refused only while a live process holds ``sweep.lock``: a file a dead
    sweep left behind, even naming a live pid (1), does not block it (issue 12.1's fault,
    for the sweep process itself)."""
    from sgdtop.sweep import SWEEP_LOCK_FILE
    from sgdtop.sweep.runner import _claim
    from sgdtop.sweep.sweepfile import hold_lock

    sw = create_sweep("smoke", {"lr": [0.05]}, set_items=FAST, runs_dir=tmp_path)
    lock = sw.path / SWEEP_LOCK_FILE
    lock.write_text("1\n")
    fd = _claim(sw)
    assert lock.read_text().strip() == str(os.getpid())
    os.close(fd)
    held = hold_lock(lock)
    try:
        with pytest.raises(SweepError, match="already running"):
            _claim(sw)
    finally:
        os.close(held)
