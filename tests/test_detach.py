"""Detach → watch → stop, end to end as subprocesses (issue: saved runs)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from cli_helpers import ENV, SGDTOP, alive, only_run, sgdtop, wait_for

from sgdtop.events import read_events
from sgdtop.recorder import hold_lock


def _watch(runs: Path, ref: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*SGDTOP, "watch", ref, "--log", "--runs-dir", str(runs)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)


def test_detach_watch_stop(tmp_path: Path) -> None:
    started = sgdtop("run", "smoke", "--epochs", "1000", "--detach", runs=tmp_path)
    assert started.returncode == 0, started.stderr
    assert "sgdtop watch" in started.stdout
    run_dir = only_run(tmp_path)
    pid = int(started.stdout.split("pid ")[1].split(")")[0])
    assert alive(pid)
    # two watchers at once, one by id prefix, one by latest
    w1 = _watch(tmp_path, run_dir.name[:20])
    w2 = _watch(tmp_path, "latest")
    wait_for(lambda: '"kind": "spectrum"' in (run_dir / "events.jsonl").read_text())
    time.sleep(1.0)
    stopped = sgdtop("stop", run_dir.name, runs=tmp_path)
    assert stopped.returncode == 0, stopped.stderr
    assert not alive(pid)
    for w in (w1, w2):
        _, err = w.communicate(timeout=30)
        assert w.returncode == 0, err
        assert "run interrupted" in err and "ρ(H)" in err
    end = read_events(run_dir / "events.jsonl").events[-1]
    assert end.kind == "run_end" and end["status"] == "interrupted"
    # a watcher started after run_end prints the whole run and ends
    late = sgdtop("watch", "latest", "--log", runs=tmp_path, timeout=30)
    assert late.returncode == 0 and "run interrupted" in late.stderr
    # stopping again is a clear error
    again = sgdtop("stop", run_dir.name, runs=tmp_path)
    assert again.returncode == 2 and "no running trainer" in again.stderr


def test_watch_before_the_first_event(tmp_path: Path) -> None:
    # the run directory exists and its trainer is alive (here: this test process), but
    # no event is written yet
    run_dir = tmp_path / "20260101-000000-mlp-lr0.1-b32-0000"
    run_dir.mkdir()
    (run_dir / "profile.json").write_text("{}")
    with hold_lock(run_dir):  # the trainer lock, held by this process
        w = _watch(tmp_path, run_dir.name)
        time.sleep(1.0)
        assert w.poll() is None  # waiting
        src = sgdtop("run", "smoke", "--epochs", "1", "--json", runs=tmp_path / "other")
        (run_dir / "events.jsonl").write_text(src.stdout)
        _, err = w.communicate(timeout=30)
    assert w.returncode == 0 and "run completed" in err


def test_bad_detach_input_is_reported(tmp_path: Path) -> None:
    proc = sgdtop("run", "smoke", "--batch-size", "100000", "--detach", runs=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("sgdtop: error:") and "training set" in proc.stderr
    assert only_run is not None
