"""``summary.json`` beside the events: the adapter between the recorder and
:mod:`sgdtop.summary` (``docs/design.md``, "Run summary").

The recorder folds every record it writes to the file into a running summary
(:meth:`SummaryKeeper.update`) and saves it at each measurement and at ``run_end``
(:meth:`SummaryKeeper.save`), stating how much of ``events.jsonl`` it covers (bytes and
lines), so ``sgdtop runs`` reads the summary and folds only what came after.

The summary itself (``RunSummary.update``, ``save_summary``) belongs to
:mod:`sgdtop.summary`. Until that API is on main this adapter finds it missing and does
nothing; nothing else in the recorder knows how the summary is computed.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

from sgdtop.schema import Record


class SummaryKeeper:
    """A running :class:`sgdtop.summary.RunSummary` of the records written to one file."""

    def __init__(self) -> None:
        self._summary: Any = None
        self._save: Any = None
        self._broken = False
        try:
            from sgdtop import summary as summary_mod
        except ImportError:
            return
        cls = getattr(summary_mod, "RunSummary", None)
        save = getattr(summary_mod, "save_summary", None)
        if cls is None or save is None or not hasattr(cls, "update"):
            return  # the incremental summary API is not there (yet)
        with contextlib.suppress(Exception):
            self._summary = cls()
            self._save = save

    @property
    def active(self) -> bool:
        """Whether summaries are kept (the :mod:`sgdtop.summary` API exists)."""
        return self._summary is not None and not self._broken

    def update(self, record: Record) -> None:
        """Fold one record that the events file took."""
        if not self.active:
            return
        try:
            self._summary.update(record)
        except Exception as exc:  # a summary bug must never stop a run: drop it
            self._drop(exc)

    def save(self, run_dir: Path, events_bytes: int, lines: int) -> None:
        """Write ``summary.json`` (atomically, by :func:`sgdtop.summary.save_summary`)."""
        if not self.active:
            return
        try:
            self._save(run_dir, self._summary, events_bytes, lines)
        except OSError:
            pass  # a full disk: events.jsonl stays the source of truth
        except Exception as exc:
            self._drop(exc)

    def _drop(self, exc: Exception) -> None:
        self._broken = True
        print(f"sgdtop: warning: run summary disabled ({type(exc).__name__}: {exc})",
              file=sys.stderr)
