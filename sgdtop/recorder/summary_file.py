"""``summary.json`` beside the events, kept by the recorder (``docs/design.md``, "Run
summary").

The recorder folds every record the events file took into a running
:class:`sgdtop.summary.RunSummary` (:meth:`SummaryKeeper.update`) and saves it at each
measurement and at ``run_end`` (:meth:`SummaryKeeper.save`), stating how much of
``events.jsonl`` it covers (bytes and lines), so ``sgdtop runs`` reads the summary and
folds only what came after. How the summary is computed belongs to :mod:`sgdtop.summary`
(standard library only).
"""

from __future__ import annotations

import sys
from pathlib import Path

from sgdtop.schema import Record
from sgdtop.summary import RunSummary, save_summary


class SummaryKeeper:
    """A running :class:`~sgdtop.summary.RunSummary` of the records written to one file.
    A failure of the summary itself never stops a run: it is reported once and the
    summary dropped (``events.jsonl`` stays the source of truth)."""

    def __init__(self) -> None:
        self._summary: RunSummary | None = RunSummary()

    @property
    def active(self) -> bool:
        """Whether the summary is still kept (not dropped after a failure)."""
        return self._summary is not None

    def update(self, record: Record) -> None:
        """Fold one record that the events file took."""
        if self._summary is None:
            return
        try:
            self._summary.update(record)
        except Exception as exc:  # a summary bug must never stop a run: drop it
            self._drop(exc)

    def save(self, run_dir: Path, events_bytes: int, lines: int) -> None:
        """Write ``summary.json`` (atomically, by :func:`sgdtop.summary.save_summary`)."""
        if self._summary is None:
            return
        try:
            save_summary(run_dir, self._summary, events_bytes, lines)
        except OSError:
            pass  # a full disk: events.jsonl stays the source of truth
        except Exception as exc:
            self._drop(exc)

    def _drop(self, exc: Exception) -> None:
        self._summary = None
        print(f"sgdtop: warning: run summary disabled ({type(exc).__name__}: {exc})",
              file=sys.stderr)
