"""Headless output: one readable line per measurement on stderr, a progress line with
throughput and ETA, the trainer's warnings, and the end of the run.

Rich markup where stderr is a colour terminal; plain text when it is not a TTY or
``NO_COLOR`` is set. ``--json`` output (raw events on stdout) is :func:`write_json`.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterable
from typing import IO, Any

from rich.console import Console
from rich.markup import escape

from sgdtop.events import Event, encode

PROGRESS_EVERY_S = 10.0


def fmt(x: Any, spec: str = ".4g") -> str:
    """A number for humans: non-finite values spelled out (nan, inf, -inf), None as '-'."""
    if x is None:
        return "-"
    try:
        xf = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(xf):
        return "nan"
    if math.isinf(xf):
        return "inf" if xf > 0 else "-inf"
    return format(xf, spec)


def fmt_duration(seconds: float) -> str:
    """``1h02m``, ``3m05s`` or ``12s``."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


class LogSink:
    """Turns events into lines. Feed it with :meth:`handle`; it keeps the latest eval and
    spectrum to compose one line per measurement (printed when the measurement's
    ``neurons`` event — its last part — arrives)."""

    def __init__(self, stream: IO[str] | None = None, *, color: bool | None = None,
                 progress_every_s: float = PROGRESS_EVERY_S) -> None:
        self.stream = stream or sys.stderr
        if color is None:
            color = self.stream.isatty() and not os.environ.get("NO_COLOR")
        self.console = Console(file=self.stream, no_color=not color, highlight=False,
                               force_terminal=color, soft_wrap=True,
                               emoji=False) if color else None
        self.progress_every_s = progress_every_s
        self.start: Event | None = None
        self.last_eval: Event | None = None
        self.last_step: Event | None = None
        self.pending_spectrum: Event | None = None
        self.pending_dense: Event | None = None
        self._last_progress = -math.inf
        self.status: str | None = None

    # --- output -------------------------------------------------------------------------------
    def _print(self, plain: str, markup: str | None = None) -> None:
        if self.console is not None:
            self.console.print(markup if markup is not None else escape(plain))
        else:
            self.stream.write(plain + "\n")
            self.stream.flush()

    # --- events -------------------------------------------------------------------------------
    def handle(self, ev: Event) -> None:
        kind = ev.kind
        if kind == "run_start":
            self.start = ev
            self._print(self._start_line(ev))
        elif kind == "step":
            self.last_step = ev
            if ev.t - self._last_progress >= self.progress_every_s:
                self._last_progress = ev.t
                self._print(self._progress_line(ev), f"[dim]{escape(self._progress_line(ev))}[/]")
        elif kind == "eval":
            self.last_eval = ev
        elif kind == "spectrum":
            if self.pending_spectrum is not None:
                self._measurement(None)
            self.pending_spectrum = ev
        elif kind == "neurons":
            self._measurement(ev)
        elif kind == "dense_spectrum":
            self.pending_dense = ev
        elif kind == "loss_slice":
            self._print(self._slice_line(ev))
        elif kind == "log":
            level = str(ev["level"])
            text = f"[{level}] {ev['message']}"
            style = {"error": "bold red", "warning": "yellow"}.get(level, "")
            self._print(text, f"[{style}]{escape(text)}[/]" if style else None)
        elif kind == "run_end":
            if self.pending_spectrum is not None:
                self._measurement(None)
            self.status = str(ev["status"])
            text = (f"run {ev['status']}: {ev['message']} ({ev['steps']} steps, "
                    f"{fmt_duration(float(ev['seconds']))})")
            style = "green" if self.status == "completed" else "bold red"
            self._print(text, f"[{style}]{escape(text)}[/]")

    def _start_line(self, ev: Event) -> str:
        return (f"sgdtop run {ev['run_id']}: {ev['model']} ({ev['num_params']:,} params) on "
                f"{ev['dataset']} ({ev['train_size']:,} train, probe {ev['probe_size']:,}), "
                f"η={fmt(ev['lr'])} S={ev['batch_size']} β={fmt(ev['momentum'])} "
                f"L2={fmt(ev['weight_decay'])}, top-{ev['k']}, {ev['epochs']} epochs, "
                f"device {ev['device']}")

    def _progress_line(self, ev: Event) -> str:
        total = None
        if self.start is not None:
            total = int(self.start["epochs"]) * int(self.start["steps_per_epoch"])
        step = ev.step or 0
        parts = [f"progress: step {step:,}"]
        if total:
            parts[0] += f"/{total:,} ({100 * step / total:.0f}%)"
            if step > 0 and ev.t > 0:
                parts.append(f"ETA {fmt_duration((total - step) * ev.t / step)}")
        parts.append(f"epoch {ev.epoch}")
        parts.append(f"{fmt(ev['steps_per_s'], '.1f')} steps/s "
                     f"({fmt(ev['examples_per_s'], '.0f')} ex/s)")
        parts.append(f"loss {fmt(ev['loss'])}")
        parts.append(f"elapsed {fmt_duration(ev.t)}")
        return " · ".join(parts)

    def _measurement(self, neurons: Event | None) -> None:
        sp = self.pending_spectrum
        self.pending_spectrum = None
        if sp is None:
            return
        eig = list(sp["eigenvalues"])
        k = len(eig)
        loss = self.last_step["loss"] if self.last_step is not None else None
        if self.last_eval is not None:
            loss = self.last_eval["train_loss"]
        acc = self.last_eval["test_acc"] if self.last_eval is not None else None
        acc_s = "-" if acc is None or not math.isfinite(float(acc)) else f"{100 * acc:.1f}%"
        limit = 2 * (1 + float(sp["momentum"]))
        top5 = " ".join(fmt(v, ".3g") for v in eig[:5])
        unconv = sum(1 for c in sp["converged"] if not c)
        dead = f"{fmt(neurons['dead_pct'], '.1f')}%" if neurons is not None else "-"
        plain = (f"step {sp.step:>7} ep {sp.epoch:>3}  loss {fmt(loss)}  acc {acc_s}  "
                 f"ρ(H) {fmt(sp['spectral_norm'])}  ηλ₁ {fmt(sp['eta_lambda1'], '.3g')}"
                 f"/{fmt(limit, '.3g')}  κ{k} {fmt(sp['cond_k'])}  λ1-5 [{top5}]  "
                 f"dead {dead}  ({sp['hvps']} HVPs, {fmt(sp['seconds'], '.2f')}s"
                 f"{f', {unconv} unconverged' if unconv else ''})")
        over = float(sp["eta_lambda1"]) > limit
        markup = escape(plain)
        if over:
            markup = markup.replace("ηλ₁", "[bold red]ηλ₁[/]", 1)
        self._print(plain, markup)
        dense, self.pending_dense = self.pending_dense, None
        if dense is not None:
            self._print(f"  exact spectrum: n={dense['n']}  λmax {fmt(dense['lambda_max'])}  "
                        f"λmin {fmt(dense['lambda_min'])}  κ {fmt(dense['cond'])} "
                        f"(λmin⁺ {fmt(dense['min_positive'])} above "
                        f"{fmt(dense['floor'], '.1e')})  negative {dense['n_negative']}")

    @staticmethod
    def _slice_line(ev: Event) -> str:
        """``loss_slice``: directions, the distance range (also in units of η), and per
        direction the largest rise of the loss above L(θ) over the range."""
        ts = [float(t) for t in ev["distances"]]
        rows = ev["losses"]
        span = max((abs(t) for t in ts), default=math.nan)
        lr = float(ev["lr"])
        eta = f" (±{span / lr:.3g}η)" if math.isfinite(lr) and lr > 0 else ""
        loss0 = float(ev["loss0"])
        rises = " ".join(fmt(max(float(v) for v in row) - loss0, ".3g") if row else "-"
                         for row in rows)
        return (f"  loss slices: {len(rows)} directions × {len(ts)} points, t ∈ ±{fmt(span, '.3g')}"
                f"{eta}; max rise above L along v1..{len(rows)} [{rises}] "
                f"({fmt(ev['seconds'], '.2f')}s)")

    def handle_end_without_run_end(self, reason: str) -> None:
        """The stream ended with no run_end (trainer killed or crashed hard)."""
        if self.pending_spectrum is not None:
            self._measurement(None)
        self.status = None
        text = f"run ended without run_end: {reason}"
        self._print(text, f"[bold red]{escape(text)}[/]")

    def consume(self, events: Iterable[Event], *, delay: float = 0.0) -> str | None:
        """Handle every event; with ``delay`` > 0 sleep between events (slow replay).
        Returns the run_end status, or None if the stream ended without one."""
        for ev in events:
            self.handle(ev)
            if delay:
                time.sleep(delay)
        if self.pending_spectrum is not None:
            self._measurement(None)
        return self.status


def write_json(ev: Event, stream: IO[str] | None = None) -> None:
    """Write one raw event line (the events.jsonl form) to stdout, for ``jq``."""
    out = stream or sys.stdout
    out.write(encode(ev))
    out.flush()
