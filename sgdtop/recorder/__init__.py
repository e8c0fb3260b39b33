"""The recorder: one measured run's lifecycle, written to a run directory.

- :class:`RunRecorder` (:mod:`~sgdtop.recorder.lifecycle`): ``start`` → ``step`` /
  ``measure`` / ``eval`` / ``log`` → ``end``; used by the built-in trainer, by
  :class:`sgdtop.Monitor` and by any later integration;
- :mod:`~sgdtop.recorder.rundir`: run ids, run directory creation, file names;
- :mod:`~sgdtop.recorder.liveness`: ``hold_lock`` / ``live_pid`` (the trainer's lock);
- :mod:`~sgdtop.recorder.writer`: :class:`EventWriter` (file + pipe, failures contained);
- :mod:`~sgdtop.recorder.clock`: :class:`RunClock` (``t``, ``step``, ``epoch``);
- :mod:`~sgdtop.recorder.records`: measurement results → records;
- :mod:`~sgdtop.recorder.summary_file`: ``summary.json`` beside the events.

See ``docs/design.md``, "Run lifecycle". Importing this package does not import torch.
"""

from sgdtop.recorder.clock import RunClock
from sgdtop.recorder.lifecycle import (
    MAX_MESSAGE,
    RunDescription,
    RunRecorder,
    StopRequested,
    Subject,
)
from sgdtop.recorder.liveness import LockHandle, LockHeldError, hold_lock, live_pid
from sgdtop.recorder.rundir import (
    RunDirError,
    check_writable,
    create_run_dir,
    new_run_id,
)
from sgdtop.recorder.writer import EventWriter, WriteError
from sgdtop.schema.rundir import (
    EVENTS_FILE,
    LOCK_FILE,
    PROFILE_FILE,
    SUMMARY_FILE,
    TRAINER_LOG,
)

__all__ = [
    "EVENTS_FILE", "LOCK_FILE", "MAX_MESSAGE", "PROFILE_FILE", "SUMMARY_FILE", "TRAINER_LOG",
    "EventWriter", "LockHandle", "LockHeldError", "RunClock", "RunDescription", "RunDirError",
    "RunRecorder", "StopRequested", "Subject", "WriteError", "check_writable",
    "create_run_dir", "hold_lock", "live_pid", "new_run_id",
]
