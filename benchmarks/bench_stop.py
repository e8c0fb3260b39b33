"""Stop latency of a live run: seconds from a signal to `sgdtop run`'s exit.

    python benchmarks/bench_stop.py [--repeats 3]

Starts `sgdtop run smoke --epochs 1000 --log` (CPU), waits for its first spectrum, sends
SIGINT (Ctrl+C) or SIGTERM, and prints the seconds until the process exits with the run
ended `interrupted`. A number, not a test: it asserts nothing (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _once(sig: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp)
        env = {**os.environ, "NO_COLOR": "1"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "sgdtop", "run", "smoke", "--epochs", "1000", "--log",
             "--runs-dir", str(runs)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, env=env)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            events = list(runs.glob("*/events.jsonl"))
            if events and '"kind": "spectrum"' in events[0].read_text():
                break
            time.sleep(0.1)
        t0 = time.monotonic()
        proc.send_signal(sig)
        proc.communicate(timeout=120)
        seconds = time.monotonic() - t0
        if proc.returncode != 130:
            print(f"  (exit code {proc.returncode}, expected 130)")
        return seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    for sig in (signal.SIGINT, signal.SIGTERM):
        times = [_once(sig) for _ in range(args.repeats)]
        print(f"{signal.Signals(sig).name}: median {statistics.median(times):.2f} s, "
              f"max {max(times):.2f} s over {len(times)} runs")


if __name__ == "__main__":
    main()
