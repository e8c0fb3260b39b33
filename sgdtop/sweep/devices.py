"""Where a sweep's cells run: CUDA devices and CPU threads per parallel slot.

Nothing here imports torch; see ``docs/design.md`` (sweeps).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence


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

