"""The TUI's state: plain Python (no Textual, no Rich, no torch), tested without a
terminal.

- :mod:`.run`: :class:`RunState`, the fold of a run's records into display-ready values;
- :mod:`.ingest`: folding queued (live) or due (replay) records within a time budget;
- :mod:`.buffers`: the bounded series (:class:`Ring`, :class:`Decimated`);
- :mod:`.views`: the immutable snapshots the widgets draw;
- :mod:`.replay`: :class:`ReplayCursor`, the replay's play head (seeking);
- :mod:`.sweep`: the sweep view's board; :mod:`.compare`: the compare view's metrics and
  run labels.

The run view's names are re-exported here. See docs/design.md (the TUI).
"""

from sgdtop.tui.state.buffers import Decimated, Ring
from sgdtop.tui.state.ingest import Backlog, ReplayFold
from sgdtop.tui.state.replay import ReplayCursor
from sgdtop.tui.state.run import RunState, fold
from sgdtop.tui.state.views import ENDED_STATUSES, LOST, RUNNING, STOPPING, WAITING

__all__ = [
    "ENDED_STATUSES",
    "LOST",
    "RUNNING",
    "STOPPING",
    "WAITING",
    "Backlog",
    "Decimated",
    "ReplayCursor",
    "ReplayFold",
    "Ring",
    "RunState",
    "fold",
]
