"""The reader thread of a live or followed run: it iterates the feed, queues the events
in an inbox and wakes the app with at most one
:class:`~sgdtop.tui.run.messages.EventsArrived` until the app drains the inbox.

A plain daemon thread rather than a Textual thread worker: a worker runs in the event
loop's default executor, which ``asyncio.run`` joins at exit, so a feed blocked in a read
would hang the exit (:func:`~sgdtop.tui.run.app.run_live` closes the feed after the app
returns). See docs/design.md (the TUI).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from textual.message import Message

from sgdtop.feed import EventFeed
from sgdtop.schema import Record
from sgdtop.tui.run.messages import EventsArrived, FeedEnded


class FeedReader:
    """Reads ``feed`` in a thread (:meth:`start`); ``post`` delivers its messages to the
    app (posting never blocks, and a message posted while the app closes is dropped)."""

    def __init__(self, feed: EventFeed, post: Callable[[Message], object]) -> None:
        self.feed = feed
        self._post = post
        self._lock = threading.Lock()
        self._inbox: list[Record] = []
        self._wake_pending = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread."""
        self._thread = threading.Thread(target=self._run, name="sgdtop-feed", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> bool:
        """Whether events wait in the inbox."""
        return bool(self._inbox)

    def drain(self, *, reset_wake: bool) -> list[Record]:
        """The events queued so far (the inbox is emptied); with ``reset_wake`` the next
        event wakes the app again."""
        with self._lock:
            events, self._inbox = self._inbox, []
            if reset_wake:
                self._wake_pending = False
        return events

    def _run(self) -> None:
        """Thread: queue the feed's events; wake the app at most once per drain."""
        post = self._post
        try:
            try:
                for rec in self.feed:
                    with self._lock:
                        self._inbox.append(rec)
                        wake = not self._wake_pending
                        self._wake_pending = True
                    if wake:
                        post(EventsArrived())
                reason = self.feed.ended_reason
            except Exception as exc:  # a broken pipe, an undecodable stream, ...
                post(FeedEnded(f"event stream broken: {exc}", broken=True))
                return
            post(FeedEnded(reason))
        except RuntimeError:
            pass  # the app (and its loop) closed while we were posting
