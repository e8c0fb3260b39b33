"""Write a synthetic long run for the `sgdtop runs` / `replay` measurements.

    python benchmarks/make_long_run.py RUNS_DIR [--events 200000] [--summary]

One run directory under RUNS_DIR with a `run_start`, step events, and every 100 steps an
eval, a top-30 spectrum and a neurons event, then `run_end` — the shape of a long real
run. With ``--summary`` also the `summary.json` a trainer keeps beside it
(:func:`sgdtop.summary.save_summary`). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

K = 30


def lines(n_events: int) -> list[str]:
    out = [{"v": 1, "kind": "run_start", "t": 0.0, "step": 0, "epoch": 0,
            "run_id": "20260101-000000-long", "profile": {"name": "long"}, "model": "mlp",
            "num_params": 625, "device": "cpu", "versions": {"torch": "x"},
            "dataset": "teacher-student", "train_size": 4096, "test_size": 1024,
            "probe_size": 256, "lr": 0.05, "batch_size": 32, "momentum": 0.9,
            "weight_decay": 5e-4, "k": K, "epochs": 1000, "steps_per_epoch": 128}]
    step = 0
    while len(out) < n_events - 1:
        step += 1
        t = step * 0.01
        ep = step // 128
        out.append({"v": 1, "kind": "step", "t": t, "step": step, "epoch": ep, "lr": 0.05,
                    "loss": 1.0 / math.sqrt(step), "examples_per_s": 3200.0,
                    "steps_per_s": 100.0})
        if step % 100 == 0:
            eig = [3.0 / (i + 1) * (1 if i % 2 == 0 else -1) for i in range(K)]
            out.append({"v": 1, "kind": "eval", "t": t, "step": step, "epoch": ep,
                        "train_loss": 0.5, "train_acc": 0.9, "test_loss": 0.6,
                        "test_acc": 0.88})
            out.append({"v": 1, "kind": "spectrum", "t": t, "step": step, "epoch": ep,
                        "eigenvalues": eig, "residuals": [1e-4] * K,
                        "converged": [True] * K, "spectral_norm": 3.0, "cond_k": 30.0,
                        "lr": 0.05, "momentum": 0.9, "eta_lambda1": 0.15,
                        "stability_limit": 76.0, "hvps": 60, "seconds": 0.1, "warm": True})
            out.append({"v": 1, "kind": "neurons", "t": t, "step": step, "epoch": ep,
                        "dead_pct": 12.5, "threshold": 1e-6,
                        "layers": [{"name": "fc1", "units": 100, "dead": 12,
                                    "dead_pct": 12.0}]})
    out.append({"v": 1, "kind": "run_end", "t": step * 0.01, "step": step,
                "epoch": step // 128, "status": "completed", "message": "done",
                "steps": step, "seconds": step * 0.01})
    return [json.dumps(o) + "\n" for o in out[:n_events - 1] + out[-1:]]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs_dir", type=Path)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--summary", action="store_true")
    args = ap.parse_args()
    run_dir = args.runs_dir / "20260101-000000-mlp-lr0.05-b32-long"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "profile.json").write_text(json.dumps(
        {"name": "long", "model": "mlp", "dataset": "teacher-student", "lr": 0.05,
         "batch_size": 32, "momentum": 0.9}))
    text = "".join(lines(args.events))
    (run_dir / "events.jsonl").write_text(text)
    if args.summary:
        from sgdtop.summary import fold_events, save_summary

        path = run_dir / "events.jsonl"
        save_summary(run_dir, fold_events(path), path.stat().st_size, text.count("\n"))
    print(run_dir)


if __name__ == "__main__":
    main()
