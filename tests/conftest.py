"""Test-wide settings: one intra-op thread for torch, here and in every subprocess.

The CI machine has 2 cores shared with the trainer subprocesses the tests start; torch's
OpenMP threads then oversubscribe the cores and a tiny HVP takes 100× longer.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import torch

torch.set_num_threads(1)
