"""CIFAR ResNets (ResNet20/32/44/56) with option-A shortcuts.

Source: He, Zhang, Ren, Sun (2015), "Deep Residual Learning for Image Recognition"
(arXiv:1512.03385), §4.2 (the CIFAR-10 networks), implemented as in Yerlan Idelbayev's
https://github.com/akamaster/pytorch_resnet_cifar10 (``resnet.py``), which matches the
paper's parameter counts.

Layout (depth = 6n + 2, n blocks per stage):

- stem: 3×3 conv C→16 (no bias; C = 3 for CIFAR, ``in_channels``), BN, ReLU, on 32×32
  inputs;
- stage 1: n basic blocks at 16 channels, 32×32; stage 2: n blocks at 32 channels, 16×16
  (first block strided); stage 3: n blocks at 64 channels, 8×8 (first block strided);
- a basic block is 3×3 conv → BN → ReLU → 3×3 conv → BN, plus the shortcut, then ReLU;
- option-A shortcut (parameter free): when the shape changes, the identity is subsampled
  with stride 2 (``x[:, :, ::2, ::2]``) and zero-padded with ``planes // 4`` channels on
  each side of the channel axis;
- global average pooling over the 8×8 map, then ``Linear(64, num_classes)``.

Initialisation as in akamaster: ``kaiming_normal_`` (fan-in, gain √2) on every conv and
linear weight; the linear bias and BN keep PyTorch's defaults (BN weight 1, bias 0). The
authors' Keras scheme (He-normal convs, Glorot-uniform read-out, zero biases) is
``init = "he"`` (:mod:`sgdtop.models.init`).

ResNet8 (n = 1) is the shortest member, for small inputs: on the 1×8×8 handwritten digits
(``sgdtop.data.digits``) its stages run at 8×8, 4×4 and 2×2.

Parameters (trainable), for 3-channel inputs and 10 / 100 classes:

======== ===== ========= =========
model    n     10 cls    100 cls
======== ===== ========= =========
ResNet8  1     75,290    81,140
ResNet20 3     269,722   275,572
ResNet32 5     464,154   470,004
ResNet44 7     658,586   664,436
ResNet56 9     853,018   858,868
======== ===== ========= =========

Every activation site is its own ``nn.ReLU`` (``relu`` in the stem; ``relu1``, ``relu2``
in each block), so the dead-neuron probe hooks one module per layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

RESNET_DEPTHS: dict[str, int] = {
    "resnet8": 8, "resnet20": 20, "resnet32": 32, "resnet44": 44, "resnet56": 56,
}
"""Registry name → depth (number of weight layers, 6n + 2)."""


class ZeroPadShortcut(nn.Module):
    """Option-A shortcut: stride-2 subsampling, then zero channels on both sides.

    Maps (B, C, H, W) to (B, C + 2·pad, ⌈H/2⌉, ⌈W/2⌉). No parameters.

    Args:
        pad: number of zero channels added before and after the input channels.
    """

    def __init__(self, pad: int) -> None:
        super().__init__()
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Subsample by 2 in H and W and zero-pad ``pad`` channels on each side."""
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad), "constant", 0.0)

    def extra_repr(self) -> str:
        return f"pad={self.pad}"


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with BN, an option-A shortcut, and a ReLU after the sum.

    Args:
        in_planes: input channels.
        planes: output channels.
        stride: stride of the first convolution (2 at the start of stages 2 and 3).
    """

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU(inplace=False)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module
        if stride != 1 or in_planes != planes:
            if planes - in_planes != 2 * (planes // 4):
                raise ValueError(
                    f"option-A shortcut needs planes = in_planes + 2·(planes // 4); "
                    f"got in_planes={in_planes}, planes={planes}"
                )
            self.shortcut = ZeroPadShortcut(planes // 4)
        else:
            self.shortcut = nn.Identity()
        self.relu2 = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """relu2(bn2(conv2(relu1(bn1(conv1(x))))) + shortcut(x))."""
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """A CIFAR ResNet of depth 6n + 2 for C×H×W inputs (3×32×32 for CIFAR).

    Any H, W ≥ 1 work (the pooling is adaptive): stage 2 and 3 halve them (rounding up).

    Args:
        num_blocks: blocks per stage, n (1, 3, 5, 7, 9 for ResNet8/20/32/44/56).
        num_classes: number of output logits.
        in_channels: input image channels C (3 for colour, 1 for grey).
    """

    def __init__(self, num_blocks: int, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        if num_blocks < 1 or num_classes < 1 or in_channels < 1:
            raise ValueError(
                f"num_blocks, num_classes and in_channels must be positive: {num_blocks}, "
                f"{num_classes}, {in_channels}"
            )
        self.num_blocks = num_blocks
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.conv1 = nn.Conv2d(in_channels, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=False)
        self.layer1 = self._make_stage(16, 16, num_blocks, stride=1)
        self.layer2 = self._make_stage(16, 32, num_blocks, stride=2)
        self.layer3 = self._make_stage(32, 64, num_blocks, stride=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(m.weight)

    @staticmethod
    def _make_stage(in_planes: int, planes: int, num_blocks: int, stride: int) -> nn.Sequential:
        blocks = [BasicBlock(in_planes, planes, stride)]
        blocks += [BasicBlock(planes, planes, 1) for _ in range(num_blocks - 1)]
        return nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map images (B, in_channels, H, W) to logits (B, num_classes)."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.linear(self.pool(out).flatten(1))


def resnet(depth: int, *, num_classes: int, in_channels: int = 3) -> CifarResNet:
    """The CIFAR ResNet of the given depth (8, 20, 32, 44, 56, ...: any 6n + 2) for images
    of ``in_channels`` channels."""
    if depth < 8 or (depth - 2) % 6 != 0:
        raise ValueError(f"CIFAR ResNet depth must be 6n + 2 with n ≥ 1, got {depth}")
    return CifarResNet((depth - 2) // 6, num_classes=num_classes, in_channels=in_channels)
