"""What the run app shows: a live or followed run (a feed) or a recorded one (events)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sgdtop.feed import EventFeed
from sgdtop.schema import Record


@dataclass(frozen=True, slots=True)
class LiveSource:
    """A run being trained (``stoppable``: ``q`` asks the trainer to stop) or followed
    (``stoppable=False``: ``q`` only quits). ``quit_when_ended``, when it returns True,
    makes the app quit by itself once the feed has ended (e.g. after a SIGTERM that
    stopped the trainer: nobody may be there to press q)."""

    feed: EventFeed
    stoppable: bool = True
    quit_when_ended: Callable[[], bool] | None = None


@dataclass(frozen=True, slots=True)
class ReplaySource:
    """A recorded run: its events (in file order), its directory (for screenshots), the
    replay speed (event seconds per wall second), ``instant`` to open at the end, and
    ``autoplay`` to start playing (else paused at the start)."""

    events: Sequence[Record]
    run_dir: Path | None = None
    speed: float = 1.0
    instant: bool = False
    autoplay: bool = True


Source = LiveSource | ReplaySource
