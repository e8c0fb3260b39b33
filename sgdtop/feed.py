"""The event pipeline: feeds, the one line decoder, the one drain loop, and how a stream
ended (see ``docs/design.md``, "Event pipeline").

Three :class:`EventFeed`\\ s produce records, all through the schema's one line decoder:

- the live trainer's pipe (:class:`sgdtop.launch.TrainerProcess`);
- a growing ``events.jsonl`` (:class:`FileFeed`, ``sgdtop watch``), built on the
  non-blocking :class:`EventTail` (also what a sweep uses to watch its cells);
- a saved ``events.jsonl`` played back at a speed (:class:`ReplayFeed`).

:func:`drain` is the one loop that hands a feed's records to the sinks (the headless log,
``--json``) and returns the stream's :class:`EndReason`. Lines the decoder cannot read are
skipped by every feed the same way: each feed keeps them in ``bad_lines`` and
:func:`skipped_lines_warning` words them for the user (how many, and where); a line written
by a newer schema ends the feed with :attr:`EndKind.NEWER_SCHEMA` (one clear line naming
the file and line, :func:`end_message`).

Standard library only (the TUI imports it).
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final, Protocol, runtime_checkable

from sgdtop.schema import (
    BadLine,
    Record,
    RunEnd,
    decode_line,
    newer_schema_message,
    skipped_lines_message,
)
from sgdtop.schema.rundir import EVENTS_FILE

#: Longest wait between two replayed records, s (a run paused for an hour replays on).
MAX_REPLAY_GAP_S: Final[float] = 5.0


class EndKind(enum.Enum):
    """Why an event stream ended."""

    RUN_END = "run_end"  #: the run's own ``run_end`` record was read
    EXITED = "exited"  #: the trainer process exited (code in ``EndReason.code``) without one
    STALE = "stale"  #: followed file: no live trainer and the file stopped growing
    NO_RUN_END = "no_run_end"  #: replayed file: it ends without ``run_end``
    STOPPED = "stopped"  #: the user stopped following (``watch``: Ctrl+C)
    CLOSED_STDOUT = "closed_stdout"  #: our stdout was closed (``... --json | head``)
    NEWER_SCHEMA = "newer_schema"  #: a line written by a newer schema version


@dataclass(frozen=True, slots=True)
class EndReason:
    """How a stream ended: ``kind``; the trainer's exit ``code`` (EXITED, when known);
    the ``run_end`` record (RUN_END); the unreadable line (NEWER_SCHEMA) and the
    ``source`` it came from (a path or "the trainer's pipe")."""

    kind: EndKind
    code: int | None = None
    run_end: RunEnd | None = None
    bad: BadLine | None = None
    source: str = ""

    @property
    def status(self) -> str | None:
        """The ``run_end`` status when one was read, else None."""
        return self.run_end.status if self.run_end is not None else None

    def describe(self) -> str:
        """One line for the user about a stream that ended without ``run_end``."""
        match self.kind:
            case EndKind.RUN_END:
                return f"run {self.status}"
            case EndKind.EXITED:
                return f"trainer exited with code {self.code} before run_end"
            case EndKind.STALE:
                return "the trainer is gone and the run has no run_end"
            case EndKind.NO_RUN_END:
                return "the run has no run_end (still running, or its trainer died)"
            case EndKind.STOPPED:
                return "stopped following"
            case EndKind.CLOSED_STDOUT:
                return "standard output was closed"
            case EndKind.NEWER_SCHEMA:
                assert self.bad is not None
                return newer_schema_message(Path(self.source), self.bad)


@runtime_checkable
class EventFeed(Protocol):
    """A blocking stream of records from one run.

    - iterating yields records as they arrive and ends when the stream ends; :attr:`end`
      then says why (None while running);
    - ``bad_lines``: the lines skipped so far (:class:`sgdtop.schema.BadLine`), with
      ``source`` naming where they were read;
    - :meth:`stop` asks the trainer to stop cleanly (SIGINT: it finishes the current step
      and writes ``run_end`` ``interrupted``); it returns at once, is idempotent, and where
      there is no trainer to stop (watch, replay) the feed stops instead;
    - :meth:`close` makes sure nothing is left running; safe to call twice;
    - :attr:`ended_reason` (for the TUI): None while running and after ``run_end``, else
      :meth:`EndReason.describe`.
    """

    @property
    def bad_lines(self) -> list[BadLine]: ...

    @property
    def source(self) -> str: ...

    @property
    def run_dir(self) -> Path | None: ...

    @property
    def end(self) -> EndReason | None: ...

    @property
    def ended_reason(self) -> str | None: ...

    def __iter__(self) -> Iterator[Record]: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...


def ended_reason(end: EndReason | None) -> str | None:
    """The TUI's one-line end reason: None while running or after ``run_end``."""
    if end is None or end.kind is EndKind.RUN_END:
        return None
    return end.describe()


# --- the decoder's line framing ---------------------------------------------------------------
class LineSplitter:
    """Frames bytes into numbered complete lines and decodes each (``decode_line``).

    A partial last line waits for its newline; blank lines are counted, not decoded. Bad
    lines are kept in ``bad_lines``; a newer-schema line is returned like any other
    ``BadLine`` (``newer`` True) for the feed to end on.
    """

    def __init__(self) -> None:
        self._buf = b""
        self.line_no = 0  #: complete lines framed so far
        self.bad_lines: list[BadLine] = []

    def feed(self, chunk: bytes) -> list[Record | BadLine]:
        """The records (and newer-schema BadLines) of the complete lines in ``chunk``."""
        if not chunk:
            return []
        self._buf += chunk
        *lines, self._buf = self._buf.split(b"\n")
        out: list[Record | BadLine] = []
        for raw in lines:
            self.line_no += 1
            if not raw.strip():
                continue
            rec = decode_line(raw, self.line_no)
            if isinstance(rec, BadLine):
                self.bad_lines.append(rec)
                if not rec.newer:
                    continue
            out.append(rec)
        return out

    @property
    def pending(self) -> bool:
        """Whether a partial (unterminated) line is buffered."""
        return bool(self._buf.strip())


class EventTail:
    """Non-blocking reader of a growing ``events.jsonl`` (the public follower).

    ``read()`` returns the records of the complete lines appended since the last call
    (nothing while the file does not exist yet). The file is opened once it exists and
    kept open. ``bad_lines`` lists every line skipped so far, ``line_no`` the lines read;
    a newer-schema line is returned as its :class:`BadLine` (``newer`` True): stop there.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[bytes] | None = None
        self._split = LineSplitter()
        self.offset = 0  #: bytes read so far

    @property
    def pending(self) -> bool:
        """Whether an unterminated last line is buffered (a write under way, or cut)."""
        return self._split.pending

    @property
    def bad_lines(self) -> list[BadLine]:
        return self._split.bad_lines

    @property
    def line_no(self) -> int:
        return self._split.line_no

    def read(self) -> list[Record | BadLine]:
        if self._fh is None:
            try:
                self._fh = open(self.path, "rb")  # noqa: SIM115 - kept open across reads
            except OSError:
                return []
        try:
            chunk = self._fh.read()
        except OSError:
            return []
        self.offset += len(chunk or b"")
        return self._split.feed(chunk or b"")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class _StoppableFeed:
    """What the file feeds share: the run directory, how the stream ended, and a stop
    that ends the iteration at its next check (nothing to close: no process)."""

    _run_dir: Path | None
    _end: EndReason | None
    _stop: threading.Event

    @property
    def run_dir(self) -> Path | None:
        return self._run_dir

    @property
    def end(self) -> EndReason | None:
        return self._end

    @property
    def ended_reason(self) -> str | None:
        return ended_reason(self._end)

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self._stop.set()


class FileFeed(_StoppableFeed):
    """Follows a growing ``events.jsonl`` (``sgdtop watch``): every record already
    written, then new ones as they are appended; ends at ``run_end``, at a newer-schema
    line, on :meth:`stop`, or once no trainer is live (``live()`` False) and the file has
    not grown for ``stale_s`` seconds. Polls every ``poll_s`` seconds."""

    def __init__(self, run_dir: Path, *, live: Callable[[], bool],
                 poll_s: float = 0.2, stale_s: float = 5.0) -> None:
        self._run_dir = run_dir
        self._tail = EventTail(run_dir / EVENTS_FILE)
        self._live = live
        self._poll_s = poll_s
        self._stale_s = stale_s
        self._stop = threading.Event()
        self._end: EndReason | None = None

    @property
    def source(self) -> str:
        return str(self._tail.path)

    @property
    def bad_lines(self) -> list[BadLine]:
        return self._tail.bad_lines


    def __iter__(self) -> Iterator[Record]:
        idle_since = time.monotonic()
        offset = -1
        try:
            while not self._stop.is_set():
                got = self._tail.read()
                if self._tail.offset != offset:
                    offset = self._tail.offset
                    idle_since = time.monotonic()
                for rec in got:
                    if isinstance(rec, BadLine):
                        self._end = EndReason(EndKind.NEWER_SCHEMA, bad=rec, source=self.source)
                        return
                    yield rec
                    if isinstance(rec, RunEnd):
                        self._end = EndReason(EndKind.RUN_END, run_end=rec, source=self.source)
                        return
                if got:
                    continue
                if time.monotonic() - idle_since > self._stale_s and not self._live():
                    self._end = EndReason(EndKind.STALE, source=self.source)
                    return
                self._stop.wait(self._poll_s)
            self._end = EndReason(EndKind.STOPPED, source=self.source)
        finally:
            self._tail.close()


def replay_delay(dt: float, speed: float) -> float:
    """Seconds to wait before a record ``dt`` trainer-seconds after the previous one, at
    ``speed`` × real time (at most :data:`MAX_REPLAY_GAP_S`; 0 for dt ≤ 0)."""
    if dt <= 0 or speed <= 0:
        return 0.0
    return min(dt / speed, MAX_REPLAY_GAP_S)


def iter_file(path: Path, bad_lines: list[BadLine]) -> Iterator[Record | BadLine]:
    """The records of a saved ``events.jsonl``, streamed (memory does not grow with the
    file): complete lines only (an unterminated last line is a write cut short, not an
    error); bad lines are appended to ``bad_lines`` and skipped, except a newer-schema
    line, which is yielded (stop there)."""
    split = LineSplitter()
    split.bad_lines = bad_lines
    try:
        fh = open(path, "rb")  # noqa: SIM115
    except OSError:
        return
    with fh:
        while chunk := fh.read(1 << 20):
            yield from split.feed(chunk)


class ReplayFeed(_StoppableFeed):
    """A saved run's records played back: all at once (``speed`` None) or paced at
    ``speed`` × real time (:func:`replay_delay`). Ends with RUN_END at the last
    ``run_end`` record, NO_RUN_END, NEWER_SCHEMA at a newer-schema line, or STOPPED
    after :meth:`stop`. :meth:`from_file` streams the file."""

    def __init__(self, records: Iterable[Record | BadLine], *, source: str = "",
                 bad_lines: list[BadLine] | None = None, run_dir: Path | None = None,
                 speed: float | None = None,
                 sleep: Callable[[float], object] | None = None) -> None:
        self._records = records
        self._source = source
        self.bad_lines = bad_lines if bad_lines is not None else []
        self._run_dir = run_dir
        self._speed = speed
        self._stop = threading.Event()
        self._sleep = sleep
        self._end: EndReason | None = None

    @classmethod
    def from_file(cls, path: Path, *, speed: float | None = None,
                  run_dir: Path | None = None) -> ReplayFeed:
        """Replay ``path`` (an events.jsonl) as it is read."""
        bad: list[BadLine] = []
        return cls(iter_file(path, bad), source=str(path), bad_lines=bad, run_dir=run_dir,
                   speed=speed)

    @property
    def source(self) -> str:
        return self._source


    def _wait(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self._sleep is not None:
            self._sleep(seconds)
        else:
            self._stop.wait(seconds)

    def __iter__(self) -> Iterator[Record]:
        last_end: RunEnd | None = None
        prev: float | None = None
        for rec in self._records:
            if self._stop.is_set():
                self._end = EndReason(EndKind.STOPPED, source=self._source)
                return
            if isinstance(rec, BadLine):
                self._end = EndReason(EndKind.NEWER_SCHEMA, bad=rec, source=self._source)
                return
            if self._speed is not None and prev is not None:
                self._wait(replay_delay(rec.t - prev, self._speed))
            prev = rec.t
            if isinstance(rec, RunEnd):
                last_end = rec
            yield rec
        self._end = (EndReason(EndKind.RUN_END, run_end=last_end, source=self._source)
                     if last_end is not None else
                     EndReason(EndKind.NO_RUN_END, source=self._source))


# --- the one drain loop -----------------------------------------------------------------------
def drain(feed: EventFeed, handle: Callable[[Record], object], *,
          on_closed_stdout: Callable[[], object] | None = None) -> EndReason:
    """Hand every record of ``feed`` to ``handle`` (the sinks) until the stream ends;
    return why it ended.

    A :class:`BrokenPipeError` from ``handle`` (our stdout was closed, e.g. ``| head``) is
    an ordinary end: the feed is stopped (``on_closed_stdout``, default ``feed.stop``:
    the trainer stops cleanly), the rest of it is read without output, and the reason is
    CLOSED_STDOUT. The feed is always closed.
    """
    closed = False
    try:
        for rec in feed:
            if closed:
                continue
            try:
                handle(rec)
            except BrokenPipeError:
                closed = True
                (on_closed_stdout or feed.stop)()
    finally:
        feed.close()
    end = feed.end or EndReason(EndKind.STOPPED, source=feed.source)
    if closed:
        return EndReason(EndKind.CLOSED_STDOUT, code=end.code, run_end=end.run_end,
                         source=end.source)
    return end


def skipped_lines_warning(source: str, bad_lines: Iterable[BadLine], *,
                          total: int | None = None) -> str | None:
    """``sgdtop: warning: <source>: skipped 3 unreadable lines (4, 7, 9): <reason>`` —
    the schema's one wording (:func:`sgdtop.schema.skipped_lines_message`) for the lines
    of one file that were skipped (newer-schema lines excluded: those end the stream with
    their own message); ``total`` when ``bad_lines`` are only the first of more (a run
    summary keeps a few); None when none were skipped."""
    bad = [b for b in bad_lines if not b.newer]
    if not bad:
        return None
    n = max(total or 0, len(bad))
    # the message names the first few lines and counts all: pad to the exact count
    return "sgdtop: warning: " + skipped_lines_message(source, bad + [bad[-1]] * (n - len(bad)))
