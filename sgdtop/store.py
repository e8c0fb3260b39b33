"""Run directories: write (one writer: the trainer), list, resolve, read (replay),
follow (watch) them and tell whether their trainer is live.

A run directory ``<runs>/<run id>/`` holds

- ``events.jsonl``: the event stream (:mod:`sgdtop.schema`), one flushed line per event;
- ``profile.json``: the resolved profile the run used;
- ``summary.json``: what ``sgdtop runs`` shows, covering a prefix of the events
  (:mod:`sgdtop.summary`);
- ``trainer.lock``: holds the trainer's pid; the live trainer holds an exclusive ``flock``
  on it (:func:`live_pid`).

Nothing in a run directory is ever unpickled. Standard library only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sgdtop.feed import FileFeed
from sgdtop.recorder.liveness import live_pid
from sgdtop.recorder.rundir import (
    check_writable,
    create_run_dir,
    new_run_id,
)
from sgdtop.recorder.writer import EventWriter
from sgdtop.schema import ReadResult, read_events
from sgdtop.schema.rundir import EVENTS_FILE, LOCK_FILE, PROFILE_FILE
from sgdtop.schema.wire import WireError, parse_json
from sgdtop.summary import RunSummary, _int, _num, load_summary

__all__ = [
    "EVENTS_FILE", "LOCK_FILE", "PID_FILE", "PROFILE_FILE", "RUNS_ENV", "EventWriter",
    "RunFollower", "RunInfo", "RunNotFoundError", "check_writable", "create_run_dir",
    "list_run_dirs", "live_pid", "match_id", "new_run_id", "process_alive", "read_run",
    "resolve_run", "run_info", "runs_root",
]

PID_FILE: Final[str] = "trainer.pid"  #: written by trainers from before trainer.lock
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
    if not _ID_RE.fullmatch(ref) or ".." in ref:  # fullmatch: "$" would let "id\n" in
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
