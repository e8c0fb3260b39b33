"""The model registry: the paper's networks by name.

=========== =============================================== ==================================
name        source                                          trainable parameters
=========== =============================================== ==================================
mlp         Advani & Saxe 2017 teacher-student student      40,301 (300→100→100→1);
                                                            41,210 with 10 outputs
resnet20    He et al. 2015, akamaster/pytorch_resnet_cifar10 269,722 (10 cls) / 275,572 (100)
resnet32    "                                               464,154 / 470,004
resnet44    "                                               658,586 / 664,436
resnet56    "                                               853,018 / 858,868
vgg11       chengyangfu/pytorch-vgg-cifar10 ``vgg11_bn``    9,756,426 / 9,802,596
=========== =============================================== ==================================

Every model uses a distinct ``nn.ReLU`` module (``inplace=False``) at each activation site,
so the dead-neuron probe can hook one module per layer.
"""

from __future__ import annotations

from torch import nn

from sgdtop.models.mlp import DEFAULT_HIDDEN, DEFAULT_IN_FEATURES, MLP, mlp
from sgdtop.models.resnet import RESNET_DEPTHS, CifarResNet, resnet
from sgdtop.models.vgg import CifarVGG, vgg11

MODEL_NAMES: tuple[str, ...] = ("mlp", "resnet20", "resnet32", "resnet44", "resnet56", "vgg11")
"""Names accepted by :func:`build_model`, in display order."""

__all__ = [
    "MLP",
    "MODEL_NAMES",
    "CifarResNet",
    "CifarVGG",
    "UnknownModelError",
    "build_model",
    "count_params",
]


class UnknownModelError(ValueError):
    """A model name that is not in :data:`MODEL_NAMES`; the message lists the valid ones."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"unknown model {name!r}; valid models: {', '.join(MODEL_NAMES)}")


def build_model(
    name: str,
    *,
    num_classes: int,
    in_features: int | None = None,
    hidden: tuple[int, ...] = DEFAULT_HIDDEN,
) -> nn.Module:
    """Build a freshly initialised model by registry name.

    Initialisation draws from torch's global RNG: seed it (``torch.manual_seed``) first for
    reproducible weights.

    Args:
        name: one of :data:`MODEL_NAMES`.
        num_classes: number of outputs: classes (logits) for classification, or the output
            dimension for regression (1 for the paper's teacher-student task).
        in_features: input dimension of ``mlp`` (default 300). Must be None for the image
            models, whose input is fixed at 3×32×32.
        hidden: hidden layer widths of ``mlp`` (default (100, 100)); ignored by the image
            models.

    Raises:
        UnknownModelError: ``name`` is not a registered model.
        ValueError: a size is not positive, or ``in_features`` is given for an image model.
    """
    if name not in MODEL_NAMES:
        raise UnknownModelError(name)
    if num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes}")
    if name == "mlp":
        d = DEFAULT_IN_FEATURES if in_features is None else in_features
        return mlp(num_outputs=num_classes, in_features=d, hidden=tuple(hidden))
    if in_features is not None:
        raise ValueError(
            f"model {name!r} takes 3×32×32 images; in_features must be None, got {in_features}"
        )
    if name in RESNET_DEPTHS:
        return resnet(RESNET_DEPTHS[name], num_classes=num_classes)
    assert name == "vgg11"
    return vgg11(num_classes=num_classes)


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters (scalars with ``requires_grad``) of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
