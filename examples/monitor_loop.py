"""Your own training loop, measured by ``sgdtop.Monitor``:

    python examples/monitor_loop.py            # writes runs/<id>/ (or $SGDTOP_RUNS_DIR)
    sgdtop watch latest                        # in another terminal, while it runs
    sgdtop replay latest --log                 # afterwards

A small MLP (20 → 16 → 16 → 4, ReLU; 676 parameters) learns 4 overlapping Gaussian
clusters with SGD, momentum and a step learning-rate schedule — plain PyTorch; the three
``mon`` lines are all sgdtop adds. The monitor reads η and β from the optimizer at every
step, measures the top-10 Hessian eigenvalues (and, the model being small, the exact full
spectrum) every 25 steps on a fixed probe batch, and writes an eval event per epoch.
Seconds on a CPU.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import sgdtop


def clusters(n: int, generator: torch.Generator, d: int = 20, classes: int = 4,
             spread: float = 0.5) -> TensorDataset:
    """``n`` points in R^d around ``classes`` fixed random centres (centre coordinates
    ~ N(0, spread²), unit-variance noise: the classes overlap, ~75% test accuracy)."""
    centres = torch.randn(classes, d, generator=torch.Generator().manual_seed(1)) * spread
    y = torch.randint(classes, (n,), generator=generator)
    x = centres[y] + torch.randn(n, d, generator=generator)
    return TensorDataset(x, y)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--runs-dir", default=None, help="default: $SGDTOP_RUNS_DIR or ./runs")
    args = ap.parse_args(argv)

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    train, test = clusters(1024, g), clusters(512, g)
    loader = DataLoader(train, batch_size=32, shuffle=True)
    probe = [train[:256]]  # one fixed batch of 256 training examples, as (x, y)
    model = nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                          nn.Linear(16, 4))
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.3)

    with sgdtop.Monitor(model, loss_fn, probe=probe, every=25, k=10, optimizer=opt,
                        name="clusters-mlp", runs_dir=args.runs_dir, batch_size=32,
                        train_size=len(train), test_size=len(test),
                        dataset="gaussian-clusters") as mon:
        for epoch in range(args.epochs):
            model.train()
            for x, y in loader:
                opt.zero_grad()
                loss = loss_fn(model(x), y)
                loss.backward()
                opt.step()
                mon.step(loss=loss, epoch=epoch)
            mon.eval(test=DataLoader(test, batch_size=256))
            sched.step()
    print(f"run {mon.status}: {mon.run_dir}  (sgdtop replay {mon.run_dir} --log)")


if __name__ == "__main__":
    main()
