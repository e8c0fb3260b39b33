"""Detach → watch → stop, end to end as subprocesses (issue: saved runs)."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import ENV, SGDTOP, alive, only_run, sgdtop, wait_for

from sgdtop.schema import read_events
from sgdtop.store import LOCK_FILE, PID_FILE


def _watch(runs: Path, ref: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*SGDTOP, "watch", ref, "--log", "--runs-dir", str(runs)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)


def _hold_lock(run_dir: Path, pid: int) -> int:
    """Hold the run's trainer lock as a live trainer does; returns the fd (close it to
    release)."""
    fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    os.write(fd, f"{pid}\n".encode())
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


_STRANGER = """
import signal, sys, time
marker = sys.argv[1]
def on_signal(signum, frame):
    open(marker, "w").close()
signal.signal(signal.SIGINT, on_signal)
signal.signal(signal.SIGTERM, on_signal)
print("ready", flush=True)
time.sleep(120)
"""


def _stranger(marker: Path) -> subprocess.Popen[str]:
    """A real process unrelated to any run, that notes any SIGINT/SIGTERM it gets."""
    proc = subprocess.Popen([sys.executable, "-c", _STRANGER, str(marker)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


@pytest.mark.parametrize("with_lock_file", [True, False])
def test_a_recycled_pid_is_not_the_runs_trainer(tmp_path: Path, with_lock_file: bool) -> None:
    # 12.1: a SIGKILLed trainer left its pid behind; an unrelated process now has that pid
    src = sgdtop("run", "smoke", "--epochs", "1", "--json", runs=tmp_path / "src")
    run_dir = tmp_path / "runs" / "20260101-000000-mlp-lr0.1-b32-dead"
    run_dir.mkdir(parents=True)
    (run_dir / "profile.json").write_text("{}")
    (run_dir / "events.jsonl").write_text("".join(src.stdout.splitlines(True)[:-1]))
    marker = tmp_path / "signalled"
    stranger = _stranger(marker)
    try:
        if with_lock_file:  # the lock file stays; nobody holds it
            (run_dir / LOCK_FILE).write_text(f"{stranger.pid}\n")
        pid_file = run_dir / PID_FILE  # a trainer from before the lock file
        pid_file.write_text(f"{stranger.pid}\n")
        old = time.time() - 3600  # written an hour ago, by the dead trainer
        os.utime(pid_file, (old, old))
        runs = tmp_path / "runs"
        listed = sgdtop("runs", runs=runs)
        assert "died" in listed.stdout and "running" not in listed.stdout, listed.stdout
        stop = sgdtop("stop", run_dir.name, runs=runs)
        assert stop.returncode == 2 and "no running trainer" in stop.stderr
        watched = sgdtop("watch", run_dir.name, "--log", runs=runs, timeout=60)
        assert watched.returncode == 0 and "without run_end" in watched.stderr
        time.sleep(0.2)
        assert not marker.exists(), "an unrelated process was signalled"
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_stop_signals_the_process_that_holds_the_lock(tmp_path: Path) -> None:
    # 12.1, the other way round: the lock holder is the run's trainer, whatever it is
    run_dir = tmp_path / "20260101-000000-mlp-lr0.1-b32-live"
    run_dir.mkdir()
    (run_dir / "profile.json").write_text("{}")
    marker = tmp_path / "signalled"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys\n"
         f"fd = os.open({str(run_dir / LOCK_FILE)!r}, os.O_RDWR | os.O_CREAT)\n"
         "os.write(fd, f'{os.getpid()}\\n'.encode())\n"
         "fcntl.flock(fd, fcntl.LOCK_EX)\n"
         + _STRANGER.replace("close()", "close(); sys.exit(0)"),
         str(marker)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        listed = sgdtop("runs", runs=tmp_path)
        assert "running" in listed.stdout, listed.stdout
        stop = sgdtop("stop", run_dir.name, "--wait", "30", runs=tmp_path)
        assert stop.returncode == 0, stop.stderr
        assert marker.exists()
    finally:
        holder.kill()
        holder.wait()


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
    end = read_events(run_dir / "events.jsonl").records[-1]
    assert end.kind == "run_end" and end.status == "interrupted"
    # a watcher started after run_end prints the whole run and ends
    late = sgdtop("watch", "latest", "--log", runs=tmp_path, timeout=30)
    assert late.returncode == 0 and "run interrupted" in late.stderr
    # stopping again is a clear error
    again = sgdtop("stop", run_dir.name, runs=tmp_path)
    assert again.returncode == 2 and "no running trainer" in again.stderr


def test_watch_before_the_first_event(tmp_path: Path) -> None:
    # the run directory exists and its trainer is alive (here: this test process holds
    # the trainer lock), but no event is written yet
    run_dir = tmp_path / "20260101-000000-mlp-lr0.1-b32-0000"
    run_dir.mkdir()
    (run_dir / "profile.json").write_text("{}")
    lock = _hold_lock(run_dir, os.getpid())
    w = _watch(tmp_path, run_dir.name)
    time.sleep(1.0)
    assert w.poll() is None  # waiting
    src = sgdtop("run", "smoke", "--epochs", "1", "--json", runs=tmp_path / "other")
    (run_dir / "events.jsonl").write_text(src.stdout)
    _, err = w.communicate(timeout=30)
    assert w.returncode == 0 and "run completed" in err
    os.close(lock)


def test_bad_detach_input_is_reported(tmp_path: Path) -> None:
    proc = sgdtop("run", "smoke", "--batch-size", "100000", "--detach", runs=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("sgdtop: error:") and "training set" in proc.stderr
    assert not [d for d in tmp_path.iterdir() if d.is_dir()]  # no run directory was made
