"""Parent side of a run: spawn the trainer (:mod:`sgdtop.worker`), read its event pipe,
stop it (``docs/design.md``, "Event pipeline").

The trainer starts in its own session (``start_new_session``) with ``stdin`` closed: a
terminal hang-up (an SSH drop) or a key press never reaches it; the parent forwards stops
as SIGINT. Events arrive on a dedicated pipe (an inherited fd, not stdout); whatever the
trainer prints before it captures its own output is passed through to stderr as text.
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
from typing import IO, Final

from sgdtop.feed import EVENTS_FILE, EndKind, EndReason, LineSplitter, ended_reason
from sgdtop.profile import Profile
from sgdtop.schema import BadLine, Record, RunEnd
from sgdtop.store import new_run_id

STOP_GRACE_S: Final[float] = 15.0
_EOF: Final[object] = object()


def _worker_cmd(profile_json: Path, runs_dir: Path, run_id: str,
                event_fd: int | None) -> list[str]:
    """The trainer's command line. ``-P`` keeps the working directory off ``sys.path``
    (a ``json.py`` there must not be imported; issue 12.7); a custom model file
    (``file.py:factory``) is still loaded by its path (:mod:`sgdtop.custom`)."""
    cmd = [sys.executable, "-P", "-m", "sgdtop.worker", "--profile-json", str(profile_json),
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
    """A running trainer and its event stream: the live :class:`sgdtop.feed.EventFeed`.

    Records come from the trainer's event pipe through the one line decoder. The parent
    makes up no records: what the trainer prints before it captures its own output (a
    failing import, say) is passed through as text to ``echo`` (the user's stderr) — or,
    with ``echo=None`` (the TUI owns the terminal), kept in :attr:`early_output` for the
    caller to print afterwards.
    """

    def __init__(self, profile: Profile, runs_dir: Path, run_id: str | None = None, *,
                 echo: IO[str] | None = sys.stderr) -> None:
        self.run_id = run_id or new_run_id(profile.model, profile.lr, profile.batch_size)
        self.runs_dir = runs_dir
        self._profile_json = _write_profile(profile)
        self._echo = echo
        self.early_output: list[str] = []
        self.bad_lines: list[BadLine] = []
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
        self._run_end: RunEnd | None = None
        self._newer: BadLine | None = None
        self._end: EndReason | None = None
        self._events = threading.Thread(target=self._read_events, args=(read_fd,), daemon=True)
        self._output = threading.Thread(target=self._read_output, daemon=True)
        self._events.start()
        self._output.start()

    # --- EventFeed -------------------------------------------------------------------------
    @property
    def source(self) -> str:
        return "the trainer's event pipe"

    @property
    def run_dir(self) -> Path | None:
        path = self.runs_dir / self.run_id
        return path if path.is_dir() else None

    @property
    def end(self) -> EndReason | None:
        """Why the stream ended; also once the trainer has exited when the iteration was
        abandoned (the TUI quit first): by what the pipe reader saw."""
        if self._end is None and self.proc.poll() is not None and not self._events.is_alive():
            self._end = self._ending(self.proc.returncode)
        return self._end

    def _ending(self, code: int) -> EndReason:
        if self._newer is not None:
            return EndReason(EndKind.NEWER_SCHEMA, code=code, bad=self._newer,
                             source=self.source)
        if self._run_end is not None:
            return EndReason(EndKind.RUN_END, code=code, run_end=self._run_end,
                             source=self.source)
        return EndReason(EndKind.EXITED, code=code, source=self.source)

    @property
    def ended_reason(self) -> str | None:
        return ended_reason(self._end)

    @property
    def saw_run_end(self) -> bool:
        """Whether the trainer's ``run_end`` has been read from the pipe (it may still be
        queued, not yet iterated): the trainer is then finishing on its own."""
        return self._run_end is not None

    def __iter__(self) -> Iterator[Record]:
        while True:
            item = self._queue.get()
            if item is _EOF:
                break
            assert not isinstance(item, BadLine)
            yield item  # type: ignore[misc]
        code = self.proc.wait()
        self._output.join(timeout=5)
        self._end = self._ending(code)

    def stop(self, signum: int = signal.SIGINT) -> None:
        """Ask the trainer to stop cleanly (SIGINT by default; SIGHUP when our stdout was
        closed, so the trainer can record why: see ``sgdtop.worker.STOP_SIGNALS``);
        idempotent."""
        if self.proc.poll() is None and not self._stop_sent:
            self._stop_sent = True
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signum)

    def kill(self) -> bool:
        """End the trainer now (SIGKILL: what it wrote so far stays readable) — unless it
        already sent ``run_end`` and is exiting by itself. Returns whether it was killed."""
        if self.saw_run_end or self.proc.poll() is not None:
            return False
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        return True

    def close(self) -> None:
        """Stop the trainer if it still runs, wait up to STOP_GRACE_S, then kill it."""
        if self.proc.poll() is None:
            self.stop()
            try:
                self.proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.kill()
                self.proc.wait()

    def wait_drained(self, timeout: float = 5.0) -> None:
        """Wait (at most ``timeout`` s) until the event pipe has been read to its end, so
        :attr:`end` knows whether ``run_end`` came (after :meth:`close`)."""
        self._events.join(timeout=timeout)

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    # --- readers ---------------------------------------------------------------------------
    def _read_events(self, read_fd: int) -> None:
        split = LineSplitter()
        self.bad_lines = split.bad_lines
        with os.fdopen(read_fd, "rb") as fh:
            while chunk := fh.read1(1 << 16):
                for rec in split.feed(chunk):
                    if isinstance(rec, BadLine):  # a newer schema: nothing more is readable
                        self._newer = rec
                        break
                    if isinstance(rec, RunEnd):
                        self._run_end = rec
                    self._queue.put(rec)
                if self._newer is not None:
                    break
        self._queue.put(_EOF)

    def _read_output(self) -> None:
        """Pass the trainer's raw output (before it captures its own) through as text."""
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            text = raw.decode("utf-8", "replace").rstrip("\n")
            if self._echo is None:
                self.early_output.append(text)
                continue
            with contextlib.suppress(OSError, ValueError):
                self._echo.write(text + "\n")
                self._echo.flush()


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
