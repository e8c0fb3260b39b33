"""The trainer process: ``python -m sgdtop.worker --profile-json FILE --runs-dir DIR
--run-id ID [--event-fd N]``.

It owns the run directory (one writer). Every event goes to ``events.jsonl`` (flushed) and,
when ``--event-fd`` is given, the same line to that pipe for the parent. Its own stdout and
stderr (library warnings, prints) are captured at the file-descriptor level and become
``log`` events, so nothing corrupts the stream.

Signals: SIGINT or SIGTERM asks for a stop — the current step (or measurement) is
abandoned at the next check, ``run_end`` is written with status ``interrupted``. Exit
codes: :data:`EXIT_CODES` (0 completed, 130 interrupted, 3 diverged, 1 failed, 2 bad input).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import IO, Final

from sgdtop.profile import Profile, ProfileError, apply_overrides
from sgdtop.store import PID_FILE, EventWriter, create_run_dir

EXIT_CODES: Final[dict[str, int]] = {
    "completed": 0, "interrupted": 130, "diverged": 3, "failed": 1, "bad_input": 2,
}
_MAX_LOG_LINE: Final[int] = 2000


class _StopFlag:
    """Set by SIGINT/SIGTERM; polled by the training loop."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def __call__(self) -> bool:
        return self.event.is_set()

    def handler(self, signum: int, frame: FrameType | None) -> None:
        self.event.set()


class _OutputCapture:
    """Redirects fds 1 and 2 into a pipe and turns each line into a ``log`` event."""

    def __init__(self, emit_line: Callable[[str], object]) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        self._saved = (os.dup(1), os.dup(2))
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, 1)
        os.dup2(write_fd, 2)
        os.close(write_fd)
        self._emit_line = emit_line
        self._thread = threading.Thread(target=self._pump, args=(read_fd,), daemon=True)
        self._thread.start()

    def _pump(self, read_fd: int) -> None:
        with os.fdopen(read_fd, "rb") as fh:
            for raw in fh:
                for part in raw.replace(b"\r", b"\n").split(b"\n"):
                    text = part.decode("utf-8", "replace").rstrip()
                    if text:
                        self._emit_line(text[:_MAX_LOG_LINE])

    @property
    def original_stderr_fd(self) -> int:
        return self._saved[1]

    def restore(self) -> None:
        """Put the original fds back and wait until every captured line is emitted."""
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os.dup2(self._saved[0], 1)
        os.dup2(self._saved[1], 2)
        self._thread.join(timeout=5)


def _level_of(line: str) -> str:
    low = line.lower()
    if "error" in low or "traceback" in low or "exception" in low:
        return "error"
    return "warning"


def main(argv: list[str] | None = None) -> int:
    """Run one trainer; returns the process exit code."""
    stop = _StopFlag()
    signal.signal(signal.SIGINT, stop.handler)
    signal.signal(signal.SIGTERM, stop.handler)

    ap = argparse.ArgumentParser(prog="python -m sgdtop.worker")
    ap.add_argument("--profile-json", required=True, type=Path)
    ap.add_argument("--runs-dir", required=True, type=Path)
    ap.add_argument("--run-id", required=True)
    ap.add_argument("--event-fd", type=int, default=None)
    ap.add_argument("--delete-profile-json", action="store_true",
                    help="remove the profile file once read (it is a temporary file)")
    args = ap.parse_args(argv)
    run_dir: Path | None = None

    pipe: IO[str] | None = None
    if args.event_fd is not None:
        pipe = os.fdopen(args.event_fd, "w", encoding="utf-8", buffering=1)
    writer = EventWriter(None, pipe)
    t0 = time.monotonic()

    from sgdtop.train import Emitter  # torch import happens here, after signals are set

    emit = Emitter(writer.write, t0=t0)

    def fail(status: str, message: str, code: int) -> int:
        if pipe is None and run_dir is None:  # detached and nowhere to write: say it
            print(f"sgdtop: error: {message}", file=sys.stderr, flush=True)
        emit("run_end", status=status, message=message, steps=emit.step,
             seconds=time.monotonic() - t0)
        writer.close()
        return code

    try:
        profile_data = json.loads(args.profile_json.read_text(encoding="utf-8"))
        profile: Profile = apply_overrides(Profile(), profile_data)
        profile.validate()
        if args.delete_profile_json:
            args.profile_json.unlink(missing_ok=True)
    except (OSError, ValueError, ProfileError) as exc:
        return fail("failed", f"bad profile: {exc}", EXIT_CODES["bad_input"])

    capture = _OutputCapture(
        lambda line: emit("log", level=_level_of(line), message=line, source="stderr"))
    try:
        from sgdtop.train import InputError, prepare, train

        try:
            setup = prepare(profile)
        except InputError as exc:
            capture.restore()
            return fail("failed", str(exc), EXIT_CODES["bad_input"])
        if stop():
            capture.restore()
            return fail("interrupted", "stopped before training started",
                        EXIT_CODES["interrupted"])
        try:
            run_dir = create_run_dir(args.runs_dir, args.run_id, profile.to_dict())
        except OSError as exc:
            capture.restore()
            return fail("failed", f"cannot create the run directory in {args.runs_dir}: "
                        f"{exc.strerror}", EXIT_CODES["bad_input"])
        (run_dir / PID_FILE).write_text(f"{os.getpid()}\n")
        writer.open_file(run_dir)
        emit.t0 = time.monotonic()
        outcome = train(setup, emit, stop, args.run_id)
        capture.restore()
        emit("run_end", status=outcome.status, message=outcome.message, steps=outcome.steps,
             seconds=time.monotonic() - emit.t0, measurements=outcome.measurements,
             measure_seconds=outcome.measure_seconds)
        writer.close()
        return EXIT_CODES[outcome.status]
    except BaseException as exc:  # a trainer crash must still end the run
        capture.restore()
        tb = traceback.format_exc()
        with contextlib.suppress(Exception):
            os.write(2, tb.encode())
        for line in tb.rstrip().splitlines()[-20:]:
            emit("log", level="error", message=line, source="trainer")
        message = f"{type(exc).__name__}: {exc}".splitlines()[0][:_MAX_LOG_LINE]
        return fail("failed", f"trainer crashed: {message}", EXIT_CODES["failed"])
    finally:
        if run_dir is not None:
            with contextlib.suppress(OSError):
                (run_dir / PID_FILE).unlink()


if __name__ == "__main__":
    sys.exit(main())

