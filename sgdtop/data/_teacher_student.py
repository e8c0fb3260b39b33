"""The teacher-student regression task (Advani & Saxe 2017, as in §2 of Jastrzębski et
al. 2018): :func:`teacher_student` and its teacher network (definitions:
``docs/design.md``)."""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor
from torch.utils.data import TensorDataset

from sgdtop.data.task import _STREAM_TEACHER, TaskData, _generated_task, _generator


def _apply_teacher(x: Tensor, weights: list[Tensor]) -> Tensor:
    """Apply the teacher: the weight matrices in order, ReLU between them, no biases."""
    h = x
    for i, w in enumerate(weights):
        h = h @ w.T
        if i < len(weights) - 1:
            h = torch.relu(h)
    return h



def teacher_student(
    *,
    n_train: int,
    n_test: int,
    d: int = 300,
    out_dim: int = 1,
    noise_var: float = 0.2,
    teacher: str = "linear",
    seed: int = 0,
    probe_size: int,
    teacher_hidden: tuple[int, ...] = (100, 100),
) -> TaskData:
    """The teacher-student regression task of Advani & Saxe (2017), as in the paper's §2.

    Inputs x ∈ R^d are drawn from N(0, I/d) (each coordinate has standard deviation
    1/√d, so ‖x‖ ≈ 1). Targets are y = f(x) + ε, ε ~ N(0, noise_var · I) (``noise_var`` is
    the *variance*; the paper's 0.2), with the teacher f:

    - ``"linear"``: f(x) = W x, W ∈ R^{out_dim×d}, W_ij ~ N(0, 1); each target coordinate
      then has signal variance ‖W_i‖²/d ≈ 1.
    - ``"mlp"``: a random ReLU network of the student's shape, d → ``teacher_hidden`` →
      out_dim, no biases, weights drawn from N(0, 1) and scaled for O(1) outputs: the first
      layer is left unscaled (the inputs already carry the 1/√d), every later layer is
      multiplied by √(2/fan_in) (He scaling, which undoes ReLU halving the second moment),
      so every pre-activation, and each output, has second moment E[f(x)²] ≈ 1 (averaged
      over teachers), as the linear teacher's signal. For one teacher part of it is a
      constant offset (ReLU features have a nonzero mean), which the student's bias learns:
      over seeds 0–4, one output had E[f²] 0.47–1.13 and variance over x 0.36–0.58.

    The training and test sets share the teacher and draw fresh inputs and noise from
    independent streams of ``seed``. Everything is determined by the arguments.

    Args:
        n_train: number of training examples.
        n_test: number of test examples.
        d: input dimension (300 in the paper).
        out_dim: output dimension (1 in the paper).
        noise_var: label noise variance σ² ≥ 0 (0.2 in the paper).
        teacher: ``"linear"`` or ``"mlp"``.
        seed: non-negative seed.
        probe_size: number of training examples in the probe set (0..n_train).
        teacher_hidden: hidden widths of the ``"mlp"`` teacher.

    Returns:
        A regression :class:`TaskData` whose datasets are ``TensorDataset(x, y)`` with
        float32 x of shape (n, d) and y of shape (n, out_dim).

    Raises:
        ValueError: a size is not positive, ``noise_var`` < 0, an unknown ``teacher``, or
            ``probe_size`` outside [0, n_train].
    """
    if n_train < 1 or n_test < 1 or d < 1 or out_dim < 1:
        raise ValueError(
            "teacher-student sizes must be positive: "
            f"n_train={n_train}, n_test={n_test}, d={d}, out_dim={out_dim}"
        )
    if not noise_var >= 0.0:
        raise ValueError(f"noise_var (label noise variance) must be ≥ 0, got {noise_var}")
    if teacher not in ("linear", "mlp"):
        raise ValueError(f"unknown teacher {teacher!r}; valid teachers: linear, mlp")
    if any(h < 1 for h in teacher_hidden):
        raise ValueError(f"teacher hidden widths must be positive, got {teacher_hidden}")

    g_teacher = _generator(seed, _STREAM_TEACHER)
    if teacher == "linear":
        weights = [torch.randn(out_dim, d, generator=g_teacher)]
    else:
        widths = (d, *teacher_hidden, out_dim)
        weights = []
        for layer, (fan_in, fan_out) in enumerate(itertools.pairwise(widths)):
            w = torch.randn(fan_out, fan_in, generator=g_teacher)
            weights.append(w if layer == 0 else w * math.sqrt(2.0 / fan_in))

    def draw(n: int, stream: int) -> TensorDataset:
        g = _generator(seed, stream)
        x = torch.randn(n, d, generator=g) / math.sqrt(d)
        noise = torch.randn(n, out_dim, generator=g) * math.sqrt(noise_var)
        y = _apply_teacher(x, weights) + noise
        return TensorDataset(x.float(), y.float())

    return _generated_task("teacher-student", "regression", draw, n_train, n_test, seed,
                           probe_size, num_outputs=out_dim, in_features=d)
