"""Test-wide settings: one intra-op thread for torch, here and in every subprocess.

The CI machine has 2 cores shared with the trainer subprocesses the tests start; torch's
OpenMP threads then oversubscribe the cores and a tiny HVP takes 100× longer. The
environment variables reach torch whenever a test imports it (and every subprocess): this
file imports no torch, so the layers that need none (``contract``, ``reading``, ``tui``,
``cli``, ``sweep``) are tested without it (``tests/contract/test_torch_free.py``).

Layout, by layer (``docs/design.md``, "Layers"): ``contract`` (schema, format), ``spectrum``
(the math, dead neurons), ``task`` (models, data, profiles, custom models), ``run``
(recorder, Monitor, measured runs), ``reading`` (store, summary, feeds), ``cli`` (commands
end to end, compare, plot, export), ``sweep``, ``tui``; shared fixtures in ``helpers``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
