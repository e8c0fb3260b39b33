"""The side check of docs/reproduction.md: the top Hessian eigenvalue of ResNet20 (batch
norm) on gratings at η=0.1, β=0.9, in eval mode (running statistics: the paper's protocol,
sgdtop's default) and with batch statistics (the function SGD differentiates), after
1, 5, 20, 40 and 80 steps. Power iteration (25 steps) for the latter, written out here
independently of sgdtop's HVP code. About 2 minutes on one CPU core:

    python docs/bn_eval_vs_batch.py
"""
import copy
import math

import torch

from sgdtop import profile as P
from sgdtop.spectrum import hessian_spectrum
from sgdtop.train import prepare

torch.set_num_threads(1)
s = prepare(P.load("resnet20-gratings-cpu"))
model, loss_fn, probe = s.model, s.loss_fn, s.probe_batches
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
gen = torch.Generator().manual_seed(0)
xs, ys = s.task.train.tensors

def train_mode_lambda1(m: torch.nn.Module, iters: int = 25) -> float:
    """The dominant eigenvalue of the batch-statistics Hessian on the first probe batch."""
    m = copy.deepcopy(m)
    m.train()
    params = [p for p in m.parameters() if p.requires_grad]
    v = [torch.randn_like(p) for p in params]
    lam = 0.0
    for _ in range(iters):
        n = math.sqrt(sum(float((t * t).sum()) for t in v))
        v = [t / n for t in v]
        x, y = probe[0]
        loss = loss_fn(m(x), y)
        g = torch.autograd.grad(loss, params, create_graph=True)
        hv = torch.autograd.grad(sum((a * b).sum() for a, b in zip(g, v, strict=True)), params)
        lam = sum(float((a * b).sum()) for a, b in zip(hv, v, strict=True))
        v = [t.detach() for t in hv]
    return lam

step = 0
for _epoch in range(4):
    perm = torch.randperm(len(xs), generator=gen)
    for i in range(0, len(xs), 128):
        idx = perm[i:i + 128]
        x, y = s.task.augment(xs[idx], gen), ys[idx]
        model.train()
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
        step += 1
        if step in (1, 5, 20, 40, 80):
            ev = hessian_spectrum(model, loss_fn, probe, k=1, tol=1e-2).eigenvalues[0]
            tr = train_mode_lambda1(model)
            print(f"step {step:3d}: λ1 eval-mode {ev:9.2f}  train-mode {tr:9.2f}  "
                  f"η·λ1 {0.1*ev:7.2f} / {0.1*tr:6.2f}  (limit 2(1+β) = 3.8)", flush=True)
