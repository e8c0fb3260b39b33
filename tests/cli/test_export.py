"""Export (sgdtop.export): tidy CSV round-trip, TensorBoard files read back."""

from __future__ import annotations

import csv
import math
import os
import re
import resource
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from runs_fixtures import (
    EPOCHS,
    INF_EVAL_EPOCH,
    NAN_SPECTRUM_STEP,
    SPECTRUM_EVERY,
    STEPS,
    K,
    eigenvalues,
    high_lr_run,
    low_lr_run,
    write_jsonl,
)
from schema_samples import make_record as make_event

from sgdtop.export import (
    BASE_COLUMNS,
    INSTALL_HINT_TB,
    ExportUnavailableError,
    export_csv,
    export_tensorboard,
)

N_SPECTRA = STEPS // SPECTRUM_EVERY


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def test_one_csv_per_kind_present(tmp_path: Path) -> None:
    files = export_csv(high_lr_run().events, tmp_path / "csv")
    assert list(files) == [
        "run_start", "step", "eval", "spectrum", "spectrum_eigenvalues", "dense_spectrum",
        "dense_spectrum_histogram", "loss_slice", "loss_slice_points", "neurons",
        "neurons_layers", "log", "run_end",
    ]
    assert sorted(p.name for p in (tmp_path / "csv").iterdir()) == sorted(
        f"{name}.csv" for name in files
    )
    for path in files.values():
        header, _ = _read(path)
        assert tuple(header[:4]) == BASE_COLUMNS
        assert len(header) == len(set(header))
    assert "dense_spectrum" not in export_csv(low_lr_run().events, tmp_path / "low")


def test_loss_slices_in_long_form(tmp_path: Path) -> None:
    events = high_lr_run().events
    slices = [ev for ev in events if ev.kind == "loss_slice"]
    files = export_csv(events, tmp_path / "csv")
    _, scalars = _read(files["loss_slice"])
    assert len(scalars) == len(slices)
    assert float(scalars[0]["loss0"]) == slices[0].loss0
    _, points = _read(files["loss_slice_points"])
    first = slices[0]
    n = len(first.distances)
    assert len(points) == sum(len(ev.losses) * n for ev in slices)
    row = points[n + 2]  # direction 2, third distance
    assert int(row["direction"]) == 2
    assert float(row["distance"]) == first.distances[2]
    assert float(row["loss"]) == first.losses[1][2]
    assert float(row["eigenvalue"]) == first.eigenvalues[1]


def test_eigenvalues_round_trip_in_long_form(tmp_path: Path) -> None:
    run = low_lr_run()
    files = export_csv(run.events, tmp_path)
    header, rows = _read(files["spectrum_eigenvalues"])
    assert header == [*BASE_COLUMNS, "rank", "eigenvalue", "residual", "converged"]
    assert len(rows) == N_SPECTRA * K
    by_key = {(int(r["step"]), int(r["rank"])): r for r in rows}
    step = 2 * SPECTRUM_EVERY
    for rank, lam in enumerate(eigenvalues(0.01, step), start=1):
        row = by_key[(step, rank)]
        assert float(row["eigenvalue"]) == lam  # full precision
        assert float(row["residual"]) == pytest.approx(1e-4 * rank)
        assert row["converged"] == str(rank <= K - 2)
        assert row["run_id"] == "resnet32-lr0.01" and row["epoch"] == "0"
        assert float(row["t"]) == step * 0.5
    assert all(math.isnan(float(by_key[(NAN_SPECTRUM_STEP, r)]["eigenvalue"]))
               for r in range(1, K + 1))


def test_scalar_tables_round_trip(tmp_path: Path) -> None:
    files = export_csv(low_lr_run().events, tmp_path)
    _, spectra = _read(files["spectrum"])
    assert len(spectra) == N_SPECTRA
    assert "eigenvalues" not in spectra[0]
    nan_row = next(r for r in spectra if int(r["step"]) == NAN_SPECTRUM_STEP)
    assert nan_row["spectral_norm"] == "nan" and math.isnan(float(nan_row["spectral_norm"]))
    assert {r["warm"] for r in spectra} == {"True", "False"}
    _, evals = _read(files["eval"])
    assert len(evals) == EPOCHS
    assert float(evals[INF_EVAL_EPOCH]["test_loss"]) == math.inf
    _, logs = _read(files["log"])
    assert logs[0]["message"] == 'a, "quoted" line' and logs[0]["step"] == ""
    header, start = _read(files["run_start"])
    assert header.count("run_id") == 1
    assert start[0]["profile.train.lr"] == "0.01" and start[0]["versions.torch"] == "2.4"
    assert int(start[0]["num_params"]) == 464_154
    _, layers = _read(files["neurons_layers"])
    assert len(layers) == 2 * EPOCHS
    assert layers[0]["layer"] == "layer1.0.relu" and float(layers[0]["dead_pct"]) == 3.125


def test_dense_histogram_and_run_id_override(tmp_path: Path) -> None:
    run = high_lr_run()
    dense = next(ev for ev in run.events if ev.kind == "dense_spectrum")
    files = export_csv(run.events, tmp_path, run_id="my-label")
    _, bins = _read(files["dense_spectrum_histogram"])
    assert len(bins) == len(dense.hist_counts)
    assert [int(b["count"]) for b in bins] == list(dense.hist_counts)
    assert float(bins[3]["left"]) == dense.hist_edges[3]
    assert float(bins[3]["right"]) == dense.hist_edges[4]
    _, summary = _read(files["dense_spectrum"])
    assert float(summary[0]["cond"]) == dense.cond
    for path in files.values():
        assert {r["run_id"] for r in _read(path)[1]} == {"my-label"}


def test_nested_lists_are_json_text(tmp_path: Path) -> None:
    # An unknown field (kept by the record in .extra; a wire key literally named "extra"
    # is reserved by the schema, so the field is called "detail" here).
    ev = make_event("log", 1.0, level="info", message="m", source="trainer",
                    detail=[1.0, math.nan, {"a": math.inf}])
    files = export_csv([ev], tmp_path)
    _, rows = _read(files["log"])
    assert rows[0]["detail"] == '[1.0, "nan", {"a": "inf"}]'
    assert rows[0]["run_id"] == ""


def _accumulate(log_dir: Path) -> object:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"tensors": 0})
    acc.Reload()
    return acc


def _values(acc: object, tag: str) -> list[tuple[int, float, float]]:
    from tensorboard.util import tensor_util

    return [
        (e.step, e.wall_time, float(tensor_util.make_ndarray(e.tensor_proto)))
        for e in acc.Tensors(tag)  # type: ignore[attr-defined]
    ]


def test_tensorboard_scalars_read_back(tmp_path: Path) -> None:
    run = low_lr_run()
    report = export_tensorboard(run.events, tmp_path / "tb", wall_time_origin=1_000.0)
    assert len(list((tmp_path / "tb").glob("events.out.tfevents.*"))) == 1
    acc = _accumulate(tmp_path / "tb")
    tags = set(acc.Tags()["tensors"])  # type: ignore[attr-defined]
    assert tags == set(report.tags)
    for tag in ("spectrum/spectral_norm", "spectrum/cond_k", "spectrum/top10_mean",
                "spectrum/lambda_01", f"spectrum/lambda_{K}", "eval/test_acc", "eval/test_loss",
                "train/loss", "neurons/dead_pct", "neurons/layer1.0.relu/dead_pct"):
        assert tag in tags, tag
    rho = _values(acc, "spectrum/spectral_norm")
    assert len(rho) == N_SPECTRA - 1  # the NaN one is skipped
    step, wall, value = rho[0]
    assert step == SPECTRUM_EVERY and wall == pytest.approx(1_000.0 + SPECTRUM_EVERY * 0.5)
    assert value == pytest.approx(abs(eigenvalues(0.01, SPECTRUM_EVERY)[0]), rel=1e-6)
    lam25 = _values(acc, "spectrum/lambda_25")
    assert lam25[0][2] < 0
    assert len(_values(acc, "eval/test_loss")) == EPOCHS - 1  # the inf one is skipped
    assert report.skipped_nonfinite["eval/test_loss"] == 1
    assert report.skipped_nonfinite["spectrum/spectral_norm"] == 1
    assert report.skipped_nonfinite["spectrum/lambda_01"] == 1
    assert report.n_skipped == sum(report.skipped_nonfinite.values())
    meta = acc.SummaryMetadata("spectrum/spectral_norm")  # type: ignore[attr-defined]
    assert "ρ(H)" in meta.summary_description
    assert meta.plugin_data.plugin_name == "scalars"


def test_tensorboard_refuses_to_mix_exports(tmp_path: Path) -> None:
    run = high_lr_run()
    export_tensorboard(run.events, tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="already holds TensorBoard event files"):
        export_tensorboard(run.events, tmp_path)
    report = export_tensorboard(run.events, tmp_path, replace=True)
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 1
    assert (tmp_path / "notes.txt").read_text() == "mine"
    rho = _values(_accumulate(tmp_path), "spectrum/spectral_norm")
    assert len(rho) == N_SPECTRA and report.scalars > 0


def test_tensorboard_float32_overflow_and_stepless_events(tmp_path: Path) -> None:
    events = [
        make_event("step", 0.5, step=7, lr=0.1, loss=1e39, examples_per_s=10.0, steps_per_s=1.0),
        make_event("dense_spectrum", 0.7, n=3, hist_edges=[0.0, 1.0], hist_counts=[3],
                   lambda_max=1.0, lambda_min=0.1, min_positive=0.1, cond=10.0, floor=1e-6,
                   n_negative=0),
    ]
    report = export_tensorboard(events, tmp_path)
    assert report.skipped_nonfinite == {"train/loss": 1}
    acc = _accumulate(tmp_path)
    # The step-less dense_spectrum is logged at the last step seen; wall time origin 0.
    assert _values(acc, "dense/cond") == [(7, pytest.approx(0.7), 10.0)]
    assert np.isclose(_values(acc, "train/lr")[0][2], 0.1)


def test_without_tensorboard_the_error_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "tensorboard.summary", None)
    with pytest.raises(ExportUnavailableError, match=r"pip install 'sgdtop\[tensorboard\]'"):
        export_tensorboard(high_lr_run().events, tmp_path)
    assert INSTALL_HINT_TB.startswith("tensorboard is not installed")


# ----------------------------------------------------------------------- a full disk (#12.3)
def _saved_run(tmp_path: Path) -> Path:
    """The high-η fixture run as a run directory (its export is ~130 KB of CSV)."""
    run_dir = tmp_path / "runs" / "r1"
    run_dir.mkdir(parents=True)
    write_jsonl(list(high_lr_run().events), run_dir / "events.jsonl")
    (run_dir / "profile.json").write_text('{"model": "mlp"}', encoding="utf-8")
    return run_dir


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 200 KB tmpfs with 150 KB taken: an export into it runs out of space."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (the RLIMIT_FSIZE test covers the rest)")
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mnt)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        (mnt / "filler").write_bytes(b"\0" * 150_000)
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def _export(run_dir: Path, *args: str, preexec: Callable[[], None] | None = None
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sgdtop", "export", run_dir.name, "--runs-dir",
         str(run_dir.parent), *args], capture_output=True, text=True, timeout=120,
        preexec_fn=preexec, check=False)


def _one_line_error(proc: subprocess.CompletedProcess[str], path: Path, reason: str) -> None:
    assert proc.returncode == 2
    assert proc.stderr == f"sgdtop: error: cannot write {path}: {reason}\n", proc.stderr


@pytest.mark.parametrize("kind", ["csv", "tensorboard"])
def test_a_full_disk_is_one_line_and_leaves_no_broken_file(tmp_path: Path, tiny_disk: Path,
                                                           kind: str) -> None:
    if kind == "tensorboard":
        pytest.importorskip("tensorboard")
    out = tiny_disk / "out"
    proc = _export(_saved_run(tmp_path), f"--{kind}", str(out))
    if kind == "csv":
        (failed,) = re.findall(r"cannot write (\S+): ", proc.stderr)
        _one_line_error(proc, Path(failed), "No space left on device")
        assert Path(failed).parent == out and not Path(failed).exists()
        # The tables written before it are whole; no temporary or empty file is left.
        for path in out.iterdir():
            assert path.suffix == ".csv" and path.stat().st_size > 0
            with path.open(encoding="utf-8", newline="") as fh:
                rows = list(csv.reader(fh))
            assert len({len(r) for r in rows}) == 1  # no row cut short
    else:
        _one_line_error(proc, out, "No space left on device")
        assert list(out.iterdir()) == []
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["filler", "out"]


def _limit_file_size() -> None:
    """In the child: files may not grow past 20 KB (EFBIG instead of SIGXFSZ)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))


@pytest.mark.parametrize("kind", ["csv", "tensorboard"])
def test_a_write_error_without_root_is_one_line_too(tmp_path: Path, kind: str) -> None:
    if kind == "tensorboard":
        pytest.importorskip("tensorboard")
    out = tmp_path / "out"
    proc = _export(_saved_run(tmp_path), f"--{kind}", str(out), preexec=_limit_file_size)
    assert "Exception in thread" not in proc.stderr and "Traceback" not in proc.stderr
    if kind == "csv":
        (failed,) = re.findall(r"cannot write (\S+): ", proc.stderr)
        _one_line_error(proc, Path(failed), "File too large")
        assert not Path(failed).exists()
        assert all(p.suffix == ".csv" and p.stat().st_size > 0 for p in out.iterdir())
    else:
        _one_line_error(proc, out, "File too large")
        assert list(out.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "runs"]
