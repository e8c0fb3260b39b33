"""Hessian-vector products of the mean loss over a probe set.

The Hessian is that of ``L(θ) = Σ_b n_b · loss_fn(model(x_b), y_b) / Σ_b n_b`` over the
probe set's micro-batches ``(x_b, y_b)`` of ``n_b`` examples each (``loss_fn`` returns the
*mean* loss of a micro-batch, so weighting by ``n_b`` gives the mean over all examples),
with respect to the model's trainable parameters (``requires_grad``), flattened in
``model.named_parameters()`` order. Weight decay is not part of it: pass the data loss only.

Device and dtype come from the model's parameters: floating-point inputs and targets are
moved (and cast) to them, per micro-batch, on every pass.

Methods (chosen by measurement, see ``benchmarks/bench_spectrum.py``):

- ``double_backward`` (default): ``g = ∂L/∂θ`` with ``create_graph=True``, then
  ``Hv = ∂(g·v)/∂θ``. On the 2-core CPU this project is built on, 2.8× a gradient on
  ResNet20 (64 CIFAR-shaped inputs) against 3.2× for ``forward_over_reverse``, and it
  works on every model we tried.
- ``forward_over_reverse``: ``torch.func.jvp(torch.func.grad(L), θ, v)``. Kept for the
  comparison; it fails on some models (e.g. a ZeroTensor error on the MLP).

Use the operator inside :func:`sgdtop.spectrum.guard.measuring` (eval mode, no side
effects); :func:`sgdtop.spectrum.hessian_spectrum` does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final

import torch
from torch import nn

from sgdtop.spectrum.errors import NonFiniteError, SpectrumInputError

LossFn = Callable[[Any, Any], torch.Tensor]
"""``loss_fn(outputs, targets) -> scalar tensor``: the mean loss of one micro-batch."""

Batches = Iterable[Any]
"""A re-iterable of ``(inputs, targets)`` pairs (a list, a DataLoader), ``inputs`` a tensor
whose first dimension is the number of examples."""

HVP_METHODS: Final[tuple[str, ...]] = ("double_backward", "forward_over_reverse")
DEFAULT_HVP_METHOD: Final[str] = "double_backward"


def trainable_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """``(name, parameter)`` for every parameter with ``requires_grad``, in order.

    Raises :class:`SpectrumInputError` if there are none, or if they span several devices.
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise SpectrumInputError("the model has no trainable parameters")
    devices = {p.device for _, p in named}
    if len(devices) > 1:
        raise SpectrumInputError(
            f"the model's parameters span several devices ({', '.join(map(str, devices))})")
    return named


def _batch_parts(batch: Any) -> tuple[torch.Tensor, Any, int]:
    """Split one probe batch into ``(inputs, targets, n_examples)`` (validated)."""
    if not isinstance(batch, tuple | list) or len(batch) != 2:
        raise SpectrumInputError(
            f"each probe batch must be an (inputs, targets) pair, got {type(batch).__name__}")
    x, y = batch
    if not isinstance(x, torch.Tensor) or x.dim() == 0:
        raise SpectrumInputError("probe inputs must be tensors with a batch dimension")
    size = int(x.shape[0])
    if size == 0:
        raise SpectrumInputError("a probe batch has no examples")
    return x, y, size


def count_examples(batches: Batches) -> int:
    """Number of examples in the probe set (one pass; validates every batch).

    Raises :class:`SpectrumInputError` for an empty probe set, a malformed batch, or a
    one-shot iterator (the probe set is iterated once per Hessian-vector product).
    """
    if isinstance(batches, Iterator):
        raise SpectrumInputError(
            "batches must be re-iterable (a list of (inputs, targets) or a DataLoader), "
            "not a one-shot iterator")
    total = sum(_batch_parts(b)[2] for b in batches)
    if total == 0:
        raise SpectrumInputError("the probe set is empty")
    return total


class ProbeHessian:
    """The Hessian H of the mean probe-set loss, as a linear operator on flat vectors.

    ``H @ v`` (or :meth:`matvec`) takes a vector of shape (n,), n = :attr:`num_params`, of
    any floating dtype and device, and returns ``Hv`` as float64 on :attr:`device`, in the
    loss's units per parameter unit squared. :attr:`hvps` counts the products so far.
    """

    def __init__(
        self, model: nn.Module, loss_fn: LossFn, batches: Batches, *,
        method: str = DEFAULT_HVP_METHOD,
    ) -> None:
        if method not in HVP_METHODS:
            raise SpectrumInputError(
                f"unknown HVP method {method!r}; choose one of {', '.join(HVP_METHODS)}")
        named = trainable_parameters(model)
        self.model = model
        self.loss_fn = loss_fn
        self.batches = batches
        self.method = method
        self.names = [n for n, _ in named]
        self.params = [p for _, p in named]
        self.numels = [p.numel() for p in self.params]
        self.num_params = sum(self.numels)
        self.device = self.params[0].device
        self.dtype = self.params[0].dtype
        self.num_examples = count_examples(batches)
        self.hvps = 0

    # -- probe set ------------------------------------------------------------------------

    def _move(self, t: Any) -> Any:
        if not isinstance(t, torch.Tensor):
            return t
        if t.is_floating_point():
            return t.to(device=self.device, dtype=self.dtype, non_blocking=True)
        return t.to(device=self.device, non_blocking=True)

    def iter_batches(self) -> Iterator[tuple[Any, Any, int]]:
        """Yield ``(inputs, targets, n_examples)`` on the model's device, then check the
        probe set still has :attr:`num_examples` examples."""
        total = 0
        for batch in self.batches:
            x, y, size = _batch_parts(batch)
            total += size
            yield self._move(x), self._move(y), size
        if total != self.num_examples:
            raise SpectrumInputError(
                f"the probe set changed size between passes ({self.num_examples} → {total})")

    def batch_loss(self, x: Any, y: Any) -> torch.Tensor:
        """``loss_fn(model(x), y)``, checked to be a scalar."""
        loss = self.loss_fn(self.model(x), y)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise SpectrumInputError("loss_fn must return a scalar tensor (the batch mean)")
        return loss.reshape(())

    # -- flat vectors ---------------------------------------------------------------------

    def unflatten(self, v: torch.Tensor) -> list[torch.Tensor]:
        """Split a flat (n,) vector into parameter-shaped tensors (parameter dtype/device)."""
        if v.shape != (self.num_params,):
            raise SpectrumInputError(
                f"vector has shape {tuple(v.shape)}; expected ({self.num_params},)")
        pieces = v.to(self.device).split(self.numels)
        return [x.view_as(p).to(p.dtype) for x, p in zip(pieces, self.params, strict=True)]

    @staticmethod
    def flatten(ts: Iterable[torch.Tensor]) -> torch.Tensor:
        """Concatenate tensors into one flat float64 vector."""
        return torch.cat([t.reshape(-1).to(torch.float64) for t in ts])

    # -- products -------------------------------------------------------------------------

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """``H v`` as a float64 (n,) vector on :attr:`device`.

        Raises :class:`NonFiniteError` if the product is NaN or infinite.
        """
        vs = self.unflatten(v)
        out = torch.zeros(self.num_params, dtype=torch.float64, device=self.device)
        for x, y, size in self.iter_batches():
            if self.method == "double_backward":
                hv = self._hvp_double_backward(x, y, vs)
            else:
                hv = self._hvp_forward_over_reverse(x, y, vs)
            out.add_(self.flatten(hv), alpha=size)
        out.div_(self.num_examples)
        if not bool(torch.isfinite(out).all()):
            raise NonFiniteError(
                "a Hessian-vector product is not finite (the probe loss is NaN or infinite?)")
        self.hvps += 1
        return out

    __matmul__ = matvec

    def _hvp_double_backward(
        self, x: Any, y: Any, vs: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        """``Hv = (∂g/∂θ)ᵀ v`` for ``g = ∂loss/∂θ`` (H is symmetric): a vector-Jacobian
        product through the gradient's graph."""
        loss = self.batch_loss(x, y)
        if not loss.requires_grad:
            return [torch.zeros_like(p) for p in self.params]
        grads = torch.autograd.grad(
            loss, self.params, create_graph=True, allow_unused=True, materialize_grads=True)
        pairs = [(g, u) for g, u in zip(grads, vs, strict=True) if g.requires_grad]
        if not pairs:  # the loss is linear in the parameters
            return [torch.zeros_like(p) for p in self.params]
        return list(torch.autograd.grad(
            [g for g, _ in pairs], self.params, grad_outputs=[u for _, u in pairs],
            allow_unused=True, materialize_grads=True))

    def _hvp_forward_over_reverse(
        self, x: Any, y: Any, vs: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        from torch.func import functional_call, grad, jvp

        primals = {n: p.detach() for n, p in zip(self.names, self.params, strict=True)}
        tangents = dict(zip(self.names, vs, strict=True))

        def loss_of(params: dict[str, torch.Tensor]) -> torch.Tensor:
            loss = self.loss_fn(functional_call(self.model, params, (x,)), y)
            return loss.reshape(())

        _, hv = jvp(grad(loss_of), (primals,), (tangents,))
        return [hv[n] for n in self.names]

    def gradient(self) -> torch.Tensor:
        """∂L/∂θ of the mean probe loss, flat float64 (the benchmark's unit of cost)."""
        out = torch.zeros(self.num_params, dtype=torch.float64, device=self.device)
        for x, y, size in self.iter_batches():
            loss = self.batch_loss(x, y)
            g = torch.autograd.grad(loss, self.params, allow_unused=True, materialize_grads=True)
            out.add_(self.flatten(g), alpha=size)
        return out.div_(self.num_examples)

    def loss(self) -> float:
        """The mean probe loss L (no autograd)."""
        total = 0.0
        with torch.no_grad():
            for x, y, size in self.iter_batches():
                total += float(self.batch_loss(x, y)) * size
        return total / self.num_examples
