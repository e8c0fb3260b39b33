"""The single writer of a run's records: ``events.jsonl`` and the optional event pipe.

Each record becomes one JSON line (``sgdtop.schema.encode``), appended to the file with
one unbuffered ``write`` on an ``O_APPEND`` descriptor (a killed trainer leaves every
finished line readable) and written to the pipe for a parent that reads it live.

Failures are contained, never raised (``docs/design.md``, "Faults"):

- the pipe breaks (the viewer went away): the pipe copy stops, the file goes on;
- the file cannot take a line (``ENOSPC``, ``EIO``, ``EFBIG``, ...): the file is cut back to
  the end of the last whole line (so everything written before stays intact and readable),
  no further line goes to it, :attr:`EventWriter.file_error` holds the error, and the pipe
  goes on — the trainer then ends the run ``failed`` with that reason, which the pipe still
  carries.

Thread-safe. Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import IO, Final

from sgdtop.schema import Record, encode
from sgdtop.schema.rundir import EVENTS_FILE

_FLAGS: Final[int] = (os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
                      | getattr(os, "O_CLOEXEC", 0))


class WriteError(OSError):
    """The events file could not take a line; ``str()`` is the one-line reason
    ``cannot write <path>: <strerror>``."""

    def __str__(self) -> str:
        return str(self.strerror)


class EventWriter:
    """Appends records to ``<run_dir>/events.jsonl`` (once :meth:`open_file` is called) and
    copies each line to ``pipe``.

    Attributes:
        path: the events file, or None before :meth:`open_file`.
        bytes_written, lines_written: how much of the file holds whole lines written here
            (what ``summary.json`` covers).
        file_error: the first error the file raised, or None.
    """

    def __init__(self, run_dir: Path | None = None, pipe: IO[str] | None = None) -> None:
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._pipe = pipe
        self.path: Path | None = None
        self.bytes_written = 0
        self.lines_written = 0
        self.file_error: WriteError | None = None
        if run_dir is not None:
            self.open_file(run_dir)

    def open_file(self, run_dir: Path) -> None:
        """Start appending to ``run_dir/events.jsonl`` (records before this went to the pipe
        only: the trainer creates its run directory once the input is valid)."""
        path = run_dir / EVENTS_FILE
        fd = os.open(path, _FLAGS, 0o644)
        with self._lock:
            self._fd, self.path = fd, path
            self.bytes_written = os.fstat(fd).st_size

    @property
    def has_file(self) -> bool:
        """Whether lines still go to the events file."""
        return self._fd is not None

    def write(self, record: Record, *, to_file: bool = True, to_pipe: bool = True) -> bool:
        """Write one record to the file and the pipe (or only one of them); returns whether
        the file took it (False also without a file). Never raises for I/O: see the
        module docstring."""
        line = encode(record)
        with self._lock:
            took = self._write_file(line.encode("utf-8")) if to_file else False
            if to_pipe and self._pipe is not None:
                try:
                    self._pipe.write(line)
                    self._pipe.flush()
                except (OSError, ValueError):
                    self._pipe = None
            return took

    def _write_file(self, data: bytes) -> bool:
        if self._fd is None:
            return False
        view = memoryview(data)
        try:
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
        except OSError as exc:
            self._fail(exc)
            return False
        self.bytes_written += len(data)
        self.lines_written += 1
        return True

    def _fail(self, exc: OSError) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):  # keep only whole lines
                os.ftruncate(fd, self.bytes_written)
            with contextlib.suppress(OSError):
                os.close(fd)
        self.file_error = WriteError(exc.errno or 0,
                                     f"cannot write {self.path}: {exc.strerror or exc}")

    def close(self) -> None:
        """Close the file and the pipe (idempotent)."""
        with self._lock:
            if self._fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._fd)
                self._fd = None
            if self._pipe is not None:
                with contextlib.suppress(OSError, ValueError):
                    self._pipe.close()
                self._pipe = None
