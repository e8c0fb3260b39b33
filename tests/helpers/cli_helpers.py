"""Helpers for the end-to-end tests: run `sgdtop` as a subprocess, as a user does."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sgdtop.store import process_alive

SGDTOP = [sys.executable, "-m", "sgdtop"]
ENV = {**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}


def sgdtop(*args: str, runs: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SGDTOP, *args, "--runs-dir", str(runs)], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL, env=ENV)


def only_run(runs: Path) -> Path:
    dirs = [d for d in runs.iterdir() if d.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def wait_for(pred: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie."""
    return process_alive(pid)
