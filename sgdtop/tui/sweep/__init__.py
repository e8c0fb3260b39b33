"""The sweep view (``sgdtop sweep`` on a terminal): :mod:`.app`, :mod:`.messages`,
:mod:`.widgets`."""

from sgdtop.tui.sweep.app import SweepApp, run_sweep_live

__all__ = ["SweepApp", "run_sweep_live"]
