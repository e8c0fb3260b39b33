"""Run directories: write (one writer: the trainer), list, resolve, read (replay) and
follow (watch) them.

A run directory ``<runs>/<run id>/`` holds

- ``events.jsonl``: the event stream (:mod:`sgdtop.events`), one flushed line per event;
- ``profile.json``: the resolved profile the run used;
- ``trainer.pid``: the trainer's process id while it runs (removed at its end).

Nothing in a run directory is ever unpickled. Standard library only.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

from sgdtop.events import Event, EventError, ReadResult, decode, encode, read_events

EVENTS_FILE: Final[str] = "events.jsonl"
PROFILE_FILE: Final[str] = "profile.json"
PID_FILE: Final[str] = "trainer.pid"
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

    def write(self, ev: Event) -> None:
        line = encode(ev)
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
    """All events of a run (see :func:`sgdtop.events.read_events`)."""
    path = run_dir / EVENTS_FILE
    if not path.is_file():
        return ReadResult(events=[], bad_lines=[], truncated_tail=False)
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


def trainer_pid(run_dir: Path) -> int | None:
    """The pid in ``trainer.pid`` if that process is alive, else None."""
    try:
        pid = int((run_dir / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if process_alive(pid) else None


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
    status: str  # run_end status, "running", or "died" (no run_end, no live trainer)
    steps: int
    spectral_norm: float | None  # ρ(H) of the last spectrum event
    test_acc: float | None  # of the last eval event
    started: str  # local time of the run start, from the id


def run_info(run_dir: Path) -> RunInfo:
    """Summarise a run directory from its events (and profile.json where events lack)."""
    result = read_run(run_dir)
    prof: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        prof = json.loads((run_dir / PROFILE_FILE).read_text(encoding="utf-8"))
    status = "died"
    steps = 0
    rho: float | None = None
    acc: float | None = None
    for ev in result.events:
        if ev.step is not None:
            steps = max(steps, ev.step)
        if ev.kind == "spectrum":
            rho = float(ev["spectral_norm"])
        elif ev.kind == "eval":
            acc = float(ev["test_acc"])
        elif ev.kind == "run_end":
            status = str(ev["status"])
            steps = max(steps, int(ev["steps"]))
    if status == "died" and trainer_pid(run_dir) is not None:
        status = "running"
    m = re.match(r"(\d{8})-(\d{6})", run_dir.name)
    started = (f"{m[1][:4]}-{m[1][4:6]}-{m[1][6:]} {m[2][:2]}:{m[2][2:4]}" if m else "")
    return RunInfo(
        run_id=run_dir.name, path=run_dir, model=str(prof.get("model", "?")),
        dataset=str(prof.get("dataset", "?")), lr=prof.get("lr"),
        batch_size=prof.get("batch_size"), momentum=prof.get("momentum"), status=status,
        steps=steps, spectral_norm=rho, test_acc=acc, started=started,
    )


class RunFollower:
    """Follows a growing ``events.jsonl`` (:class:`sgdtop.feed.EventFeed`): yields every
    event already written, then new ones as they are appended, and ends at ``run_end`` —
    or when the trainer is gone and the file stopped growing (``ended_reason`` says so).

    Only complete lines are decoded; a partial last line waits for its newline. Bad lines
    are reported through ``bad_lines`` and skipped.
    """

    def __init__(self, run_dir: Path, *, poll_s: float = 0.2, stale_s: float = 5.0) -> None:
        self._run_dir = run_dir
        self._poll_s = poll_s
        self._stale_s = stale_s
        self._stop = threading.Event()
        self._ended_reason: str | None = None
        self.bad_lines: list[tuple[int, str]] = []

    @property
    def run_dir(self) -> Path | None:
        return self._run_dir

    @property
    def ended_reason(self) -> str | None:
        return self._ended_reason

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self._stop.set()

    def __iter__(self) -> Iterator[Event]:
        path = self._run_dir / EVENTS_FILE
        buf = b""
        lineno = 0
        offset = 0
        idle_since = time.monotonic()
        while not self._stop.is_set():
            chunk = b""
            if path.is_file():
                with open(path, "rb") as fh:
                    fh.seek(offset)
                    chunk = fh.read()
            if chunk:
                offset += len(chunk)
                idle_since = time.monotonic()
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for raw in lines:
                    lineno += 1
                    if not raw.strip():
                        continue
                    try:
                        ev = decode(raw)
                    except EventError as exc:
                        if type(exc).__name__ == "SchemaVersionError":
                            raise
                        self.bad_lines.append((lineno, str(exc)))
                        continue
                    yield ev
                    if ev.kind == "run_end":
                        return
                continue
            if (time.monotonic() - idle_since > self._stale_s
                    and trainer_pid(self._run_dir) is None):
                self._ended_reason = "the trainer is gone and the run has no run_end"
                return
            self._stop.wait(self._poll_s)
        self._ended_reason = "stopped following"
