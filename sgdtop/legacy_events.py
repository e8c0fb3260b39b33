"""Transitional: the old untyped :class:`sgdtop.events.Event` as a typed record.

For consumers that already read :mod:`sgdtop.schema` records (sweep, export, plot) while
their inputs (``store.read_run``, ``summary.RunEvents``) still carry old events. Records
pass through unchanged, so once every producer yields records this is the identity, and
it is deleted together with ``sgdtop/events.py`` (see ``docs/design.md``, the event
records).
"""

from __future__ import annotations

from collections.abc import Iterable

from sgdtop.events import Event
from sgdtop.schema import BY_KIND, Record, RecordBase, WireError


def as_record(ev: Event | Record) -> Record | None:
    """``ev`` as its typed record (a record as it is); None when an old event does not
    fit its record (a field of the wrong type, an unknown kind)."""
    if isinstance(ev, RecordBase):
        return ev
    cls = BY_KIND.get(ev.kind)
    if cls is None:
        return None
    try:
        return cls.from_wire(ev.to_dict())  # type: ignore[return-value]
    except WireError:
        return None


def as_records(events: Iterable[Event | Record]) -> list[Record]:
    """The records of ``events`` (see :func:`as_record`; those that do not fit left out)."""
    return [rec for ev in events if (rec := as_record(ev)) is not None]
