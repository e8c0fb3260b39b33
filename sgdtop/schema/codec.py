"""Bytes ↔ records: the one line codec every reader uses (pipe, growing file, saved file).

:func:`decode_line` is the lenient boundary: it turns one line into a record or a
:class:`BadLine` and raises nothing, whatever the bytes (bad UTF-8, bad JSON, deep
nesting, huge numbers, wrong field types, an unknown kind, a newer schema version).
A newer schema version is a :class:`BadLine` with ``newer=True``; readers show it with
:func:`newer_schema_message` (one line naming the file and line) instead of skipping it
silently. A last line without its newline is a write cut short (a killed trainer):
:func:`read_events` reports it as ``truncated_tail``, never as an error.

Standard library only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from sgdtop.schema.records import BY_KIND, KINDS, SCHEMA_VERSION, Record
from sgdtop.schema.wire import WireError, dumps, parse_json

#: Longest reason kept in a BadLine (a reason quotes at most a short piece of the line).
_MAX_REASON: Final[int] = 200


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line that is not a readable event: 1-based ``line_no`` (0 when unknown), a
    one-line ``reason``, and ``newer`` when it was written by a newer schema version
    (then ``version`` is that version)."""

    line_no: int
    reason: str
    newer: bool = False
    version: int | None = None


@dataclass(slots=True)
class ReadResult:
    """Records read from a file, the lines skipped, and whether the last line was cut."""

    records: list[Record] = field(default_factory=list)
    bad_lines: list[BadLine] = field(default_factory=list)
    truncated_tail: bool = False

    @property
    def newer(self) -> BadLine | None:
        """The first line written by a newer schema version, if any."""
        return next((b for b in self.bad_lines if b.newer), None)


def encode(record: Record) -> str:
    """One JSON line, newline-terminated, non-finite floats tagged."""
    return dumps(record.to_wire()) + "\n"


def decode_line(line: str | bytes, line_no: int = 0) -> Record | BadLine:
    """Decode one line into its record, or a :class:`BadLine` saying why not. Never raises
    (anything unexpected is a BadLine too: a reader must survive any file)."""
    try:
        return _decode(line)
    except _Newer as newer:
        return BadLine(line_no, str(newer), newer=True, version=newer.version)
    except WireError as exc:
        return BadLine(line_no, str(exc).splitlines()[0][:_MAX_REASON] if str(exc) else
                       "unreadable")
    except Exception as exc:  # pragma: no cover - the fuzz test finds none; kept as a wall
        return BadLine(line_no, f"unreadable ({type(exc).__name__})")


class _Newer(WireError):
    def __init__(self, version: int) -> None:
        super().__init__(f"event schema version {version} is newer than this sgdtop reads "
                         f"({SCHEMA_VERSION}); upgrade sgdtop")
        self.version = version


def _decode(line: str | bytes) -> Record:
    obj = parse_json(line)
    if not isinstance(obj, dict):
        raise WireError("not a JSON object")
    v = obj.get("v")
    if v != SCHEMA_VERSION or isinstance(v, bool):
        if isinstance(v, int) and not isinstance(v, bool) and v > SCHEMA_VERSION:
            raise _Newer(v)
        raise WireError(f"unknown event schema version {v!r:.20} (expected {SCHEMA_VERSION})")
    kind = obj.get("kind")
    cls = BY_KIND.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise WireError(f"unknown event kind {kind!r:.40} (known: {', '.join(KINDS)})")
    return cls.from_wire(obj)  # type: ignore[return-value]


def iter_lines(lines: Iterable[str | bytes], first_line_no: int = 1,
               ) -> Iterator[Record | BadLine]:
    """Decode numbered lines; blank lines are skipped."""
    for line_no, line in enumerate(lines, start=first_line_no):
        if not line.strip():
            continue
        yield decode_line(line, line_no)


def read_events(path: str | Path) -> ReadResult:
    """Read a whole events file (see the module docstring for the cut last line)."""
    data = Path(path).read_bytes()
    out = ReadResult(truncated_tail=bool(data) and not data.endswith(b"\n"))
    lines = data.split(b"\n")
    lines = lines[:-1]  # after the last "\n" (empty), or the cut last line
    for item in iter_lines(lines):
        if isinstance(item, BadLine):
            out.bad_lines.append(item)
        else:
            out.records.append(item)
    return out


def newer_schema_message(path: str | Path, bad: BadLine) -> str:
    """One line for a newer-schema line: ``<path> line <n>: written by a newer sgdtop
    (event schema <v>; this one reads <SCHEMA_VERSION>): upgrade sgdtop``."""
    return (f"{path} line {bad.line_no}: written by a newer sgdtop (event schema "
            f"{bad.version}; this one reads {SCHEMA_VERSION}): upgrade sgdtop")


def skipped_lines_message(path: str | Path, bad: list[BadLine], shown: int = 3) -> str:
    """One line naming how many lines of ``path`` were skipped and where (the first
    ``shown`` line numbers and the first reason)."""
    where = ", ".join(str(b.line_no) for b in bad[:shown])
    more = f" and {len(bad) - shown} more" if len(bad) > shown else ""
    noun = "line" if len(bad) == 1 else "lines"
    return f"{path}: skipped {len(bad)} unreadable {noun} ({where}{more}): {bad[0].reason}"
