"""Measuring without side effects: a context that puts a model in eval mode for a
measurement and leaves it exactly as it found it.

What is restored on exit (also when the measurement raises):

- the ``training`` flag of every submodule (each one, not just the root's);
- every buffer (e.g. batch-norm running statistics), compared and copied back only where it
  changed, so untouched buffers keep their autograd version counter;
- the global torch RNG state: CPU, and CUDA for the devices the model lives on
  (``torch.random.fork_rng``);
- on CUDA, TF32 is switched off for the measurement (matmul and cuDNN) and the user's
  setting put back: TF32's 10-bit mantissa made ResNet20 eigenvalues 3.7e-3 off the float64
  reference on an H200, above the 1e-3 tolerance.

Parameters and ``.grad`` are not saved: the measurements never write them (they take
gradients with ``torch.autograd.grad``, which does not accumulate into ``.grad``), and the
tests check that they stay bit-identical.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


def batch_norm_layers(model: nn.Module) -> list[nn.Module]:
    """The batch-norm submodules of ``model`` (any dimension, sync batch norm included)."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def model_cuda_devices(model: nn.Module) -> list[int]:
    """Indices of the CUDA devices holding any parameter or buffer of ``model``."""
    found: set[int] = set()
    for t in (*model.parameters(), *model.buffers()):
        if t.device.type == "cuda":
            found.add(torch.cuda.current_device() if t.device.index is None else t.device.index)
    return sorted(found)


#: How batch norm normalises during a measurement: ``"running"`` with its running
#: statistics (eval mode; the paper's protocol, "batch normalization switched off"), or
#: ``"batch"`` with the statistics of each probe micro-batch, as in a training step — the
#: function SGD actually differentiates. Dropout is off in both.
BATCH_NORM_MODES: tuple[str, ...] = ("running", "batch")


@contextmanager
def measuring(model: nn.Module, batch_norm: str = "running") -> Iterator[nn.Module]:
    """Run the body with ``model`` in eval mode (batch-norm layers in train mode with
    ``batch_norm="batch"``, see :data:`BATCH_NORM_MODES`), autograd enabled (even inside
    ``torch.no_grad`` or ``torch.inference_mode``), and the RNG forked; restore the modes,
    buffers (the running statistics a train-mode batch norm updates included) and RNG
    state afterwards. Yields the model."""
    if batch_norm not in BATCH_NORM_MODES:
        raise ValueError(f"batch_norm must be one of {', '.join(BATCH_NORM_MODES)}, got "
                         f"{batch_norm!r}")
    modes = [(m, m.training) for m in model.modules()]
    saved = [(b, b.detach().clone()) for b in model.buffers()]
    devices = model_cuda_devices(model)
    tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    if devices:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    with (
        torch.random.fork_rng(devices=devices),
        torch.inference_mode(False),
        torch.enable_grad(),
    ):
        try:
            model.eval()
            if batch_norm == "batch":
                for m in batch_norm_layers(model):
                    m.train()
            yield model
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
            for m, training in modes:
                m.training = training
            with torch.no_grad():
                for b, before in saved:
                    if not torch.equal(b, before):
                        b.copy_(before)
