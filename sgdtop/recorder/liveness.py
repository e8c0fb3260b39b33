"""Whether a run's trainer is alive: a lock it holds for its whole life.

The trainer (the worker, :class:`sgdtop.Monitor`, any :class:`~sgdtop.recorder.RunRecorder`
user) creates ``<run_dir>/trainer.lock``, writes its pid into it and holds an exclusive
``fcntl.flock`` on it until it ends; the kernel releases the lock when the process dies, so
a killed trainer leaves nothing that reads as alive, and a process that merely reuses its
pid holds no lock (``docs/design.md``, "Run directory"). The file is never deleted.

A reader asks :func:`live_pid`: a run is live iff a non-blocking exclusive ``flock`` on a
fresh descriptor of the file fails with ``EWOULDBLOCK``; the pid to signal is then the one
in the file. Standard library only.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from pathlib import Path
from types import TracebackType
from typing import Final

from sgdtop.schema.rundir import LOCK_FILE

#: How long :func:`hold_lock` retries when a reader's probe holds the lock for an instant.
_ACQUIRE_S: Final[float] = 2.0
#: How long :func:`live_pid` waits for the pid of a trainer that has locked but not yet
#: written it.
_PID_WAIT_S: Final[float] = 0.5


class LockHeldError(OSError):
    """Another live process holds the run's trainer lock."""


class LockHandle:
    """The held lock of one run: an open descriptor with ``LOCK_EX`` on ``trainer.lock``.

    :meth:`release` (or leaving the ``with`` block) unlocks and closes it; a process that
    ends releases it implicitly.
    """

    def __init__(self, fd: int, path: Path) -> None:
        self._fd: int | None = fd
        self.path = path

    @property
    def held(self) -> bool:
        """Whether this handle still holds the lock."""
        return self._fd is not None

    def release(self) -> None:
        """Unlock and close (idempotent). The file stays."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> LockHandle:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def _open_flags(write: bool) -> int:
    flags = os.O_RDWR | os.O_CREAT if write else os.O_RDONLY
    return flags | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def hold_lock(run_dir: Path) -> LockHandle:
    """Create (or reuse) ``run_dir/trainer.lock``, lock it exclusively and write this
    process's pid into it.

    Raises:
        LockHeldError: another live process holds it (after a short retry: a reader's
            probe holds it for an instant).
        OSError: the file cannot be created (a symlink is refused).
    """
    path = Path(run_dir) / LOCK_FILE
    fd = os.open(path, _open_flags(write=True), 0o644)
    try:
        deadline = time.monotonic() + _ACQUIRE_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LockHeldError(errno.EWOULDBLOCK, "another process holds the "
                                        "trainer lock", str(path)) from None
                time.sleep(0.01)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    except BaseException:
        os.close(fd)
        raise
    return LockHandle(fd, path)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        pid = int(text)
    except (OSError, ValueError):
        return None
    return pid if pid > 0 else None


def lock_holder(lock: Path, *, wait_s: float = 0.0) -> int | None:
    """Whether a live process holds ``lock`` (an exclusive ``flock``, released by the kernel
    when its holder dies): the pid written in it; 0 when it is held but no pid was written
    within ``wait_s`` seconds; None when no process holds it (or there is no such file).
    Takes no lock itself (a successful try is released at once). Never raises."""
    try:
        fd = os.open(lock, _open_flags(write=False))
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            deadline = time.monotonic() + wait_s
            pid = _read_pid(fd)
            while pid is None and time.monotonic() < deadline:
                time.sleep(0.01)  # locked, pid not yet written
                pid = _read_pid(fd)
            return 0 if pid is None else pid
        except OSError:
            return None
        fcntl.flock(fd, fcntl.LOCK_UN)  # we got it: nobody holds it
        return None
    finally:
        os.close(fd)


def live_pid(run_dir: Path) -> int | None:
    """The pid of the process holding ``run_dir``'s trainer lock, or None when no process
    holds it (no file, a dead trainer, a finished one) or it wrote no pid within
    half a second. Never raises."""
    return lock_holder(Path(run_dir) / LOCK_FILE, wait_s=_PID_WAIT_S) or None
