"""Trainer overhead, measured side by side in one run (prints ratios; not a test).

1. Steps/s of sgdtop's training loop with measurement off against a plain hand-written
   PyTorch loop on the same model, data and batch size (target: within 5%).
2. The share of wall time spent measuring in a profile (default: mlp-teacher-student
   with fewer epochs), from the run_end totals.
3. Time from `sgdtop run` to the first event (run_start), as a subprocess.

    python benchmarks/bench_trainer.py [--profile mlp-teacher-student] [--epochs 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time

import torch

from sgdtop import profile as profile_mod
from sgdtop.recorder import RunRecorder
from sgdtop.schema import Record
from sgdtop.train import prepare, train


def _trainer_steps_per_s(prof: profile_mod.Profile) -> float:
    setup = prepare(prof)
    events: list[Record] = []
    t0 = time.perf_counter()
    outcome = train(setup, RunRecorder(sink=events.append))
    seconds = time.perf_counter() - t0 - sum(
        float(e["seconds"]) for e in events if e.kind == "spectrum")
    # evaluation runs once per epoch in both loops below; it is part of the loop
    return outcome.steps / seconds


def _plain_steps_per_s(prof: profile_mod.Profile) -> float:
    setup = prepare(prof)
    model, loss_fn = setup.model, setup.loss_fn
    xs, ys = setup.task.train.tensors  # type: ignore[attr-defined]
    opt = torch.optim.SGD(model.parameters(), lr=prof.lr, momentum=prof.momentum,
                          weight_decay=prof.weight_decay)
    gen = torch.Generator().manual_seed(prof.seed)
    steps = 0
    t0 = time.perf_counter()
    for _ in range(prof.epochs):
        perm = torch.randperm(len(xs), generator=gen)
        model.train()
        for i in range(0, len(xs), prof.batch_size):
            idx = perm[i:i + prof.batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xs[idx]), ys[idx])
            loss.backward()
            opt.step()
            float(loss.detach())
            steps += 1
        model.eval()
        with torch.no_grad():
            for x, y in setup.probe_batches:
                loss_fn(model(x), y)
            tx, ty = setup.task.test.tensors  # type: ignore[attr-defined]
            loss_fn(model(tx), ty)
    return steps / (time.perf_counter() - t0)


def _first_event_seconds(prof_name: str, epochs: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as runs:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "sgdtop", "run", prof_name, "--epochs", str(epochs),
             "--json", "--runs-dir", runs], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL, text=True)
        assert proc.stdout is not None
        first = proc.stdout.readline()
        t_first = time.perf_counter() - t0
        end = None
        for line in proc.stdout:
            end = json.loads(line)
        proc.wait()
        share = float(end["measure_seconds"]) / float(end["seconds"]) if end else float("nan")
    assert json.loads(first)["kind"] == "run_start"
    return t_first, share


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="mlp-teacher-student")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    base = profile_mod.load(args.profile, overrides={"epochs": args.epochs})
    off = dataclasses.replace(base, measure_at_start=False, measure_each_epoch=False,
                              first_epoch_every=0, measure_every=0)
    print(f"profile {args.profile}, {args.epochs} epochs, S={base.batch_size}, "
          f"threads {os.environ.get('OMP_NUM_THREADS', 'default')}")
    ours, plain = [], []
    for _ in range(args.repeats):  # interleaved, so drift hits both alike
        ours.append(_trainer_steps_per_s(off))
        plain.append(_plain_steps_per_s(off))
    best_ours, best_plain = max(ours), max(plain)
    print(f"steps/s, measurement off: sgdtop {best_ours:,.0f}  plain loop {best_plain:,.0f}  "
          f"ratio {best_ours / best_plain:.3f} (best of {args.repeats})")
    t_first, share = _first_event_seconds(args.profile, args.epochs)
    print(f"time from `sgdtop run` to run_start: {t_first:.2f} s")
    print(f"share of wall time measuring ({args.profile}, {args.epochs} epochs): "
          f"{100 * share:.1f}%")


if __name__ == "__main__":
    main()
