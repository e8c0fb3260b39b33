"""Run directories: ids, resolution, listing, following."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from runs_fixtures import make_event

from sgdtop.schema import Log, RunEnd, Step, encode
from sgdtop.store import (
    EVENTS_FILE,
    EventWriter,
    RunFollower,
    RunNotFoundError,
    create_run_dir,
    list_run_dirs,
    new_run_id,
    resolve_run,
    run_info,
)


def _mk(root: Path, run_id: str, n_events: int = 2, end: bool = True) -> Path:
    d = create_run_dir(root, run_id, {"model": "mlp", "dataset": "teacher-student",
                                      "lr": 0.1, "batch_size": 32, "momentum": 0.0})
    w = EventWriter(d, None)
    for i in range(n_events):
        w.write(Step(t=float(i), step=i, epoch=0, lr=0.1, loss=1.0, examples_per_s=1.0,
                     steps_per_s=1.0))
    if end:
        w.write(RunEnd(t=9.0, step=n_events, status="completed", message="ok",
                       steps=n_events, seconds=9.0))
    w.close()
    return d


def test_run_id_is_readable_and_safe() -> None:
    rid = new_run_id("resnet32", 0.1, 128)
    assert "-resnet32-lr0.1-b128-" in rid
    assert "/" not in rid


def test_resolve_by_id_prefix_latest_and_path(tmp_path: Path) -> None:
    a = _mk(tmp_path, "20260101-000000-mlp-lr0.1-b32-aaaa")
    time.sleep(0.01)
    b = _mk(tmp_path, "20260102-000000-mlp-lr0.1-b32-bbbb")
    assert resolve_run("20260101-000000-mlp-lr0.1-b32-aaaa", tmp_path) == a
    assert resolve_run("20260102", tmp_path) == b
    assert resolve_run("latest", tmp_path) == b
    assert resolve_run(str(a), tmp_path) == a
    assert resolve_run(str(a / EVENTS_FILE), tmp_path) == a
    with pytest.raises(RunNotFoundError, match="matches 2 runs"):
        resolve_run("2026", tmp_path)
    with pytest.raises(RunNotFoundError, match="no run"):
        resolve_run("nothing", tmp_path)


def test_ids_cannot_escape_the_runs_dir(tmp_path: Path) -> None:
    _mk(tmp_path / "runs", "20260101-000000-x")
    _mk(tmp_path, "outside")
    with pytest.raises(RunNotFoundError):
        resolve_run("..", tmp_path / "runs")
    with pytest.raises(RunNotFoundError):
        resolve_run("..outside", tmp_path / "runs")
    with pytest.raises(RunNotFoundError, match="is not a run id"):
        resolve_run("20260101-000000-x\n", tmp_path / "runs")  # "$" matched before "\n"


def test_list_and_info(tmp_path: Path) -> None:
    _mk(tmp_path, "r1", n_events=5)
    _mk(tmp_path, "r2", n_events=3, end=False)
    infos = {i.run_id: i for i in map(run_info, list_run_dirs(tmp_path))}
    assert infos["r1"].status == "completed" and infos["r1"].steps == 5
    assert infos["r2"].status == "died"
    assert infos["r1"].model == "mlp"


def test_writer_survives_a_broken_pipe(tmp_path: Path) -> None:
    import os

    r, w = os.pipe()
    os.close(r)
    d = tmp_path / "run"
    d.mkdir()
    writer = EventWriter(d, os.fdopen(w, "w"))
    for i in range(3):
        writer.write(Log(t=float(i), level="info", message=f"m{i}", source="trainer"))
    writer.close()
    assert len((d / EVENTS_FILE).read_text().splitlines()) == 3


def test_follower_waits_for_new_events_and_stops_at_run_end(tmp_path: Path) -> None:
    d = _mk(tmp_path, "live", n_events=1, end=False)
    got: list[str] = []
    follower = RunFollower(d, poll_s=0.02)

    def consume() -> None:
        got.extend(ev.kind for ev in follower)

    th = threading.Thread(target=consume)
    th.start()
    time.sleep(0.2)
    with open(d / EVENTS_FILE, "a") as fh:
        ev = make_event("run_end", 2.0, status="completed", message="ok", steps=1, seconds=2.0)
        line = encode(ev)
        fh.write(line[:10])  # a partial line must wait for its newline
        fh.flush()
        time.sleep(0.1)
        fh.write(line[10:])
    th.join(timeout=5)
    assert not th.is_alive()
    assert got == ["step", "run_end"]
    assert follower.ended_reason is None


def test_follower_ends_when_the_trainer_is_gone(tmp_path: Path) -> None:
    d = _mk(tmp_path, "dead", n_events=2, end=False)
    follower = RunFollower(d, poll_s=0.02, stale_s=0.2)
    kinds = [ev.kind for ev in follower]
    assert kinds == ["step", "step"]
    assert "no run_end" in (follower.ended_reason or "")


def test_event_tail_reads_only_complete_new_lines(tmp_path: Path) -> None:
    from sgdtop.feed import EventTail

    path = tmp_path / EVENTS_FILE
    tail = EventTail(path)
    assert tail.read() == []  # no file yet
    ev = [make_event("log", float(i), level="info", message=f"m{i}", source="trainer")
          for i in range(3)]
    with open(path, "w") as fh:
        fh.write(encode(ev[0]) + "{bad\n" + encode(ev[1])[:7])
        fh.flush()
        assert [r.t for r in tail.read()] == [0.0]
        assert tail.pending and [b.line_no for b in tail.bad_lines] == [2]
        fh.write(encode(ev[1])[7:] + encode(ev[2]))
        fh.flush()
        assert [r.t for r in tail.read()] == [1.0, 2.0]
        assert tail.read() == [] and tail.line_no == 4 and not tail.pending
    tail.close()


def test_live_pid_is_the_lock_holder_only(tmp_path: Path) -> None:
    import fcntl
    import os

    from sgdtop.store import LOCK_FILE, live_pid

    d = tmp_path / "run"
    d.mkdir()
    assert live_pid(d) is None  # nothing there
    fd = os.open(d / LOCK_FILE, os.O_RDWR | os.O_CREAT)
    os.write(fd, b"4242\n")
    assert live_pid(d) is None  # a lock file nobody holds: a dead trainer's
    fcntl.flock(fd, fcntl.LOCK_EX)
    assert live_pid(d) == 4242  # held: the pid written in it
    os.close(fd)  # released (as the kernel does when the holder dies)
    assert live_pid(d) is None


def test_follower_ends_at_a_newer_schema_line(tmp_path: Path) -> None:
    d = _mk(tmp_path, "newer", n_events=2, end=False)
    with open(d / EVENTS_FILE, "a") as fh:
        fh.write('{"v": 99, "kind": "step", "t": 1.0}\n')
    follower = RunFollower(d, poll_s=0.02, stale_s=30.0)
    assert [ev.kind for ev in follower] == ["step", "step"]
    assert follower.end is not None and follower.end.kind.value == "newer_schema"
    assert follower.end.bad is not None and follower.end.bad.line_no == 3
