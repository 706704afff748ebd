"""MobileNetV3-Large and -Small (Howard et al., "Searching for MobileNetV3", ICCV 2019).

Block specifications from the paper's Tables 1 (Large) and 2 (Small): inverted residuals
with 3x3 or 5x5 depthwise convolutions, optional squeeze-and-excite (squeeze to a quarter
of the expansion width, hard-sigmoid gate, section 5.3) and the h-swish non-linearity
``x * relu6(x + 3) / 6`` in the deeper half (section 5.2). The backbone ends with the 1x1
conv to 960 (Large) / 576 (Small) channels; the classifier head is not built.
Width multiplier ``alpha`` rounds channels to multiples of 8, as in the paper.

Returned stages end at strides 4, 8, 16, 32.
"""

from __future__ import annotations

import torch
from torch import nn

from facespot.models.backbones.base import Backbone
from facespot.models.backbones.blocks import ConvBNAct, SqueezeExcite, group_stages, init_weights, make_divisible

# kernel, expansion size, output channels, squeeze-excite, activation, stride
_LARGE = [
    (3, 16, 16, False, "relu", 1),
    (3, 64, 24, False, "relu", 2),
    (3, 72, 24, False, "relu", 1),
    (5, 72, 40, True, "relu", 2),
    (5, 120, 40, True, "relu", 1),
    (5, 120, 40, True, "relu", 1),
    (3, 240, 80, False, "hswish", 2),
    (3, 200, 80, False, "hswish", 1),
    (3, 184, 80, False, "hswish", 1),
    (3, 184, 80, False, "hswish", 1),
    (3, 480, 112, True, "hswish", 1),
    (3, 672, 112, True, "hswish", 1),
    (5, 672, 160, True, "hswish", 2),
    (5, 960, 160, True, "hswish", 1),
    (5, 960, 160, True, "hswish", 1),
]
_SMALL = [
    (3, 16, 16, True, "relu", 2),
    (3, 72, 24, False, "relu", 2),
    (3, 88, 24, False, "relu", 1),
    (5, 96, 40, True, "hswish", 2),
    (5, 240, 40, True, "hswish", 1),
    (5, 240, 40, True, "hswish", 1),
    (5, 120, 48, True, "hswish", 1),
    (5, 144, 48, True, "hswish", 1),
    (5, 288, 96, True, "hswish", 2),
    (5, 576, 96, True, "hswish", 1),
    (5, 576, 96, True, "hswish", 1),
]
_LAST = {"large": 960, "small": 576}


class MBConv3(nn.Module):
    """MobileNetV3 bottleneck: [expand 1x1] -> depthwise kxk -> [SE] -> linear 1x1 [+ input]."""

    def __init__(self, in_ch: int, exp: int, out_ch: int, kernel: int, se: bool, act: str, stride: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if exp != in_ch:
            layers.append(ConvBNAct(in_ch, exp, 1, act=act))
        layers.append(ConvBNAct(exp, exp, kernel, stride, groups=exp, act=act))
        if se:
            layers.append(SqueezeExcite(exp, make_divisible(exp / 4)))
        layers.append(ConvBNAct(exp, out_ch, 1, act="none"))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and in_ch == out_ch
        self.out_channels = out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


def mobilenet_v3(variant: str = "large", alpha: float = 1.0, max_stride: int | None = None) -> Backbone:
    """Build MobileNetV3 ``"large"`` or ``"small"`` with width multiplier ``alpha``."""
    if variant not in _LAST:
        raise ValueError(f"MobileNetV3 variant must be 'large' or 'small', got {variant!r}")
    if not alpha > 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    spec = _LARGE if variant == "large" else _SMALL
    in_ch = make_divisible(16 * alpha)
    layers: list[nn.Module] = [ConvBNAct(3, in_ch, 3, 2, act="hswish")]
    strides = [2]
    for k, exp, out, se, act, s in spec:
        exp_ch, out_ch = make_divisible(exp * alpha), make_divisible(out * alpha)
        layers.append(MBConv3(in_ch, exp_ch, out_ch, k, se, act, s))
        strides.append(s)
        in_ch = out_ch
    last = make_divisible(_LAST[variant] * alpha)
    layers.append(ConvBNAct(in_ch, last, 1, act="hswish"))
    strides.append(1)
    stages, out_strides = group_stages(layers, strides)
    channels = [st[-1].out_channels for st in stages]
    names = [f"stride{s}" for s in out_strides]
    net = Backbone(stages, out_strides, channels, names, max_stride=max_stride)
    init_weights(net)
    return net


def mobilenet_v3_large(alpha: float = 1.0, max_stride: int | None = None) -> Backbone:
    return mobilenet_v3("large", alpha, max_stride)


def mobilenet_v3_small(alpha: float = 1.0, max_stride: int | None = None) -> Backbone:
    return mobilenet_v3("small", alpha, max_stride)
