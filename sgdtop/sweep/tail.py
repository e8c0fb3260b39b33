"""Follows a cell's growing ``events.jsonl``: what the newest lines say about its run.

Lines go through the schema's one lenient decoder; a line of a newer schema is not
dropped silently but reported once as a one-line message (see ``docs/design.md``, the
event records).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sgdtop.feed import EventTail
from sgdtop.schema import BadLine, Eval, RunStart, Spectrum, newer_schema_message


@dataclass(slots=True)
class Seen:
    """What the lines read by one :meth:`CellTail.read` said (None: not said).
    ``spectral_norm`` ρ(H) of the newest spectrum; ``test_acc`` (in [0, 1], NaN for
    regression) and ``test_loss`` of the newest eval (``evaluated``: there was one);
    ``measured``: a spectrum or eval arrived."""

    step: int | None = None
    epoch: int | None = None
    epochs: int | None = None
    spectral_norm: float | None = None
    test_acc: float | None = None
    test_loss: float | None = None
    evaluated: bool = False
    measured: bool = False


class CellTail:
    """What a cell's growing events.jsonl says, read through the pipeline's follower
    (:class:`sgdtop.feed.EventTail`: the file kept open, one line decoder)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tail = EventTail(path)
        #: The first newer-schema line's one-line message, once one was read.
        self.newer: str | None = None

    def read(self) -> Seen:
        """Fold the records appended since the last call."""
        seen = Seen()
        for rec in self._tail.read():
            match rec:
                case BadLine():  # the follower returns only newer-schema BadLines
                    if self.newer is None:
                        self.newer = newer_schema_message(self.path, rec)
                    continue
            if rec.step is not None:
                seen.step = rec.step
            if rec.epoch is not None:
                seen.epoch = rec.epoch
            match rec:
                case RunStart(epochs=epochs):
                    seen.epochs = epochs
                case Spectrum(spectral_norm=rho):
                    seen.spectral_norm = rho
                    seen.measured = True
                case Eval(test_acc=acc, test_loss=loss):
                    seen.test_acc, seen.test_loss = acc, loss
                    seen.evaluated = seen.measured = True
        return seen

    def close(self) -> None:
        self._tail.close()
