"""Creating a run directory: its name, its files, and whether runs can be written at all.

A run directory ``<runs>/<run id>/`` holds (``docs/design.md``, "Run directory"):

- ``events.jsonl``: the event records, one flushed line each (the source of truth);
- ``profile.json``: the resolved settings the run used;
- ``trainer.lock``: the trainer's liveness lock (:mod:`sgdtop.recorder.liveness`);
- ``summary.json``: a small summary of the events, rewritten atomically at each
  measurement and at the end (:mod:`sgdtop.recorder.summary_file`);
- ``trainer.log``: a detached trainer's raw output (only when started detached).

Standard library only.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from sgdtop.schema.rundir import PROFILE_FILE, TRAINER_LOG


class RunDirError(OSError):
    """The run directory cannot be created (exists, read-only, not a directory, ...);
    ``str()`` is one line naming the directory."""


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


def create_run_dir(root: Path, run_id: str, profile: Mapping[str, object]) -> Path:
    """Create ``root/run_id`` (and ``root`` if needed) with ``profile.json``.

    Raises:
        RunDirError: it already exists, or ``root`` cannot be created or written; the
            message names the directory and the reason.
    """
    run_dir = root / run_id
    try:
        root.mkdir(parents=True, exist_ok=True)
        run_dir.mkdir(exist_ok=False)
    except FileExistsError:
        raise RunDirError(f"run directory {run_dir} already exists") from None
    except OSError as exc:
        raise RunDirError(f"cannot create the run directory in {root}: "
                          f"{exc.strerror or exc}") from None
    try:
        (run_dir / PROFILE_FILE).write_text(json.dumps(dict(profile), indent=2) + "\n",
                                            encoding="utf-8")
    except OSError as exc:
        raise RunDirError(f"cannot write {run_dir / PROFILE_FILE}: "
                          f"{exc.strerror or exc}") from None
    return run_dir


def open_private_log(run_dir: Path) -> int:
    """Create ``run_dir/trainer.log`` for a detached trainer's raw output and return its
    descriptor: ``O_CREAT|O_EXCL|O_NOFOLLOW``, mode 0600 (no planted symlink or file is
    ever followed or reused)."""
    flags = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
             | getattr(os, "O_CLOEXEC", 0))
    return os.open(run_dir / TRAINER_LOG, flags, 0o600)
