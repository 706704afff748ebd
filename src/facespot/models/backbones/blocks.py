"""Small building blocks shared by the backbones (conv + BN + activation, SE, rounding).

Kept inside ``backbones/`` so the backbones are self-contained; every op here exports to
ONNX (opset 17) with dynamic height and width.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of ``divisor`` (the MobileNet reference code's rule).

    Rounds to the nearest multiple but never drops more than 10 % below ``value``, so a
    width multiplier never silently removes a large share of a layer.
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def activation(kind: str) -> nn.Module:
    """Activation by name; ``hswish`` is MobileNetV3's ``x * relu6(x + 3) / 6``."""
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "relu6":
        return nn.ReLU6(inplace=True)
    if kind == "hswish":
        return nn.Hardswish(inplace=True)
    if kind == "leaky":
        return nn.LeakyReLU(0.1, inplace=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown activation {kind!r}")


class ConvBNAct(nn.Sequential):
    """``Conv2d`` (no bias) + ``BatchNorm2d`` + activation, "same" padding.

    Padding ``k // 2`` with stride 2 gives an output of ``ceil(n / 2)`` for any ``n``, which is
    what lets every model compute its anchor count from the input size alone.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int = 3,
        stride: int = 1,
        groups: int = 1,
        act: str = "relu",
    ) -> None:
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch),
            activation(act),
        )
        self.out_channels = out_ch


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation with a hard-sigmoid gate (MobileNetV3 paper, section 5.3)."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeeze, 1)
        self.expand = nn.Conv2d(squeeze, channels, 1)
        self.act = nn.ReLU(inplace=True)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)  # exports as ReduceMean, any H/W
        return x * self.gate(self.expand(self.act(self.reduce(s))))


def init_weights(module: nn.Module) -> None:
    """He-normal convs (fan-in), unit BN, small linear layers.

    Fan-in scaling keeps activations at a stable size layer after layer, including
    depthwise convs (fan-in 9, where fan-out scaling would shrink them ~10x per layer).
    That matters beyond training: an untrained model in eval mode (BN with unit running
    statistics) must give finite, moderate outputs for ONNX parity checks and model cards.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


def group_stages(layers: Sequence[nn.Module], strides: Sequence[int]) -> tuple[list[nn.Sequential], list[int]]:
    """Split a flat layer list into stages that each end just before the next stride-2 layer.

    ``strides`` is each layer's own stride. The first returned stage ends at overall stride 4
    (stem and stride-2 layers are folded into it), matching the ResNet convention of
    returning ``res2 .. res5`` at strides 4, 8, 16, 32.
    """
    stages: list[list[nn.Module]] = [[]]
    out_strides: list[int] = []
    total = 1
    for layer, s in zip(layers, strides):
        if s == 2 and total >= 4 and stages[-1]:
            out_strides.append(total)
            stages.append([])
        total *= s
        stages[-1].append(layer)
    out_strides.append(total)
    return [nn.Sequential(*st) for st in stages], out_strides
