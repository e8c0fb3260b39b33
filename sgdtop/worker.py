"""The trainer process: ``python -m sgdtop.worker --profile-json FILE --runs-dir DIR
--run-id ID [--event-fd N] [--detached]``.

It owns the run directory through one :class:`~sgdtop.recorder.RunRecorder`
(``docs/design.md``, "Run lifecycle"): every record goes to ``events.jsonl`` and, with
``--event-fd``, the same line to that pipe for the parent. Its own stdout and stderr
(library warnings, prints) are captured at the file-descriptor level and become ``log``
records stamped by the run's clock (source ``stdout``/``stderr``), on disk and on the pipe,
so nothing corrupts the stream and a replay shows what the live view showed. What reaches
the original stderr is only what comes before the capture, a crash traceback, and the one
``sgdtop: error:`` line of a write failure; with ``--detached`` (no parent reads it) that
goes to ``<run_dir>/trainer.log`` (created ``O_EXCL|O_NOFOLLOW``, mode 0600) once the run
directory exists.

Signals: SIGINT, SIGTERM or SIGHUP asks for a stop (``run_end``'s message says which:
SIGHUP means the viewer's output was closed) — the current step (or measurement) is
abandoned at the next check, ``run_end`` is written with status ``interrupted``; once
``run_end`` is written further signals are ignored, so the exit code is always the one of
the status written. Exit codes: :data:`EXIT_CODES` (0 completed, 130 interrupted,
3 diverged, 1 failed, 2 bad input).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import IO, Final

from sgdtop.profile import Profile, ProfileError, apply_overrides
from sgdtop.recorder import MAX_MESSAGE, RunDirError, RunRecorder
from sgdtop.recorder.rundir import open_private_log
from sgdtop.schema import LogLevel, LogSource, RunStatus

EXIT_CODES: Final[dict[str, int]] = {
    "completed": 0, "interrupted": 130, "diverged": 3, "failed": 1, "bad_input": 2,
}


#: The signals that ask the trainer to stop, and why each is sent: SIGHUP is what
#: ``sgdtop run`` sends when its own output was closed (``--json | head``) — the trainer
#: runs in a session of its own, so no terminal ever sends it one.
STOP_SIGNALS: Final[dict[signal.Signals, str]] = {
    signal.SIGINT: "SIGINT: Ctrl+C, q or sgdtop stop",
    signal.SIGTERM: "SIGTERM",
    signal.SIGHUP: "the viewer's output was closed",
}


class _StopFlag:
    """Set by a stop signal (:data:`STOP_SIGNALS`); polled by the training loop. The
    first signal's reason is kept for ``run_end``."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason: str | None = None

    def __call__(self) -> bool:
        return self.event.is_set()

    def handler(self, signum: int, frame: FrameType | None) -> None:
        if self.reason is None:
            self.reason = STOP_SIGNALS.get(signal.Signals(signum), signal.strsignal(signum))
        self.event.set()


class _OutputCapture:
    """Redirects fds 1 and 2 into two pipes and hands each line, with its source
    (``"stdout"`` or ``"stderr"``), to ``on_line``."""

    def __init__(self, on_line: Callable[[LogSource, str], object]) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        self._saved = (os.dup(1), os.dup(2))
        self._on_line = on_line
        self._threads: list[threading.Thread] = []
        sources: tuple[tuple[int, LogSource], ...] = ((1, "stdout"), (2, "stderr"))
        for fd, source in sources:
            read_fd, write_fd = os.pipe()
            os.dup2(write_fd, fd)
            os.close(write_fd)
            th = threading.Thread(target=self._pump, args=(read_fd, source), daemon=True)
            th.start()
            self._threads.append(th)

    def _pump(self, read_fd: int, source: LogSource) -> None:
        with os.fdopen(read_fd, "rb") as fh:
            for raw in fh:
                for part in raw.replace(b"\r", b"\n").split(b"\n"):
                    text = part.decode("utf-8", "replace").rstrip()
                    if text:
                        self._on_line(source, text[:MAX_MESSAGE])

    @property
    def original_stderr_fd(self) -> int:
        """A descriptor of the stderr the process started with."""
        return self._saved[1]

    def redirect_originals(self, fd: int) -> None:
        """Make the saved original stdout and stderr point at ``fd`` (the detached log)."""
        os.dup2(fd, self._saved[0])
        os.dup2(fd, self._saved[1])

    def restore(self) -> None:
        """Put the original fds back and wait until every captured line is handed on."""
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os.dup2(self._saved[0], 1)
        os.dup2(self._saved[1], 2)
        for th in self._threads:
            th.join(timeout=5)


def _level_of(line: str) -> LogLevel:
    low = line.lower()
    if "error" in low or "traceback" in low or "exception" in low:
        return "error"
    return "warning"


def _write_line(fd: int, text: str) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, (text.rstrip("\n") + "\n").encode("utf-8", "replace"))


def main(argv: list[str] | None = None) -> int:
    """Run one trainer; returns the process exit code."""
    stop = _StopFlag()
    for sig in STOP_SIGNALS:
        signal.signal(sig, stop.handler)

    ap = argparse.ArgumentParser(prog="python -m sgdtop.worker")
    ap.add_argument("--profile-json", required=True, type=Path)
    ap.add_argument("--runs-dir", required=True, type=Path)
    ap.add_argument("--run-id", required=True)
    ap.add_argument("--event-fd", type=int, default=None)
    ap.add_argument("--detached", action="store_true",
                    help="no parent reads this process's output: once the run directory "
                         "exists, keep it in <run_dir>/trainer.log")
    ap.add_argument("--delete-profile-json", action="store_true",
                    help="remove the profile file once read (it is a temporary file)")
    args = ap.parse_args(argv)

    pipe: IO[str] | None = None
    if args.event_fd is not None:
        pipe = os.fdopen(args.event_fd, "w", encoding="utf-8", buffering=1)
    stderr_fd = [2]  # where the original stderr is (a saved copy once captured)
    recorder = RunRecorder(pipe=pipe, stop_requested=stop,
                           report=lambda line: _write_line(stderr_fd[0], line))

    def finish(status: RunStatus, message: str, code: int | None = None) -> int:
        if pipe is None and recorder.run_dir is None:  # detached, nowhere to write: say it
            _write_line(stderr_fd[0], f"sgdtop: error: {message}")
        if status == "interrupted" and stop.reason is not None:
            message = f"{message} ({stop.reason})"
        written = recorder.end(status, message)
        for sig in STOP_SIGNALS:  # the run has ended: its code stands
            signal.signal(sig, signal.SIG_IGN)
        return code if code is not None and written == status else EXIT_CODES[written]

    try:
        profile_data = json.loads(args.profile_json.read_text(encoding="utf-8"))
        profile: Profile = apply_overrides(Profile(), profile_data)
        profile.validate()
        if args.delete_profile_json:
            args.profile_json.unlink(missing_ok=True)
    except (OSError, ValueError, ProfileError) as exc:
        return finish("failed", f"bad profile: {exc}", EXIT_CODES["bad_input"])

    capture = _OutputCapture(lambda source, line: recorder.log(
        line, level=_level_of(line), source=source))
    stderr_fd[0] = capture.original_stderr_fd

    def keep_log_in_run_dir(run_dir: Path) -> None:
        fd = open_private_log(run_dir)
        capture.redirect_originals(fd)
        os.close(fd)

    try:
        from sgdtop.train import InputError, prepare, train  # torch loads here

        try:
            setup = prepare(profile)
        except InputError as exc:
            capture.restore()
            return finish("failed", str(exc), EXIT_CODES["bad_input"])
        if stop():
            capture.restore()
            return finish("interrupted", "stopped before training started")
        try:
            outcome = train(setup, recorder, args.runs_dir / args.run_id,
                            on_created=keep_log_in_run_dir if args.detached else None)
        except RunDirError as exc:
            capture.restore()
            return finish("failed", str(exc), EXIT_CODES["bad_input"])
        capture.restore()
        return finish(outcome.status, outcome.message)
    except BaseException as exc:  # a trainer crash must still end the run
        capture.restore()
        tb = traceback.format_exc()
        _write_line(stderr_fd[0], tb)
        for line in tb.rstrip().splitlines()[-20:]:
            recorder.log(line, level="error")
        message = f"{type(exc).__name__}: {exc}".splitlines()[0][:MAX_MESSAGE]
        return finish("failed", f"trainer crashed: {message}")


if __name__ == "__main__":
    code = main()
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)  # at once: run_end is written and every file is closed
