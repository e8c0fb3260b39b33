"""The sweep app's messages: from the thread that runs the sweep to the app."""

from __future__ import annotations

from textual.message import Message

from sgdtop.sweep import CellUpdate, SweepResult, SweepSummary


class CellChanged(Message):
    """The sweep thread reported ``update`` (one per :class:`~sgdtop.sweep.CellUpdate`)."""

    def __init__(self, update: CellUpdate) -> None:
        super().__init__()
        self.update = update


class SweepEnded(Message):
    """:func:`~sgdtop.sweep.run_sweep` returned (``result``, and the Fig. 3 ``summary``
    when it could be computed) or raised ``error``."""

    def __init__(self, result: SweepResult | None, summary: SweepSummary | None,
                 error: BaseException | None) -> None:
        super().__init__()
        self.result = result
        self.summary = summary
        self.error = error
