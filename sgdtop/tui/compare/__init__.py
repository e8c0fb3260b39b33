"""The compare view (``sgdtop compare`` on a terminal): :mod:`.app` and :mod:`.widgets`."""

from sgdtop.tui.compare.app import CompareApp, run_compare

__all__ = ["CompareApp", "run_compare"]
