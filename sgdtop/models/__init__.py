"""The model registry: the paper's networks by name.

=========== =============================================== ==================================
name        source                                          trainable parameters
=========== =============================================== ==================================
mlp         Advani & Saxe 2017 teacher-student student      40,301 (300→100→100→1);
                                                            41,210 with 10 outputs
resnet8     He et al. 2015, n = 1 (for 1×8×8 digits)         75,002 (1×8×8, 10 cls);
                                                            75,290 (3 channels, 10 cls)
resnet20    He et al. 2015, akamaster/pytorch_resnet_cifar10 269,722 (10 cls) / 275,572 (100)
resnet32    "                                               464,154 / 470,004
resnet44    "                                               658,586 / 664,436
resnet56    "                                               853,018 / 858,868
vgg11       chengyangfu/pytorch-vgg-cifar10 ``vgg11_bn``    9,756,426 / 9,802,596
=========== =============================================== ==================================

The ResNets take ``in_channels`` (3 for CIFAR and gratings, 1 for the grey digits); the
counts above are for 3 channels unless stated. ``init`` re-initialises a built model by a
scheme of :mod:`sgdtop.models.init` (``"torch"``: as built; ``"keras"``, ``"he"``, or
``"paper"``: the authors' scheme for the model).

Every model uses a distinct ``nn.ReLU`` module (``inplace=False``) at each activation site,
so the dead-neuron probe can hook one module per layer.
"""

from __future__ import annotations

from torch import nn

from sgdtop.models.init import (
    INIT_SCHEMES,
    PAPER_SCHEMES,
    InitError,
    initialise,
    resolve_scheme,
)
from sgdtop.models.mlp import DEFAULT_HIDDEN, DEFAULT_IN_FEATURES, MLP, mlp
from sgdtop.models.resnet import RESNET_DEPTHS, CifarResNet, resnet
from sgdtop.models.vgg import CifarVGG, vgg11

MODEL_NAMES: tuple[str, ...] = (
    "mlp", "resnet8", "resnet20", "resnet32", "resnet44", "resnet56", "vgg11",
)
"""Names accepted by :func:`build_model`, in display order."""

__all__ = [
    "INIT_SCHEMES",
    "MLP",
    "MODEL_NAMES",
    "PAPER_SCHEMES",
    "CifarResNet",
    "CifarVGG",
    "InitError",
    "UnknownModelError",
    "build_model",
    "count_params",
    "initialise",
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
    in_channels: int = 3,
    init: str = "torch",
) -> nn.Module:
    """Build a freshly initialised model by registry name.

    Initialisation draws from torch's global RNG: seed it (``torch.manual_seed``) first for
    reproducible weights. The constructor initialises first (PyTorch's defaults); a scheme
    other than ``"torch"`` then redraws the layers (:func:`sgdtop.models.init.initialise`).

    Args:
        name: one of :data:`MODEL_NAMES`.
        num_classes: number of outputs: classes (logits) for classification, or the output
            dimension for regression (1 for the paper's teacher-student task).
        in_features: input dimension of ``mlp`` (default 300). Must be None for the image
            models, whose input is an image.
        hidden: hidden layer widths of ``mlp`` (default (100, 100)); ignored by the image
            models.
        in_channels: input image channels of the ResNets (3: colour, 1: grey); VGG11 takes
            3 only; ignored by ``mlp``.
        init: one of :data:`~sgdtop.models.init.INIT_SCHEMES`.

    Raises:
        UnknownModelError: ``name`` is not a registered model.
        InitError: an unknown ``init`` (a ValueError).
        ValueError: a size is not positive, ``in_features`` is given for an image model, or
            ``in_channels`` is not 3 for VGG11.
    """
    if name not in MODEL_NAMES:
        raise UnknownModelError(name)
    if num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes}")
    resolve_scheme(init, name)  # an unknown scheme fails before anything is drawn
    model: nn.Module
    if name == "mlp":
        d = DEFAULT_IN_FEATURES if in_features is None else in_features
        model = mlp(num_outputs=num_classes, in_features=d, hidden=tuple(hidden))
    elif in_features is not None:
        raise ValueError(
            f"model {name!r} takes images; in_features must be None, got {in_features}"
        )
    elif name in RESNET_DEPTHS:
        model = resnet(RESNET_DEPTHS[name], num_classes=num_classes, in_channels=in_channels)
    else:
        assert name == "vgg11"
        if in_channels != 3:
            raise ValueError(f"vgg11 takes 3-channel 32×32 images; got in_channels="
                             f"{in_channels}")
        model = vgg11(num_classes=num_classes)
    return initialise(model, init, model_name=name)


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters (scalars with ``requires_grad``) of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
