"""The replay's play head over a recorded list of events: time scaled by a speed,
stepping one measurement back or forward, seeking to either end.

Plain Python; the run app folds ``events[:position]`` into a
:class:`~sgdtop.tui.state.run.RunState` (see :class:`~sgdtop.tui.state.run.ReplayFold`).
See docs/design.md (the TUI).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Final

from sgdtop.schema import Record, Spectrum


class ReplayCursor:
    """The play head of a replay over recorded events.

    ``position`` is how many events should be applied (0..len): the caller applies
    ``events[applied:position]``, or — when the position moved behind what it applied —
    rebuilds its state from ``events[:position]``. The clock runs in the events' own time
    ``t``: :meth:`advance` moves it by wall seconds × ``speed``. Stepping
    (:meth:`next_measurement`, :meth:`previous_measurement`, :meth:`to_start`,
    :meth:`to_end`) moves the position and the clock together.
    """

    MIN_SPEED: Final[float] = 1 / 64
    MAX_SPEED: Final[float] = 65536.0

    def __init__(self, events: Sequence[Record], *, speed: float = 1.0) -> None:
        self.events = events
        self.position = 0
        self.t0 = events[0].t if events else 0.0
        self.clock = self.t0
        self.speed = min(max(speed, self.MIN_SPEED), self.MAX_SPEED)
        self.playing = True
        self.measurements: list[int] = [
            i for i, rec in enumerate(events) if isinstance(rec, Spectrum)]

    @property
    def at_end(self) -> bool:
        """True when every event has been applied."""
        return self.position >= len(self.events)

    @property
    def duration(self) -> float:
        """Event time from the first to the last event (s)."""
        return (self.events[-1].t - self.t0) if self.events else 0.0

    @property
    def measurement_index(self) -> int:
        """How many spectrum events are at or before the play head (0..len(measurements))."""
        return bisect.bisect_left(self.measurements, self.position)

    def advance(self, wall_seconds: float) -> int:
        """Move the clock by ``wall_seconds`` × speed (if playing) and the position past
        every event now due; returns the position. Pauses at the end."""
        if self.playing and not self.at_end:
            self.clock += max(0.0, wall_seconds) * self.speed
            self._catch_up()
        return self.position

    def _catch_up(self) -> None:
        n = len(self.events)
        pos = self.position
        while pos < n and self.events[pos].t <= self.clock:
            pos += 1
        self.position = pos
        if self.at_end:
            self.playing = False

    def _jump(self, position: int) -> int:
        position = max(0, min(position, len(self.events)))
        self.position = position
        if position == 0:
            self.clock = self.t0
        else:
            self.clock = max(self.events[position - 1].t, self.t0)
        return position

    def next_measurement(self) -> int:
        """Jump just past the next spectrum event (or to the end); pauses."""
        self.playing = False
        for idx in self.measurements:
            if idx >= self.position:
                return self._jump(idx + 1)
        return self._jump(len(self.events))

    def previous_measurement(self) -> int:
        """Jump just past the spectrum event before the current one (or to the start of
        the run when there is none); pauses."""
        self.playing = False
        shown = self.measurement_index  # measurements applied
        if shown >= 2:
            return self._jump(self.measurements[shown - 2] + 1)
        if self.measurements:
            return self._jump(self.measurements[0])
        return self._jump(0)

    def to_start(self) -> int:
        """Back to the start: the events at the first event's time (run_start) applied;
        the play state is kept."""
        self._jump(0)
        playing = self.playing
        self._catch_up()
        self.playing = playing and not self.at_end
        return self.position

    def to_end(self) -> int:
        """Everything applied; pauses."""
        self.playing = False
        return self._jump(len(self.events))

    def faster(self) -> float:
        """Double the speed (bounded); returns it."""
        self.speed = min(self.speed * 2.0, self.MAX_SPEED)
        return self.speed

    def slower(self) -> float:
        """Halve the speed (bounded); returns it."""
        self.speed = max(self.speed / 2.0, self.MIN_SPEED)
        return self.speed

    def toggle(self) -> bool:
        """Play/pause; playing at the end restarts from the start. Returns playing."""
        if self.playing:
            self.playing = False
        else:
            if self.at_end:
                self.to_start()
            self.playing = True
        return self.playing

