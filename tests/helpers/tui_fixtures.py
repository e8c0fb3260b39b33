"""Recorded event streams (typed records) and fake feeds for the TUI tests
(deterministic, no torch).

- :func:`normal_run`: an MLP-like run, complete: run_start, step, eval, spectrum_progress,
  spectrum (30 eigenvalues rising then settling, as in Fig. 2 of the paper, one of them
  negative), neurons, log, dense_spectrum, run_end ``completed``;
- :func:`diverging_run`: η too large: η·λ₁ crosses 2(1+β), the loss and the eigenvalues go
  to inf and NaN, run_end ``diverged``;
- :func:`cut_off_run`: a normal run whose stream stops mid-measurement, without run_end;
- :func:`long_run`: ``n`` events (mostly steps) for the throughput/memory measurements;
- :class:`ListFeed`: an :class:`~sgdtop.feed.EventFeed` over a list, which can hold the
  stream open until :meth:`ListFeed.stop` (then writes run_end ``interrupted`` like the
  trainer), end with an ``ended_reason`` (a crash) or raise (a broken pipe);
- the Pilot helpers every TUI test drives its app with: :func:`drive`, :func:`wait_for`,
  :func:`screen_text` (async bodies run with ``asyncio.run`` inside plain tests: no
  pytest-asyncio needed), and the snapshot sizes :data:`SMALL`, :data:`LARGE`.
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from textual.app import App
from textual.pilot import Pilot

from sgdtop.schema import BY_KIND, Record, Spectrum

K = 30

#: The snapshot sizes: the smallest supported terminal and a large one.
SMALL = (80, 24)
LARGE = (160, 48)

#: pytest-textual-snapshot's ``snap_compare`` fixture.
SnapCompare = Callable[..., bool]

AppT = TypeVar("AppT", bound=App[Any])


def make_event(kind: str, t: float, *, step: int | None = None, epoch: int | None = None,
               **data: object) -> Record:
    """The record of ``kind`` with these fields, checked as the decoder checks a line
    (lists become tuples, layer dicts :class:`~sgdtop.schema.NeuronLayer`\\ s)."""
    wire: dict[str, object] = {"t": t, **data}
    if step is not None:
        wire["step"] = step
    if epoch is not None:
        wire["epoch"] = epoch
    return BY_KIND[kind].from_wire(wire)  # type: ignore[return-value]


# -- Pilot helpers -------------------------------------------------------------------


def drive(app: AppT, body: Callable[[AppT, Pilot[Any]], Awaitable[None]],
          size: tuple[int, int] = SMALL, *, cleanup: Callable[[], None] | None = None,
          ) -> None:
    """Run ``app`` headless at ``size``, let it settle, and run ``body`` against it;
    ``cleanup`` runs afterwards whatever happened (e.g. waiting for a sweep's cells)."""

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await body(app, pilot)

    try:
        asyncio.run(main())
    finally:
        if cleanup is not None:
            cleanup()


async def wait_for(pilot: Pilot[Any], cond: Callable[[], bool], timeout: float = 10.0,
                   what: str = "the app") -> None:
    """Let the app run until ``cond()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} ({timeout:g} s)")
        await pilot.pause(0.02)


def screen_text(app: App[Any]) -> str:
    """The visible characters of the screen (from the SVG export's text)."""
    return app.export_screenshot().replace("&#160;", " ")


def run_start(
    *, lr: float = 0.1, momentum: float = 0.9, epochs: int = 10, steps_per_epoch: int = 50,
    k: int = K, model: str = "mlp", dataset: str = "cifar10", task: str = "classification",
) -> Record:
    """A run_start for an MLP (on CIFAR-10 by default: a classification, so with accuracy)."""
    return make_event(
        "run_start", 0.0, step=0, epoch=0,
        run_id="20250101-000000-mlp", profile={"name": "fixture"}, model=model,
        num_params=40_301, device="cpu", versions={"sgdtop": "0.1.0"}, dataset=dataset,
        train_size=10_000, test_size=2_000, probe_size=500, lr=lr, batch_size=128,
        momentum=momentum, weight_decay=5e-4, k=k, epochs=epochs,
        steps_per_epoch=steps_per_epoch, task=task,
    )


def _eigenvalues(progress: float, k: int, scale: float, rng: random.Random) -> list[float]:
    """Top-k by |λ| at training progress in [0, 1]: rise fast, peak, settle (Fig. 2)."""
    envelope = scale * (1.0 - math.exp(-progress * 12.0)) * (1.0 - 0.35 * progress) + 0.5
    vals = [envelope * (i + 1) ** -0.7 * (1.0 + 0.02 * rng.uniform(-1, 1)) for i in range(k)]
    vals[k - 6] = -vals[k - 6]  # one negative-curvature direction among the top-k
    return sorted(vals, key=abs, reverse=True)


def _spectrum(
    t: float, step: int, epoch: int, eig: Sequence[float], *, lr: float, momentum: float,
    hvps: int, seconds: float, converged_upto: int | None = None,
) -> Record:
    k = len(eig)
    top = max((abs(v) for v in eig), default=math.nan)
    last = abs(eig[-1]) if eig else math.nan
    cut = k - 3 if converged_upto is None else converged_upto
    residuals = [1e-6 * abs(v) if i < cut else 0.05 * abs(v) for i, v in enumerate(eig)]
    return make_event(
        "spectrum", t, step=step, epoch=epoch,
        eigenvalues=list(eig), residuals=residuals, converged=[i < cut for i in range(k)],
        spectral_norm=top, cond_k=(top / last) if last else math.inf, lr=lr,
        momentum=momentum, eta_lambda1=lr * eig[0], stability_limit=2 * (1 + momentum) / lr,
        hvps=hvps, seconds=seconds, warm=step > 0,
    )


def normal_run(
    *, epochs: int = 10, steps_per_epoch: int = 50, spectrum_every: int = 25, k: int = K,
    lr: float = 0.1, momentum: float = 0.9, end: bool = True, seed: int = 0,
    task: str = "classification",
) -> list[Record]:
    """A complete, well-behaved run (about 20 events per epoch at the defaults)."""
    rng = random.Random(seed)
    evs: list[Record] = [run_start(lr=lr, momentum=momentum, epochs=epochs,
                                  steps_per_epoch=steps_per_epoch, k=k, task=task)]
    evs.append(make_event("log", 0.05, level="info", message="probe set: 500 examples",
                          source="trainer"))
    total = epochs * steps_per_epoch
    t = 0.1
    loss = 2.3
    for step in range(1, total + 1):
        epoch = (step - 1) // steps_per_epoch
        t += 0.02
        loss = 0.05 + (loss - 0.05) * 0.985 + 0.01 * rng.uniform(-1, 1)
        if step % 5 == 0:
            evs.append(make_event("step", t, step=step, epoch=epoch, lr=lr, loss=loss,
                                  examples_per_s=6400.0 + 10 * (step % 7), steps_per_s=50.0))
        if step % spectrum_every == 0 or step == 1:
            for h in (20, 40):
                t += 0.1
                evs.append(make_event("spectrum_progress", t, step=step, epoch=epoch,
                                      hvps=h, seconds=0.1 * h / 20))
            t += 0.1
            eig = _eigenvalues(step / total, k, scale=40.0, rng=rng)
            evs.append(_spectrum(t, step, epoch, eig, lr=lr, momentum=momentum, hvps=60,
                                 seconds=0.3))
            evs.append(make_event(
                "neurons", t, step=step, epoch=epoch, threshold=1e-3,
                dead_pct=2.0 + 8.0 * step / total,
                layers=[{"name": "fc1", "units": 100, "dead": int(2 + 8 * step / total),
                         "dead_pct": 2.0 + 8.0 * step / total},
                        {"name": "fc2", "units": 100, "dead": 3, "dead_pct": 3.0}]))
        if step % steps_per_epoch == 0:
            t += 0.05
            acc = task == "classification"
            evs.append(make_event("eval", t, step=step, epoch=epoch, train_loss=loss * 0.98,
                                  train_acc=min(0.99, 0.3 + step / total * 0.65) if acc
                                  else math.nan,
                                  test_loss=loss * 1.1 + 0.02,
                                  test_acc=min(0.97, 0.28 + step / total * 0.6) if acc
                                  else math.nan))
        if step == total // 2:
            evs.append(make_event("log", t, step=step, epoch=epoch, level="warning",
                                  message="Lanczos did not converge for 3 of 30 Ritz pairs",
                                  source="trainer"))
    evs.append(make_event(
        "dense_spectrum", t, step=total, epoch=epochs - 1, n=40_301,
        hist_edges=[0.0, 1.0, 2.0], hist_counts=[40_000, 301], lambda_max=40.0,
        lambda_min=-0.5, min_positive=1e-4, cond=4.0e5, floor=1e-6, n_negative=120))
    if end:
        evs.append(make_event("run_end", t + 0.01, step=total, epoch=epochs - 1,
                              status="completed", message=f"{epochs} epochs", steps=total,
                              seconds=t + 0.01))
    return evs


def diverging_run(*, seed: int = 1) -> list[Record]:
    """η = 3: η·λ₁ passes 2(1+β) = 2, then the loss and spectrum blow up to inf/NaN."""
    rng = random.Random(seed)
    lr, momentum, spe = 3.0, 0.0, 20
    evs: list[Record] = [run_start(lr=lr, momentum=momentum, epochs=5, steps_per_epoch=spe)]
    t = 0.0
    loss = 1.0
    for step in range(1, 61):
        epoch = (step - 1) // spe
        t += 0.02
        loss = loss * 1.6 if step < 40 else (math.inf if step < 50 else math.nan)
        if step % 2 == 0:
            evs.append(make_event("step", t, step=step, epoch=epoch, lr=lr, loss=loss,
                                  examples_per_s=6000.0, steps_per_s=40.0))
        if step % 10 == 0:
            t += 0.2
            if step < 40:
                eig = [v * 1.3 ** step for v in _eigenvalues(0.5, K, 10.0, rng)]
            elif step < 50:
                eig = [math.inf] + [math.nan] * (K - 1)
            else:
                eig = [math.nan] * K
            evs.append(_spectrum(t, step, epoch, eig, lr=lr, momentum=momentum, hvps=60,
                                 seconds=0.2, converged_upto=K if step < 40 else 0))
            evs.append(make_event("eval", t, step=step, epoch=epoch, train_loss=loss,
                                  train_acc=math.nan, test_loss=loss * 1.1,
                                  test_acc=math.nan))
            evs.append(make_event("neurons", t, step=step, epoch=epoch, threshold=1e-3,
                                  dead_pct=math.nan if step >= 50 else 10.0 + step,
                                  layers=[]))
    evs.append(make_event("log", t, step=60, epoch=2, level="error",
                          message="loss is nan at step 60", source="trainer"))
    evs.append(make_event("run_end", t + 0.01, step=60, epoch=2, status="diverged",
                          message="loss became nan at step 60", steps=60, seconds=t))
    return evs


def cut_off_run() -> list[Record]:
    """A normal run cut off without run_end, in the middle of a spectrum measurement."""
    evs = normal_run(end=False)
    cut = next(i for i, ev in enumerate(evs) if ev.kind == "spectrum_progress" and
               ev.step is not None and ev.step >= 250)
    return evs[: cut + 1]


def long_run(n: int, *, k: int = K, spectrum_every: int = 200) -> list[Record]:
    """About ``n`` events: mostly steps, a spectrum (k eigenvalues) and eval periodically."""
    rng = random.Random(3)
    spe = 1000
    evs: list[Record] = [run_start(epochs=max(1, n // spe + 1), steps_per_epoch=spe, k=k)]
    step = 0
    while len(evs) < n:
        step += 1
        epoch = (step - 1) // spe
        t = step * 0.01
        evs.append(make_event("step", t, step=step, epoch=epoch, lr=0.1,
                              loss=1.0 / (1 + step * 1e-3), examples_per_s=9000.0,
                              steps_per_s=100.0))
        if step % spectrum_every == 0:
            eig = _eigenvalues(min(1.0, step / max(n, 1)), k, 40.0, rng)
            evs.append(_spectrum(t, step, epoch, eig, lr=0.1, momentum=0.9, hvps=60,
                                 seconds=0.3))
            evs.append(make_event("eval", t, step=step, epoch=epoch, train_loss=0.5,
                                  train_acc=0.8, test_loss=0.6, test_acc=0.78))
            evs.append(make_event("spectrum_progress", t, step=step, epoch=epoch, hvps=10,
                                  seconds=0.05))
    return evs[:n]


class ListFeed:
    """An :class:`~sgdtop.feed.EventFeed` over a list of events.

    hold: after the list, keep the stream open until :meth:`stop` or :meth:`close`;
    a stop then yields run_end ``interrupted`` (as the trainer would), a close just ends.
    ended_reason: reported when the stream ends without run_end (a crashed trainer).
    error: raised after the list (a broken pipe).
    """

    def __init__(
        self, events: Sequence[Record], *, hold: bool = False, ended_reason: str | None = None,
        error: BaseException | None = None, run_dir: Path | None = None,
    ) -> None:
        self._events = list(events)
        self._hold = hold
        self._reason = ended_reason
        self._error = error
        self._run_dir = run_dir
        self._wake = threading.Event()
        self._ended = False
        self.stop_calls = 0
        self.close_calls = 0
        self.delivered = 0

    @property
    def run_dir(self) -> Path | None:
        return self._run_dir

    @property
    def ended_reason(self) -> str | None:
        return self._reason if self._ended else None

    def __iter__(self) -> Iterator[Record]:
        for ev in self._events:
            self.delivered += 1
            yield ev
        if self._error is not None:
            raise self._error
        if self._hold:
            self._wake.wait(timeout=30.0)
            if self.stop_calls and not self.close_calls:
                last = self._events[-1] if self._events else None
                step = last.step if last is not None else None
                yield make_event("run_end", (last.t if last else 0.0) + 0.01, step=step,
                                 status="interrupted", message="stopped by the user",
                                 steps=step or 0, seconds=(last.t if last else 0.0))
                self._reason = None
        self._ended = True

    def stop(self) -> None:
        self.stop_calls += 1
        self._wake.set()

    def close(self) -> None:
        self.close_calls += 1
        self._wake.set()


def slice_run(*, until: int = 100, directions: int = 4, points: int = 21) -> list[Record]:
    """:func:`normal_run` with a ``loss_slice`` after each measurement up to step ``until``
    (Fig. 7): parabolas λᵢt²/2 that steepen, then flatten as training goes on, with a
    quartic wall past the quadratic range."""
    out: list[Record] = []
    for ev in normal_run():
        out.append(ev)
        if ev.kind == "spectrum" and (ev.step or 0) <= until:
            lr = 0.1
            m = (points - 1) // 2
            ts = [j * lr for j in range(-m, m + 1)]
            assert isinstance(ev, Spectrum)
            lams = [abs(v) for v in ev.eigenvalues[:directions]]
            loss0 = 2.3 - 0.005 * (ev.step or 0)
            slopes = [-0.2 / (i + 1) for i in range(directions)]
            out.append(make_event(
                "loss_slice", ev.t, step=ev.step, epoch=ev.epoch, distances=ts,
                eigenvalues=lams, slopes=slopes, loss0=loss0, lr=lr, seconds=0.05,
                losses=[[loss0 + g * t + 0.5 * lam * t * t + 2.0 * t ** 4 for t in ts]
                        for lam, g in zip(lams, slopes, strict=True)]))
    return out
