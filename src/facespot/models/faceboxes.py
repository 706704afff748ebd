"""FaceBoxes: a CPU real-time face detector (Zhang et al., IJCB 2017, arXiv:1708.05234).

Layout, following the paper:

* **RDCL** (section 3.1, "Rapidly Digested Convolutional Layers"): conv 7x7/s4 with
  C.ReLU (24 -> 48 channels), max-pool 3x3/s2, conv 5x5/s2 with C.ReLU (64 -> 128),
  max-pool 3x3/s2. The input shrinks 32x in four layers, which is what makes the model
  fast on a CPU; C.ReLU halves the cost of those wide early convolutions.
* **MSCL** (section 3.2, "Multiple Scale Convolutional Layers"): three Inception blocks
  (Figure 2: 1x1; pool+1x1; 1x1+3x3; 1x1+3x3+3x3, 32 channels each), then
  conv3_1 (1x1, 128) / conv3_2 (3x3/s2, 256) and conv4_1 (1x1, 128) / conv4_2
  (3x3/s2, 256). Detection layers: inception3 (stride 32), conv3_2 (64), conv4_2 (128).
* **Anchors** (section 3.3, Table 1): sides 32/64/128 on inception3, 256 on conv3_2,
  512 on conv4_2; densification 4x/2x/1x for 32/64/128 gives 16 + 4 + 1 = 21 anchors per
  inception3 cell (see :func:`facespot.anchors.faceboxes_anchors`).
* Heads are 3x3 convs predicting 4 box deltas and 2 class scores per anchor (the paper
  trains a 2-way softmax); ``forward`` returns ``l_face - l_background`` as the logit.

Fully convolutional: any input size at test time; trained at 1024x1024 (section 4.1).
Uses plain hard NMS at test time (section 4.1: NMS at 0.3 IoU).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from facespot import anchors as anchor_gen
from facespot.models.base import BoxCoding, FaceModel, InputNorm
from facespot.models.layers import ConvBNAct, flatten_head, init_head
from facespot.models.registry import register

# The three detection levels: (stride, anchor sides, densities) and the channels they see.
LEVELS = anchor_gen.FACEBOXES_LEVELS
LEVEL_CHANNELS = (128, 256, 256)
ANCHORS_PER_CELL = tuple(sum(d * d for d in dens) for _, _, dens in LEVELS)  # (21, 1, 1)


class Inception(nn.Module):
    """FaceBoxes' Inception block (Figure 2): four 32-channel branches, 128 -> 128."""

    def __init__(self, in_ch: int = 128) -> None:
        super().__init__()
        self.b1 = ConvBNAct(in_ch, 32, 1)
        self.b2 = ConvBNAct(in_ch, 32, 1)  # after a 3x3/s1 pool
        self.b3 = nn.Sequential(ConvBNAct(in_ch, 24, 1), ConvBNAct(24, 32, 3))
        self.b4 = nn.Sequential(ConvBNAct(in_ch, 24, 1), ConvBNAct(24, 32, 3), ConvBNAct(32, 32, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.max_pool2d(x, 3, 1, 1)
        return torch.cat([self.b1(x), self.b2(pooled), self.b3(x), self.b4(x)], dim=1)


@register("faceboxes")
class FaceBoxes(FaceModel):
    """FaceBoxes detector; ``forward(x) -> (deltas (B,A,4), logits (B,A))``."""

    name = "faceboxes"
    paper = "Zhang et al., FaceBoxes: A CPU Real-time Face Detector with High Accuracy, IJCB 2017"
    # Caffe-style mean subtraction without scaling (the reference model's 104/117/123 in BGR).
    input_norm = InputNorm(mean=(123.0, 117.0, 104.0), std=(1.0, 1.0, 1.0), channel_order="RGB")
    coding = BoxCoding("ssd", (0.1, 0.2))
    num_keypoints = 0
    fixed_input_size = None
    train_input_size = (1024, 1024)
    suppression = "hard"

    def __init__(self) -> None:
        super().__init__()
        # RDCL
        self.conv1 = ConvBNAct(3, 24, 7, stride=4, act="crelu")  # -> 48 channels
        self.conv2 = ConvBNAct(48, 64, 5, stride=2, act="crelu")  # -> 128 channels
        # MSCL
        self.inception = nn.Sequential(Inception(128), Inception(128), Inception(128))
        self.conv3 = nn.Sequential(ConvBNAct(128, 128, 1), ConvBNAct(128, 256, 3, stride=2))
        self.conv4 = nn.Sequential(ConvBNAct(256, 128, 1), ConvBNAct(128, 256, 3, stride=2))
        # heads
        self.loc = nn.ModuleList(nn.Conv2d(c, k * 4, 3, padding=1) for c, k in zip(LEVEL_CHANNELS, ANCHORS_PER_CELL))
        self.conf = nn.ModuleList(nn.Conv2d(c, k * 2, 3, padding=1) for c, k in zip(LEVEL_CHANNELS, ANCHORS_PER_CELL))
        init_head(self.loc, self.conf)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The three detection maps (strides 32, 64, 128)."""
        x = F.max_pool2d(self.conv1(x), 3, 2, 1)
        x = F.max_pool2d(self.conv2(x), 3, 2, 1)
        f1 = self.inception(x)
        f2 = self.conv3(f1)
        f3 = self.conv4(f2)
        return [f1, f2, f3]

    def head(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Detection maps -> flat ``(deltas, logits)`` in :mod:`facespot.anchors` order."""
        deltas = torch.cat([flatten_head(loc(f), 4) for loc, f in zip(self.loc, feats)], dim=1)
        scores = torch.cat([flatten_head(conf(f), 2) for conf, f in zip(self.conf, feats)], dim=1)
        return deltas, scores[..., 1] - scores[..., 0]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.features(x))

    @torch.no_grad()
    def shift_face_logit(self, delta: float) -> None:
        for conv in self.conf:  # channel 2a + 1 is anchor a's face score (flatten_head(..., 2))
            conv.bias[1::2] += float(delta)

    def anchors(self, height: int, width: int) -> np.ndarray:
        return anchor_gen.faceboxes_anchors(height, width)

    def describe_anchors(self) -> str:
        return (
            "stride 32: sides 32/64/128 densified 4x/2x/1x (21 per cell); "
            "stride 64: 256; stride 128: 512"
        )
