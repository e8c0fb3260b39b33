"""The clock that stamps every record of a run: ``t``, ``step``, ``epoch``.

- ``t``: seconds since the run started (``run_start`` is at t ≈ 0), the trainer's monotonic
  clock — every record of a run, the trainer's captured stdout/stderr lines included, is
  stamped by this one clock (``docs/design.md``, "Events");
- ``step``: optimizer steps taken so far (0 before the first);
- ``epoch``: the 0-based epoch being trained.

Standard library only.
"""

from __future__ import annotations

import time
from typing import TypedDict


class Header(TypedDict):
    """The header fields of a record, as keyword arguments of its class."""

    t: float
    step: int | None
    epoch: int | None


class RunClock:
    """Seconds since :attr:`t0` (``time.monotonic``), plus the step and epoch counters."""

    def __init__(self, t0: float | None = None) -> None:
        self.t0 = time.monotonic() if t0 is None else t0
        self.step = 0
        self.epoch = 0

    def restart(self) -> None:
        """Make now t = 0 (at ``run_start``)."""
        self.t0 = time.monotonic()

    def seconds(self) -> float:
        """Seconds since t = 0."""
        return time.monotonic() - self.t0

    def header(self) -> Header:
        """``t``, ``step``, ``epoch`` for a record made now."""
        return {"t": time.monotonic() - self.t0, "step": self.step, "epoch": self.epoch}
