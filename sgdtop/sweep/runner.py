"""The runner: trains a sweep's cells as `sgdtop run` subprocesses, ``jobs`` at a time.

Each attempt of a cell gets its run id here, before anything is spawned: the id is
written to ``sweep.json`` first, then passed down (``sgdtop run --run-id``), and the
cell's `sgdtop run` process holds ``<sweep>/locks/<run id>.lock`` for its whole life. A
resume after the sweep process was killed therefore recognises a cell that is still
running (lock held, or its trainer live) and follows it to its end instead of training
it a second time; see ``docs/design.md`` (sweeps).
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Final

from sgdtop import profile as profile_mod
from sgdtop.store import EVENTS_FILE, new_run_id, run_info
from sgdtop.sweep.devices import cell_cpu_threads, gpu_for_slot, visible_gpus
from sgdtop.sweep.grid import AXIS_FLAGS, Cell, SweepError
from sgdtop.sweep.sweepfile import (
    FINISHED,
    SWEEP_LOCK_FILE,
    Sweep,
    hold_lock,
    lock_pid,
    write_lock_pid,
)
from sgdtop.sweep.tail import CellTail
from sgdtop.sweep.updates import CellUpdate, SweepResult, UpdateCallback, UpdateKind

#: Seconds a stopped cell gets to write run_end before it is asked again (which kills
#: its trainer), and then before its `sgdtop run` process is killed.
STOP_GRACE_S: Final[float] = 30.0
KILL_GRACE_S: Final[float] = 10.0
#: Seconds between looks at the running cells.
POLL_S: Final[float] = 0.25

def cell_command(sweep: Sweep, cell: Cell, python: str | None = None) -> list[str]:
    """The `sgdtop run` command line that trains ``cell`` (headless, into the sweep, as
    run ``cell.run_id`` when set). ``-P``: the working directory is kept off
    ``sys.path`` (a ``json.py`` there is not imported)."""
    cmd = [python or sys.executable, "-P", "-m", "sgdtop", "run", "--profile", sweep.profile]
    for key, value in cell.settings.items():
        cmd += [AXIS_FLAGS[key], repr(value)]
    cmd += ["--log", "--runs-dir", str(sweep.runs_dir)]
    if cell.run_id is not None:
        cmd += ["--run-id", cell.run_id]
    for item in sweep.set_items:
        cmd += ["--set", item]
    return cmd


def new_cell_run_id(sweep: Sweep, cell: Cell) -> str:
    """A fresh run id for the next attempt of ``cell`` (see :func:`sgdtop.store.new_run_id`:
    model, η and S of the cell's resolved profile)."""
    try:
        prof = profile_mod.load(sweep.profile, overrides={
            **profile_mod.parse_set(sweep.set_items), **cell.settings})
    except profile_mod.ProfileError as exc:
        raise SweepError(f"{cell.label()}: {exc}") from None
    return new_run_id(prof.model, prof.lr, prof.batch_size)


@dataclass(slots=True)
class _Active:
    """A cell being trained: its `sgdtop run` process (None for one left running by an
    earlier sweep process, known by its lock) and what was seen of its run."""

    cell: Cell
    slot: int
    device: str | None
    proc: subprocess.Popen[bytes] | None
    log: IO[bytes] | None
    started: float
    tail: CellTail | None = None
    step: int | None = None
    epoch: int | None = None
    epochs: int | None = None
    spectral_norm: float | None = None
    test_acc: float | None = None
    test_loss: float | None = None
    signals_sent: int = 0
    last_signal: float = 0.0
    newer_told: bool = False  #: a newer-schema line was reported


class _Runner:
    """The process pool behind :func:`run_sweep` (one instance per call)."""

    def __init__(self, sweep: Sweep, jobs: int, on_update: UpdateCallback | None,
                 stop: threading.Event, gpus: list[str], python: str | None,
                 poll_s: float, escalate: threading.Event | None = None) -> None:
        self.sweep = sweep
        self.jobs = jobs
        self.on_update = on_update
        self.stop = stop
        self.escalate_event = escalate
        self.gpus = gpus
        self.python = python
        self.poll_s = poll_s
        self.active: dict[int, _Active] = {}
        self.ran = 0

    def emit(self, kind: UpdateKind, cell: Cell, status: str, act: _Active | None = None,
             message: str = "", seconds: float | None = None) -> None:
        if self.on_update is None:
            return
        n = len(self.sweep.cells)
        if act is None:
            self.on_update(CellUpdate(kind=kind, index=cell.index, n_cells=n, cell=cell,
                                      status=status, run_id=cell.run_id, message=message))
            return
        self.on_update(CellUpdate(
            kind=kind, index=cell.index, n_cells=n, cell=cell, status=status,
            run_id=cell.run_id, step=act.step, epoch=act.epoch, epochs=act.epochs,
            spectral_norm=act.spectral_norm, test_acc=act.test_acc, test_loss=act.test_loss,
            seconds=seconds if seconds is not None else time.monotonic() - act.started,
            slot=act.slot, device=act.device, message=message))

    def free_slot(self) -> int | None:
        return next((s for s in range(self.jobs) if s not in self.active), None)

    def launch(self, cell: Cell, slot: int) -> None:
        """Choose the attempt's run id, record it in sweep.json, then spawn its process
        (which inherits the attempt's lock)."""
        sweep = self.sweep
        if cell.run_id is not None and (sweep.runs_dir / cell.run_id).is_dir():
            cell.previous.append(cell.run_id)  # an older attempt's directory: kept
        cell.run_id = new_cell_run_id(sweep, cell)
        sweep.save()
        # The working directory off sys.path, in the cell's `sgdtop run` (-P) and in the
        # trainer it starts (inherited): a json.py there is not imported (issue 12.7).
        env = {**os.environ, "PYTHONSAFEPATH": "1"}
        device = gpu_for_slot(slot, self.gpus)
        if device is not None:
            env["CUDA_VISIBLE_DEVICES"] = device
        threads = cell_cpu_threads(self.jobs, env)
        if threads is not None:
            env["OMP_NUM_THREADS"] = threads
        sweep.logs_dir.mkdir(parents=True, exist_ok=True)
        sweep.runs_dir.mkdir(parents=True, exist_ok=True)
        log = open(sweep.log_path(cell), "ab")  # noqa: SIM115 (closed when the cell ends)
        cmd = cell_command(sweep, cell, self.python)
        stamp = datetime.now(UTC).astimezone().isoformat(timespec="seconds")
        log.write(f"=== {stamp} sweep {sweep.sweep_id} cell {cell.name}: "
                  f"{' '.join(cmd)}\n".encode())
        log.flush()
        lock_fd = hold_lock(sweep.lock_path(cell.run_id))
        try:
            # A session of its own: a Ctrl+C at the terminal reaches only the sweep, which
            # forwards one SIGINT per stop to each cell.
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True, pass_fds=(lock_fd,))
            write_lock_pid(lock_fd, proc.pid)
        finally:
            os.close(lock_fd)  # the child's copy holds the lock until it exits
        act = _Active(cell=cell, slot=slot, device=device, proc=proc, log=log,
                      started=time.monotonic())
        self.active[slot] = act
        self.ran += 1
        self.emit("start", cell, "running", act)

    def adopt(self, cell: Cell, slot: int) -> None:
        """Follow a cell that an earlier sweep process started and that still runs."""
        act = _Active(cell=cell, slot=slot, device=None, proc=None, log=None,
                      started=time.monotonic())
        self.active[slot] = act
        self.emit("start", cell, "running", act,
                  message="still running from an earlier sweep process: not started again")

    def _exited(self, act: _Active) -> bool:
        if act.proc is not None:
            return act.proc.poll() is not None
        return not self.sweep.cell_live(act.cell)

    def find_run(self, act: _Active) -> None:
        """Attach the cell to its run directory once its trainer created it."""
        run_dir = self.sweep.run_dir(act.cell)
        if act.tail is None and run_dir is not None and run_dir.is_dir():
            act.tail = CellTail(run_dir / EVENTS_FILE)

    def read_events(self, act: _Active, *, report: bool) -> None:
        if act.tail is None:
            return
        seen = act.tail.read()
        if seen.step is not None:
            act.step = seen.step
        if seen.epoch is not None:
            act.epoch = seen.epoch
        if seen.epochs is not None:
            act.epochs = seen.epochs
        if seen.spectral_norm is not None:
            act.spectral_norm = seen.spectral_norm
        if seen.evaluated:
            act.test_acc, act.test_loss = seen.test_acc, seen.test_loss
        if act.tail.newer is not None and not act.newer_told:
            act.newer_told = True
            self.emit("progress", act.cell, "running", act, message=act.tail.newer)
        elif seen.measured and report:
            self.emit("progress", act.cell, "running", act)

    def finish(self, act: _Active) -> str:
        """The cell's process has exited: read its last events, report its status."""
        self.find_run(act)
        self.read_events(act, report=False)
        if act.tail is not None:
            act.tail.close()
        if act.log is not None:
            act.log.close()
        if act.cell.run_id is not None:  # its holder has exited: the lock is free
            with contextlib.suppress(OSError):
                self.sweep.lock_path(act.cell.run_id).unlink()
        code = act.proc.returncode if act.proc is not None else None
        if act.tail is not None:
            status = run_info(act.tail.path.parent).status
            if status == "running":  # its trainer outlived it (killed `sgdtop run`)
                status = "died"
        else:
            status = "interrupted" if code == 130 else "failed"
        message = "" if status in FINISHED else _last_error(self.sweep.log_path(act.cell))
        if act.tail is None:
            message = message or f"sgdtop run exited with code {code} before its run started"
        self.emit("end", act.cell, status, act, message=message)
        return status

    def poll(self) -> None:
        for slot, act in list(self.active.items()):
            self.find_run(act)
            self.read_events(act, report=True)
            if self._exited(act):
                del self.active[slot]
                self.finish(act)

    def _signal(self, act: _Active, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if act.proc is not None:
                act.proc.send_signal(sig)
            elif act.cell.run_id is not None:  # adopted: the pid in its lock, while held
                pid = lock_pid(self.sweep.lock_path(act.cell.run_id))
                if pid:
                    os.kill(pid, sig)

    def signal_all(self) -> None:
        """Ask every running cell to stop: one SIGINT each (a second one, later, makes its
        `sgdtop run` kill its trainer); SIGKILL when it still runs after that. Once the
        ``escalate`` event is set, the second SIGINT goes out at once."""
        if self.escalate_event is not None and self.escalate_event.is_set():
            self.escalate()
        now = time.monotonic()
        for act in self.active.values():
            if self._exited(act):
                continue
            due = (act.signals_sent == 0
                   or (act.signals_sent == 1 and now - act.last_signal > STOP_GRACE_S))
            if due:
                self._signal(act, signal.SIGINT)
                act.signals_sent += 1
                act.last_signal = now
            elif act.signals_sent >= 2 and now - act.last_signal > KILL_GRACE_S:
                self._signal(act, signal.SIGKILL)

    def escalate(self) -> None:
        """A second stop request: send the second SIGINT now."""
        for act in self.active.values():
            if act.signals_sent == 1:
                act.last_signal = -math.inf

    def run(self, todo: list[Cell], live: list[Cell]) -> bool:
        """Follow ``live`` (left running by an earlier sweep process) and run ``todo``,
        ``jobs`` at a time in all; returns whether it was stopped (``stop`` set)."""
        waiting, queue = list(live), list(todo)
        try:
            while waiting or queue or self.active:
                if self.stop.is_set():
                    break
                while (waiting or queue) and (slot := self.free_slot()) is not None:
                    if waiting:
                        self.adopt(waiting.pop(0), slot)
                    else:
                        self.launch(queue.pop(0), slot)
                self.poll()
                if waiting or queue or self.active:
                    self.stop.wait(self.poll_s)
        finally:
            while self.active:  # stopped, or an exception (e.g. in a callback)
                self.signal_all()
                self.poll()
                if self.active:
                    time.sleep(min(self.poll_s, 0.1))
        return self.stop.is_set()


def _last_error(log_path: Path) -> str:
    """The most telling line of the cell's latest attempt in its log: the last line that
    mentions an error, else the last line."""
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    attempt = text.rsplit("\n=== ", 1)[-1].split("\n", 1)[-1] if "=== " in text else text
    lines = [ln.strip() for ln in attempt.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()]
    return (errors or lines or [""])[-1][:300]


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event, escalate: Callable[[], None]) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop`` (a second one calls ``escalate``), in the main thread
    only; the previous handlers are put back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            escalate()
        stop.set()

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _claim(sweep: Sweep) -> int:
    """Take the sweep's lock (``sweep.lock``: an exclusive ``flock`` this process holds
    while it runs the sweep, the same mechanism as a trainer's) and write this pid into
    it; returns its fd (close it to release). SweepError when another live process holds
    it."""
    lock = sweep.path / SWEEP_LOCK_FILE
    try:
        fd = hold_lock(lock)
    except SweepError:
        raise SweepError(f"sweep {sweep.sweep_id} is already running "
                         f"(pid {lock_pid(lock) or '?'})") from None
    write_lock_pid(fd, os.getpid())
    return fd


def run_sweep(
    sweep: Sweep,
    *,
    jobs: int = 1,
    on_update: UpdateCallback | None = None,
    stop: threading.Event | None = None,
    handle_signals: bool = True,
    escalate: threading.Event | None = None,
    gpus: list[str] | None = None,
    python: str | None = None,
    poll_s: float = POLL_S,
) -> SweepResult:
    """Train every cell of ``sweep`` that is not finished, ``jobs`` at a time.

    Each cell is one ``sgdtop run`` subprocess (:func:`cell_command`: stdin closed, its
    output appended to ``<sweep>/logs/<cell>.log``, its own session), under a run id
    chosen and saved in ``sweep.json`` before it is spawned. With two or more CUDA
    devices (``gpus``; default :func:`~sgdtop.sweep.devices.visible_gpus`) parallel slot
    i gets ``CUDA_VISIBLE_DEVICES=gpus[i % n]``. Cells already finished (:data:`FINISHED`)
    are reported as ``"skip"`` and not run; a cell still running from an earlier sweep
    process (its lock held, or its trainer live) is not started again but followed to
    its end, in a slot of its own.

    Stopping: setting ``stop``, or (``handle_signals``, main thread) SIGINT/SIGTERM, stops
    launching cells and sends each running cell one SIGINT: it finishes its step and
    writes run_end ``interrupted``. A second signal (or :data:`STOP_GRACE_S` later) makes
    each cell kill its trainer; after :data:`KILL_GRACE_S` more the cell is killed.
    Setting ``escalate`` (after ``stop``) is that second signal, for a caller that handles
    the user's stop requests itself (``handle_signals=False``, e.g. the TUI's second ``q``).
    Returns when every started or followed cell has exited.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise SweepError(f"--jobs must be a positive integer, got {jobs!r}")
    stop = stop or threading.Event()
    lock_fd = _claim(sweep)
    runner = _Runner(sweep, jobs, on_update, stop,
                     visible_gpus() if gpus is None else list(gpus), python, poll_s, escalate)
    try:
        todo, live = [], []
        for cell in sweep.cells:
            status = sweep.cell_status(cell)
            if status in FINISHED:
                info = run_info(sweep.runs_dir / str(cell.run_id))
                if on_update is not None:
                    on_update(CellUpdate(
                        kind="skip", index=cell.index, n_cells=len(sweep.cells), cell=cell,
                        status=status, run_id=cell.run_id, step=info.steps,
                        spectral_norm=info.spectral_norm, test_acc=info.test_acc,
                        message="finished before: not run again"))
            elif status == "running":
                live.append(cell)
            else:
                todo.append(cell)
        if handle_signals:
            with stop_on_signals(stop, runner.escalate):
                interrupted = runner.run(todo, live)
        else:
            interrupted = runner.run(todo, live)
        sweep.save()
    finally:
        os.close(lock_fd)
    return SweepResult(statuses=[sweep.cell_status(c) for c in sweep.cells],
                       ran=runner.ran, interrupted=interrupted)
