"""The run lifecycle (:class:`sgdtop.recorder.RunRecorder`) without a trainer: the clock,
the throughput window, records before ``start``, ``end``, the liveness lock over a run's
life, ``summary.json`` beside the events. Torch-free."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from sgdtop.recorder import (
    EVENTS_FILE,
    SUMMARY_FILE,
    RunDescription,
    RunDirError,
    RunRecorder,
    live_pid,
)
from sgdtop.schema import Log, Record, RunEnd, RunStart, Step, read_events


def _description() -> RunDescription:
    return RunDescription(model="m", num_params=10, device="cpu", dataset="d", train_size=8,
                          test_size=2, probe_size=4, lr=0.1, batch_size=4, momentum=0.9,
                          weight_decay=0.0, k=2, epochs=1, steps_per_epoch=2)


def _started(tmp_path: Path, **kw: object) -> tuple[RunRecorder, list[Record]]:
    seen: list[Record] = []
    rec = RunRecorder(sink=seen.append, **kw)  # type: ignore[arg-type]
    rec.start(tmp_path / "run", profile={"name": "t"}, description=_description())
    return rec, seen


def test_a_run_start_to_end_in_its_directory(tmp_path: Path) -> None:
    rec, seen = _started(tmp_path, step_event_seconds=1e9)
    assert live_pid(tmp_path / "run") == os.getpid()  # held while the run lives
    for loss in (1.0, 2.0, 3.0):
        rec.step(loss, lr=0.1, batch_size=4, epoch=0)
    rec.log("hello")
    assert rec.end("completed", "done") == "completed"
    assert rec.end("failed", "again") == "completed"  # idempotent
    assert live_pid(tmp_path / "run") is None
    saved = read_events(tmp_path / "run" / EVENTS_FILE)
    assert not saved.bad_lines and saved.records == seen
    start, log, step, end = saved.records
    assert isinstance(start, RunStart) and start.run_id == "run" and start.lr == 0.1
    assert start.profile == {"name": "t"} and start.wall_time is not None
    # one step record, flushed at the end: the mean batch loss of the three steps
    assert isinstance(step, Step) and step.step == 3 and step.loss == pytest.approx(2.0)
    assert step.examples_per_s == pytest.approx(4 * step.steps_per_s)
    assert isinstance(log, Log) and log.source == "trainer" and log.step == 3
    assert isinstance(end, RunEnd) and end.steps == 3 and end.status == "completed"
    assert 0 <= start.t <= step.t <= end.t


def test_unknown_batch_size_gives_nan_examples_per_s(tmp_path: Path) -> None:
    rec, seen = _started(tmp_path, step_event_seconds=0.0)
    rec.step(1.0, lr=math.nan)
    (step,) = [r for r in seen if isinstance(r, Step)]
    assert math.isnan(step.examples_per_s) and step.lr is not None and math.isnan(step.lr)
    rec.end("completed", "ok")


def test_a_non_finite_loss_is_divergence(tmp_path: Path) -> None:
    rec, seen = _started(tmp_path, step_event_seconds=1e9)
    assert rec.step(1.0, lr=0.5) is False
    assert rec.step(math.inf, lr=0.5) is True  # the first non-finite loss
    assert rec.step(math.nan, lr=0.5) is False
    assert rec.diverged == "training loss became inf at step 2 (η=0.5)"
    steps = [r for r in seen if isinstance(r, Step)]
    assert steps[0].loss == math.inf and math.isnan(steps[1].loss)
    assert rec.end("diverged", rec.diverged) == "diverged"


def test_records_before_start_go_to_the_pipe_and_logs_to_the_file_after(
        tmp_path: Path) -> None:
    r, w = os.pipe()
    seen: list[Record] = []
    rec = RunRecorder(pipe=os.fdopen(w, "w"), sink=seen.append)
    rec.log("loading data", level="warning", source="stderr")
    rec.start(tmp_path / "run", profile={}, description=_description())
    rec.end("completed", "ok")
    with os.fdopen(r) as fh:
        piped = [line for line in fh]
    saved = read_events(tmp_path / "run" / EVENTS_FILE).records
    assert [x.kind for x in saved] == ["run_start", "log", "run_end"]
    assert saved[1].t == saved[0].t  # stamped at run_start on disk
    assert len(piped) == 3 and '"loading data"' in piped[0]  # on the pipe at once
    assert [x.kind for x in seen] == ["log", "run_start", "run_end"]  # seen once


def test_end_before_start_writes_no_files(tmp_path: Path) -> None:
    seen: list[Record] = []
    rec = RunRecorder(sink=seen.append)
    assert rec.end("failed", "bad profile: x") == "failed"
    assert [r.kind for r in seen] == ["run_end"] and not list(tmp_path.iterdir())


def test_an_existing_run_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    rec = RunRecorder()
    with pytest.raises(RunDirError, match="already exists"):
        rec.start(tmp_path / "run", profile={}, description=_description())
    assert not rec.started


def test_summary_beside_the_events(tmp_path: Path) -> None:
    summary = pytest.importorskip("sgdtop.summary")
    if not hasattr(summary, "load_summary"):
        pytest.skip("sgdtop.summary has no incremental summary API on this branch yet")
    rec, _ = _started(tmp_path, step_event_seconds=0.0)
    rec.step(1.0, lr=0.1, batch_size=4)
    rec.end("completed", "ok")
    run_dir = tmp_path / "run"
    assert (run_dir / SUMMARY_FILE).is_file()
    loaded = summary.load_summary(run_dir)
    assert loaded.status == "completed" and loaded.steps == 1
