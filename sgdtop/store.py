"""Run directories: write (one writer: the trainer), list, resolve, read (replay),
follow (watch) them and tell whether their trainer is live.

A run directory ``<runs>/<run id>/`` holds

- ``events.jsonl``: the event stream (:mod:`sgdtop.events`), one flushed line per event;
- ``profile.json``: the resolved profile the run used;
- ``summary.json``: what ``sgdtop runs`` shows, covering a prefix of the events
  (:mod:`sgdtop.summary`);
- ``trainer.lock``: holds the trainer's pid; the live trainer holds an exclusive ``flock``
  on it (:func:`live_pid`).

Nothing in a run directory is ever unpickled. Standard library only.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

from sgdtop.events import Event, encode
from sgdtop.feed import EVENTS_FILE, FileFeed
from sgdtop.schema import ReadResult, Record, read_events
from sgdtop.schema import encode as encode_record
from sgdtop.schema.wire import WireError, parse_json
from sgdtop.summary import RunSummary, _int, _num, load_summary

__all__ = [
    "EVENTS_FILE", "LOCK_FILE", "PID_FILE", "PROFILE_FILE", "RUNS_ENV", "EventWriter",
    "RunFollower", "RunInfo", "RunNotFoundError", "check_writable", "create_run_dir",
    "list_run_dirs", "live_pid", "match_id", "new_run_id", "process_alive", "read_run",
    "resolve_run", "run_info", "runs_root", "trainer_pid",
]

PROFILE_FILE: Final[str] = "profile.json"
PID_FILE: Final[str] = "trainer.pid"  #: written by trainers from before trainer.lock
LOCK_FILE: Final[str] = "trainer.lock"  #: held (flock) by the live trainer
RUNS_ENV: Final[str] = "SGDTOP_RUNS_DIR"
_ID_RE: Final[re.Pattern[str]] = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class RunNotFoundError(LookupError):
    """A RUN reference that names no run (or several); the message is one line."""


def runs_root(path: str | Path | None = None) -> Path:
    """The runs directory: ``path``, else ``$SGDTOP_RUNS_DIR``, else ``./runs``."""
    if path is not None:
        return Path(path)
    return Path(os.environ.get(RUNS_ENV, "runs"))


def new_run_id(model: str, lr: float | None, batch_size: int | None,
               now: datetime | None = None) -> str:
    """``YYYYmmdd-HHMMSS-<model>-lr<η>-b<S>-<4 hex>``: sortable by start time, readable,
    unique. The ``lr``/``b`` parts are left out when unknown (None)."""
    stamp = (now or datetime.now(UTC).astimezone()).strftime("%Y%m%d-%H%M%S")
    if ":" in model:  # a custom factory "path/to/file.py:factory": name it by its file
        model = Path(model.rsplit(":", 1)[0]).stem
    parts = [stamp, re.sub(r"[^A-Za-z0-9]+", "", model) or "model"]
    if lr is not None:
        parts.append(f"lr{lr:g}")
    if batch_size is not None:
        parts.append(f"b{batch_size}")
    return "-".join([*parts, secrets.token_hex(2)])


def check_writable(root: Path) -> None:
    """Raise OSError (with a clear strerror) unless runs can be created under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    probe = root / f".write-test-{os.getpid()}"
    probe.write_text("")
    probe.unlink()


class EventWriter:
    """The single writer of a run's events: appends each line to ``events.jsonl``
    (flushed, so a killed trainer leaves every finished line readable) and writes the same
    line to the event pipe, if any. Thread-safe. A broken pipe (the viewer went away) stops
    the pipe copy only; the file goes on.
    """

    def __init__(self, run_dir: Path | None, pipe: IO[str] | None) -> None:
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        self._pipe = pipe
        if run_dir is not None:
            self.open_file(run_dir)

    def open_file(self, run_dir: Path) -> None:
        """Start appending to ``run_dir/events.jsonl`` (events before this went to the
        pipe only: the trainer creates its run directory once the input is valid)."""
        with self._lock:
            self._file = open(run_dir / EVENTS_FILE, "a", encoding="utf-8")  # noqa: SIM115

    def write(self, ev: Event | Record) -> None:
        # an old untyped Event from the trainer, or a record (until the recorder's writer)
        line = encode(ev) if isinstance(ev, Event) else encode_record(ev)
        with self._lock:
            if self._file is not None:
                self._file.write(line)
                self._file.flush()
            if self._pipe is not None:
                try:
                    self._pipe.write(line)
                    self._pipe.flush()
                except (BrokenPipeError, OSError, ValueError):
                    self._pipe = None

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
            if self._pipe is not None:
                with contextlib.suppress(OSError, ValueError):
                    self._pipe.close()
                self._pipe = None


def create_run_dir(root: Path, run_id: str, profile: dict[str, Any]) -> Path:
    """Create ``root/run_id`` with ``profile.json``; fails if it already exists."""
    run_dir = root / run_id
    run_dir.mkdir(parents=True, exist_ok=False)
    (run_dir / PROFILE_FILE).write_text(json.dumps(profile, indent=2) + "\n", encoding="utf-8")
    return run_dir


def _is_run_dir(path: Path) -> bool:
    return (path / EVENTS_FILE).is_file() or (path / PROFILE_FILE).is_file()


def resolve_run(ref: str, root: Path) -> Path:
    """The run directory named by ``ref``: ``latest``, a run id, a unique id prefix (all
    inside ``root``), or an explicit path to a run directory (containing a ``/``).

    Ids are plain names: ``..`` or other path tricks in an id are refused.
    """
    if "/" in ref or os.sep in ref:
        path = Path(ref)
        if path.is_file() and path.name == EVENTS_FILE:
            path = path.parent
        if not path.is_dir() or not _is_run_dir(path):
            raise RunNotFoundError(f"{ref} is not a run directory (no {EVENTS_FILE})")
        return path
    runs = list_run_dirs(root)
    if ref == "latest":
        if not runs:
            raise RunNotFoundError(f"no runs in {root}")
        return max(runs, key=_start_key)
    if not _ID_RE.match(ref) or ".." in ref:
        raise RunNotFoundError(f"{ref!r} is not a run id (letters, digits, '.', '_', '-')")
    matches = match_id(ref, runs)
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise RunNotFoundError(f"no run {ref!r} in {root} (see `sgdtop runs`)")
    names = ", ".join(sorted(m.name for m in matches)[:5])
    raise RunNotFoundError(f"{ref!r} matches {len(matches)} runs: {names}; give more of the id")


def match_id(ref: str, dirs: Sequence[Path]) -> list[Path]:
    """The directories an id names: the one named exactly ``ref``, else every one whose
    name starts with it (a unique prefix is enough; several is ambiguous)."""
    exact = [d for d in dirs if d.name == ref]
    return exact[:1] or [d for d in dirs if d.name.startswith(ref)]


def _start_key(path: Path) -> tuple[float, str]:
    try:
        mtime = (path / PROFILE_FILE).stat().st_mtime
    except OSError:
        mtime = 0.0
    return (mtime, path.name)


def list_run_dirs(root: Path) -> list[Path]:
    """Run directories directly under ``root``, oldest first."""
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.is_dir() and _is_run_dir(p)), key=_start_key)


def read_run(run_dir: Path) -> ReadResult:
    """All records of a run (see :func:`sgdtop.schema.read_events`); none when the run
    has no events file yet."""
    path = run_dir / EVENTS_FILE
    if not path.is_file():
        return ReadResult(records=[], bad_lines=[], truncated_tail=False)
    return read_events(path)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (exited, not yet reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True  # no /proc (macOS): it exists


def _live_pid_standin(run_dir: Path) -> int | None:
    """The pid of the run's live trainer, or None (``docs/design.md``, "Liveness").

    Stand-in with the signature of ``sgdtop.recorder.liveness.live_pid`` until that lands:
    a trainer is live iff another process holds the exclusive ``flock`` on
    ``trainer.lock`` (its pid is the one written in the file). A run directory from before
    the lock (``trainer.pid`` only) counts as live only when that pid is a process that
    started before the pid file was written: a pid recycled by an unrelated process, which
    necessarily started after the trainer died, is not.
    """
    lock = run_dir / LOCK_FILE
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return _legacy_pid(run_dir)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
                return int(text) if text.isdigit() and int(text) > 0 else None
            except (OSError, ValueError):
                return None
        except OSError:
            return None
        fcntl.flock(fd, fcntl.LOCK_UN)  # we got it: nobody holds it, nobody is live
        return None
    finally:
        os.close(fd)


def _start_time(pid: int) -> float | None:
    """When process ``pid`` started (Unix seconds, clock-tick precision), or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            ticks = int(fh.read().rsplit(")", 1)[-1].split()[19])
        with open("/proc/stat", encoding="ascii") as fh:
            btime = next(int(line.split()[1]) for line in fh if line.startswith("btime"))
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return btime + ticks / os.sysconf("SC_CLK_TCK")


def _legacy_pid(run_dir: Path) -> int | None:
    pid_file = run_dir / PID_FILE
    try:
        pid = int(pid_file.read_text().strip())
        written = pid_file.stat().st_mtime
    except (OSError, ValueError):
        return None
    if pid <= 0 or not process_alive(pid):
        return None
    started = _start_time(pid)
    # btime is whole seconds: allow 1 s of slack, less than any trainer's import time
    return pid if started is not None and started <= written + 1.0 else None


try:  # the recorder's (the lock's owner); the stand-in goes once that is on main
    from sgdtop.recorder.liveness import (  # type: ignore[import-untyped,unused-ignore]
        live_pid,
    )
except ImportError:  # pragma: no cover - until the recorder lands
    live_pid = _live_pid_standin

#: Old name of :func:`live_pid`.
trainer_pid = live_pid


@dataclass(frozen=True, slots=True)
class RunInfo:
    """One line of `sgdtop runs`: what a run is and how far it got."""

    run_id: str
    path: Path
    model: str
    dataset: str
    lr: float | None
    batch_size: int | None
    momentum: float | None
    status: str  # run_end status, "running", "died" (no run_end, no live trainer),
    #              or "unreadable" (written by a newer schema)
    steps: int
    spectral_norm: float | None  # ρ(H) of the last spectrum event
    test_acc: float | None  # of the last eval event
    started: str  # local time of the run start, from the id
    summary: RunSummary


def _profile(run_dir: Path) -> dict[str, object]:
    """profile.json as a dict; {} when missing, unreadable or not a JSON object."""
    try:
        prof = parse_json((run_dir / PROFILE_FILE).read_bytes())
    except (OSError, WireError):
        return {}
    return prof if isinstance(prof, dict) else {}


def run_info(run_dir: Path, summary: RunSummary | None = None) -> RunInfo:
    """Describe a run directory from its summary (:func:`sgdtop.summary.load_summary`)
    and profile.json where the events lack; never raises for what is in the files."""
    s = summary if summary is not None else load_summary(run_dir)
    prof = _profile(run_dir)
    if s.newer is not None:
        status = "unreadable"
    elif s.status is not None:
        status = s.status
    else:
        status = "running" if live_pid(run_dir) is not None else "died"
    m = re.match(r"(\d{8})-(\d{6})", run_dir.name)
    started = (f"{m[1][:4]}-{m[1][4:6]}-{m[1][6:]} {m[2][:2]}:{m[2][2:4]}" if m else "")
    model = prof.get("model")
    dataset = prof.get("dataset")
    return RunInfo(
        run_id=run_dir.name, path=run_dir,
        model=model if isinstance(model, str) else s.model or "?",
        dataset=dataset if isinstance(dataset, str) else s.dataset or "?",
        lr=_num(prof.get("lr")) if "lr" in prof else s.lr,
        batch_size=_int(prof.get("batch_size")) if "batch_size" in prof else s.batch_size,
        momentum=_num(prof.get("momentum")) if "momentum" in prof else s.momentum,
        status=status, steps=s.steps, spectral_norm=s.last_spectral_norm,
        test_acc=s.test_acc, started=started, summary=s,
    )


def RunFollower(run_dir: Path, *, poll_s: float = 0.2, stale_s: float = 5.0) -> FileFeed:
    """Follow a growing run (``sgdtop watch``): a :class:`sgdtop.feed.FileFeed` that
    ends once the run's trainer is not live (:func:`live_pid`) and the file stopped
    growing for ``stale_s`` seconds."""
    return FileFeed(run_dir, live=lambda: live_pid(run_dir) is not None,
                    poll_s=poll_s, stale_s=stale_s)
