"""The files of a run directory ``runs/<id>/`` — part of the on-disk contract, like the
event records (``docs/design.md``, "Run directory"). Every writer and reader takes the
names from here. Standard library only.
"""

from __future__ import annotations

from typing import Final

#: The event stream, one JSON line per record (the source of truth).
EVENTS_FILE: Final[str] = "events.jsonl"
#: The resolved profile the run used (a JSON object).
PROFILE_FILE: Final[str] = "profile.json"
#: What ``sgdtop runs``/``show`` need, with the byte offset of the events it covers.
SUMMARY_FILE: Final[str] = "summary.json"
#: Held with an exclusive ``flock`` by the trainer for its whole life; holds its pid.
LOCK_FILE: Final[str] = "trainer.lock"
#: A detached trainer's own output (mode 0600).
TRAINER_LOG: Final[str] = "trainer.log"
