"""The event feed: what every sink (TUI, headless log) reads, live or followed.

A live trainer (:mod:`sgdtop.launch`) and a followed run directory (:mod:`sgdtop.store`)
both satisfy :class:`EventFeed`, so a sink has one code path for both. Replay does not
need a feed: it reads the whole file up front (:func:`sgdtop.store.read_run`).

Standard library only (the TUI imports it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

from sgdtop.events import Event


@runtime_checkable
class EventFeed(Protocol):
    """A blocking stream of events from one run.

    - iterating yields events as they arrive and ends when the stream ends (the trainer
      exited and its pipe is drained, or — when following a file — ``run_end`` was read);
    - :meth:`stop` asks the trainer to stop cleanly (SIGINT: it finishes the current step
      and writes ``run_end`` with status ``interrupted``); it returns at once, is
      idempotent, and is a no-op where there is no trainer to stop (a follower stops
      following instead);
    - :meth:`close` makes sure nothing is left running (waits a few seconds for the
      trainer after a stop, then kills it); safe to call twice;
    - :attr:`ended_reason` is ``None`` while running and when the stream ended with a
      ``run_end`` event, else one line saying how it ended without one
      (e.g. ``"trainer exited with code -9 before run_end"``).
    """

    @property
    def run_dir(self) -> Path | None: ...

    @property
    def ended_reason(self) -> str | None: ...

    def __iter__(self) -> Iterator[Event]: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...
