"""One real record of every kind, as the trainer writes them (shared by the schema tests)."""

from __future__ import annotations

import math

from sgdtop.schema import (
    DenseSpectrum,
    Eval,
    Log,
    LossSlice,
    NeuronLayer,
    Neurons,
    Record,
    RunEnd,
    RunStart,
    Spectrum,
    SpectrumProgress,
    Step,
)


def sample_records() -> list[Record]:
    """A run's worth of records, one or more of each kind, with NaN/inf where they occur."""
    return [
        RunStart(t=0.0, step=0, epoch=0, run_id="20260101-000000-mlp-lr0.1-b32-abcd",
                 profile={"model": "mlp", "lr": 0.1, "hidden": [100, 100]}, model="mlp",
                 num_params=40_301, device="cpu",
                 versions={"sgdtop": "0.1.0", "torch": "2.14.1"}, dataset="teacher-student",
                 train_size=5000, test_size=1000, probe_size=250, lr=0.1, batch_size=32,
                 momentum=0.0, weight_decay=0.0, k=30, epochs=50, steps_per_epoch=157,
                 wall_time=1.7e9, task="regression"),
        Step(t=0.5, step=10, epoch=0, lr=0.1, loss=1.07, examples_per_s=math.nan,
             steps_per_s=20.0),
        Eval(t=1.0, step=157, epoch=0, train_loss=0.5, train_acc=math.nan, test_loss=0.6,
             test_acc=math.nan),
        SpectrumProgress(t=1.2, step=157, epoch=1, hvps=40, seconds=0.5),
        Spectrum(t=1.5, step=157, epoch=1, eigenvalues=(12.5, -3.25, 1.0),
                 residuals=(1e-5, 2e-4, math.inf), converged=(True, True, False),
                 spectral_norm=12.5, cond_k=12.5, lr=0.1, momentum=0.0, eta_lambda1=1.25,
                 stability_limit=20.0, hvps=96, seconds=0.9, warm=True, k=3,
                 which="magnitude", tol=1e-3, batch_norm="running"),
        DenseSpectrum(t=1.6, step=157, epoch=1, n=100, hist_edges=(-1.0, 0.0, 1.0),
                      hist_counts=(40, 60), lambda_max=12.5, lambda_min=-3.25,
                      min_positive=1e-4, cond=1.25e5, floor=1e-5, n_negative=40,
                      seconds=0.2),
        Neurons(t=1.7, step=157, epoch=1, dead_pct=12.5, threshold=1e-3,
                layers=(NeuronLayer(name="relu1", units=100, dead=20, dead_pct=20.0),
                        NeuronLayer(name="relu2", units=100, dead=5, dead_pct=5.0))),
        LossSlice(t=1.8, step=157, epoch=1, distances=(-0.1, 0.0, 0.1),
                  eigenvalues=(12.5,), slopes=(-0.2,), losses=((0.7, 0.5, 0.6),), loss0=0.5,
                  lr=0.1, seconds=0.05),
        Log(t=1.9, step=157, epoch=1, level="warning", message="η·λ₁ ≈ 3 — ünïcödé",
            source="stderr"),
        RunEnd(t=2.0, step=314, epoch=1, status="completed", message="2 epochs, 314 steps",
               steps=314, seconds=2.0, measurements=2, measure_seconds=1.8),
    ]


def make_record(kind: str, t: float, *, step: int | None = None, epoch: int | None = None,
                **fields: object) -> Record:
    """A record of ``kind`` from wire-style fields (lists allowed where tuples belong), the
    way a test writes one by hand; raises WireError for a field of the wrong type."""
    from sgdtop.schema import BY_KIND

    obj: dict[str, object] = {"t": t, **fields}
    if step is not None:
        obj["step"] = step
    if epoch is not None:
        obj["epoch"] = epoch
    return BY_KIND[kind].from_wire(obj)  # type: ignore[return-value]
