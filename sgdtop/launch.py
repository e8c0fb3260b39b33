"""Parent side of a run: spawn the trainer (:mod:`sgdtop.worker`), read its event pipe,
stop it.

The trainer starts in its own session (``start_new_session``) with ``stdin`` closed: a
terminal hang-up (an SSH drop) or a key press never reaches it; the parent forwards stops
as SIGINT. Events arrive on a dedicated pipe (an inherited fd, not stdout); whatever the
trainer prints before it captures its own output is turned into ``log`` events here.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from sgdtop.events import Event, EventError, decode, make_event
from sgdtop.profile import Profile
from sgdtop.store import EVENTS_FILE, new_run_id

STOP_GRACE_S: Final[float] = 15.0
_EOF: Final[object] = object()


def _worker_cmd(profile_json: Path, runs_dir: Path, run_id: str,
                event_fd: int | None) -> list[str]:
    cmd = [sys.executable, "-m", "sgdtop.worker", "--profile-json", str(profile_json),
           "--runs-dir", str(runs_dir), "--run-id", run_id, "--delete-profile-json"]
    if event_fd is not None:
        cmd += ["--event-fd", str(event_fd)]
    return cmd


def _write_profile(profile: Profile) -> Path:
    fd, name = tempfile.mkstemp(prefix="sgdtop-profile-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(profile.to_dict(), fh)
    return Path(name)


class TrainerProcess:
    """A running trainer and its event stream (an :class:`sgdtop.feed.EventFeed`)."""

    def __init__(self, profile: Profile, runs_dir: Path, run_id: str | None = None) -> None:
        self.run_id = run_id or new_run_id(profile.model, profile.lr, profile.batch_size)
        self.runs_dir = runs_dir
        self._profile_json = _write_profile(profile)
        self._t0 = time.monotonic()
        read_fd, write_fd = os.pipe()
        try:
            self.proc = subprocess.Popen(
                _worker_cmd(self._profile_json, runs_dir, self.run_id, write_fd),
                pass_fds=(write_fd,), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        finally:
            os.close(write_fd)
        self._queue: queue.Queue[object] = queue.Queue(maxsize=10_000)
        self._stop_sent = False
        self._saw_run_end = False
        self._ended_reason: str | None = None
        self._readers = [
            threading.Thread(target=self._read_events, args=(read_fd,), daemon=True),
            threading.Thread(target=self._read_output, daemon=True),
        ]
        for th in self._readers:
            th.start()

    # --- EventFeed -------------------------------------------------------------------------
    @property
    def run_dir(self) -> Path | None:
        path = self.runs_dir / self.run_id
        return path if path.is_dir() else None

    @property
    def ended_reason(self) -> str | None:
        return self._ended_reason

    def __iter__(self) -> Iterator[Event]:
        open_streams = len(self._readers)
        while open_streams:
            item = self._queue.get()
            if item is _EOF:
                open_streams -= 1
                continue
            assert isinstance(item, Event)
            if item.kind == "run_end":
                self._saw_run_end = True
            yield item
        code = self.proc.wait()
        if not self._saw_run_end:
            self._ended_reason = f"trainer exited with code {code} before run_end"

    def stop(self) -> None:
        """Ask the trainer to stop cleanly (SIGINT); idempotent."""
        if self.proc.poll() is None and not self._stop_sent:
            self._stop_sent = True
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGINT)

    def kill(self) -> None:
        """End the trainer now (SIGKILL): what it wrote so far stays readable."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()

    def close(self) -> None:
        """Stop the trainer if it still runs, wait up to STOP_GRACE_S, then kill it."""
        if self.proc.poll() is None:
            self.stop()
            try:
                self.proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.kill()
                self.proc.wait()

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    # --- readers ---------------------------------------------------------------------------
    def _read_events(self, read_fd: int) -> None:
        with os.fdopen(read_fd, "rb") as fh:
            for raw in fh:
                if not raw.endswith(b"\n"):
                    break  # a line cut short by a killed trainer
                try:
                    ev = decode(raw)
                except EventError as exc:
                    ev = self._log(f"undecodable event line: {exc}", "error")
                self._queue.put(ev)
        self._queue.put(_EOF)

    def _read_output(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            text = raw.decode("utf-8", "replace").rstrip()
            if text:
                self._queue.put(self._log(text, "error" if "Error" in text else "warning"))
        self._queue.put(_EOF)

    def _log(self, message: str, level: str) -> Event:
        return make_event("log", time.monotonic() - self._t0, level=level, message=message,
                          source="stderr")


def start_detached(profile: Profile, runs_dir: Path, wait_s: float = 120.0) -> tuple[str, int]:
    """Start a trainer that outlives this process and its terminal; returns
    (run id, pid) once the run directory holds its first event, or raises RuntimeError
    with the trainer's own last words when it ends first.

    The trainer runs with ``--detached``: its raw output goes to a pipe read here until
    its run directory exists, then to ``<run_dir>/trainer.log`` (mode 0600), never to a
    file in the shared temporary directory."""
    run_id = new_run_id(profile.model, profile.lr, profile.batch_size)
    profile_json = _write_profile(profile)
    proc = subprocess.Popen(
        [*_worker_cmd(profile_json, runs_dir, run_id, None), "--detached"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True)
    assert proc.stderr is not None
    events = runs_dir / run_id / EVENTS_FILE
    deadline = time.monotonic() + wait_s
    try:
        while time.monotonic() < deadline:
            if events.is_file() and events.stat().st_size > 0:
                return run_id, proc.pid
            code = proc.poll()
            if code is not None:
                text = proc.stderr.read().decode("utf-8", "replace").strip()
                raise RuntimeError(text.splitlines()[-1] if text else
                                   f"the trainer exited with code {code}")
            time.sleep(0.1)
        return run_id, proc.pid
    finally:
        proc.stderr.close()
