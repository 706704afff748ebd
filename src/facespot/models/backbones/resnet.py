"""ResNet-18/34/50/101 (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016).

Architecture as in the paper's Table 1: a 7x7/2 stem and 3x3/2 max pool, then four stages of
BasicBlocks (18/34) or Bottlenecks (50/101) at strides 4, 8, 16, 32 (``res2`` .. ``res5``).
Downsampling sits on the 3x3 convolution of the first bottleneck of a stage ("ResNet v1.5",
as in most re-implementations), with a 1x1/2 projection shortcut (option B, section 3.3).

``pool_resnet`` is ResNet-18 with one extra 3x3/2 max pool right after the stem: same
parameters, every residual stage runs on a quarter of the positions (about 4x fewer MACs in
the body), and the stages sit at strides 8, 16, 32, 64. It suits detectors that want a
coarse grid anyway (a 7x7 YOLO grid on a 448 input is stride 64).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from facespot.models.backbones.base import Backbone
from facespot.models.backbones.blocks import init_weights


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with an identity (or 1x1 projection) shortcut."""

    expansion = 1

    def __init__(self, in_ch: int, width: int, stride: int = 1) -> None:
        super().__init__()
        out_ch = width * self.expansion
        self.conv1 = nn.Conv2d(in_ch, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = _projection(in_ch, out_ch, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand by 4, plus shortcut."""

    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int = 1) -> None:
        super().__init__()
        out_ch = width * self.expansion
        self.conv1 = nn.Conv2d(in_ch, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = _projection(in_ch, out_ch, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + self.shortcut(x))


def _projection(in_ch: int, out_ch: int, stride: int) -> nn.Module:
    if stride == 1 and in_ch == out_ch:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))


_DEPTHS: dict[int, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
}


def resnet(depth: int = 18, early_pool: bool = False, max_stride: int | None = None) -> Backbone:
    """Build a ResNet backbone returning ``res2 .. res5`` (or fewer, see ``max_stride``).

    Parameters
    ----------
    depth : 18, 34, 50 or 101.
    early_pool : add a second 3x3/2 max pool after the stem (the ``pool_resnet`` variant).
    max_stride : drop the stages deeper than this stride (e.g. 16 keeps ``res2..res4``, as
        Tiny Faces does, and saves res5's parameters).
    """
    if depth not in _DEPTHS:
        raise ValueError(f"ResNet depth must be one of {sorted(_DEPTHS)}, got {depth}")
    block, counts = _DEPTHS[depth]
    stem: list[nn.Module] = [
        nn.Conv2d(3, 64, 7, 2, 3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, 1),
    ]
    if early_pool:
        stem.append(nn.MaxPool2d(3, 2, 1))
    base_stride = 8 if early_pool else 4
    stages: list[nn.Module] = []
    channels: list[int] = []
    in_ch = 64
    for i, (width, n) in enumerate(zip((64, 128, 256, 512), counts)):
        blocks: list[nn.Module] = []
        for j in range(n):
            stride = 2 if (i > 0 and j == 0) else 1
            blocks.append(block(in_ch, width, stride))
            in_ch = width * block.expansion
        layer = nn.Sequential(*blocks)
        stages.append(nn.Sequential(*stem, layer) if i == 0 else layer)
        channels.append(in_ch)
    strides = [base_stride * 2**i for i in range(4)]
    names = ["res2", "res3", "res4", "res5"]
    net = Backbone(stages, strides, channels, names, max_stride=max_stride)
    init_weights(net)
    # Zero the last BN scale of every residual branch (Goyal et al. 2017, "zero-gamma"):
    # each block starts as the identity, so a deep ResNet trains stably from scratch and
    # its untrained outputs stay bounded instead of doubling in variance per block.
    for m in net.modules():
        if isinstance(m, (BasicBlock, Bottleneck)):
            nn.init.zeros_(m.bn2.weight if isinstance(m, BasicBlock) else m.bn3.weight)
    return net


def resnet18(max_stride: int | None = None) -> Backbone:
    return resnet(18, max_stride=max_stride)


def resnet34(max_stride: int | None = None) -> Backbone:
    return resnet(34, max_stride=max_stride)


def resnet50(max_stride: int | None = None) -> Backbone:
    return resnet(50, max_stride=max_stride)


def resnet101(max_stride: int | None = None) -> Backbone:
    return resnet(101, max_stride=max_stride)


def pool_resnet(max_stride: int | None = None) -> Backbone:
    """ResNet-18 with an extra early 3x3/2 pool: same parameters, about a quarter the MACs."""
    return resnet(18, early_pool=True, max_stride=max_stride)


__all__: Sequence[str] = [
    "BasicBlock",
    "Bottleneck",
    "pool_resnet",
    "resnet",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
]
