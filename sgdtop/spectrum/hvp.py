"""Hessian-vector products of the mean loss over a probe set.

The Hessian is that of ``L(θ) = Σ_b n_b · loss_fn(model(x_b), y_b) / Σ_b n_b`` over the
probe set's micro-batches ``(x_b, y_b)`` of ``n_b`` examples each (``loss_fn`` returns the
*mean* loss of a micro-batch, so weighting by ``n_b`` gives the mean over all examples),
with respect to the model's trainable parameters (``requires_grad``), flattened in
``model.named_parameters()`` order. Weight decay is not part of it: pass the data loss only.

Device and dtype come from the model's parameters: floating-point inputs and targets are
moved (and cast) to them, per micro-batch, on every pass.

Methods (chosen by measurement, see ``benchmarks/bench_spectrum.py``):

- ``double_backward`` (default): ``g = ∂L_b/∂θ`` with ``create_graph=True``, then
  ``Hv = (∂g/∂θ)ᵀ v``, one backward pass through the gradient's graph (H is symmetric).
  The graphs of all micro-batches are kept between products while the memory autograd
  saves for them fits a budget (:func:`default_graph_cache_bytes`), so that after the
  first product each HVP is that one backward pass (the cost in gradients, kept and
  recomputed, is in ``benchmarks/README.md``).
- ``forward_over_reverse``: ``torch.func.jvp(torch.func.grad(L_b), θ, v)``. Slower than
  double backward on the CPU in every measurement so far, and it fails on some models (a
  ZeroTensor error with ``mse_loss`` on the MLP); kept for comparison on GPUs.

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

GRAPH_CACHE_CPU_BYTES: Final[int] = 1 << 30
"""Default budget (bytes) for keeping the gradient's graph between HVPs on the CPU."""

_NONFINITE: Final[str] = (
    "a Hessian-vector product is not finite (the probe loss is NaN or infinite?)")

MATMAT_MAX_BLOCK: Final[int] = 32
"""The largest block :meth:`ProbeHessian.matmat` issues in one batched pass."""

MATMAT_UNKNOWN_BLOCK: Final[int] = 4
"""The block size used when no kept graph tells the memory one product needs."""

GRAPH_CACHE_CUDA_FRACTION: Final[float] = 0.25
"""Default budget on CUDA: this fraction of the device's free memory at the first HVP."""


def default_graph_cache_bytes(device: torch.device) -> int:
    """The memory the gradient graphs of the whole probe set may keep between HVPs:
    ``GRAPH_CACHE_CPU_BYTES`` (1 GiB) on the CPU, a quarter of the free memory on CUDA,
    0 (no cache) elsewhere."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(GRAPH_CACHE_CUDA_FRACTION * free)
    return GRAPH_CACHE_CPU_BYTES if device.type == "cpu" else 0


class _SavedBytes:
    """Counts the bytes autograd saves for backward (distinct storages, parameters
    excluded): the memory a retained graph holds."""

    def __init__(self, exclude: set[int]) -> None:
        self.seen = set(exclude)
        self.bytes = 0

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        try:
            storage = t.untyped_storage()
            key, size = storage.data_ptr(), storage.nbytes()
        except (RuntimeError, NotImplementedError):  # e.g. a tensor subclass
            return t
        if key not in self.seen:
            self.seen.add(key)
            self.bytes += size
        return t

    @staticmethod
    def unpack(t: torch.Tensor) -> torch.Tensor:
        return t


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
    one-shot iterator (the probe set is iterated again for Hessian-vector products).
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

    ``graph_cache_bytes``: memory the micro-batches' gradient graphs may keep between
    products (None: :func:`default_graph_cache_bytes`; 0: never). The first product
    measures what autograd saves and keeps the graphs if the total fits; :attr:`graph_bytes`
    is then that total, and :meth:`release` frees them. ``one_pass``: run the whole probe
    set as one batch where the rule of :meth:`_one_pass` allows (False: always the
    caller's micro-batches, as before issue 18).
    """

    def __init__(
        self, model: nn.Module, loss_fn: LossFn, batches: Batches, *,
        method: str = DEFAULT_HVP_METHOD, graph_cache_bytes: int | None = None,
        one_pass: bool = True,
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
        self._micro_batches = sum(1 for _ in batches)
        self.passes_per_product = self._micro_batches
        """Forward/backward passes over the probe per product once the graphs are built:
        1 where the whole probe fits one pass (see :meth:`_one_pass`)."""
        self.hvps = 0
        self.block_passes = 0
        self._nonfinite: torch.Tensor | None = None
        self.graph_cache_bytes = graph_cache_bytes
        self.graph_bytes = 0
        self._graphs: list[tuple[list[tuple[torch.Tensor, int]], int]] | None = None
        self._cache_refused = method != "double_backward" or graph_cache_bytes == 0
        self.one_pass = one_pass

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
        return self.batch_loss_of(self.model(x), y)

    def batch_loss_of(self, outputs: Any, y: Any) -> torch.Tensor:
        """``loss_fn(outputs, y)``, checked to be a scalar."""
        loss = self.loss_fn(outputs, y)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise SpectrumInputError("loss_fn must return a scalar tensor (the batch mean)")
        return loss.reshape(())

    # -- flat vectors ---------------------------------------------------------------------

    def unflatten(self, v: torch.Tensor) -> list[torch.Tensor]:
        """Split a flat (n,) vector into parameter-shaped tensors (parameter dtype/device)."""
        if v.shape != (self.num_params,):
            raise SpectrumInputError(
                f"vector has shape {tuple(v.shape)}; expected ({self.num_params},)")
        pieces = torch.split(v.to(self.device), self.numels)
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
        if self.method == "forward_over_reverse":
            for x, y, size in self.iter_batches():
                out.add_(self.flatten(self._hvp_forward_over_reverse(x, y, vs)), alpha=size)
        elif self._graphs is not None:
            for grads, size in self._graphs:
                out.add_(self.flatten(self._vjp(grads, vs, retain=True)), alpha=size)
        else:
            self._matvec_building_cache(vs, out)
        out.div_(self.num_examples)
        self._check_finite(out)
        self.hvps += 1
        self.block_passes += 1
        return out

    def _check_finite(self, out: torch.Tensor) -> None:
        """Raise :class:`NonFiniteError` if ``out`` is not finite — at once on the CPU; on
        other devices the flag is kept on the device (no synchronization per product)
        and :meth:`check_finite` raises later."""
        bad = ~torch.isfinite(out).all()
        if self.device.type == "cpu":
            if bool(bad):
                raise NonFiniteError(_NONFINITE)
        else:
            self._nonfinite = bad if self._nonfinite is None else self._nonfinite | bad

    def check_finite(self) -> None:
        """Raise :class:`NonFiniteError` if any product so far was not finite (one
        read-back; what the deferred check of non-CPU devices needs at the end)."""
        if self._nonfinite is not None and bool(self._nonfinite):
            raise NonFiniteError(_NONFINITE)

    __matmul__ = matvec

    def matmat(self, v: torch.Tensor, block: int | None = None) -> torch.Tensor:
        """``H V`` for a block of vectors V of shape (n, b), as float64 (n, b) on
        :attr:`device`: the b products share one backward pass through each kept
        gradient graph (``torch.autograd.grad(..., is_grads_batched=True)``, a vmap over
        the backward), in chunks of at most ``block`` columns (None:
        :meth:`block_limit`). Equal to b calls of :meth:`matvec` within float32
        rounding. :attr:`hvps` grows by b, :attr:`block_passes` (backward sweeps over
        the probe: one per matvec, one per batched chunk) by the chunks.
        ``forward_over_reverse`` falls back to one :meth:`matvec` per column.

        Raises :class:`NonFiniteError` if a product is NaN or infinite.
        """
        if v.dim() != 2 or v.shape[0] != self.num_params:
            raise SpectrumInputError(
                f"block has shape {tuple(v.shape)}; expected ({self.num_params}, b)")
        b = v.shape[1]
        if b == 0:
            return torch.zeros(self.num_params, 0, dtype=torch.float64, device=self.device)
        if self.method == "forward_over_reverse" or b == 1:
            return torch.stack([self.matvec(v[:, j]) for j in range(b)], 1)
        if self._graphs is None and not self._cache_refused:
            first = self.matvec(v[:, 0])  # builds the kept graphs (or refuses them)
            return torch.cat([first[:, None], self.matmat(v[:, 1:], block)], 1)
        size = block if block is not None else self.block_limit()
        return torch.cat([self._block(c) for c in torch.split(v, max(1, size), dim=1)], 1)

    def block_limit(self) -> int:
        """The block size b for :meth:`matmat`, from the memory budget: a batched backward
        takes about b times the memory of one product's backward, taken to be the kept
        graph's size (its activations mirror the forward's), so b = (budget −
        graph_bytes) // graph_bytes, at least 1 and at most ``MATMAT_MAX_BLOCK``; without
        a kept graph (none measured yet, or refused) ``MATMAT_UNKNOWN_BLOCK``."""
        if self.graph_bytes <= 0:
            return MATMAT_UNKNOWN_BLOCK
        budget = (self.graph_cache_bytes if self.graph_cache_bytes is not None
                  else default_graph_cache_bytes(self.device))
        return int(max(1, min(MATMAT_MAX_BLOCK, (budget - self.graph_bytes) // self.graph_bytes)))

    def _block(self, v: torch.Tensor) -> torch.Tensor:
        """One batched pass: ``H V`` for V (n, c)."""
        c = v.shape[1]
        vs = self.unflatten_batched(v.T)
        out = torch.zeros(c, self.num_params, dtype=torch.float64, device=self.device)
        if self._graphs is not None:
            for grads, size in self._graphs:
                out.add_(self._flatten_batched(self._vjp_batched(grads, vs, retain=True), c),
                         alpha=size)
        else:
            for x, y, size in self.iter_batches():
                grads = self._gradient_graph(x, y)
                out.add_(self._flatten_batched(self._vjp_batched(grads, vs, retain=False), c),
                         alpha=size)
        out.div_(self.num_examples)
        self._check_finite(out)
        self.hvps += c
        self.block_passes += 1
        return out.T

    def unflatten_batched(self, v: torch.Tensor) -> list[torch.Tensor]:
        """Split rows (c, n) into parameter-shaped blocks (c, *shape)."""
        c = v.shape[0]
        pieces = torch.split(v.to(self.device), self.numels, dim=1)
        return [x.reshape(c, *p.shape).to(p.dtype)
                for x, p in zip(pieces, self.params, strict=True)]

    @staticmethod
    def _flatten_batched(ts: Iterable[torch.Tensor], c: int) -> torch.Tensor:
        return torch.cat([t.reshape(c, -1).to(torch.float64) for t in ts], 1)

    def _vjp_batched(
        self, grads: list[tuple[torch.Tensor, int]], vs: list[torch.Tensor], *, retain: bool
    ) -> list[torch.Tensor]:
        """``H vⱼ`` for every row j of the blocks ``vs``: one batched backward."""
        c = vs[0].shape[0]
        zeros = [torch.zeros(c, *p.shape, dtype=p.dtype, device=p.device) for p in self.params]
        if not grads:
            return zeros
        got = torch.autograd.grad(
            [g for g, _ in grads], self.params, grad_outputs=[vs[i] for _, i in grads],
            retain_graph=retain, allow_unused=True, is_grads_batched=True)
        return [z if g is None else g for g, z in zip(got, zeros, strict=True)]

    def _matvec_building_cache(self, vs: list[torch.Tensor], out: torch.Tensor) -> None:
        """Double backward over the probe set into ``out`` (Σ n_b·H_b v). Unless refused,
        keep each pass's gradient graph for the next products, as long as the memory
        autograd saves for them stays within the budget; the passes are the whole probe
        at once where it fits (:meth:`_one_pass`), else the caller's micro-batches."""
        keep = not self._cache_refused
        budget = 0
        if keep:
            budget = (self.graph_cache_bytes if self.graph_cache_bytes is not None
                      else default_graph_cache_bytes(self.device))
        params = {p.untyped_storage().data_ptr() for p in self.params}
        graphs: list[tuple[list[tuple[torch.Tensor, int]], int]] = []
        used = 0
        whole = self._one_pass(budget, params) if keep else None
        self.passes_per_product = 1 if whole is not None else self._micro_batches
        for x, y, size in ([whole] if whole is not None else self.iter_batches()):
            counter = _SavedBytes(params)
            if keep:
                with torch.autograd.graph.saved_tensors_hooks(counter.pack, counter.unpack):
                    grads = self._gradient_graph(x, y)
            else:
                grads = self._gradient_graph(x, y)
            out.add_(self.flatten(self._vjp(grads, vs, retain=keep)), alpha=size)
            if keep:
                used += counter.bytes
                if used > budget:
                    keep, graphs = False, []
                    self._cache_refused = True
                else:
                    graphs.append((grads, size))
        if keep:
            self._graphs, self.graph_bytes = graphs, used

    def _one_pass(self, budget: int, params: set[int]) -> tuple[Any, Any, int] | None:
        """The whole probe set as one ``(inputs, targets, n)`` batch, or None to keep the
        caller's micro-batches.

        The rule (issue 18): one pass over the whole probe when (a) the micro-batches can
        be concatenated (tensor inputs and targets, equal trailing shapes and dtypes), (b)
        the model is entirely in eval mode (nothing normalizes over a batch: not so with
        ``batch_norm="batch"``, whose statistics are those of each micro-batch), and (c)
        the memory autograd saves for the whole probe's gradient graph, estimated from the
        first micro-batch as its bytes per example times the examples, fits the graph
        budget. The kept graphs of all micro-batches would take that memory anyway; one
        pass saves the per-batch overhead (measured: ``benchmarks/README.md``)."""
        if (not self.one_pass or self._micro_batches <= 1
                or any(m.training for m in self.model.modules())):
            return None
        parts = list(self.iter_batches())
        xs, ys = [p[0] for p in parts], [p[1] for p in parts]
        for group in (xs, ys):
            if not all(isinstance(t, torch.Tensor) and t.dim() > 0 for t in group):
                return None
            if len({(t.shape[1:], t.dtype) for t in group}) != 1:
                return None
        counter = _SavedBytes(params)
        with torch.autograd.graph.saved_tensors_hooks(counter.pack, counter.unpack):
            self._gradient_graph(xs[0], ys[0])
        if counter.bytes / parts[0][2] * self.num_examples > budget:
            return None
        return torch.cat(xs), torch.cat(ys), self.num_examples

    def release(self) -> None:
        """Free the cached gradient graphs (the next product rebuilds them)."""
        self._graphs = None
        self.graph_bytes = 0

    def _gradient_graph(self, x: Any, y: Any) -> list[tuple[torch.Tensor, int]]:
        """``(∂loss/∂θ_i, i)`` with ``create_graph=True``, for the parameters whose
        gradient depends on θ (the others contribute nothing to H)."""
        loss = self.batch_loss(x, y)
        if not loss.requires_grad:
            return []
        grads = torch.autograd.grad(
            loss, self.params, create_graph=True, allow_unused=True, materialize_grads=True)
        return [(g, i) for i, g in enumerate(grads) if g.requires_grad]

    def _vjp(
        self, grads: list[tuple[torch.Tensor, int]], vs: list[torch.Tensor], *, retain: bool
    ) -> list[torch.Tensor]:
        """``Hv = (∂g/∂θ)ᵀ v`` (H is symmetric): one backward through the gradient's
        graph."""
        if not grads:  # the loss is linear in the parameters
            return [torch.zeros_like(p) for p in self.params]
        return list(torch.autograd.grad(
            [g for g, _ in grads], self.params, grad_outputs=[vs[i] for _, i in grads],
            retain_graph=retain, allow_unused=True, materialize_grads=True))

    def _hvp_forward_over_reverse(
        self, x: Any, y: Any, vs: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        from torch.func import functional_call, grad, jvp

        primals = {n: p.detach() for n, p in zip(self.names, self.params, strict=True)}
        tangents = dict(zip(self.names, vs, strict=True))

        def loss_of(params: dict[str, torch.Tensor]) -> torch.Tensor:
            loss = self.loss_fn(functional_call(self.model, params, (x,)), y)
            return loss.reshape(())

        hv = jvp(grad(loss_of), (primals,), (tangents,))[1]
        return [hv[n] for n in self.names]

    def gradient(self) -> torch.Tensor:
        """∂L/∂θ of the mean probe loss, flat float64 (the benchmark's unit of cost)."""
        return self.loss_and_gradient()[1]

    def loss_and_gradient(self) -> tuple[float, torch.Tensor]:
        """The mean probe loss L and ∂L/∂θ (flat float64), in one pass over the probe."""
        out = torch.zeros(self.num_params, dtype=torch.float64, device=self.device)
        total = 0.0
        for x, y, size in self.iter_batches():
            loss = self.batch_loss(x, y)
            g = torch.autograd.grad(loss, self.params, allow_unused=True, materialize_grads=True)
            out.add_(self.flatten(g), alpha=size)
            total += float(loss.detach()) * size
        return total / self.num_examples, out.div_(self.num_examples)

    def loss(self) -> float:
        """The mean probe loss L (no autograd)."""
        total = 0.0
        with torch.no_grad():
            for x, y, size in self.iter_batches():
                total += float(self.batch_loss(x, y)) * size
        return total / self.num_examples
