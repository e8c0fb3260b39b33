"""The run summary kept beside the events: ``<run_dir>/summary.json`` (``docs/design.md``,
"Run directory").

:class:`RunSummary` is what ``sgdtop runs`` and ``show`` print, folded record by record
(:meth:`RunSummary.update`): the trainer folds each record it writes and saves the
summary (:func:`save_summary`) at each measurement and at the end, together with how many
bytes and lines of ``events.jsonl`` it covers. :func:`load_summary` folds only the lines
after those, so listing a directory of long runs reads a few bytes per run; the events
file stays the source of truth (a summary that is missing, unreadable or claims more
than the file holds is ignored, and the whole file is folded, streaming).

The per-run statistics and series behind ``compare``, ``plot`` and ``export`` are in
:mod:`sgdtop.stats` (importable from here too, for older code). Standard library only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from sgdtop.format import number_or_none
from sgdtop.schema import BadLine, Eval, Record, RunEnd, RunStart, Spectrum, decode_line
from sgdtop.schema.rundir import EVENTS_FILE, SUMMARY_FILE
from sgdtop.schema.wire import WireError, dumps, parse_json

#: The version of summary.json's layout (a :class:`RunSummary` and how much of the events
#: file it covers; ``docs/design.md``, "Run directory").
SUMMARY_VERSION: Final[int] = 1
#: Eigenvalues of the last spectrum kept in a summary (``sgdtop show`` prints ten).
SUMMARY_EIGENVALUES: Final[int] = 10
#: Skipped lines remembered by number and reason (the count is always exact).
SUMMARY_BAD_LINES: Final[int] = 5


_num = number_or_none  #: a JSON number (not bool) as a float, else None


def _int(x: object) -> int | None:
    return x if isinstance(x, int) and not isinstance(x, bool) else None


def _str(x: object) -> str | None:
    return x if isinstance(x, str) else None


@dataclass(slots=True)
class RunSummary:
    """What ``sgdtop runs`` and ``show`` print about one run, folded record by record
    (:meth:`update`), so it can be kept beside the events (:func:`save_summary`) and
    brought up to date from the events file's tail (:func:`load_summary`).

    Settings come from ``run_start`` (None until it is read); ``status``/``end_*`` from
    the last ``run_end`` (None while there is none); ``steps`` is the largest step seen
    (or run_end's total); ``last_*`` describe the last ``spectrum`` (eigenvalues: its
    first :data:`SUMMARY_EIGENVALUES`, ``last_k`` how many it had); ``test_acc`` is the
    last eval's test accuracy in [0, 1] (NaN for regression). ``skipped`` counts the lines
    that could not be read (``bad_lines``: the first few, as ``(line, reason)``);
    ``newer`` the first line written by a newer schema, if any (``(line, version)``;
    :meth:`newer_line` gives it as a BadLine).
    """

    run_id: str | None = None
    model: str | None = None
    num_params: int | None = None
    dataset: str | None = None
    device: str | None = None
    lr: float | None = None  #: learning rate η at the start
    batch_size: int | None = None  #: batch size S, examples
    momentum: float | None = None  #: momentum β
    weight_decay: float | None = None  #: L2 coefficient
    epochs: int | None = None  #: epochs asked for
    probe_size: int | None = None  #: probe-set examples
    k: int | None = None  #: eigenvalues asked for per measurement
    status: str | None = None  #: run_end status
    end_message: str | None = None
    end_seconds: float | None = None  #: run duration from run_end, s
    end_steps: int | None = None
    steps: int = 0  #: optimizer steps taken
    n_spectra: int = 0  #: spectrum measurements
    last_step: int | None = None  #: step of the last spectrum
    last_spectral_norm: float | None = None  #: ρ(H) of the last spectrum
    last_cond_k: float | None = None
    last_eta_lambda1: float | None = None
    last_momentum: float | None = None
    last_k: int = 0
    last_eigenvalues: list[float] = field(default_factory=list)
    test_acc: float | None = None
    skipped: int = 0
    bad_lines: list[tuple[int, str]] = field(default_factory=list)
    newer: tuple[int, int | None] | None = None

    def update(self, rec: Record) -> None:
        """Fold one record in."""
        if rec.step is not None:
            self.steps = max(self.steps, rec.step)
        match rec:
            case RunStart():
                self.run_id, self.model = rec.run_id, rec.model
                self.num_params, self.dataset, self.device = rec.num_params, rec.dataset, rec.device
                self.lr, self.batch_size = rec.lr, rec.batch_size
                self.momentum, self.weight_decay = rec.momentum, rec.weight_decay
                self.epochs, self.probe_size, self.k = rec.epochs, rec.probe_size, rec.k
            case Spectrum():
                self.n_spectra += 1
                self.last_step = rec.step
                self.last_spectral_norm, self.last_cond_k = rec.spectral_norm, rec.cond_k
                self.last_eta_lambda1, self.last_momentum = rec.eta_lambda1, rec.momentum
                self.last_k = len(rec.eigenvalues)
                self.last_eigenvalues = list(rec.eigenvalues[:SUMMARY_EIGENVALUES])
            case Eval():
                self.test_acc = rec.test_acc
            case RunEnd():
                self.status, self.end_message = rec.status, rec.message
                self.end_seconds, self.end_steps = rec.seconds, rec.steps
                self.steps = max(self.steps, rec.steps)
            case _:
                pass

    def note_bad(self, bad: BadLine) -> None:
        """Count one line that could not be read."""
        if bad.newer:
            if self.newer is None:
                self.newer = (bad.line_no, bad.version)
            return
        self.skipped += 1
        if len(self.bad_lines) < SUMMARY_BAD_LINES:
            self.bad_lines.append((bad.line_no, bad.reason))

    def to_json(self) -> dict[str, object]:
        """The JSON form (non-finite floats tagged as in events; ``docs/design.md``)."""
        out: dict[str, object] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            out[name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_json(cls, data: object) -> RunSummary:
        """Rebuild from :meth:`to_json`'s form; a field of the wrong type is left at its
        default (never raises for any JSON value)."""
        s = cls()
        if not isinstance(data, dict):
            return s
        for name in ("run_id", "model", "dataset", "device", "status", "end_message"):
            setattr(s, name, _str(data.get(name)))
        for name in ("num_params", "batch_size", "epochs", "probe_size", "k", "end_steps",
                     "last_step"):
            setattr(s, name, _int(data.get(name)))
        for name in ("lr", "momentum", "weight_decay", "end_seconds", "last_spectral_norm",
                     "last_cond_k", "last_eta_lambda1", "last_momentum", "test_acc"):
            setattr(s, name, _num(data.get(name)))
        for name in ("steps", "n_spectra", "last_k", "skipped"):
            setattr(s, name, max(0, _int(data.get(name)) or 0))
        eig = data.get("last_eigenvalues")
        if isinstance(eig, list):
            s.last_eigenvalues = [v for v in map(_num, eig) if v is not None]
        bad = data.get("bad_lines")
        if isinstance(bad, list):
            s.bad_lines = [(b[0], b[1]) for b in bad if isinstance(b, list) and len(b) == 2
                           and _int(b[0]) is not None and isinstance(b[1], str)]
        newer = data.get("newer")
        if isinstance(newer, list) and len(newer) == 2 and _int(newer[0]) is not None:
            s.newer = (newer[0], _int(newer[1]))
        return s

    def skipped_lines(self) -> list[BadLine]:
        """The remembered skipped lines as BadLines (for the one warning wording)."""
        return [BadLine(line_no=n, reason=r, newer=False) for n, r in self.bad_lines]

    def newer_line(self) -> BadLine | None:
        """The first newer-schema line as a BadLine (for its one-line message)."""
        if self.newer is None:
            return None
        line_no, version = self.newer
        return BadLine(line_no, "written by a newer schema", newer=True, version=version)


def save_summary(run_dir: Path, summary: RunSummary, events_bytes: int, lines: int) -> None:
    """Write ``run_dir/summary.json`` atomically (a temporary file, then ``os.replace``):
    ``summary`` covers the first ``events_bytes`` bytes (``lines`` lines) of
    events.jsonl."""
    doc = {"v": SUMMARY_VERSION, "events_bytes": events_bytes, "lines": lines,
           "summary": summary.to_json()}
    tmp = run_dir / f".{SUMMARY_FILE}.{os.getpid()}.tmp"
    try:
        tmp.write_text(dumps(doc) + "\n", encoding="utf-8")
        os.replace(tmp, run_dir / SUMMARY_FILE)
    except BaseException:  # a full disk, say: leave no partial temporary file behind
        tmp.unlink(missing_ok=True)
        raise


def _saved(run_dir: Path, size: int) -> tuple[RunSummary, int, int] | None:
    """The saved summary with the byte offset and line count it covers, when
    summary.json is readable, of this version, and covers a line-aligned prefix of an
    events file of ``size`` bytes; else None."""
    try:
        doc = parse_json((run_dir / SUMMARY_FILE).read_bytes())
    except (OSError, WireError):
        return None
    if not isinstance(doc, dict) or doc.get("v") != SUMMARY_VERSION:
        return None
    offset, lines = _int(doc.get("events_bytes")), _int(doc.get("lines"))
    if offset is None or lines is None or not 0 <= offset <= size or lines < 0:
        return None
    if offset:
        try:
            with open(run_dir / EVENTS_FILE, "rb") as fh:
                fh.seek(offset - 1)
                if fh.read(1) != b"\n":
                    return None
        except OSError:
            return None
    return RunSummary.from_json(doc.get("summary")), offset, lines


def fold_events(path: Path, summary: RunSummary | None = None, *, offset: int = 0,
                first_line: int = 1) -> RunSummary:
    """Fold the complete lines of ``path`` from byte ``offset`` (numbered from
    ``first_line``) into ``summary`` (a new one by default), streaming: memory does not
    grow with the file. An unterminated last line is a write under way (or cut by a
    kill) and is left out, never counted as bad."""
    s = summary or RunSummary()
    try:
        fh = open(path, "rb")  # noqa: SIM115
    except OSError:
        return s
    with fh:
        fh.seek(offset)
        for line_no, raw in enumerate(fh, start=first_line):
            if not raw.endswith(b"\n"):
                break
            if not raw.strip():
                continue
            rec = decode_line(raw, line_no)
            if isinstance(rec, BadLine):
                s.note_bad(rec)
            else:
                s.update(rec)
    return s


def load_summary(run_dir: Path) -> RunSummary:
    """The run's summary: summary.json brought up to date by folding only the lines of
    events.jsonl after the bytes it covers; the whole file when summary.json is missing,
    unreadable, of another version, or covers more than the file holds."""
    path = run_dir / EVENTS_FILE
    try:
        size = path.stat().st_size
    except OSError:
        size = 0
    saved = _saved(run_dir, size)
    if saved is None:
        return fold_events(path)
    summary, offset, lines = saved
    return fold_events(path, summary, offset=offset, first_line=lines + 1)
