"""A YOLOv1-style detector (Redmon et al., "You Only Look Once", CVPR 2016) for faces.

Following the paper (section 2): the image is divided into an ``S x S`` grid (``S = 7`` at
448x448); each cell predicts ``B`` boxes (``B = 2``), each with a confidence. A box's centre
is relative to its cell and its size to the whole image; here both are squashed with a
sigmoid (:func:`facespot.boxes.decode_grid`) so every prediction is bounded. With a single
class the class-probability map is dropped: the confidence *is* the face score. The model
is trained with the YOLOv1 sum-squared loss (section 2.2, eq. 3;
:func:`facespot.train.losses.yolo_loss`), the predictor with the best IoU in the face's
cell being "responsible" for it.

Differences from the paper, for a light, export-friendly face detector:

* the backbone is ResNet-18, the early-pooling ``pool_resnet`` or MobileNetV3 instead of
  the 24-layer Darknet network (section 2.1);
* the two fully connected layers are replaced by convolutions (a stride-2 conv per octave
  from the backbone's stride down to ``input_size / grid_size``, a 3x3 conv, a 1x1
  predictor), so the network is fully convolutional: at the configured size it outputs
  ``A = S * S * B`` predictions, and at other sizes the grid keeps its cell size in pixels
  (``ceil(side / stride)`` cells per side), which ONNX export with dynamic H/W needs.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from facespot import anchors as anchor_gen
from facespot.errors import FacespotError
from facespot.models.backbones import build_backbone
from facespot.models.base import BoxCoding, FaceModel, InputNorm
from facespot.models.grid import grid_stride, init_objectness_bias
from facespot.models.layers import ConvBNAct, flatten_head
from facespot.models.registry import register

BACKBONES = ("resnet18", "pool_resnet", "mobilenet_v3", "mobilenet_v3_small")
STRIDES = (8, 16, 32, 64, 128)


@register("yolo")
class YoloV1(FaceModel):
    """YOLOv1-style grid detector; ``forward(x) -> (deltas (B,A,4), logits (B,A))``.

    Parameters
    ----------
    backbone : ``"resnet18"``, ``"pool_resnet"``, ``"mobilenet_v3"`` (Large) or ``"mobilenet_v3_small"``.
    input_size, grid_size : ``S`` cells per side at ``input_size``; their ratio is the stride.
    boxes_per_cell : ``B`` predictors per cell.
    head_channels : width of the convolutional head.
    """

    name = "yolo"
    paper = "Redmon et al., You Only Look Once: Unified, Real-Time Object Detection, CVPR 2016"
    input_norm = InputNorm(mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375))
    coding = BoxCoding("grid")
    num_keypoints = 0
    suppression = "hard"

    def __init__(
        self,
        backbone: str = "resnet18",
        input_size: int = 448,
        grid_size: int = 7,
        boxes_per_cell: int = 2,
        head_channels: int = 256,
    ) -> None:
        if backbone not in BACKBONES:
            raise FacespotError(f"yolo: backbone must be one of {', '.join(BACKBONES)}, got {backbone!r}")
        if int(boxes_per_cell) < 1 or int(head_channels) < 1:
            raise FacespotError("yolo: boxes_per_cell and head_channels must be positive")
        stride = grid_stride(int(input_size), int(grid_size), STRIDES)
        super().__init__(
            backbone=backbone,
            input_size=int(input_size),
            grid_size=int(grid_size),
            boxes_per_cell=int(boxes_per_cell),
            head_channels=int(head_channels),
        )
        self.train_input_size = (int(input_size), int(input_size))
        self.stride = stride
        self.boxes_per_cell = int(boxes_per_cell)
        self.backbone = build_backbone(backbone, max_stride=stride)
        feat_ch, feat_stride = self.backbone.channels[-1], self.backbone.strides[-1]
        layers: list[nn.Module] = []
        ch = feat_ch
        for _ in range(int(round(math.log2(stride // feat_stride)))):
            layers.append(ConvBNAct(ch, head_channels, 3, 2, act="leaky"))
            ch = head_channels
        layers.append(ConvBNAct(ch, head_channels, 3, act="leaky"))
        self.neck = nn.Sequential(*layers)
        self.head = nn.Conv2d(head_channels, 5 * self.boxes_per_cell, 1)
        init_objectness_bias(self.head, list(range(4, 5 * self.boxes_per_cell, 5)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.neck(self.backbone(x)[-1])
        out = flatten_head(self.head(y), 5)  # (B, gh*gw*boxes, 5): tx, ty, tw, th, confidence
        return out[..., :4], out[..., 4]

    @torch.no_grad()
    def shift_face_logit(self, delta: float) -> None:
        self.head.bias[4 :: 5] += float(delta)  # each predictor's (tx, ty, tw, th, confidence)

    def anchors(self, height: int, width: int) -> np.ndarray:
        return anchor_gen.stride_grid_cells(height, width, self.stride, self.boxes_per_cell)

    def describe_anchors(self) -> str:
        s, n, b = self.config["grid_size"], self.config["input_size"], self.boxes_per_cell
        return (
            f"{s}x{s} grid x {b} boxes at {n}x{n} (stride {self.stride}, {self.config['backbone']}); "
            f"grid grows with the input (ceil(side/{self.stride}) cells)"
        )
