"""Dead neurons: units whose mean |activation| over the probe batch is below a threshold.

Definition (``docs/design.md``, "Dead neurons"): a *unit* is an output feature of a dense
layer or an output channel of a conv layer, taken after each ReLU; it is *dead* when the
mean of ``|a|`` over the examples (and, for a conv channel, over its spatial positions) is
below ``threshold`` (1e-3, the paper's). Reported per ReLU site and overall (units pooled
over all sites), in percent.

How the activations are found, in one forward pass per batch, model in eval mode (dropout
off, batch norm on its running statistics, as for the Hessian):

- every ``nn.ReLU`` module, by a forward hook on its output (a module called several
  times per forward, e.g. torchvision's ``BasicBlock.relu``, gives one site per call:
  ``name#0``, ``name#1``, ...);
- functional ReLUs (``F.relu``, ``torch.relu``, ``Tensor.relu`` and their in-place
  variants) called outside an ``nn.ReLU`` module, by a ``torch.overrides.TorchFunctionMode``
  that sees every torch function call; such a site is named after the module whose
  ``forward`` called it, ``"<module>:relu"`` (``":relu"`` for the root model's own forward).

The unit axis is dimension 1 of the activation (``(batch, features)`` or
``(batch, channels, ...)``, PyTorch's layout); the mean runs over all other dimensions.

Side-effect free: train/eval flags, buffers and the RNG state are restored
(:func:`sgdtop.spectrum.guard.measuring`); it runs under ``torch.no_grad`` (no ``.grad``
touched); every hook is removed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from sgdtop.spectrum.errors import SpectrumInputError
from sgdtop.spectrum.guard import measuring

DEAD_THRESHOLD_DEFAULT: Final[float] = 1e-3
"""The paper's threshold on a unit's mean |activation|."""

FUNCTIONAL_RELUS: Final[frozenset[Callable[..., Any]]] = frozenset({
    F.relu, F.relu_, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_,
})
"""The functional ReLUs :func:`dead_neurons` intercepts."""


@dataclass(frozen=True, slots=True)
class LayerNeurons:
    """One ReLU site: ``units`` units, ``dead`` of them dead (``dead_pct`` = 100·dead/units)."""

    name: str
    units: int
    dead: int
    dead_pct: float


@dataclass(frozen=True, slots=True)
class NeuronReport:
    """Dead units per ReLU site and overall.

    Attributes:
        dead_pct: % of all units (pooled over sites) that are dead; NaN if the model has no
            ReLU site.
        layers: the sites in the order of their first call in the forward pass.
        threshold: the threshold on mean |activation| (activation units).
        units, dead: totals over all sites.
        examples: examples the means were taken over.
    """

    dead_pct: float
    layers: tuple[LayerNeurons, ...]
    threshold: float
    units: int
    dead: int
    examples: int


class _Sites:
    """Accumulates Σ|a| and counts per unit, per site, over batches."""

    def __init__(self) -> None:
        self.sums: dict[tuple[str, int], torch.Tensor] = {}
        self.counts: dict[tuple[str, int], int] = {}
        self.calls: dict[str, int] = {}

    def new_forward(self) -> None:
        self.calls = {}

    def record(self, name: str, a: Any) -> None:
        if not isinstance(a, torch.Tensor) or a.dim() == 0 or not a.is_floating_point():
            return
        index = self.calls.get(name, 0)
        self.calls[name] = index + 1
        key = (name, index)
        x = a.detach()
        if x.dim() == 1:  # no batch dimension: one example
            x = x[None]
        units = x.shape[1]
        per_unit = x.abs().transpose(0, 1).reshape(units, -1).sum(1, dtype=torch.float64)
        count = x.numel() // units if units else 0
        if key in self.sums:
            if self.sums[key].shape[0] != units:
                raise SpectrumInputError(
                    f"ReLU site {name!r} changed width between batches "
                    f"({self.sums[key].shape[0]} → {units} units)")
            self.sums[key] += per_unit
            self.counts[key] += count
        else:
            self.sums[key] = per_unit
            self.counts[key] = count


class _FunctionalReLUs(TorchFunctionMode):
    """Records the outputs of functional ReLUs called outside an ``nn.ReLU`` module."""

    def __init__(self, sites: _Sites, stack: list[tuple[str, nn.Module]]) -> None:
        super().__init__()
        self.sites = sites
        self.stack = stack

    def __torch_function__(
        self, func: Callable[..., Any], types: Any, args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        out = func(*args, **(kwargs or {}))
        if func in FUNCTIONAL_RELUS:
            inside = self.stack[-1] if self.stack else ("", None)
            if not isinstance(inside[1], nn.ReLU):
                self.sites.record(f"{inside[0]}:relu", out)
        return out


def _batches(inputs: Any) -> Iterable[Any]:
    if isinstance(inputs, torch.Tensor):
        return [inputs]
    if isinstance(inputs, Iterable):
        return inputs
    raise SpectrumInputError(
        "inputs must be a tensor or an iterable of tensors or (inputs, targets) pairs")


def dead_neurons(
    model: nn.Module, inputs: Any, threshold: float = DEAD_THRESHOLD_DEFAULT
) -> NeuronReport:
    """The dead units of ``model`` on ``inputs`` (module docstring for the definitions and
    how activations are found).

    Args:
        model: the network (any device; inputs are moved to its first parameter's device,
            floating inputs cast to its dtype).
        inputs: a batch tensor, or an iterable of tensors or of ``(inputs, targets)`` pairs
            (e.g. the probe set): the mean is then over all their examples.
        threshold: a unit is dead when its mean |activation| is below this (≥ 0).

    Raises:
        SpectrumInputError: negative threshold, no examples, malformed inputs.
    """
    if not threshold >= 0:
        raise SpectrumInputError(f"threshold must be ≥ 0, got {threshold!r}")
    ref = next((t for t in (*model.parameters(), *model.buffers())), None)
    sites = _Sites()
    stack: list[tuple[str, nn.Module]] = []
    handles = []
    for name, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(_push(stack, name, module)))
        handles.append(module.register_forward_hook(_pop(stack, sites, name, module)))
    examples = 0
    try:
        with measuring(model), torch.no_grad(), _FunctionalReLUs(sites, stack):
            for batch in _batches(inputs):
                x = batch[0] if isinstance(batch, tuple | list) else batch
                if not isinstance(x, torch.Tensor) or x.dim() == 0:
                    raise SpectrumInputError("each input batch must be a tensor of examples")
                if ref is not None:
                    dtype = ref.dtype if x.is_floating_point() else x.dtype
                    x = x.to(device=ref.device, dtype=dtype)
                examples += int(x.shape[0])
                sites.new_forward()
                stack.clear()
                model(x)
    finally:
        for h in handles:
            h.remove()
    if examples == 0:
        raise SpectrumInputError("no examples to measure dead neurons on")
    return _report(sites, threshold, examples)


def _push(
    stack: list[tuple[str, nn.Module]], name: str, module: nn.Module
) -> Callable[..., None]:
    def hook(mod: nn.Module, args: Any) -> None:
        stack.append((name, module))

    return hook


def _pop(
    stack: list[tuple[str, nn.Module]], sites: _Sites, name: str, module: nn.Module
) -> Callable[..., None]:
    def hook(mod: nn.Module, args: Any, output: Any) -> None:
        if stack and stack[-1][1] is module:
            stack.pop()
        if isinstance(module, nn.ReLU):
            sites.record(name, output)

    return hook


def _report(sites: _Sites, threshold: float, examples: int) -> NeuronReport:
    repeats: dict[str, int] = {}
    for name, _ in sites.sums:
        repeats[name] = repeats.get(name, 0) + 1
    layers = []
    for (name, index), total in sites.sums.items():
        count = sites.counts[(name, index)]
        units = int(total.shape[0])
        means = total / count if count else torch.zeros_like(total)
        dead = int((means < threshold).sum())
        label = f"{name}#{index}" if repeats[name] > 1 else name
        layers.append(LayerNeurons(label, units, dead, 100.0 * dead / units if units else 0.0))
    units = sum(x.units for x in layers)
    dead = sum(x.dead for x in layers)
    return NeuronReport(
        dead_pct=100.0 * dead / units if units else math.nan,
        layers=tuple(layers),
        threshold=float(threshold),
        units=units,
        dead=dead,
        examples=examples,
    )
