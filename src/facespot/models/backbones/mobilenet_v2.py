"""MobileNetV2 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018).

Layout from the paper's Table 2: a 3x3/2 stem with 32 channels, seventeen inverted-residual
blocks (1x1 expand by ``t``, 3x3 depthwise, *linear* 1x1 projection; residual when the
stride is 1 and the width is unchanged, section 3.3-4), and a final 1x1 conv to 1280.
The width multiplier ``alpha`` scales every layer except the last conv for ``alpha < 1``
(which keeps 1280 channels, section 4 "Trade-off hyper parameters"); channels are rounded
to multiples of 8 as in the authors' reference implementation.

Returned stages end at strides 4, 8, 16, 32 (24, 32, 96 and 1280 channels at ``alpha=1``).
"""

from __future__ import annotations

import torch
from torch import nn

from facespot.models.backbones.base import Backbone
from facespot.models.backbones.blocks import ConvBNAct, group_stages, init_weights, make_divisible

# (expansion t, output channels c, repeats n, first stride s) -- paper Table 2
_SETTINGS = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


class InvertedResidual(nn.Module):
    """Expand (1x1, ReLU6) -> depthwise 3x3 (ReLU6) -> project (1x1, linear) [+ input]."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = in_ch * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(ConvBNAct(in_ch, hidden, 1, act="relu6"))
        layers += [
            ConvBNAct(hidden, hidden, 3, stride, groups=hidden, act="relu6"),
            ConvBNAct(hidden, out_ch, 1, act="none"),
        ]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


def mobilenet_v2(alpha: float = 1.0, max_stride: int | None = None, last_conv: bool = True) -> Backbone:
    """Build MobileNetV2 with width multiplier ``alpha``.

    Parameters
    ----------
    alpha : width multiplier (paper: 0.35 .. 1.4); channels are rounded to multiples of 8.
    max_stride : drop stages deeper than this stride.
    last_conv : keep the final 1x1 conv (1280 channels) at the end of the stride-32 stage.
    """
    if not alpha > 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    in_ch = make_divisible(32 * alpha)
    layers: list[nn.Module] = [ConvBNAct(3, in_ch, 3, 2, act="relu6")]
    strides = [2]
    for t, c, n, s in _SETTINGS:
        out_ch = make_divisible(c * alpha)
        for i in range(n):
            stride = s if i == 0 else 1
            layers.append(InvertedResidual(in_ch, out_ch, stride, t))
            strides.append(stride)
            in_ch = out_ch
    if last_conv:
        last = make_divisible(1280 * max(1.0, alpha))
        layers.append(ConvBNAct(in_ch, last, 1, act="relu6"))
        strides.append(1)
    stages, out_strides = group_stages(layers, strides)
    channels = [_out_channels(st) for st in stages]
    names = [f"stride{s}" for s in out_strides]
    net = Backbone(stages, out_strides, channels, names, max_stride=max_stride)
    init_weights(net)
    return net


def _out_channels(stage: nn.Sequential) -> int:
    last = stage[-1]
    if isinstance(last, ConvBNAct):
        return last.out_channels
    return last.block[-1].out_channels
