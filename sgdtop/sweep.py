"""Sweeps: a grid of runs over η, S, β and seeds, and the paper's Fig. 3 summary.

The library half of ``sgdtop sweep`` and ``sgdtop plot SWEEP``.

A **sweep** is the Cartesian product of axis values (``lr``, ``batch_size``, ``momentum``,
``seed``) applied to one profile with the same base overrides (``--set key=value``). Each
point of the grid is a **cell**; each cell is trained by one ordinary ``sgdtop run``
subprocess and saved as an ordinary run directory. On disk::

    <runs>/sweeps/<sweep id>/
        sweep.json        profile, base overrides, axes, cells (settings, run ids)
        runs/<run id>/    one normal run directory per attempt of a cell
        logs/<cell>.log   the cell's `sgdtop run --log` output, every attempt appended
        sweep.pid         the pid of the sweep process while it runs

so ``sgdtop runs --runs-dir <sweep dir>/runs`` lists the cells' runs. The sweep id is
``<profile>-<8 hex>``, a hash of the profile, the base overrides and the axes: the same
command twice names the same sweep, and the second one **resumes** it — a cell whose
newest run ended ``completed`` or ``diverged`` (finished: running it again would give the
same answer) is not run again; an ``interrupted``, ``failed`` or ``died`` one (and one
that never started) is run again in a fresh run directory, the old one kept and
``sweep.json`` pointing to the newest.

**Fig. 3 summary** (:func:`summarize_sweep`): for each completed cell the training-time
averages (see :mod:`sgdtop.summary`) of ρ(H) = max |λ| and of the mean |λ| of the top-10
eigenvalues, against 1/η (in 1/learning-rate units, i.e. dimensionless) and against the
batch size S (examples), with a least-squares line ``y = slope·x + intercept`` and its
coefficient of determination r² per quantity. When several axes vary, one line is fitted
per value of the other swept settings (seeds pooled): e.g. a 2×2 grid of η × S gives a
line against 1/η for each S and a line against S for each η.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Any, Final, Literal

import numpy as np
from rich.table import Table

from sgdtop import profile as profile_mod
from sgdtop.compare import format_rows, format_value
from sgdtop.events import Event, EventError, SchemaVersionError, decode
from sgdtop.store import (
    EVENTS_FILE,
    PROFILE_FILE,
    list_run_dirs,
    match_id,
    process_alive,
    read_run,
    run_info,
    runs_root,
)
from sgdtop.summary import RunEvents, Weighting, summarize

if TYPE_CHECKING:
    from matplotlib.axes import Axes

# ------------------------------------------------------------------------------ constants
#: The axes a sweep can vary, in grid order (the last varies fastest).
AXES: Final[tuple[str, ...]] = ("lr", "batch_size", "momentum", "seed")
#: The `sgdtop run` flag of each axis.
AXIS_FLAGS: Final[dict[str, str]] = {
    "lr": "--lr", "batch_size": "--batch-size", "momentum": "--momentum", "seed": "--seed",
}
#: Short symbols of the axes, for cell names, tables and legends.
AXIS_SYMBOLS: Final[dict[str, str]] = {"lr": "η", "batch_size": "S", "momentum": "β",
                                      "seed": "seed"}
_NAME_TAGS: Final[dict[str, str]] = {"lr": "lr", "batch_size": "b", "momentum": "m",
                                     "seed": "s"}
_INT_AXES: Final[frozenset[str]] = frozenset({"batch_size", "seed"})

SWEEPS_SUBDIR: Final[str] = "sweeps"
SWEEP_FILE: Final[str] = "sweep.json"
SWEEP_PID_FILE: Final[str] = "sweep.pid"
RUNS_SUBDIR: Final[str] = "runs"
LOGS_SUBDIR: Final[str] = "logs"
SWEEP_FORMAT: Final[int] = 1

#: Run statuses of a finished cell: not run again on resume.
FINISHED: Final[tuple[str, ...]] = ("completed", "diverged")
#: Status of a cell that has no run yet.
PENDING: Final[str] = "pending"
#: Seconds a stopped cell gets to write run_end before it is asked again (which kills
#: its trainer), and then before its `sgdtop run` process is killed.
STOP_GRACE_S: Final[float] = 30.0
KILL_GRACE_S: Final[float] = 10.0
#: Seconds between looks at the running cells.
POLL_S: Final[float] = 0.25


class SweepError(ValueError):
    """A sweep that cannot be planned, loaded or run; the message is one line."""


# ------------------------------------------------------------------------------ parsing
def _flag(axis: str) -> str:
    if axis not in AXES:
        raise SweepError(f"unknown sweep axis {axis!r}; axes: {', '.join(AXES)}")
    return "--seeds" if axis == "seed" else AXIS_FLAGS[axis]


def _number(text: str, axis: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SweepError(f"{_flag(axis)} {spec!r}: {text.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise SweepError(f"{_flag(axis)} {spec!r}: {text.strip()!r} is not a finite number")
    return value


def _check_value(axis: str, value: float, spec: str) -> float | int:
    flag = _flag(axis)
    if axis in _INT_AXES:
        if value != round(value):
            raise SweepError(f"{flag} {spec!r}: {value:g} is not an integer")
        value = round(value)
        if axis == "batch_size" and value < 1:
            raise SweepError(f"{flag} {spec!r}: batch sizes must be >= 1, got {value}")
        if axis == "seed" and value < 0:
            raise SweepError(f"{flag} {spec!r}: seeds must be >= 0, got {value}")
        return int(value)
    if axis == "lr" and value <= 0:
        raise SweepError(f"{flag} {spec!r}: learning rates must be > 0, got {value:g}")
    if axis == "momentum" and not 0 <= value < 1:
        raise SweepError(f"{flag} {spec!r}: momentum must be in [0, 1), got {value:g}")
    return float(value)


def parse_axis(spec: str, axis: str = "lr") -> list[float] | list[int]:
    """The values of one sweep axis from its command-line spec.

    - ``"LO:HI:N"``: N values log-spaced from LO to HI, both ends included (N=1: LO);
      LO and HI must be > 0. For the integer axes (``batch_size``) the values are rounded
      (``32:1024:6`` → 32, 64, …, 1024) and must stay distinct.
    - ``"A,B,C"``: exactly these values, in this order (a single ``"A"`` too).

    ``axis`` (one of :data:`AXES`) gives the type and the allowed range: ``lr`` > 0,
    ``batch_size`` a positive integer, ``momentum`` in [0, 1), ``seed`` an integer >= 0
    (lists only; ``--seeds N`` is :func:`seeds_axis`). Duplicates are refused. Raises
    :class:`SweepError` with a one-line message.
    """
    flag = _flag(axis)
    text = spec.strip()
    if not text:
        raise SweepError(f"{flag}: empty value; give LO:HI:N (log-spaced) or A,B,C")
    if ":" in text:
        parts = text.split(":")
        if axis == "seed":
            raise SweepError(f"{flag} {spec!r}: seeds take a count (--seeds N) or a list")
        if len(parts) != 3:
            raise SweepError(f"{flag} {spec!r}: a range is LO:HI:N (N log-spaced values, "
                             "ends included)")
        lo = _number(parts[0], axis, spec)
        hi = _number(parts[1], axis, spec)
        try:
            count = int(parts[2])
        except ValueError:
            raise SweepError(f"{flag} {spec!r}: the count {parts[2].strip()!r} is not an "
                             "integer") from None
        if count < 1:
            raise SweepError(f"{flag} {spec!r}: the count must be >= 1, got {count}")
        if lo <= 0 or hi <= 0:
            raise SweepError(f"{flag} {spec!r}: log-spaced ends must be > 0")
        raw = [lo] if count == 1 else [float(v) for v in np.geomspace(lo, hi, count)]
        if count > 1:
            raw[0], raw[-1] = lo, hi  # exact ends, not exp(log(x))
        if axis in _INT_AXES:
            raw = [float(round(v)) for v in raw]
    else:
        raw = [_number(p, axis, spec) for p in text.split(",")]
    values: list[Any] = [_check_value(axis, v, spec) for v in raw]
    if len(set(values)) < len(values):
        dup = next(v for v in values if values.count(v) > 1)
        raise SweepError(f"{flag} {spec!r}: the value {dup:g} appears more than once"
                         + (" after rounding" if ":" in text else ""))
    return values


def seeds_axis(n: int) -> list[int]:
    """Seeds ``0 .. n-1`` for ``--seeds N`` (N >= 1)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise SweepError(f"--seeds must be a positive integer, got {n!r}")
    return list(range(n))


# ------------------------------------------------------------------------------ the sweep
@dataclass(slots=True)
class Cell:
    """One point of the grid: its ``settings`` (the swept axes' values), its file-safe
    ``name`` (``c003-lr0.01-b16``), and its runs: ``run_id`` the newest attempt (None
    before the first), ``previous`` the older ones, oldest first."""

    index: int
    name: str
    settings: dict[str, float | int]
    run_id: str | None = None
    previous: list[str] = field(default_factory=list)

    def label(self) -> str:
        """``η=0.01 S=16``: the settings for humans."""
        return " ".join(f"{AXIS_SYMBOLS[k]}={format_value(v)}" for k, v in self.settings.items())

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "name": self.name, "settings": dict(self.settings),
                "run_id": self.run_id, "previous": list(self.previous)}


def _cell_name(index: int, settings: Mapping[str, float | int]) -> str:
    parts = [f"c{index:03d}"]
    for key, value in settings.items():
        parts.append(f"{_NAME_TAGS[key]}{value:g}" if isinstance(value, float)
                     else f"{_NAME_TAGS[key]}{value}")
    return "-".join(parts)


def plan_cells(axes: Mapping[str, Sequence[float | int]]) -> list[Cell]:
    """The grid's cells: the Cartesian product of the given axes in :data:`AXES` order
    (``lr`` slowest, ``seed`` fastest). Axes not given are not swept (the profile's value)."""
    keys = [k for k in AXES if k in axes]
    unknown = set(axes) - set(AXES)
    if unknown:
        raise SweepError(f"unknown sweep axis {sorted(unknown)[0]!r}; axes: {', '.join(AXES)}")
    if not keys:
        raise SweepError("a sweep needs at least one axis: --lr, --batch-size, --momentum "
                         "or --seeds")
    for k in keys:
        if not axes[k]:
            raise SweepError(f"{_flag(k)} has no values")
    cells = []
    for i, combo in enumerate(itertools.product(*(axes[k] for k in keys))):
        settings = dict(zip(keys, combo, strict=True))
        cells.append(Cell(index=i, name=_cell_name(i, settings), settings=settings))
    return cells


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
        return None if cell.run_id is None else self.runs_dir / cell.run_id

    def log_path(self, cell: Cell) -> Path:
        """``<sweep>/logs/<cell name>.log``."""
        return self.logs_dir / f"{cell.name}.log"

    def cell_status(self, cell: Cell) -> str:
        """The status of ``cell``'s newest run (``completed``, ``interrupted``,
        ``diverged``, ``failed``, ``running`` or ``died``, see
        :func:`sgdtop.store.run_info`), or :data:`PENDING` when it has none."""
        run_dir = self.run_dir(cell)
        if run_dir is None or not run_dir.is_dir():
            return PENDING
        return run_info(run_dir).status

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
    sid = sweep_id or sweep_id_for(profile, set_items, axes_l)
    if not sid or "/" in sid or os.sep in sid or sid.startswith(".") or ".." in sid:
        raise SweepError(f"{sid!r} is not a sweep id (a plain directory name)")
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
        cells = [Cell(index=int(c["index"]), name=str(c["name"]),
                      settings=dict(c["settings"]), run_id=c.get("run_id"),
                      previous=list(c.get("previous", [])))
                 for c in data["cells"]]
        return Sweep(path=path, sweep_id=str(data["sweep_id"]), profile=str(data["profile"]),
                     set_items=[str(s) for s in data["set"]],
                     axes={k: list(v) for k, v in data["axes"].items()}, cells=cells,
                     created=str(data.get("created", "")),
                     resolved=data.get("resolved_profile"))
    except (KeyError, TypeError, ValueError) as exc:
        raise SweepError(f"{path / SWEEP_FILE} is malformed: {exc!r}") from None


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


# ------------------------------------------------------------------------------ devices
def visible_gpus(env: Mapping[str, str] | None = None) -> list[str]:
    """The CUDA devices the cells may use, as CUDA_VISIBLE_DEVICES entries: the parent's
    ``CUDA_VISIBLE_DEVICES`` list when set, else one index per line of ``nvidia-smi -L``;
    empty without GPUs or without ``nvidia-smi`` (never an error, never imports torch)."""
    env = os.environ if env is None else env
    given = env.get("CUDA_VISIBLE_DEVICES")
    if given is not None:
        return [d.strip() for d in given.split(",") if d.strip() and d.strip() != "-1"]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True,
                             timeout=10, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return []
    if out.returncode != 0:
        return []
    n = sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))
    return [str(i) for i in range(n)]


def cell_cpu_threads(jobs: int, env: Mapping[str, str] | None = None,
                     cpus: int | None = None) -> str | None:
    """``OMP_NUM_THREADS`` for each of ``jobs`` parallel cells: the machine's CPUs shared
    out (at least 1), so that cells do not oversubscribe the cores — on a 2-core machine
    two ResNet20 cells with two threads each measured 12× slower than with one. None
    (leave it to torch) for one job, or when the user set ``OMP_NUM_THREADS`` already."""
    env = os.environ if env is None else env
    if jobs <= 1 or env.get("OMP_NUM_THREADS"):
        return None
    if cpus is None:
        try:
            cpus = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cpus = os.cpu_count() or 1
    return str(max(1, cpus // jobs))


def gpu_for_slot(slot: int, gpus: Sequence[str]) -> str | None:
    """The CUDA_VISIBLE_DEVICES value of parallel slot ``slot`` (0-based): round-robin
    over ``gpus`` when there are two or more, else None (leave the environment alone)."""
    if len(gpus) < 2:
        return None
    return gpus[slot % len(gpus)]


# ------------------------------------------------------------------------------ running
UpdateKind = Literal["skip", "start", "progress", "end"]


@dataclass(frozen=True, slots=True)
class CellUpdate:
    """What a sweep reports about one cell, to a progress callback.

    ``kind``: ``"skip"`` (finished before: not run again), ``"start"`` (its subprocess
    started), ``"progress"`` (a new measurement: a ``spectrum`` or ``eval`` event),
    ``"end"`` (its subprocess ended). ``status`` is the cell's status then: ``running``
    while it runs, else its run's status or :data:`PENDING`. Headline numbers are from the
    newest events (None before the first): ``spectral_norm`` ρ(H) = max |λ| of the last
    spectrum, ``test_acc`` the last test accuracy in [0, 1] (NaN for regression),
    ``test_loss`` the last test loss.
    """

    kind: UpdateKind
    index: int  #: the cell's index, 0-based
    n_cells: int  #: cells in the sweep
    cell: Cell
    status: str
    run_id: str | None = None
    step: int | None = None  #: optimizer steps taken
    epoch: int | None = None  #: the epoch of the newest event, 0-based
    epochs: int | None = None  #: epochs the run trains for
    spectral_norm: float | None = None
    test_acc: float | None = None
    test_loss: float | None = None  #: the last test loss
    seconds: float | None = None  #: since the cell started (end: its wall-clock time), s
    slot: int | None = None  #: the parallel slot running it
    device: str | None = None  #: its CUDA_VISIBLE_DEVICES, when assigned
    message: str = ""


UpdateCallback = Callable[[CellUpdate], None]


@dataclass(frozen=True, slots=True)
class SweepResult:
    """How a :func:`run_sweep` call ended: the final ``statuses`` of all cells (by
    index), how many cells it ran, and whether it was ``interrupted`` (stopped early)."""

    statuses: list[str]
    ran: int
    interrupted: bool

    @property
    def exit_code(self) -> int:
        """130 interrupted; 0 when every cell finished (completed or diverged); else 1."""
        if self.interrupted:
            return 130
        return 0 if all(s in FINISHED for s in self.statuses) else 1

    def counts(self) -> dict[str, int]:
        """Cells per status."""
        out: dict[str, int] = {}
        for s in self.statuses:
            out[s] = out.get(s, 0) + 1
        return out


def cell_command(sweep: Sweep, cell: Cell, python: str | None = None) -> list[str]:
    """The `sgdtop run` command line that trains ``cell`` (headless, into the sweep)."""
    cmd = [python or sys.executable, "-m", "sgdtop", "run", "--profile", sweep.profile]
    for key, value in cell.settings.items():
        cmd += [AXIS_FLAGS[key], repr(value)]
    cmd += ["--log", "--runs-dir", str(sweep.runs_dir)]
    for item in sweep.set_items:
        cmd += ["--set", item]
    return cmd


def _matches(run_dir: Path, settings: Mapping[str, float | int]) -> bool:
    """Whether the run in ``run_dir`` was trained with ``settings`` (its profile.json)."""
    try:
        prof = json.loads((run_dir / PROFILE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    for key, want in settings.items():
        got = prof.get(key)
        if isinstance(got, bool) or not isinstance(got, int | float):
            return False
        if not math.isclose(float(got), float(want), rel_tol=1e-9, abs_tol=0.0):
            return False
    return True


class _EventTail:
    """Reads the events appended to a growing events.jsonl since the last call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._buf = b""

    def read(self) -> list[Event]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except OSError:
            return []
        self._offset += len(chunk)
        self._buf += chunk
        *lines, self._buf = self._buf.split(b"\n")
        events = []
        for raw in lines:
            if raw.strip():
                with contextlib.suppress(EventError, SchemaVersionError):
                    events.append(decode(raw))
        return events


@dataclass(slots=True)
class _Active:
    """A cell being trained: its `sgdtop run` process and what was seen of its run."""

    cell: Cell
    slot: int
    device: str | None
    proc: subprocess.Popen[bytes]
    log: IO[bytes]
    started: float
    known: set[str]
    tail: _EventTail | None = None
    step: int | None = None
    epoch: int | None = None
    epochs: int | None = None
    spectral_norm: float | None = None
    test_acc: float | None = None
    test_loss: float | None = None
    signals_sent: int = 0
    last_signal: float = 0.0


def _number_or_none(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


class _Runner:
    """The process pool behind :func:`run_sweep` (one instance per call)."""

    def __init__(self, sweep: Sweep, jobs: int, on_update: UpdateCallback | None,
                 stop: threading.Event, gpus: Sequence[str], python: str | None,
                 poll_s: float, escalate: threading.Event | None = None) -> None:
        self.sweep = sweep
        self.jobs = jobs
        self.on_update = on_update
        self.stop = stop
        self.escalate_event = escalate
        self.gpus = list(gpus)
        self.python = python
        self.poll_s = poll_s
        self.active: dict[int, _Active] = {}
        self.ran = 0

    def emit(self, kind: UpdateKind, cell: Cell, status: str, act: _Active | None = None,
             message: str = "", seconds: float | None = None) -> None:
        if self.on_update is None:
            return
        n = len(self.sweep.cells)
        if act is None:
            self.on_update(CellUpdate(kind=kind, index=cell.index, n_cells=n, cell=cell,
                                      status=status, run_id=cell.run_id, message=message))
            return
        self.on_update(CellUpdate(
            kind=kind, index=cell.index, n_cells=n, cell=cell, status=status,
            run_id=cell.run_id, step=act.step, epoch=act.epoch, epochs=act.epochs,
            spectral_norm=act.spectral_norm, test_acc=act.test_acc, test_loss=act.test_loss,
            seconds=seconds if seconds is not None else time.monotonic() - act.started,
            slot=act.slot, device=act.device, message=message))

    def launch(self, cell: Cell, slot: int) -> None:
        sweep = self.sweep
        env = dict(os.environ)
        device = gpu_for_slot(slot, self.gpus)
        if device is not None:
            env["CUDA_VISIBLE_DEVICES"] = device
        threads = cell_cpu_threads(self.jobs, env)
        if threads is not None:
            env["OMP_NUM_THREADS"] = threads
        sweep.logs_dir.mkdir(parents=True, exist_ok=True)
        sweep.runs_dir.mkdir(parents=True, exist_ok=True)
        log = open(sweep.log_path(cell), "ab")  # noqa: SIM115 (closed when the cell ends)
        cmd = cell_command(sweep, cell, self.python)
        stamp = datetime.now(UTC).astimezone().isoformat(timespec="seconds")
        log.write(f"=== {stamp} sweep {sweep.sweep_id} cell {cell.name}: "
                  f"{' '.join(cmd)}\n".encode())
        log.flush()
        known = {p.name for p in sweep.runs_dir.iterdir()} if sweep.runs_dir.is_dir() else set()
        # A session of its own: a Ctrl+C at the terminal reaches only the sweep, which
        # forwards one SIGINT per stop to each cell.
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)
        act = _Active(cell=cell, slot=slot, device=device, proc=proc, log=log,
                      started=time.monotonic(), known=known)
        self.active[slot] = act
        self.ran += 1
        self.emit("start", cell, "running", act)

    def find_run(self, act: _Active) -> None:
        """Attach the cell to the run directory its process created, once it exists."""
        if act.tail is not None or not self.sweep.runs_dir.is_dir():
            return
        new = [p for p in self.sweep.runs_dir.iterdir()
               if p.name not in act.known and p.is_dir() and _matches(p, act.cell.settings)]
        if not new:
            return
        run_dir = max(new, key=lambda p: ((p / PROFILE_FILE).stat().st_mtime, p.name))
        cell = act.cell
        if cell.run_id is not None and cell.run_id != run_dir.name:
            cell.previous.append(cell.run_id)
        cell.run_id = run_dir.name
        self.sweep.save()
        act.tail = _EventTail(run_dir / EVENTS_FILE)

    def read_events(self, act: _Active, *, report: bool) -> None:
        if act.tail is None:
            return
        measured = False
        for ev in act.tail.read():
            if ev.step is not None:
                act.step = ev.step
            if ev.epoch is not None:
                act.epoch = ev.epoch
            if ev.kind == "run_start":
                epochs = ev.get("epochs")
                act.epochs = epochs if isinstance(epochs, int) else None
            elif ev.kind == "spectrum":
                act.spectral_norm = _number_or_none(ev.get("spectral_norm"))
                measured = True
            elif ev.kind == "eval":
                act.test_acc = _number_or_none(ev.get("test_acc"))
                act.test_loss = _number_or_none(ev.get("test_loss"))
                measured = True
        if measured and report:
            self.emit("progress", act.cell, "running", act)

    def finish(self, act: _Active) -> str:
        """The cell's process has exited: read its last events, report its status."""
        self.find_run(act)
        self.read_events(act, report=False)
        act.log.close()
        code = act.proc.returncode
        if act.cell.run_id is not None and act.tail is not None:
            status = run_info(self.sweep.runs_dir / act.cell.run_id).status
            if status == "running":  # its trainer outlived it (killed `sgdtop run`)
                status = "died"
        else:
            status = "interrupted" if code == 130 else "failed"
        message = "" if status in FINISHED else _last_error(self.sweep.log_path(act.cell))
        if act.tail is None:
            message = message or f"sgdtop run exited with code {code} before its run started"
        self.emit("end", act.cell, status, act, message=message)
        return status

    def poll(self) -> None:
        for slot, act in list(self.active.items()):
            self.find_run(act)
            self.read_events(act, report=True)
            if act.proc.poll() is not None:
                del self.active[slot]
                self.finish(act)

    def signal_all(self) -> None:
        """Ask every running cell to stop: one SIGINT each (a second one, later, makes its
        `sgdtop run` kill its trainer); SIGKILL when it still runs after that. Once the
        ``escalate`` event is set, the second SIGINT goes out at once."""
        if self.escalate_event is not None and self.escalate_event.is_set():
            self.escalate()
        now = time.monotonic()
        for act in self.active.values():
            if act.proc.poll() is not None:
                continue
            due = (act.signals_sent == 0
                   or (act.signals_sent == 1 and now - act.last_signal > STOP_GRACE_S))
            if due:
                with contextlib.suppress(ProcessLookupError):
                    act.proc.send_signal(signal.SIGINT)
                act.signals_sent += 1
                act.last_signal = now
            elif act.signals_sent >= 2 and now - act.last_signal > KILL_GRACE_S:
                with contextlib.suppress(ProcessLookupError):
                    act.proc.kill()

    def escalate(self) -> None:
        """A second stop request: send the second SIGINT now."""
        for act in self.active.values():
            if act.signals_sent == 1:
                act.last_signal = -math.inf

    def run(self, todo: list[Cell]) -> bool:
        """Run ``todo``; returns whether it was stopped (``stop`` set) before the end."""
        queue = list(todo)
        try:
            while queue or self.active:
                if self.stop.is_set():
                    break
                for slot in range(self.jobs):
                    if queue and slot not in self.active:
                        self.launch(queue.pop(0), slot)
                self.poll()
                if queue or self.active:
                    self.stop.wait(self.poll_s)
        finally:
            while self.active:  # stopped, or an exception (e.g. in a callback)
                self.signal_all()
                self.poll()
                if self.active:
                    time.sleep(min(self.poll_s, 0.1))
        return self.stop.is_set()


def _last_error(log_path: Path) -> str:
    """The most telling line of the cell's latest attempt in its log: the last line that
    mentions an error, else the last line."""
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    attempt = text.rsplit("\n=== ", 1)[-1].split("\n", 1)[-1] if "=== " in text else text
    lines = [ln.strip() for ln in attempt.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()]
    return (errors or lines or [""])[-1][:300]


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event, escalate: Callable[[], None]) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop`` (a second one calls ``escalate``), in the main thread
    only; the previous handlers are put back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            escalate()
        stop.set()

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _claim(sweep: Sweep) -> Path:
    """Write ``sweep.pid``; SweepError when another live process runs this sweep."""
    pid_file = sweep.path / SWEEP_PID_FILE
    try:
        other = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        other = None
    if other is not None and other != os.getpid() and process_alive(other):
        raise SweepError(f"sweep {sweep.sweep_id} is already running (pid {other})")
    pid_file.write_text(f"{os.getpid()}\n")
    return pid_file


def run_sweep(
    sweep: Sweep,
    *,
    jobs: int = 1,
    on_update: UpdateCallback | None = None,
    stop: threading.Event | None = None,
    handle_signals: bool = True,
    escalate: threading.Event | None = None,
    gpus: Sequence[str] | None = None,
    python: str | None = None,
    poll_s: float = POLL_S,
) -> SweepResult:
    """Train every cell of ``sweep`` that is not finished, ``jobs`` at a time.

    Each cell is one ``sgdtop run`` subprocess (:func:`cell_command`: stdin closed, its
    output appended to ``<sweep>/logs/<cell>.log``, its own session). With two or more
    CUDA devices (``gpus``; default :func:`visible_gpus`) parallel slot i gets
    ``CUDA_VISIBLE_DEVICES=gpus[i % n]``. Cells already finished (:data:`FINISHED`) are
    reported as ``"skip"`` and not run; a cell whose trainer still runs (another process)
    is left alone. ``sweep.json`` is rewritten as soon as a cell's run directory appears.

    Stopping: setting ``stop``, or (``handle_signals``, main thread) SIGINT/SIGTERM, stops
    launching cells and sends each running cell one SIGINT: it finishes its step and
    writes run_end ``interrupted``. A second signal (or :data:`STOP_GRACE_S` later) makes
    each cell kill its trainer; after :data:`KILL_GRACE_S` more the cell is killed.
    Setting ``escalate`` (after ``stop``) is that second signal, for a caller that handles
    the user's stop requests itself (``handle_signals=False``, e.g. the TUI's second ``q``).
    Returns when every started subprocess has exited.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise SweepError(f"--jobs must be a positive integer, got {jobs!r}")
    stop = stop or threading.Event()
    pid_file = _claim(sweep)
    runner = _Runner(sweep, jobs, on_update, stop,
                     visible_gpus() if gpus is None else gpus, python, poll_s, escalate)
    try:
        todo = []
        for cell in sweep.cells:
            status = sweep.cell_status(cell)
            if status in FINISHED:
                info = run_info(sweep.runs_dir / str(cell.run_id))
                if on_update is not None:
                    on_update(CellUpdate(
                        kind="skip", index=cell.index, n_cells=len(sweep.cells), cell=cell,
                        status=status, run_id=cell.run_id, step=info.steps,
                        spectral_norm=info.spectral_norm, test_acc=info.test_acc,
                        message="finished before: not run again"))
            elif status == "running":
                runner.emit("skip", cell, status,
                            message="its trainer is still running (another process?)")
            else:
                todo.append(cell)
        if handle_signals:
            with stop_on_signals(stop, runner.escalate):
                interrupted = runner.run(todo)
        else:
            interrupted = runner.run(todo)
        sweep.save()
    finally:
        with contextlib.suppress(OSError):
            pid_file.unlink()
    return SweepResult(statuses=[sweep.cell_status(c) for c in sweep.cells],
                       ran=runner.ran, interrupted=interrupted)


# ------------------------------------------------------------------------------ headless
class SweepLogPrinter:
    """A progress callback that prints plain lines (``--log``): one per cell start, end
    and skip, and a progress line per cell at most every ``progress_every_s`` seconds."""

    def __init__(self, stream: IO[str] | None = None, *,
                 progress_every_s: float = 10.0) -> None:
        self.stream = stream or sys.stderr
        self.progress_every_s = progress_every_s
        self._last: dict[int, float] = {}

    def __call__(self, u: CellUpdate) -> None:
        head = f"[{u.index + 1:>{len(str(u.n_cells))}}/{u.n_cells}] {u.cell.name}"
        nums = f"ρ(H) {format_value(u.spectral_norm)}"
        if u.test_acc is not None and math.isfinite(u.test_acc):
            nums += f"  test acc {_pct(u.test_acc)}"
        elif u.test_loss is not None:
            nums += f"  test loss {format_value(u.test_loss)}"
        if u.kind == "skip":
            line = f"{head} {u.status} (run {u.run_id}): {u.message}"
            if u.spectral_norm is not None:
                line += f"; {nums}"
        elif u.kind == "start":
            line = f"{head} started: {u.cell.label()}" + (
                f" on CUDA device {u.device}" if u.device is not None else "")
            self._last[u.index] = time.monotonic()
        elif u.kind == "progress":
            now = time.monotonic()
            if now - self._last.get(u.index, -math.inf) < self.progress_every_s:
                return
            self._last[u.index] = now
            epochs = f"/{u.epochs}" if u.epochs else ""
            line = (f"{head} epoch {'-' if u.epoch is None else u.epoch + 1}{epochs} "
                    f"step {u.step if u.step is not None else '-'}  {nums}")
        else:
            secs = f", {u.seconds:.0f}s" if u.seconds is not None else ""
            line = f"{head} {u.status} (run {u.run_id or '-'}{secs}): {nums}"
            if u.message:
                line += f"  [{u.message}]"
        self.stream.write(line + "\n")
        self.stream.flush()


# ------------------------------------------------------------------------------ Fig. 3
@dataclass(frozen=True, slots=True)
class LinearFit:
    """Least squares ``y ≈ slope·x + intercept`` over ``n`` points; ``r2`` = 1 − SS_res /
    SS_tot (1 for a perfect fit; NaN when y is constant but not fitted exactly)."""

    slope: float
    intercept: float
    r2: float
    n: int

    def predict(self, x: np.ndarray) -> np.ndarray:
        """``slope·x + intercept``."""
        return self.slope * np.asarray(x, dtype=float) + self.intercept


def fit_line(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> LinearFit:
    """Ordinary least-squares line through the finite ``(x, y)`` pairs (numpy only).

    Raises ``ValueError`` with fewer than two distinct finite x.
    """
    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=float)
    if xa.shape != ya.shape:
        raise ValueError(f"x and y differ in length ({xa.size} vs {ya.size})")
    ok = np.isfinite(xa) & np.isfinite(ya)
    xa, ya = xa[ok], ya[ok]
    if np.unique(xa).size < 2:
        raise ValueError("a line needs at least two distinct finite x values")
    xm, ym = xa.mean(), ya.mean()
    sxx = float(np.sum((xa - xm) ** 2))
    slope = float(np.sum((xa - xm) * (ya - ym)) / sxx)
    intercept = float(ym - slope * xm)
    ss_res = float(np.sum((ya - (slope * xa + intercept)) ** 2))
    ss_tot = float(np.sum((ya - ym) ** 2))
    if ss_tot > 0:
        r2 = 1.0 - ss_res / ss_tot
    else:
        r2 = 1.0 if ss_res <= 1e-12 * max(1.0, float(np.sum(ya**2))) else math.nan
    return LinearFit(slope=slope, intercept=intercept, r2=r2, n=int(xa.size))


@dataclass(frozen=True, slots=True)
class CellSummary:
    """One cell's Fig. 3 numbers: ``mean_spectral_norm`` = ρ(H) averaged over training,
    ``mean_top10_mean`` = the top-10 mean |λ| averaged over training (see
    :mod:`sgdtop.summary`), and headline numbers of its newest run. Settings are the
    run's (from run_start), else the cell's; None when unknown."""

    index: int
    name: str
    settings: dict[str, float | int]
    run_id: str | None
    status: str
    lr: float | None  #: η
    batch_size: int | None  #: S, examples
    momentum: float | None  #: β
    seed: int | None
    steps: int  #: optimizer steps taken
    n_spectra: int  #: spectrum measurements averaged
    mean_spectral_norm: float | None
    mean_top10_mean: float | None
    final_spectral_norm: float | None
    final_test_acc: float | None  #: in [0, 1]; NaN for regression
    final_test_loss: float | None

    @property
    def inv_lr(self) -> float | None:
        """1/η."""
        return None if not self.lr else 1.0 / self.lr


#: The Fig. 3 quantities: name → label.
QUANTITIES: Final[dict[str, str]] = {
    "spectral_norm": "ρ(H)",
    "top10_mean": "top-10 mean |λ|",
}
#: The Fig. 3 x axes: name → (the axis it comes from, label).
X_AXES: Final[dict[str, tuple[str, str]]] = {
    "inv_lr": ("lr", "1/η"),
    "batch_size": ("batch_size", "S"),
}


@dataclass(frozen=True, slots=True)
class SweepFit:
    """One fitted line of Fig. 3: ``quantity`` (a key of :data:`QUANTITIES`) against
    ``x_axis`` (a key of :data:`X_AXES`) over the completed cells that share ``group``
    (the other swept settings, seeds pooled; empty when only this axis varies). ``x``,
    ``y`` are the points; ``fit`` is None with fewer than two distinct x."""

    quantity: str
    x_axis: str
    group: dict[str, float | int]
    x: np.ndarray
    y: np.ndarray
    fit: LinearFit | None

    @property
    def group_label(self) -> str:
        """``S=16`` (the group's settings), or ``all`` when there is no group."""
        return " ".join(f"{AXIS_SYMBOLS[k]}={format_value(v)}"
                        for k, v in self.group.items()) or "all"


@dataclass(frozen=True, slots=True)
class SweepSummary:
    """The Fig. 3 summary of a sweep: per-cell numbers and the fitted lines."""

    sweep_id: str
    profile: str
    varying: list[str]  #: the axes with more than one value
    cells: list[CellSummary]
    fits: list[SweepFit]


def _cell_summary(sweep: Sweep, cell: Cell, weighting: Weighting) -> CellSummary:
    run_dir = sweep.run_dir(cell)
    settings = dict(cell.settings)
    size, seed0 = settings.get("batch_size"), settings.get("seed")
    empty = CellSummary(
        index=cell.index, name=cell.name, settings=settings, run_id=cell.run_id,
        status=PENDING, lr=_number_or_none(settings.get("lr")),
        batch_size=None if size is None else int(size),
        momentum=_number_or_none(settings.get("momentum")),
        seed=None if seed0 is None else int(seed0),
        steps=0, n_spectra=0, mean_spectral_norm=None, mean_top10_mean=None,
        final_spectral_norm=None, final_test_acc=None, final_test_loss=None)
    if run_dir is None or not run_dir.is_dir():
        return empty
    try:
        events = read_run(run_dir).events
    except (SchemaVersionError, OSError):
        return empty
    s = summarize(RunEvents.from_events(events, path=run_dir), weighting=weighting)
    seed = settings.get("seed")
    start = next((e for e in events if e.kind == "run_start"), None)
    if seed is None and start is not None:
        prof = start.get("profile")
        if isinstance(prof, dict) and isinstance(prof.get("seed"), int):
            seed = prof["seed"]
    return CellSummary(
        index=cell.index, name=cell.name, settings=settings, run_id=cell.run_id,
        status=run_info(run_dir).status,
        lr=s.lr if s.lr is not None else empty.lr,
        batch_size=s.batch_size if s.batch_size is not None else empty.batch_size,
        momentum=s.momentum if s.momentum is not None else empty.momentum,
        seed=seed if isinstance(seed, int) else None, steps=s.steps,
        n_spectra=s.n_spectra, mean_spectral_norm=s.mean_spectral_norm,
        mean_top10_mean=s.mean_top10_mean, final_spectral_norm=s.final_spectral_norm,
        final_test_acc=s.final_test_acc, final_test_loss=s.final_test_loss)


def _axis_value(c: CellSummary, axis: str) -> float | int | None:
    return {"lr": c.lr, "batch_size": c.batch_size, "momentum": c.momentum,
            "seed": c.seed}[axis]


def _fits(cells: Sequence[CellSummary], varying: Sequence[str]) -> list[SweepFit]:
    fits: list[SweepFit] = []
    for x_axis, (axis, _) in X_AXES.items():
        if axis not in varying:
            continue
        others = [k for k in varying if k not in (axis, "seed")]
        groups: dict[tuple[Any, ...], list[CellSummary]] = {}
        for c in cells:
            groups.setdefault(tuple(c.settings.get(k) for k in others), []).append(c)
        for key, members in groups.items():
            group = dict(zip(others, key, strict=True))
            for quantity in QUANTITIES:
                xs, ys = [], []
                for c in members:
                    xv = c.inv_lr if x_axis == "inv_lr" else c.batch_size
                    yv = c.mean_spectral_norm if quantity == "spectral_norm" \
                        else c.mean_top10_mean
                    if xv is not None and yv is not None and math.isfinite(yv):
                        xs.append(float(xv))
                        ys.append(float(yv))
                x = np.array(xs, dtype=float)
                y = np.array(ys, dtype=float)
                order = np.argsort(x, kind="stable")
                x, y = x[order], y[order]
                fit = fit_line(x, y) if np.unique(x).size >= 2 else None
                fits.append(SweepFit(quantity=quantity, x_axis=x_axis, group=group, x=x,
                                     y=y, fit=fit))
    return fits


def summarize_sweep(
    sweep: Sweep | str | Path,
    *,
    weighting: Weighting = "events",
    statuses: Sequence[str] = ("completed",),
) -> SweepSummary:
    """The Fig. 3 summary of ``sweep`` (a :class:`Sweep` or its directory): every cell's
    :class:`CellSummary`, and lines fitted over the cells whose status is in ``statuses``
    (by default only completed runs: an interrupted run's average covers part of
    training, a diverged run's is dominated by its blow-up)."""
    if not isinstance(sweep, Sweep):
        sweep = load_sweep(sweep)
    cells = [_cell_summary(sweep, c, weighting) for c in sweep.cells]
    fitted = [c for c in cells if c.status in statuses]
    return SweepSummary(sweep_id=sweep.sweep_id, profile=sweep.profile,
                        varying=sweep.varying, cells=cells,
                        fits=_fits(fitted, sweep.varying))


# ------------------------------------------------------------------------------ tables
def _pct(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "—" if x is None else "-"
    return f"{100 * x:.1f}%"


def cell_rows(summary: SweepSummary) -> list[list[str]]:
    """The per-cell table as text cells: a header row, then one row per cell (its swept
    settings, 1/η when η is swept, status, ⟨ρ(H)⟩, ⟨top-10⟩, final ρ(H), test acc — or
    test loss when no cell has an accuracy —, measurements, run)."""
    axes = [k for k in AXES if any(k in c.settings for c in summary.cells)]
    header = ["cell", *(AXIS_SYMBOLS[k] for k in axes)]
    if "lr" in axes:
        header.insert(header.index("η") + 1, "1/η")
    # Accuracy for classification; the test loss where no cell has one (regression).
    acc = any(c.final_test_acc is not None and math.isfinite(c.final_test_acc)
              for c in summary.cells)
    header += ["status", "⟨ρ(H)⟩", "⟨top-10⟩", "ρ(H) final", "test acc" if acc else "test loss",
               "spectra", "run"]
    rows = [header]
    for c in summary.cells:
        row = [c.name]
        for k in axes:
            row.append(format_value(_axis_value(c, k)))
            if k == "lr":
                row.append(format_value(c.inv_lr))
        row += [c.status, format_value(c.mean_spectral_norm),
                format_value(c.mean_top10_mean), format_value(c.final_spectral_norm),
                _pct(c.final_test_acc) if acc else format_value(c.final_test_loss),
                str(c.n_spectra), c.run_id or "—"]
        rows.append(row)
    return rows


def fit_rows(summary: SweepSummary) -> list[list[str]]:
    """The fitted lines as text cells: quantity, against, group, points, slope, intercept,
    r²; a line that could not be fitted shows dashes."""
    rows = [["quantity", "against", "group", "n", "slope", "intercept", "r²"]]
    for f in summary.fits:
        q = QUANTITIES[f.quantity]
        x = X_AXES[f.x_axis][1]
        if f.fit is None:
            rows.append([q, x, f.group_label, str(f.x.size), "—", "—", "—"])
        else:
            rows.append([q, x, f.group_label, str(f.fit.n), format_value(f.fit.slope),
                         format_value(f.fit.intercept), format_value(f.fit.r2, 3)])
    return rows


def render_sweep_text(summary: SweepSummary) -> str:
    """The whole summary as plain text (``--log`` or not a terminal)."""
    parts = [f"sweep {summary.sweep_id} ({summary.profile}): Fig. 3 summary, time averages "
             "over training", format_rows(cell_rows(summary))]
    parts.append(fits_title(summary))
    if summary.fits:
        parts.append(format_rows(fit_rows(summary)))
    return "\n\n".join(parts) + "\n"


def fits_title(summary: SweepSummary) -> str:
    """The line above the fitted lines, or why there are none."""
    if summary.fits:
        return "linear fits  y = slope·x + intercept  (completed cells)"
    if not any(X_AXES[x][0] in summary.varying for x in X_AXES):
        return "no linear fit: the sweep varies neither η nor S"
    return "no linear fit yet: no completed cells"


def _table(rows: list[list[str]], title: str) -> Table:
    table = Table(title=title, header_style="bold")
    for i, name in enumerate(rows[0]):
        table.add_column(name, justify="left" if i == 0 else "right",
                         style="dim" if i == 0 else "", overflow="fold")
    for row in rows[1:]:
        table.add_row(*row)
    return table


def sweep_tables(summary: SweepSummary) -> list[Table]:
    """The summary as Rich tables: the cells, then (when any) the fitted lines."""
    tables = [_table(cell_rows(summary), f"sweep {summary.sweep_id}: Fig. 3 summary "
                                         "(time averages over training)")]
    if summary.fits:
        tables.append(_table(fit_rows(summary), "linear fits y = slope·x + intercept"))
    return tables


# ------------------------------------------------------------------------------ plot
def _draw_panel(ax: Axes, fits: Sequence[SweepFit], x_axis: str) -> None:
    """Points and fitted lines of one Fig. 3 panel: ρ(H) solid, top-10 mean dotted, one
    color per group."""
    groups: list[str] = []
    for f in fits:
        if f.group_label not in groups:
            groups.append(f.group_label)
    allx = np.concatenate([f.x for f in fits]) if fits else np.array([])
    log_x = allx.size > 0 and bool(np.all(allx > 0)) and allx.max() / allx.min() > 50
    for f in fits:
        color = f"C{groups.index(f.group_label) % 10}"
        solid = f.quantity == "spectral_norm"
        ls = "-" if solid else ":"
        marker = "o" if solid else "s"
        name = "ρ(H)" if solid else "top-10 mean"
        label = name + ("" if f.group_label == "all" else f", {f.group_label}")
        if f.fit is not None:
            label += f": slope {format_value(f.fit.slope, 3)}, r² {format_value(f.fit.r2, 3)}"
        ax.plot(f.x, f.y, ls="none", marker=marker, color=color, ms=4,
                mfc=color if solid else "white")
        if f.fit is not None and f.x.size:
            lo, hi = float(f.x.min()), float(f.x.max())
            xs = np.geomspace(lo, hi, 200) if log_x else np.linspace(lo, hi, 200)
            ax.plot(xs, f.fit.predict(xs), ls=ls, color=color, lw=1.6 if solid else 2.0,
                    label=label)
        else:
            ax.plot(f.x, f.y, ls=ls, color=color, label=label)
    if log_x:  # a line over decades of x: log-log shows every point (a line stays a line
        ax.set_xscale("log")  # for large x, where the slope dominates the intercept)
        ally = np.concatenate([f.y for f in fits])
        if ally.size and bool(np.all(ally > 0)):
            ax.set_yscale("log")
    ax.set_xlabel({"inv_lr": r"$1/\eta$", "batch_size": "batch size $S$"}[x_axis])
    ax.set_ylabel(r"time average over training")
    # Below the axes: "best" put it over a point of a 5-cell sweep.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=7, frameon=False)


def plot_sweep(
    sweep: Sweep | str | Path,
    out: str | Path,
    *,
    weighting: Weighting = "events",
    dpi: int = 200,
) -> Path:
    """Draw the paper's Fig. 3 for ``sweep`` and save it to ``out`` (.png, .svg or .pdf).

    Left: the training-time averages of ρ(H) (solid) and of the top-10 mean |λ| (dotted)
    of each completed cell against 1/η, with the fitted lines; right: the same against S
    when S varies; one color per value of the other swept settings. Axes are linear, or
    log-log when x spans more than 50× (the fitted line is then drawn as the curve it
    is). The legend gives each line's slope and r². Raises ``ValueError`` for an
    unknown suffix, :class:`sgdtop.plot.PlotDataError` when nothing can be drawn,
    :class:`sgdtop.plot.PlotUnavailableError` without matplotlib. Returns ``out``.
    """
    from sgdtop.plot import FORMATS, PlotDataError, _metadata, _require_matplotlib, _style

    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"cannot write {out.name!r}: the file name must end in "
                         f"{', '.join(FORMATS)}")
    summary = summarize_sweep(sweep, weighting=weighting)
    panels = [x for x, (axis, _) in X_AXES.items() if axis in summary.varying]
    if not panels:
        raise PlotDataError(f"sweep {summary.sweep_id} varies neither η nor S: "
                            "Fig. 3 has no x axis")
    if not any(f.x.size for f in summary.fits):
        raise PlotDataError(f"sweep {summary.sweep_id} has no completed cell with a "
                            "spectrum measurement yet")
    _require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with _style():
        fig = Figure(layout="constrained")
        FigureCanvasAgg(fig)
        fig.set_size_inches(3.8 * len(panels) + 0.6, 3.5)
        axes = fig.subplots(1, len(panels), squeeze=False).ravel()
        for ax, x_axis in zip(axes, panels, strict=True):
            _draw_panel(ax, [f for f in summary.fits if f.x_axis == x_axis], x_axis)
            ax.set_title({"inv_lr": "against the inverse learning rate 1/η",
                          "batch_size": "against the batch size S"}[x_axis])
        fig.suptitle(f"sweep {summary.sweep_id}: time-averaged spectrum (Fig. 3)")
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, format=suffix[1:], dpi=dpi, metadata=_metadata(suffix))
    return out


def cell_run_dirs(sweep: Sweep) -> list[Path]:
    """The run directories of the sweep's newest attempts, in cell order (for
    ``sgdtop compare``/``plot`` over a sweep's runs)."""
    dirs = {p.name: p for p in list_run_dirs(sweep.runs_dir)}
    return [dirs[c.run_id] for c in sweep.cells if c.run_id in dirs]
