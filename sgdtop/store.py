"""Run directories: list, resolve, read (replay) and follow (watch) them. Writing them is
the recorder's (:mod:`sgdtop.recorder`; its names are re-exported here for the CLI).

A run directory ``<runs>/<run id>/`` holds

- ``events.jsonl``: the event stream (:mod:`sgdtop.events`), one flushed line per event;
- ``profile.json``: the resolved profile the run used;
- ``trainer.lock``: the trainer's liveness lock, held while it runs
  (:mod:`sgdtop.recorder.liveness`).

Nothing in a run directory is ever unpickled. Standard library only.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sgdtop.events import Event, EventError, ReadResult, decode, read_events
from sgdtop.recorder.liveness import LOCK_FILE, live_pid
from sgdtop.recorder.rundir import (
    EVENTS_FILE,
    PROFILE_FILE,
    check_writable,
    create_run_dir,
    new_run_id,
)
from sgdtop.recorder.writer import EventWriter

__all__ = ["EVENTS_FILE", "LOCK_FILE", "PROFILE_FILE", "EventWriter", "check_writable",
           "create_run_dir", "new_run_id"]  # re-exported for the CLI and launch

RUNS_ENV: Final[str] = "SGDTOP_RUNS_DIR"
_ID_RE: Final[re.Pattern[str]] = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class RunNotFoundError(LookupError):
    """A RUN reference that names no run (or several); the message is one line."""


def runs_root(path: str | Path | None = None) -> Path:
    """The runs directory: ``path``, else ``$SGDTOP_RUNS_DIR``, else ``./runs``."""
    if path is not None:
        return Path(path)
    return Path(os.environ.get(RUNS_ENV, "runs"))


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
    """The pid of the process holding the run's trainer lock, else None
    (:func:`sgdtop.recorder.liveness.live_pid`)."""
    return live_pid(run_dir)


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
