"""Headless output: one readable line per measurement on stderr, a progress line with
throughput and ETA, the trainer's warnings (long ones cut), and the end of the run
(``docs/design.md``, "Event pipeline").

Rich markup where stderr is a colour terminal; plain text when it is not a TTY or
``NO_COLOR`` is set. ``--json`` output (raw events on stdout) is :func:`write_json`.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterable
from typing import IO, Final

from rich.console import Console
from rich.markup import escape

from sgdtop.feed import EndKind, EndReason
from sgdtop.format import UNKNOWN, duration, fixed, kappa_label, number, percent
from sgdtop.schema import (
    DenseSpectrum,
    Eval,
    Log,
    LossSlice,
    Neurons,
    Record,
    RunEnd,
    RunStart,
    Spectrum,
    Step,
    encode,
)

PROGRESS_EVERY_S = 10.0


#: Longest log message printed whole in the headless view, characters; a longer one is
#: cut, saying how much was left out (the events file keeps all of it).
MAX_MESSAGE_CHARS: Final[int] = 500


def cut(message: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``message`` if at most ``limit`` characters, else its start and how much is left."""
    if len(message) <= limit:
        return message
    return f"{message[:limit]}… ({len(message) - limit:,} more characters)"


#: Kinds the headless log does not print (progress of a measurement under way).
IGNORED_KINDS: Final[frozenset[str]] = frozenset({"spectrum_progress"})


class LogSink:
    """Turns records into lines. Feed it with :meth:`handle`; it keeps the latest eval and
    spectrum to compose one line per measurement (printed when the measurement's
    ``neurons`` record — its last part — arrives)."""

    def __init__(self, stream: IO[str] | None = None, *, color: bool | None = None,
                 progress_every_s: float = PROGRESS_EVERY_S) -> None:
        self.stream = stream or sys.stderr
        if color is None:
            color = self.stream.isatty() and not os.environ.get("NO_COLOR")
        self.console = Console(file=self.stream, no_color=not color, highlight=False,
                               force_terminal=color, soft_wrap=True,
                               emoji=False) if color else None
        self.progress_every_s = progress_every_s
        self.start: RunStart | None = None
        self.last_eval: Eval | None = None
        self.last_step: Step | None = None
        self.pending_spectrum: Spectrum | None = None
        self.pending_dense: DenseSpectrum | None = None
        self._last_progress = -math.inf
        self.status: str | None = None

    # --- output -------------------------------------------------------------------------------
    def _print(self, plain: str, markup: str | None = None) -> None:
        if self.console is not None:
            self.console.print(markup if markup is not None else escape(plain))
        else:
            self.stream.write(plain + "\n")
            self.stream.flush()

    # --- records ------------------------------------------------------------------------------
    def handle(self, rec: Record) -> None:
        match rec:
            case RunStart():
                self.start = rec
                self._print(self._start_line(rec))
            case Step():
                self.last_step = rec
                if rec.t - self._last_progress >= self.progress_every_s:
                    self._last_progress = rec.t
                    line = self._progress_line(rec)
                    self._print(line, f"[dim]{escape(line)}[/]")
            case Eval():
                self.last_eval = rec
            case Spectrum():
                if self.pending_spectrum is not None:
                    self._measurement(None)
                self.pending_spectrum = rec
            case Neurons():
                self._measurement(rec)
            case DenseSpectrum():
                self.pending_dense = rec
            case LossSlice():
                self._print(self._slice_line(rec))
            case Log():
                text = f"[{rec.level}] {cut(rec.message)}"
                style = {"error": "bold red", "warning": "yellow"}.get(rec.level, "")
                self._print(text, f"[{style}]{escape(text)}[/]" if style else None)
            case RunEnd():
                if self.pending_spectrum is not None:
                    self._measurement(None)
                self.status = rec.status
                text = (f"run {rec.status}: {cut(rec.message)} ({rec.steps} steps, "
                        f"{duration(rec.seconds)})")
                style = "green" if self.status == "completed" else "bold red"
                self._print(text, f"[{style}]{escape(text)}[/]")
            case _:
                pass

    @staticmethod
    def _start_line(rec: RunStart) -> str:
        return (f"sgdtop run {rec.run_id}: {rec.model} ({rec.num_params:,} params) on "
                f"{rec.dataset} ({rec.train_size:,} train, probe {rec.probe_size:,}), "
                f"η={number(rec.lr)} S={rec.batch_size} β={number(rec.momentum)} "
                f"L2={number(rec.weight_decay)}, top-{rec.k}, {rec.epochs} epochs, "
                f"device {rec.device}")

    def _progress_line(self, rec: Step) -> str:
        total = None
        if self.start is not None:
            total = self.start.epochs * self.start.steps_per_epoch
        step = rec.step or 0
        parts = [f"progress: step {step:,}"]
        if total:
            parts[0] += f"/{total:,} ({100 * step / total:.0f}%)"
            if step > 0 and rec.t > 0:
                parts.append(f"ETA {duration((total - step) * rec.t / step)}")
        parts.append(f"epoch {rec.epoch}")
        parts.append(f"{fixed(rec.steps_per_s, 1)} steps/s "
                     f"({fixed(rec.examples_per_s, 0)} ex/s)")
        parts.append(f"loss {number(rec.loss)}")
        parts.append(f"elapsed {duration(rec.t)}")
        return " · ".join(parts)

    def _measurement(self, neurons: Neurons | None) -> None:
        sp = self.pending_spectrum
        self.pending_spectrum = None
        if sp is None:
            return
        eig = list(sp.eigenvalues)
        k = len(eig)
        loss = self.last_step.loss if self.last_step is not None else None
        if self.last_eval is not None:
            loss = self.last_eval.train_loss
        acc = self.last_eval.test_acc if self.last_eval is not None else None
        acc_s = UNKNOWN if acc is None or not math.isfinite(acc) else percent(100 * acc)
        limit = 2 * (1 + sp.momentum)
        top5 = " ".join(number(v, 3) for v in eig[:5])
        unconv = sum(1 for c in sp.converged if not c)
        dead = percent(neurons.dead_pct) if neurons is not None else UNKNOWN
        plain = (f"step {sp.step:>7} ep {sp.epoch:>3}  loss {number(loss)}  acc {acc_s}  "
                 f"ρ(H) {number(sp.spectral_norm)}  ηλ₁ {number(sp.eta_lambda1, 3)}"
                 f"/{number(limit, 3)}  {kappa_label(k)} {number(sp.cond_k)}  λ1-5 [{top5}]  "
                 f"dead {dead}  ({sp.hvps} HVPs, {fixed(sp.seconds, 2)}s"
                 f"{f', {unconv} unconverged' if unconv else ''})")
        markup = escape(plain)
        if sp.eta_lambda1 > limit:
            markup = markup.replace("ηλ₁", "[bold red]ηλ₁[/]", 1)
        self._print(plain, markup)
        dense, self.pending_dense = self.pending_dense, None
        if dense is not None:
            self._print(f"  exact spectrum: n={dense.n}  λmax {number(dense.lambda_max)}  "
                        f"λmin {number(dense.lambda_min)}  κ {number(dense.cond)} "
                        f"(λmin⁺ {number(dense.min_positive)} above "
                        f"{number(dense.floor, 2)})  negative {dense.n_negative}")

    @staticmethod
    def _slice_line(rec: LossSlice) -> str:
        """``loss_slice``: directions, the distance range (also in units of η), and per
        direction the largest rise of the loss above L(θ) over the range."""
        ts = list(rec.distances)
        rows = rec.losses
        span = max((abs(t) for t in ts), default=math.nan)
        lr = rec.lr
        eta = f" (±{span / lr:.3g}η)" if math.isfinite(lr) and lr > 0 else ""
        rises = " ".join(number(max(row) - rec.loss0, 3) if row else UNKNOWN for row in rows)
        return (f"  loss slices: {len(rows)} directions × {len(ts)} points, t ∈ ±{number(span, 3)}"
                f"{eta}; max rise above L along v1..{len(rows)} [{rises}] "
                f"({fixed(rec.seconds, 2)}s)")

    def handle_end(self, end: EndReason) -> None:
        """The stream ended: flush a pending measurement; a stream that ended without
        run_end (killed trainer, dead run, unfinished file) gets one line saying how.
        Nothing is said when the user stopped following or our stdout was closed."""
        if self.pending_spectrum is not None:
            self._measurement(None)
        if end.kind in (EndKind.RUN_END, EndKind.STOPPED, EndKind.CLOSED_STDOUT,
                        EndKind.NEWER_SCHEMA):
            return
        self.status = None
        text = f"run ended without run_end: {end.describe()}"
        self._print(text, f"[bold red]{escape(text)}[/]")

    def consume(self, records: Iterable[Record]) -> str | None:
        """Handle every record; returns the run_end status, or None without one."""
        for rec in records:
            self.handle(rec)
        if self.pending_spectrum is not None:
            self._measurement(None)
        return self.status


def write_json(rec: Record, stream: IO[str] | None = None) -> None:
    """Write one raw record line (the events.jsonl form) to stdout, for ``jq``; a closed
    stdout raises BrokenPipeError (:func:`sgdtop.feed.drain` ends the stream on it)."""
    out = stream or sys.stdout
    out.write(encode(rec))
    out.flush()
