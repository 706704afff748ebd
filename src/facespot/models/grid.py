"""MobileNetV2 grid detector: one box and one objectness per cell, YOLO style.

The design of the small TensorFlow 2 / Keras face detectors that put a 3x3 convolution
with 5 outputs (objectness + box) on top of a MobileNetV2 (e.g. ``alpha = 0.75`` at 224x224,
a 7x7 grid): backbone from Sandler et al. 2018 (see
:mod:`facespot.models.backbones.mobilenet_v2`), cell-relative decoding as in YOLOv1
(Redmon et al., CVPR 2016, section 2): the box centre is ``cell origin + sigmoid(t) * cell``
and its size ``sigmoid(t)`` of the whole input (:func:`facespot.boxes.decode_grid`).

Options: ``alpha`` (width multiplier), ``input_size`` and ``grid_size`` (their ratio is
the stride: 32, 16 or 8), ``upsample``: with it, the stride-32 features are upsampled and
fused with the shallower ones (top-down, FPN style) down to the grid's stride; without it
the head reads the backbone stage at that stride directly and deeper stages are not built.
``reach`` (cells): how far beyond its own cell a box centre may go, and so which cells are
taught a face: 0 is YOLOv1 (the cell holding the centre only); 0.5 is YOLOv5's
``2 sigmoid - 0.5``, every cell within half a cell of the centre learning to box it. Why: with
``reach = 0`` the cells next to a face fire too (they see it as well as the responsible
one), but their boxes, never trained and held inside their own cell, cannot reach it, and NMS
may keep one of them: trained that way the CPU model's portrait boxes sat 20-40 px off.

Fully convolutional: at another input size the grid has ``ceil(side / stride)`` cells
per side, so the cells keep their size in pixels.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from facespot import anchors as anchor_gen
from facespot.errors import FacespotError
from facespot.models.backbones import build_backbone
from facespot.models.backbones.blocks import make_divisible
from facespot.models.base import BoxCoding, FaceModel, InputNorm
from facespot.models.layers import ConvBNAct, flatten_head
from facespot.models.registry import register

PRIOR_PROBABILITY = 0.01


def grid_stride(input_size: int, grid_size: int, allowed: tuple[int, ...]) -> int:
    """``input_size / grid_size`` when it is a whole number in ``allowed``, else a clear error."""
    if input_size < 1 or grid_size < 1 or input_size % grid_size:
        raise FacespotError(f"input_size {input_size} must be a positive multiple of grid_size {grid_size}")
    stride = input_size // grid_size
    if stride not in allowed:
        raise FacespotError(
            f"input_size / grid_size = {stride}, but this model supports strides {', '.join(map(str, allowed))}"
        )
    return stride


def init_objectness_bias(conv: nn.Conv2d, channels: slice | list[int]) -> None:
    """Small weights and a bias giving every cell a 1 % face prior (stable start on dense grids)."""
    nn.init.normal_(conv.weight, std=0.01)
    nn.init.zeros_(conv.bias)
    with torch.no_grad():
        conv.bias[channels] = -math.log((1 - PRIOR_PROBABILITY) / PRIOR_PROBABILITY)


@register("grid_mobilenetv2")
class GridMobileNetV2(FaceModel):
    """MobileNetV2 + per-cell (tx, ty, tw, th, objectness); ``A = ceil(H/s) * ceil(W/s)``."""

    name = "grid_mobilenetv2"
    paper = "MobileNetV2 (Sandler et al., CVPR 2018) + YOLO-style grid head (Redmon et al., CVPR 2016)"
    input_norm = InputNorm(mean=(127.5, 127.5, 127.5), std=(127.5, 127.5, 127.5))  # Keras MobileNetV2: x/127.5 - 1
    coding = BoxCoding("grid")
    num_keypoints = 0
    suppression = "hard"

    def __init__(
        self, alpha: float = 0.75, input_size: int = 224, grid_size: int = 7, upsample: bool = False, reach: float = 0.0
    ) -> None:
        if not float(alpha) > 0:
            raise FacespotError(f"grid_mobilenetv2: alpha must be positive, got {alpha}")
        if not 0.0 <= float(reach) <= 1.0:
            raise FacespotError(f"grid_mobilenetv2: reach must be between 0 and 1 cell, got {reach}")
        stride = grid_stride(int(input_size), int(grid_size), (8, 16, 32))
        if upsample and stride == 32:
            raise FacespotError("grid_mobilenetv2: upsample needs a grid finer than stride 32 (e.g. 14 cells at 224)")
        super().__init__(
            alpha=float(alpha), input_size=int(input_size), grid_size=int(grid_size), upsample=bool(upsample), reach=float(reach)
        )
        self.coding = BoxCoding("grid", reach=float(reach))
        self.train_input_size = (int(input_size), int(input_size))
        self.stride = stride
        self.backbone = build_backbone(
            "mobilenet_v2", alpha=float(alpha), max_stride=32 if upsample else stride, last_conv=True
        )
        self.level = self.backbone.index_of_stride(stride)
        if upsample:
            mid = make_divisible(128 * float(alpha))
            self.reduce = ConvBNAct(self.backbone.channels[-1], mid, 1, act="relu6")
            self.fuse = nn.ModuleList(
                ConvBNAct(mid + self.backbone.channels[i], mid, 3, act="relu6")
                for i in range(len(self.backbone.strides) - 2, self.level - 1, -1)
            )
            head_in = mid
        else:
            head_in = self.backbone.channels[self.level]
        self.head = nn.Conv2d(head_in, 5, 3, padding=1)
        init_objectness_bias(self.head, [4])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.backbone(x)
        if self.config["upsample"]:
            y = self.reduce(feats[-1])
            laterals = [feats[i] for i in range(len(feats) - 2, self.level - 1, -1)]  # deep to shallow
            for conv, lateral in zip(self.fuse, laterals):
                y = F.interpolate(y, size=lateral.shape[-2:], mode="nearest")
                y = conv(torch.cat([y, lateral], dim=1))
        else:
            y = feats[self.level]
        out = flatten_head(self.head(y), 5)  # (B, A, 5): tx, ty, tw, th, objectness
        return out[..., :4], out[..., 4]

    @torch.no_grad()
    def shift_face_logit(self, delta: float) -> None:
        self.head.bias[4] += float(delta)  # (tx, ty, tw, th, objectness)

    def anchors(self, height: int, width: int) -> np.ndarray:
        return anchor_gen.stride_grid_cells(height, width, self.stride, 1)

    def describe_anchors(self) -> str:
        g, n = self.config["grid_size"], self.config["input_size"]
        head = "top-down upsampled head" if self.config["upsample"] else "plain head"
        return (
            f"{g}x{g} grid at {n}x{n} (stride {self.stride}), 1 box per cell, {head}; "
            f"grid grows with the input (ceil(side/{self.stride}) cells)"
        )
