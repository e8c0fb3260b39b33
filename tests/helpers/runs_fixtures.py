"""Synthetic recorded runs for the compare / plot / export tests (no torch, no trainer).

Two ResNet32-on-CIFAR-10-like runs, η=0.1 and η=0.01, shaped like the paper's Fig. 2 and 5:
the low-η run has the larger spectrum and fewer dead neurons. Each has ``EPOCHS`` epochs
of ``STEPS_PER_EPOCH`` steps, a ``step`` event every 5 steps, a ``spectrum`` event of
``K`` eigenvalues every 10 steps, ``eval`` and ``neurons`` at each epoch's end.

- ``high_lr_run()`` (η=0.1) also has a ``dense_spectrum`` at the end;
- ``low_lr_run()`` (η=0.01) has non-finite values: one spectrum measurement whose
  eigenvalues and ρ(H) are NaN, and an infinite test loss at one eval.
"""

from __future__ import annotations

import math
from pathlib import Path

from sgdtop.schema import BY_KIND, Record, encode
from sgdtop.stats import RunEvents

K = 30
EPOCHS = 8
STEPS_PER_EPOCH = 25
STEPS = EPOCHS * STEPS_PER_EPOCH
SPECTRUM_EVERY = 5
#: Steps of the low-η run's NaN spectrum measurement.
NAN_SPECTRUM_STEP = 30
#: Epoch (0-based) of the low-η run's eval with an infinite test loss.
INF_EVAL_EPOCH = 1


def make_event(kind: str, t: float, *, step: int | None = None, epoch: int | None = None,
               **data: object) -> Record:
    """The record of ``kind`` with these wire fields (as the trainer would write it)."""
    wire = {"v": 1, "kind": kind, "t": t, **data}
    if step is not None:
        wire["step"] = step
    if epoch is not None:
        wire["epoch"] = epoch
    return BY_KIND[kind].from_wire(wire)  # type: ignore[return-value]


def _scale(lr: float, step: int) -> float:
    """Top eigenvalue: grows early, higher for lower η, with an oscillation (Fig. 2)."""
    base = 20.0 if lr >= 0.05 else 60.0
    return base * (1.0 - 0.6 * math.exp(-step / 40.0)) * (1.0 + 0.08 * math.sin(step / 3.0))


def eigenvalues(lr: float, step: int, k: int = K) -> list[float]:
    """Signed top-k by |λ|: geometric decay (faster for low η: a larger κ_k), the 25th
    one negative."""
    top = _scale(lr, step)
    decay = (9.0 if lr >= 0.05 else 7.0) * (1.0 - 0.3 * math.exp(-step / 60.0))
    eigs = [top * math.exp(-i / decay) for i in range(k)]
    if k > 24:
        eigs[24] = -eigs[24]
    return eigs


def make_run(
    lr: float,
    *,
    run_id: str,
    batch_size: int = 128,
    momentum: float = 0.9,
    dense: bool = False,
    slices: bool = False,
    nonfinite: bool = False,
    end_status: str | None = "completed",
) -> list[Record]:
    """One synthetic run's events (see the module docstring)."""
    evs: list[Record] = []
    t = 0.0
    evs.append(
        make_event(
            "run_start", t, step=0, epoch=0, run_id=run_id,
            profile={"name": "resnet32-cifar10", "train": {"lr": lr, "epochs": EPOCHS}},
            model="resnet32", num_params=464_154, device="cpu",
            versions={"sgdtop": "0.1.0", "torch": "2.4"}, dataset="cifar10",
            train_size=50_000, test_size=10_000, probe_size=2250, lr=lr,
            batch_size=batch_size, momentum=momentum, weight_decay=5e-4, k=K,
            epochs=EPOCHS, steps_per_epoch=STEPS_PER_EPOCH,
        )
    )
    for step in range(1, STEPS + 1):
        t = step * 0.5
        epoch = (step - 1) // STEPS_PER_EPOCH
        loss = 2.3 * math.exp(-step / (100.0 if lr < 0.05 else 60.0)) + 0.05 * math.sin(step)
        if step % 5 == 0:
            evs.append(
                make_event(
                    "step", t, step=step, epoch=epoch, lr=lr, loss=loss,
                    examples_per_s=2000.0, steps_per_s=15.6,
                )
            )
        if step % SPECTRUM_EVERY == 0:
            eigs = eigenvalues(lr, step)
            rho = abs(eigs[0])
            if nonfinite and step == NAN_SPECTRUM_STEP:
                eigs = [math.nan] * K
                rho = math.nan
            evs.append(
                make_event(
                    "spectrum", t, step=step, epoch=epoch, eigenvalues=eigs,
                    residuals=[1e-4 * (i + 1) for i in range(K)],
                    converged=[i < K - 2 for i in range(K)], spectral_norm=rho,
                    cond_k=rho / abs(eigs[-1]) if math.isfinite(rho) else math.nan,
                    lr=lr, momentum=momentum, eta_lambda1=lr * eigs[0],
                    stability_limit=2 * (1 + momentum) / lr, hvps=120, seconds=1.5,
                    warm=step > SPECTRUM_EVERY,
                )
            )
        if slices and step % SPECTRUM_EVERY == 0 and step <= 4 * SPECTRUM_EVERY:
            ts = [j * lr for j in range(-5, 6)]
            lams = eigenvalues(lr, step)[:3]
            evs.append(
                make_event(
                    "loss_slice", t, step=step, epoch=epoch, distances=ts, eigenvalues=lams,
                    slopes=[-0.1] * 3, loss0=loss, lr=lr, seconds=0.2,
                    losses=[[loss - 0.1 * x + 0.5 * lam * x * x + 0.3 * lam * x ** 4
                             for x in ts] for lam in lams],
                )
            )
        if step % STEPS_PER_EPOCH == 0:
            test_loss = loss + 0.2
            if nonfinite and epoch == INF_EVAL_EPOCH:
                test_loss = math.inf
            evs.append(
                make_event(
                    "eval", t, step=step, epoch=epoch, train_loss=loss,
                    train_acc=0.5 + 0.45 * step / STEPS, test_loss=test_loss,
                    test_acc=(0.45 if lr >= 0.05 else 0.4) + 0.4 * step / STEPS,
                )
            )
            dead_scale = 2.0 if lr >= 0.05 else 0.5
            layers = [
                {"name": "layer1.0.relu", "units": 16, "dead": 1, "dead_pct": 6.25 * dead_scale},
                {"name": "layer3.4.relu", "units": 64, "dead": 2, "dead_pct": 3.125 * dead_scale},
            ]
            evs.append(
                make_event(
                    "neurons", t, step=step, epoch=epoch,
                    dead_pct=dead_scale * (1.0 + step / STEPS_PER_EPOCH), layers=layers,
                    threshold=1e-3,
                )
            )
    if dense:
        edges = [-2.0 + 0.5 * i for i in range(0, 50)]
        counts = [max(0, int(4000 * math.exp(-abs(e + 0.25) * 3))) for e in edges[:-1]]
        counts[-1] = 1  # a lone outlier: the top eigenvalue
        evs.append(
            make_event(
                "dense_spectrum", t, step=STEPS, epoch=EPOCHS - 1, n=sum(counts),
                hist_edges=edges, hist_counts=counts, lambda_max=edges[-1],
                lambda_min=edges[0], min_positive=1e-4, cond=edges[-1] / 1e-4,
                floor=1e-6, n_negative=sum(c for e, c in zip(edges, counts, strict=False) if e < 0),
            )
        )
    evs.append(
        make_event("log", t, level="warning", message='a, "quoted" line', source="trainer")
    )
    if end_status is not None:
        evs.append(make_event("run_end", t + 0.1, step=STEPS, epoch=EPOCHS - 1,
                              status=end_status, message="done", steps=STEPS, seconds=t + 0.1))
    return evs


def high_lr_run() -> RunEvents:
    """η=0.1, with a dense spectrum and loss slices."""
    return RunEvents.from_events(make_run(0.1, run_id="resnet32-lr0.1", dense=True,
                                          slices=True))


def low_lr_run() -> RunEvents:
    """η=0.01, with NaN and inf values."""
    return RunEvents.from_events(make_run(0.01, run_id="resnet32-lr0.01", nonfinite=True))


def two_runs() -> list[RunEvents]:
    """The η=0.1 and η=0.01 runs, high η first."""
    return [high_lr_run(), low_lr_run()]


def write_jsonl(events: list[Record], path: Path) -> Path:
    """Write ``events`` as an events.jsonl (the trainer's codec)."""
    path.write_text("".join(encode(ev) for ev in events), encoding="utf-8")
    return path
