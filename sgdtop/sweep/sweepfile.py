"""The sweep file: a sweep directory and its ``sweep.json`` (plan, resume, look-up).

On disk (see ``docs/design.md``, sweeps)::

    <runs>/sweeps/<sweep id>/
        sweep.json        profile, base overrides, axes, cells (settings, run ids)
        runs/<run id>/    one normal run directory per attempt of a cell
        logs/<cell>.log   the cell's `sgdtop run --log` output, every attempt appended
        locks/<run id>.lock  held by a cell's `sgdtop run` process while it lives
        sweep.lock        held (flock, with its pid) by the sweep process while it runs

Names read from ``sweep.json`` (the sweep id, cell names, run ids) are checked exactly
as those given on the command line (:func:`check_name`): a tampered file cannot make a
resume write outside the sweep directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from sgdtop import profile as profile_mod
from sgdtop.recorder.liveness import live_pid as _live_pid
from sgdtop.recorder.liveness import lock_holder
from sgdtop.schema import newer_schema_message
from sgdtop.store import EVENTS_FILE, list_run_dirs, match_id, run_info, runs_root
from sgdtop.sweep.grid import AXES, Cell, SweepError, _flag, plan_cells

SWEEPS_SUBDIR: Final[str] = "sweeps"
SWEEP_FILE: Final[str] = "sweep.json"
#: Held with an exclusive flock by the process running the sweep (the kernel releases it
#: when that process dies: a stale file or a recycled pid never blocks a resume).
SWEEP_LOCK_FILE: Final[str] = "sweep.lock"
RUNS_SUBDIR: Final[str] = "runs"
LOGS_SUBDIR: Final[str] = "logs"
SWEEP_FORMAT: Final[int] = 1

#: Run statuses of a finished cell: not run again on resume.
FINISHED: Final[tuple[str, ...]] = ("completed", "diverged")
#: Status of a cell that has no run yet.
PENDING: Final[str] = "pending"
#: Seconds a stopped cell gets to write run_end before it is asked again (which kills
LOCKS_SUBDIR: Final[str] = "locks"
#: A plain file name: what sweep ids, cell names and run ids must look like (the same
#: rule as run ids on the command line, see :func:`sgdtop.store.resolve_run`).
_NAME_RE: Final[re.Pattern[str]] = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_MAX_NAME: Final[int] = 200


def lock_pid(lock: Path) -> int | None:
    """Whether a live process holds ``lock``: its pid (0 when not written yet), else None
    (:func:`sgdtop.recorder.liveness.lock_holder`)."""
    return lock_holder(lock)


def hold_lock(lock: Path) -> int:
    """Create ``lock`` and take its exclusive ``flock``; returns the fd (pass it to the
    process that should hold it, then :func:`write_lock_pid` and close it here).
    Raises :class:`SweepError` when another process holds it."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise SweepError(f"{lock} is held by another process") from None
    return fd


def write_lock_pid(fd: int, pid: int) -> None:
    """Write the holder's ``pid`` into the lock file open on ``fd``."""
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{pid}\n".encode("ascii"), 0)


def check_name(name: object, what: str) -> str:
    """``name`` if it is a plain directory name (letters, digits, ``.``, ``_``, ``-``; not
    starting with ``.`` or ``-``; no ``..``; at most 200 characters), else
    :class:`SweepError` naming ``what`` (e.g. ``"sweep id"``, ``"cell name"``)."""
    if (not isinstance(name, str) or len(name) > _MAX_NAME or ".." in name
            or not _NAME_RE.fullmatch(name)):
        raise SweepError(f"{name!r} is not a {what} (a plain directory name: "
                         "letters, digits, '.', '_', '-')")
    return name


def _canonical(profile: str, set_items: Sequence[str],
               axes: Mapping[str, Sequence[float | int]]) -> str:
    return json.dumps({"profile": profile, "set": profile_mod.parse_set(list(set_items)),
                       "axes": {k: list(axes[k]) for k in AXES if k in axes}},
                      sort_keys=True, separators=(",", ":"))


def sweep_id_for(profile: str, set_items: Sequence[str],
                 axes: Mapping[str, Sequence[float | int]]) -> str:
    """``<profile stem>-<8 hex>``: the same profile, overrides and axes give the same id."""
    digest = hashlib.sha256(_canonical(profile, set_items, axes).encode()).hexdigest()[:8]
    stem = Path(profile).stem if profile.endswith(".toml") else profile
    safe = "".join(c if c.isalnum() or c in "._-" else "-" for c in stem).strip("-.")
    return f"{safe or 'sweep'}-{digest}"



@dataclass(slots=True)
class Sweep:
    """A sweep directory and what ``sweep.json`` says: the ``profile`` (a bundled name or
    an absolute .toml path), the base overrides ``set_items`` (``key=value``, as given to
    ``--set``), the ``axes`` and the ``cells``; ``resolved``: the profile as it resolved
    when the sweep was planned (the base overrides applied, before the axes), so that a
    resume can tell when the profile file has changed since (None in older sweeps)."""

    path: Path
    sweep_id: str
    profile: str
    set_items: list[str]
    axes: dict[str, list[float | int]]
    cells: list[Cell]
    created: str
    resolved: dict[str, Any] | None = None

    @property
    def runs_dir(self) -> Path:
        """Where the cells' run directories are: ``<sweep>/runs``."""
        return self.path / RUNS_SUBDIR

    @property
    def logs_dir(self) -> Path:
        """Where the cells' logs are: ``<sweep>/logs``."""
        return self.path / LOGS_SUBDIR

    @property
    def profile_name(self) -> str:
        """The profile for display: a bundled name, or a .toml file's name (not its path)."""
        return Path(self.profile).name if self.profile.endswith(".toml") else self.profile

    @property
    def varying(self) -> list[str]:
        """The axes with more than one value, in :data:`AXES` order."""
        return [k for k in AXES if k in self.axes and len(self.axes[k]) > 1]

    def run_dir(self, cell: Cell) -> Path | None:
        """The directory of ``cell``'s newest run, or None before its first."""
        return (None if cell.run_id is None
                else self.runs_dir / check_name(cell.run_id, "run id"))

    def log_path(self, cell: Cell) -> Path:
        """``<sweep>/logs/<cell name>.log``."""
        return self.logs_dir / f"{check_name(cell.name, 'cell name')}.log"

    def lock_path(self, run_id: str) -> Path:
        """``<sweep>/locks/<run id>.lock``: held (``flock``) by the `sgdtop run` process
        of that attempt for its whole life, so a resume can tell a cell that is still
        starting (no run directory yet) from one that died."""
        return self.path / LOCKS_SUBDIR / f"{check_name(run_id, 'run id')}.lock"

    def cell_live(self, cell: Cell) -> bool:
        """Whether ``cell``'s newest attempt still runs: its `sgdtop run` process holds
        the attempt's lock, or its trainer is alive (cheap: reads no events)."""
        if cell.run_id is None:
            return False
        if lock_pid(self.lock_path(cell.run_id)) is not None:
            return True
        run_dir = self.runs_dir / cell.run_id
        return run_dir.is_dir() and _live_pid(run_dir) is not None

    def cell_status(self, cell: Cell) -> str:
        """The status of ``cell``'s newest run (``completed``, ``interrupted``,
        ``diverged``, ``failed``, ``running`` or ``died``, see
        :func:`sgdtop.store.run_info`), or :data:`PENDING` when it has none. A cell whose
        `sgdtop run` process still holds its lock (:meth:`lock_path`) is ``running``
        even before its run directory exists. A run written by a newer sgdtop is a
        one-line :class:`SweepError`."""
        run_dir = self.run_dir(cell)
        starting = cell.run_id is not None and lock_pid(self.lock_path(cell.run_id)) is not None
        if run_dir is None or not run_dir.is_dir():
            return "running" if starting else PENDING
        info = run_info(run_dir)
        status = info.status
        newer = info.summary.newer_line()
        if newer is not None:  # one line, not a traceback (issue 11.1)
            raise SweepError(newer_schema_message(run_dir / EVENTS_FILE, newer))
        if status in ("running", "died"):  # no run_end: is its trainer alive?
            live = starting or _live_pid(run_dir) is not None
            return "running" if live else "died"
        return status

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": SWEEP_FORMAT, "sweep_id": self.sweep_id, "created": self.created,
            "profile": self.profile, "set": list(self.set_items),
            "overrides": profile_mod.parse_set(self.set_items),
            "axes": {k: list(v) for k, v in self.axes.items()},
            "resolved_profile": self.resolved,
            "cells": [c.to_dict() for c in self.cells],
        }

    def save(self) -> None:
        """Write ``sweep.json`` atomically (a reader never sees half a file)."""
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.path / f".{SWEEP_FILE}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n",
                       encoding="utf-8")
        os.replace(tmp, self.path / SWEEP_FILE)

    def same_spec(self, profile: str, set_items: Sequence[str],
                  axes: Mapping[str, Sequence[float | int]]) -> bool:
        """Whether this sweep was planned from exactly these inputs."""
        return (_canonical(self.profile, self.set_items, self.axes)
                == _canonical(profile, set_items, axes))


def sweeps_root(runs_dir: str | Path | None = None) -> Path:
    """``<runs>/sweeps`` for the runs directory (see :func:`sgdtop.store.runs_root`)."""
    return runs_root(runs_dir) / SWEEPS_SUBDIR


def _profile_ref(profile: str) -> str:
    """A bundled profile name as is; a .toml file as an absolute path (so that a resume
    from another working directory finds it)."""
    if profile.endswith(".toml") and Path(profile).is_file():
        return str(Path(profile).resolve())
    return profile


def create_sweep(
    profile: str,
    axes: Mapping[str, Sequence[float | int]],
    *,
    set_items: Sequence[str] = (),
    runs_dir: str | Path | None = None,
    sweep_id: str | None = None,
) -> Sweep:
    """Plan a sweep, or reopen the same one to resume it.

    ``profile`` is a profile name or .toml file; ``axes`` maps axis names (:data:`AXES`)
    to values (see :func:`parse_axis`); ``set_items`` are base overrides ``key=value``
    for every cell (they may not name a swept axis). The sweep goes to
    ``<runs>/sweeps/<sweep_id>`` (default id: :func:`sweep_id_for`). Every cell's profile
    is resolved and validated first, so a bad value fails here, before anything runs.
    If that directory already holds a sweep of the same inputs it is returned (resume);
    of other inputs, :class:`SweepError`.
    """
    profile = _profile_ref(profile)
    set_items = [s.strip() for s in set_items]
    axes_l: dict[str, list[float | int]] = {k: list(axes[k]) for k in AXES if k in axes}
    cells = plan_cells(axes)
    try:
        base = profile_mod.parse_set(set_items)
    except profile_mod.ProfileError as exc:
        raise SweepError(str(exc)) from None
    clash = [k for k in base if k in axes_l]
    if clash:
        raise SweepError(f"--set {clash[0]}=... conflicts with the swept axis {_flag(clash[0])}")
    for cell in cells:
        try:
            profile_mod.load(profile, overrides={**base, **cell.settings})
        except profile_mod.ProfileError as exc:
            raise SweepError(f"{cell.label()}: {exc}" if len(cells) > 1 else str(exc)) from None
    resolved = _resolved(profile, base)
    sid = check_name(sweep_id_for(profile, set_items, axes_l) if sweep_id is None
                     else sweep_id, "sweep id")
    path = sweeps_root(runs_dir) / sid
    if (path / SWEEP_FILE).is_file():
        existing = load_sweep(path)
        if not existing.same_spec(profile, set_items, axes_l):
            raise SweepError(f"sweep {sid} in {path.parent} was planned with other settings; "
                             "choose another id")
        changed = _changed_fields(existing.resolved, resolved)
        if changed:
            raise SweepError(
                f"profile {Path(profile).stem} has changed since sweep {sid} was planned "
                f"({changed}): its finished cells would not match new ones; start a new "
                "sweep with --name NAME (or restore the profile to resume)")
        return existing
    sweep = Sweep(path=path, sweep_id=sid, profile=profile, set_items=set_items,
                  axes=axes_l, cells=cells,
                  created=datetime.now(UTC).astimezone().isoformat(timespec="seconds"),
                  resolved=resolved)
    try:
        sweep.runs_dir.mkdir(parents=True, exist_ok=True)
        sweep.logs_dir.mkdir(parents=True, exist_ok=True)
        sweep.save()
    except OSError as exc:
        raise SweepError(f"cannot write the sweep into {path}: {exc.strerror or exc}") from None
    return sweep


def _resolved(profile: str, base: Mapping[str, Any]) -> dict[str, Any]:
    """The profile with the base overrides, as a JSON-comparable dict (the cells' axes
    are applied on top of it)."""
    resolved = profile_mod.load(profile, overrides=dict(base)).to_dict()
    return json.loads(json.dumps(resolved))


def _changed_fields(before: Mapping[str, Any] | None, now: Mapping[str, Any]) -> str:
    """``"key old → new, ..."`` for the fields that differ (at most three named), or ""
    when nothing does or ``before`` is unknown. A field new in this version of sgdtop
    (absent before) counts as unchanged when it holds its default."""
    if before is None:
        return ""
    defaults = profile_mod.Profile().to_dict()
    diffs = []
    for key in sorted(set(before) | set(now)):
        old = before.get(key, defaults.get(key))
        new = now.get(key, defaults.get(key))
        if key != "name" and old != new:
            diffs.append(f"{key} {old!r} → {new!r}")
    more = f", +{len(diffs) - 3} more" if len(diffs) > 3 else ""
    return ", ".join(diffs[:3]) + more


def is_sweep_dir(path: Path) -> bool:
    """Whether ``path`` is a sweep directory (holds ``sweep.json``)."""
    return (path / SWEEP_FILE).is_file()


def load_sweep(path: str | Path) -> Sweep:
    """Read the sweep in directory ``path`` (or its ``sweep.json``)."""
    path = Path(path)
    if path.name == SWEEP_FILE:
        path = path.parent
    try:
        data = json.loads((path / SWEEP_FILE).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SweepError(f"{path} is not a sweep directory: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise SweepError(f"{path / SWEEP_FILE} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != SWEEP_FORMAT:
        raise SweepError(f"{path / SWEEP_FILE}: unknown sweep format "
                         f"{data.get('format') if isinstance(data, dict) else None!r}")
    try:
        cells = [Cell(index=int(c["index"]), name=check_name(c["name"], "cell name"),
                      settings=dict(c["settings"]), run_id=_run_id_or_none(c.get("run_id")),
                      previous=[check_name(r, "run id") for r in c.get("previous", [])])
                 for c in data["cells"]]
        return Sweep(path=path, sweep_id=check_name(data["sweep_id"], "sweep id"),
                     profile=str(data["profile"]),
                     set_items=[str(s) for s in data["set"]],
                     axes={k: list(v) for k, v in data["axes"].items()}, cells=cells,
                     created=str(data.get("created", "")),
                     resolved=data.get("resolved_profile"))
    except SweepError as exc:
        raise SweepError(f"{path / SWEEP_FILE}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SweepError(f"{path / SWEEP_FILE} is malformed: {exc!r}") from None


def _run_id_or_none(value: object) -> str | None:
    return None if value is None else check_name(value, "run id")


def list_sweeps(runs_dir: str | Path | None = None) -> list[Path]:
    """Sweep directories under ``<runs>/sweeps``, oldest first (by sweep.json's mtime)."""
    root = sweeps_root(runs_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and is_sweep_dir(p)]
    return sorted(found, key=lambda p: ((p / SWEEP_FILE).stat().st_mtime, p.name))


def resolve_sweep(ref: str, runs_dir: str | Path | None = None) -> Path:
    """The sweep directory named by ``ref``: a path to one (containing ``/``), ``latest``,
    a sweep id or a unique id prefix under ``<runs>/sweeps``."""
    if "/" in ref or os.sep in ref:
        path = Path(ref)
        if path.name == SWEEP_FILE:
            path = path.parent
        if not is_sweep_dir(path):
            raise SweepError(f"{ref} is not a sweep directory (no {SWEEP_FILE})")
        return path
    sweeps = list_sweeps(runs_dir)
    if ref == "latest":
        if not sweeps:
            raise SweepError(f"no sweeps in {sweeps_root(runs_dir)}")
        return sweeps[-1]
    matches = match_id(ref, sweeps)
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise SweepError(f"no sweep {ref!r} in {sweeps_root(runs_dir)}")
    raise SweepError(f"{ref!r} matches {len(matches)} sweeps: "
                     f"{', '.join(p.name for p in matches[:5])}; give more of the id")



def cell_run_dirs(sweep: Sweep) -> list[Path]:
    """The run directories of the sweep's newest attempts, in cell order (for
    ``sgdtop compare``/``plot`` over a sweep's runs)."""
    dirs = {p.name: p for p in list_run_dirs(sweep.runs_dir)}
    return [dirs[c.run_id] for c in sweep.cells if c.run_id in dirs]
