"""Faults on the writer side (issue 12), each reproduced first: a stale or recycled pid is
never a live trainer (12.1), a full disk ends the run cleanly (12.3), a second signal after
``run_end`` keeps exit 130 (12.4), the Monitor's viewer starts with the working directory
off ``sys.path`` (12.7), a detached trainer keeps its raw output in its run directory
(12.8), a read-only ``runs_dir`` is a ``MonitorError`` (12.10); and the trainer's own
stdout/stderr lines become ``log`` records on its clock, on disk and on the pipe."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import ENV, alive, sgdtop, wait_for

from sgdtop.profile import Profile, load
from sgdtop.recorder import (
    EVENTS_FILE,
    LOCK_FILE,
    TRAINER_LOG,
    EventWriter,
    LockHeldError,
    RunRecorder,
    hold_lock,
    live_pid,
)
from sgdtop.recorder.lifecycle import RunDescription
from sgdtop.schema import BadLine, Log, Record, RunEnd, Step, decode_line, read_events
from sgdtop.store import create_run_dir, run_info

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


# --- helpers ----------------------------------------------------------------------------
def _description() -> RunDescription:
    return RunDescription(model="m", num_params=1, device="cpu", dataset="d", train_size=0,
                          test_size=0, probe_size=0, lr=0.1, batch_size=None, momentum=0.0,
                          weight_decay=0.0, k=1, epochs=0, steps_per_epoch=0)


class Worker:
    """``python -m sgdtop.worker`` as the launcher starts it, with an event pipe."""

    def __init__(self, tmp: Path, profile: Profile, runs: Path, *, run_id: str = "run",
                 detached: bool = False, env: dict[str, str] | None = None) -> None:
        prof_json = tmp / f"profile-{run_id}.json"
        prof_json.write_text(json.dumps(profile.to_dict()))
        self.run_dir = runs / run_id
        cmd = [sys.executable, "-m", "sgdtop.worker", "--profile-json", str(prof_json),
               "--runs-dir", str(runs), "--run-id", run_id]
        read_fd: int | None = None
        pass_fds: tuple[int, ...] = ()
        if detached:
            cmd.append("--detached")
        else:
            read_fd, write_fd = os.pipe()
            cmd += ["--event-fd", str(write_fd)]
            pass_fds = (write_fd,)
        self.proc = subprocess.Popen(cmd, pass_fds=pass_fds, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True, env={**ENV, **(env or {})})
        for fd in pass_fds:
            os.close(fd)
        self._pipe = os.fdopen(read_fd, "rb") if read_fd is not None else None

    def finish(self, timeout: float = 240) -> tuple[int, list[Record], str]:
        """(exit code, records read from the pipe, stderr)."""
        records: list[Record] = []
        if self._pipe is not None:
            with self._pipe:
                for line in self._pipe:
                    rec = decode_line(line)
                    assert not isinstance(rec, BadLine), rec
                    records.append(rec)
        _, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, records, err.decode("utf-8", "replace")

    def file_text(self) -> str:
        path = self.run_dir / EVENTS_FILE
        return path.read_text(encoding="utf-8") if path.is_file() else ""


def _smoke(**overrides: Any) -> Profile:
    return load("smoke", overrides=overrides)


# --- 12.1: liveness is a lock held for life ----------------------------------------------
def test_lock_is_held_for_life_and_released_by_the_kernel(tmp_path: Path) -> None:
    code = ("import sys, time; from pathlib import Path; "
            "from sgdtop.recorder import hold_lock; "
            "h = hold_lock(Path(sys.argv[1])); print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert live_pid(tmp_path) == holder.pid
        assert (tmp_path / LOCK_FILE).read_text().strip() == str(holder.pid)
        with pytest.raises(LockHeldError):
            hold_lock(tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert live_pid(tmp_path) is None  # SIGKILL: the kernel released it
    assert (tmp_path / LOCK_FILE).exists()  # the file stays; it proves nothing
    with hold_lock(tmp_path) as handle:  # a new trainer takes it over
        assert handle.held and live_pid(tmp_path) == os.getpid()
    assert live_pid(tmp_path) is None


def test_a_recycled_pid_is_not_a_live_trainer(tmp_path: Path) -> None:
    """A killed trainer's files name a pid that an unrelated live process now has: the
    run reads as died and ``sgdtop stop`` signals nothing (before: it SIGINTed it)."""
    runs = tmp_path / "runs"
    run_dir = create_run_dir(runs, "20260101-000000-mlp-lr0.1-b32-dead", {"model": "mlp"})
    w = EventWriter(run_dir, None)
    w.write(Step(t=1.0, step=1, epoch=0, lr=0.1, loss=1.0, examples_per_s=1.0,
                 steps_per_s=1.0))
    w.close()
    unrelated = subprocess.Popen(["sleep", "60"])
    try:
        for name in ("trainer.pid", LOCK_FILE):  # the old marker and the new file
            (run_dir / name).write_text(f"{unrelated.pid}\n")
        assert live_pid(run_dir) is None
        assert run_info(run_dir).status == "died"
        stopped = sgdtop("stop", run_dir.name, runs=runs, timeout=60)
        assert stopped.returncode == 2 and "no running trainer" in stopped.stderr
        time.sleep(0.2)
        assert alive(unrelated.pid), "an unrelated process was signalled"
    finally:
        unrelated.kill()
        unrelated.wait()


# --- 12.3: a full disk ---------------------------------------------------------------------
class _FullAfter:
    """``os.write`` that takes ``budget`` bytes, then writes part of a line and fails with
    ENOSPC (as a full disk does)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.real = os.write

    def __call__(self, fd: int, data: Any) -> int:
        if self.budget <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = min(len(data), self.budget)
        self.budget -= n
        return self.real(fd, bytes(data[:n]))


def test_full_disk_with_a_fake_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Everything before the failure stays whole; the run ends ``failed`` with the reason
    on the pipe; one error line is reported; nothing raises."""
    r, w = os.pipe()
    reported: list[str] = []
    rec = RunRecorder(pipe=os.fdopen(w, "w"), report=reported.append)
    rec.start(tmp_path / "run", profile={}, description=_description())
    for i in range(3):
        rec.log(f"before {i}")
    size = (tmp_path / "run" / EVENTS_FILE).stat().st_size
    monkeypatch.setattr("sgdtop.recorder.writer.os.write", _FullAfter(40))
    rec.log("this line is cut by the full disk " + "x" * 100)
    assert rec.stopping and rec.write_error is not None
    rec.log("after")  # still on the pipe
    status = rec.end("completed", "done")
    monkeypatch.undo()
    path = tmp_path / "run" / EVENTS_FILE
    assert status == "failed"
    assert reported == [f"sgdtop: error: cannot write {path}: No space left on device"]
    res = read_events(path)
    assert path.stat().st_size == size  # cut back to the last whole line
    assert not res.bad_lines and not res.truncated_tail
    assert [e.kind for e in res.records] == ["run_start", "log", "log", "log"]
    with os.fdopen(r, "rb") as fh:
        piped = [decode_line(line) for line in fh]
    assert [e.kind for e in piped if not isinstance(e, BadLine)][-3:] == [
        "log", "log", "run_end"]
    end = piped[-1]
    assert isinstance(end, RunEnd) and end.status == "failed"
    assert end.message == reported[0].removeprefix("sgdtop: error: ")


@contextlib.contextmanager
def _tmpfs(where: Path, size: str = "300k") -> Iterator[Path]:
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                   check=True, capture_output=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)


def _fill(fs: Path, leave: int) -> None:
    st = os.statvfs(fs)
    free = st.f_bavail * st.f_frsize
    (fs / "filler").write_bytes(b"\0" * max(0, free - leave))


@pytest.mark.skipif(not IS_ROOT, reason="mounting a small tmpfs needs root; the fake "
                    "writer test covers the same path")
def test_full_disk_stops_the_trainer_cleanly(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "fs") as fs:
        _fill(fs, leave=24_000)
        runs = fs / "runs"
        worker = Worker(tmp_path, _smoke(epochs=1000), runs)
        code, piped, err = worker.finish()
        events = runs / "run" / EVENTS_FILE
        expected = f"sgdtop: error: cannot write {events}: No space left on device"
        assert code == 1, err
        assert [line for line in err.splitlines() if line.strip()] == [expected]
        end = piped[-1]
        assert isinstance(end, RunEnd) and end.status == "failed"
        assert end.message == expected.removeprefix("sgdtop: error: ")
        res = read_events(events)
        assert not res.bad_lines and not res.truncated_tail
        assert res.records[0].kind == "run_start"
        assert any(e.kind == "spectrum" for e in res.records)
        assert all(e.kind != "run_end" for e in res.records)
        assert live_pid(runs / "run") is None
        assert not list((runs / "run").glob(".*.tmp"))  # no partial summary left behind


# --- 12.4: a second signal after run_end -------------------------------------------------
def test_second_signal_after_run_end_keeps_exit_130(tmp_path: Path) -> None:
    worker = Worker(tmp_path, _smoke(epochs=1000), tmp_path / "runs")
    wait_for(lambda: '"kind": "spectrum"' in worker.file_text())
    worker.proc.send_signal(signal.SIGINT)
    wait_for(lambda: '"kind": "run_end"' in worker.file_text(), timeout=60)
    with contextlib.suppress(ProcessLookupError):
        worker.proc.send_signal(signal.SIGINT)
        worker.proc.send_signal(signal.SIGTERM)
    code, piped, err = worker.finish()
    assert code == 130, err
    assert isinstance(piped[-1], RunEnd) and piped[-1].status == "interrupted"
    assert "Traceback" not in err


def test_two_quick_signals_exit_130(tmp_path: Path) -> None:
    worker = Worker(tmp_path, _smoke(epochs=1000), tmp_path / "runs")
    wait_for(lambda: '"kind": "spectrum"' in worker.file_text())
    worker.proc.send_signal(signal.SIGINT)
    worker.proc.send_signal(signal.SIGINT)
    code, piped, err = worker.finish()
    end = piped[-1]
    assert code == 130 and isinstance(end, RunEnd) and end.status == "interrupted", err


# --- 12.7: the Monitor's viewer does not import from the working directory ----------------
def test_viewer_command_ignores_modules_in_the_working_directory(tmp_path: Path) -> None:
    """The command the Monitor starts its viewer with (``-P``) does not run a ``typer.py``
    planted in the working directory; without ``-P`` it would."""
    (tmp_path / "typer.py").write_text("raise SystemExit('hijacked')\n")
    env = {k: v for k, v in ENV.items() if k != "PYTHONSAFEPATH"}
    plain = subprocess.run([sys.executable, "-m", "sgdtop", "--help"], cwd=tmp_path,
                           capture_output=True, text=True, env=env, timeout=120)
    assert "hijacked" in plain.stderr  # the hazard
    safe = subprocess.run([sys.executable, "-P", "-m", "sgdtop", "--help"], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=120)
    assert safe.returncode == 0 and "hijacked" not in safe.stderr, safe.stderr


# --- 12.8: a detached trainer's raw output lives in its run directory ---------------------
CRASH_AFTER_START = """
import os, sys, torch
from torch import nn
from torch.utils.data import TensorDataset
from sgdtop.custom import CustomTask

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 2)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.calls == 1:
            print("hello from stdout")
            sys.stderr.write("hello from stderr\\n")
        if self.calls > int(os.environ.get("CRASH_AFTER", "1000000")):
            raise RuntimeError("boom")
        return self.lin(x)

def factory(seed: int = 0):
    print("factory stdout line")
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 4, generator=g)
    ds = TensorDataset(x, (x[:, 0] > 0).long())
    return CustomTask(model=Net(), train=ds, test=ds, task="classification", name="toy")
"""


def _custom(tmp_path: Path, **overrides: Any) -> Profile:
    path = tmp_path / "task.py"
    path.write_text(textwrap.dedent(CRASH_AFTER_START))
    return load("smoke", model=f"{path}:factory", overrides={
        "epochs": 1, "k": 2, "first_epoch_every": 0, "batch_size": 16, **overrides})


def test_detached_trainer_keeps_its_log_in_the_run_directory(tmp_path: Path) -> None:
    worker = Worker(tmp_path, _custom(tmp_path), tmp_path / "runs", run_id="det",
                    detached=True, env={"CRASH_AFTER": "3"})
    code, _, err = worker.finish()
    log = worker.run_dir / TRAINER_LOG
    assert code == 1
    assert err == ""  # nothing reached the launcher's stream once the run existed
    mode = stat.S_IMODE(log.stat().st_mode)
    assert mode == 0o600 and not log.is_symlink()
    assert "RuntimeError: boom" in log.read_text()  # the crash traceback
    end = read_events(worker.run_dir / EVENTS_FILE).records[-1]
    assert isinstance(end, RunEnd) and end.status == "failed" and "boom" in end.message
    assert not list(Path("/tmp").glob("sgdtop-det.log"))


def test_sgdtop_run_detach_writes_no_log_in_tmp(tmp_path: Path) -> None:
    """``sgdtop run --detach`` (launch.start_detached): the trainer's log is in its run
    directory; before, it was a world-readable ``/tmp/sgdtop-<id>.log``."""
    started = sgdtop("run", "smoke", "--epochs", "1", "--detach", runs=tmp_path)
    assert started.returncode == 0, started.stderr
    (run_dir,) = [d for d in tmp_path.iterdir() if d.is_dir()]
    wait_for(lambda: '"kind": "run_end"' in (run_dir / EVENTS_FILE).read_text())
    assert stat.S_IMODE((run_dir / TRAINER_LOG).stat().st_mode) == 0o600
    assert not Path(f"/tmp/sgdtop-{run_dir.name}.log").exists()


def test_detached_bad_input_is_said_on_stderr(tmp_path: Path) -> None:
    worker = Worker(tmp_path, _smoke(batch_size=100_000), tmp_path / "runs",
                    detached=True)
    code, _, err = worker.finish()
    assert code == 2 and err.startswith("sgdtop: error:") and "training set" in err
    assert not worker.run_dir.exists()


# --- D: the trainer's own output as log records ------------------------------------------
def test_captured_output_is_logged_on_the_trainers_clock(tmp_path: Path) -> None:
    worker = Worker(tmp_path, _custom(tmp_path), tmp_path / "runs")
    code, piped, err = worker.finish()
    assert code == 0, err
    saved = read_events(worker.run_dir / EVENTS_FILE).records
    assert saved[0].kind == "run_start"
    for events in (saved, piped):
        logs = {(e.source, e.message) for e in events if isinstance(e, Log)}
        assert ("stdout", "hello from stdout") in logs
        assert ("stderr", "hello from stderr") in logs
        assert ("stdout", "factory stdout line") in logs  # before the run dir existed
    in_run = [e for e in saved if isinstance(e, Log) and e.message == "hello from stdout"]
    start = saved[0]
    assert in_run[0].t >= start.t and in_run[0].step is not None
    assert "hello from" not in err  # captured, not passed through raw


# --- 12.10: a read-only runs_dir ---------------------------------------------------------
@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "ro"
    if IS_ROOT:  # root ignores permission bits: a read-only mount
        where.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(where)],
                       check=True, capture_output=True)
        try:
            yield where
        finally:
            subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)
    else:
        where.mkdir(mode=0o500)
        try:
            yield where
        finally:
            where.chmod(0o700)


def test_monitor_with_a_read_only_runs_dir(read_only_dir: Path, tmp_path: Path) -> None:
    import torch
    from torch import nn

    from sgdtop.monitor import Monitor, MonitorError

    x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    for runs in (read_only_dir, read_only_dir / "deeper", tmp_path / "file" / "runs"):
        (tmp_path / "file").write_text("")
        mon = Monitor(nn.Linear(3, 2), nn.CrossEntropyLoss(), probe=[(x, y)], k=1,
                      runs_dir=runs, quiet=True, measure_at_start=False)
        with pytest.raises(MonitorError) as info:
            mon.start()
        assert str(runs) in str(info.value) and "\n" not in str(info.value)
        assert mon.status is None and mon.run_dir is None


def test_monitor_on_a_full_disk_ends_failed_and_the_loop_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import torch
    from torch import nn

    from sgdtop.monitor import Monitor

    x, y = torch.randn(16, 3), torch.randint(0, 2, (16,))
    with Monitor(nn.Linear(3, 2), nn.CrossEntropyLoss(), probe=[(x, y)], k=1, every=1,
                 run_dir=tmp_path / "r", quiet=True, lr=0.1) as mon:
        monkeypatch.setattr("sgdtop.recorder.writer.os.write", _FullAfter(0))
        for _ in range(3):
            mon.step(loss=1.0)  # no exception reaches the user's loop
        measured = mon.measurements
    monkeypatch.undo()
    assert mon.status == "failed" and mon.measurements == measured
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert errors == [f"sgdtop: error: cannot write {tmp_path / 'r' / EVENTS_FILE}: "
                      "No space left on device"]
    res = read_events(tmp_path / "r" / EVENTS_FILE)
    assert not res.bad_lines and not res.truncated_tail and res.records[0].kind == "run_start"
