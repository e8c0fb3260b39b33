"""The run view: a live (``sgdtop run``), followed (``sgdtop watch``) or replayed
(``sgdtop replay``) run on one screen — :mod:`.app` (the app and its entry points),
:mod:`.sources`, :mod:`.reader` (the feed's thread), :mod:`.messages`, :mod:`.widgets`.
"""

from sgdtop.tui.run.app import SgdtopApp, run_live, run_replay, run_watch
from sgdtop.tui.run.sources import LiveSource, ReplaySource

__all__ = ["LiveSource", "ReplaySource", "SgdtopApp", "run_live", "run_replay", "run_watch"]
