"""The run app's messages: from the feed's reader thread to the app."""

from __future__ import annotations

from textual.message import Message


class EventsArrived(Message):
    """The reader thread queued events (at most one such message is pending)."""


class FeedEnded(Message):
    """The feed's iteration ended: ``reason`` is its ended_reason, or the error that broke
    it (``broken``)."""

    def __init__(self, reason: str | None, *, broken: bool = False) -> None:
        super().__init__()
        self.reason = reason
        self.broken = broken
