"""Follows a cell's growing ``events.jsonl``: what the newest lines say about its run.

Lines go through the schema's one lenient decoder; a line of a newer schema is not
dropped silently but reported once as a one-line message (see ``docs/design.md``, the
event records).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sgdtop.schema import BadLine, Eval, RunStart, Spectrum, decode_line, newer_schema_message


@dataclass(slots=True)
class Seen:
    """What the lines read by one :meth:`EventTail.read` said (None: not said).
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


class EventTail:
    """Reads the events appended to a growing events.jsonl since the last call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._buf = b""
        self._line_no = 0
        #: The first newer-schema line's one-line message, once one was read.
        self.newer: str | None = None

    def _lines(self) -> list[bytes]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except OSError:
            return []
        self._offset += len(chunk)
        self._buf += chunk
        *lines, self._buf = self._buf.split(b"\n")
        return lines

    def read(self) -> Seen:
        """Fold the lines appended since the last call."""
        seen = Seen()
        for raw in self._lines():
            self._line_no += 1
            if not raw.strip():
                continue
            match decode_line(raw, self._line_no):
                case BadLine(newer=True) as bad if self.newer is None:
                    self.newer = newer_schema_message(self.path, bad)
                case BadLine():
                    continue
                case rec:
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
