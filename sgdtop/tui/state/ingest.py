"""Folding records into a :class:`~sgdtop.tui.state.run.RunState` within a time budget,
so a flood never blocks the UI: :class:`Backlog` (a live or followed run: records
received, not folded yet) and :class:`ReplayFold` (a replay: the records due at the
cursor; a step back rebuilds the state). Plain Python; see docs/design.md (the TUI).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from typing import Final

from sgdtop.schema import Record
from sgdtop.tui.state.replay import ReplayCursor
from sgdtop.tui.state.run import RunState

#: Records folded between two looks at the clock (folding within a time budget).
FOLD_BATCH: Final[int] = 256
#: The lost-run message of a replay whose recording ends without run_end.
NO_RUN_END: Final[str] = "the run has no run_end (still running, or its trainer died)"


class Backlog:
    """Records received (a live or followed run) and not folded yet, oldest first."""

    __slots__ = ("events",)

    def __init__(self) -> None:
        self.events: deque[Record] = deque()

    def __len__(self) -> int:
        return len(self.events)

    def extend(self, events: Iterable[Record]) -> None:
        """Queue ``events`` after those already waiting."""
        self.events.extend(events)

    def fold_into(self, state: RunState, budget: float | None) -> None:
        """Fold queued events into ``state``, for at most ``budget`` seconds (None: all
        of them); the clock is read every :data:`FOLD_BATCH` events."""
        backlog, apply = self.events, state.apply
        deadline = None if budget is None else time.perf_counter() + budget
        while backlog:
            for _ in range(min(FOLD_BATCH, len(backlog))):
                apply(backlog.popleft())
            if deadline is not None and time.perf_counter() > deadline:
                break


class ReplayFold:
    """A replay's state: the recording's events up to its cursor's position folded into
    :attr:`state`. A position behind what was folded (a step back) rebuilds the state
    from the start; a recording that ends without run_end ends the stream as
    :data:`~sgdtop.tui.state.views.LOST` once everything is folded."""

    __slots__ = ("applied", "cursor", "state")

    def __init__(self, cursor: ReplayCursor) -> None:
        self.cursor = cursor
        self.state = RunState()
        self.applied = 0  #: events of the recording folded into :attr:`state`

    @property
    def caught_up(self) -> bool:
        """True when every event due at the cursor has been folded."""
        return self.applied == self.cursor.position

    def catch_up(self, budget: float | None) -> bool:
        """Fold the events due, for at most ``budget`` seconds (None: all of them).
        Returns True when the state was rebuilt (a new :attr:`state` object)."""
        cursor = self.cursor
        target = cursor.position
        rebuilt = target < self.applied
        if rebuilt:
            self.state = RunState()
            self.applied = 0
        events, apply = cursor.events, self.state.apply
        deadline = None if budget is None else time.perf_counter() + budget
        i = self.applied
        while i < target:
            stop = min(target, i + FOLD_BATCH)
            for j in range(i, stop):
                apply(events[j])
            i = stop
            if deadline is not None and time.perf_counter() > deadline:
                break
        self.applied = i
        if i == len(events) and events and not self.state.ended:
            self.state.end_stream(NO_RUN_END)
        return rebuilt
