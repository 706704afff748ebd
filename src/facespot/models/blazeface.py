"""BlazeFace: sub-millisecond face detection on mobile GPUs (Bazarevsky et al., 2019,
arXiv:1907.05047).

* **BlazeBlock** (section 2.1, Figure 1): a 5x5 depthwise conv followed by a 1x1 conv,
  with a residual connection (max-pooled and zero-padded in channels when the block
  strides or widens). 5x5 instead of 3x3 costs little on a depthwise layer and grows the
  receptive field quickly. **Double BlazeBlock** stacks two of them with a narrow
  (24-channel) projection in between.
* **Front-camera model** ``blazeface_front`` (Table 4): 128x128 input, conv 5x5/s2 (24),
  2 single blocks, a strided single block to 48 channels, 2 more, then three double
  blocks at 16x16 and three at 8x8 (96 channels).
* **Back-camera model** ``blazeface_back``: 256x256 input, the layout MediaPipe ships as
  ``face_detection_back_256x256``: single blocks only, one strided block plus seven more
  per resolution (24 channels at 128 and 64, 48 at 32, 96 at 16), and one more strided
  block to 8x8. Same heads and the same number of anchors.
* **Anchors** (section 2.2): the SSD pyramid stops at 8x8: 2 anchors per cell at 16x16
  and 6 at 8x8, 512 + 384 = **896** for both variants (see
  :func:`facespot.anchors.blazeface_anchors`).
* **Keypoints**: 6 (eyes, ear tragions, mouth, nose) regressed with the box, as
  ``(B, A, 6, 2)`` anchor-relative offsets.
* **Suppression** (section 2.3): blending NMS (:func:`facespot.boxes.blending_nms`),
  recorded as ``suppression = "blend"``.

Fixed input size. BatchNorm follows every conv so the model trains from scratch
(MediaPipe's released weights have it folded).
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

NUM_KEYPOINTS = 6
ANCHORS_PER_CELL = (2, 6)  # at 16x16 and 8x8


class _Shortcut(nn.Module):
    """Residual path of a BlazeBlock: 2x2 max-pool when strided, zero channel padding when
    widening (as in the paper's Figure 1), a 1x1 projection only when narrowing."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(2, 2, ceil_mode=True) if stride == 2 else None
        self.pad = max(out_ch - in_ch, 0)
        self.proj = ConvBNAct(in_ch, out_ch, 1, act=None) if out_ch < in_ch else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = self.pool(x)
        if self.proj is not None:
            return self.proj(x)
        if self.pad:
            x = F.pad(x, (0, 0, 0, 0, 0, self.pad))
        return x


class BlazeBlock(nn.Module):
    """Single BlazeBlock: depthwise kxk (stride 1 or 2) -> 1x1 -> + shortcut -> ReLU."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, kernel_size: int = 5) -> None:
        super().__init__()
        self.dw = ConvBNAct(in_ch, in_ch, kernel_size, stride, groups=in_ch, act=None)
        self.pw = ConvBNAct(in_ch, out_ch, 1, act=None)
        self.shortcut = _Shortcut(in_ch, out_ch, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.pw(self.dw(x)) + self.shortcut(x))


class DoubleBlazeBlock(nn.Module):
    """Double BlazeBlock: dw -> 1x1 project to ``mid`` -> ReLU -> dw -> 1x1 expand -> + shortcut -> ReLU."""

    def __init__(self, in_ch: int, mid_ch: int, out_ch: int, stride: int = 1, kernel_size: int = 5) -> None:
        super().__init__()
        self.branch = nn.Sequential(
            ConvBNAct(in_ch, in_ch, kernel_size, stride, groups=in_ch, act=None),
            ConvBNAct(in_ch, mid_ch, 1, act="relu"),
            ConvBNAct(mid_ch, mid_ch, kernel_size, 1, groups=mid_ch, act=None),
            ConvBNAct(mid_ch, out_ch, 1, act=None),
        )
        self.shortcut = _Shortcut(in_ch, out_ch, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.branch(x) + self.shortcut(x))


class _BlazeFaceBase(FaceModel):
    """Shared head and anchors; subclasses build ``stem``, ``stage16`` (-> 16x16) and ``stage8``."""

    paper = "Bazarevsky et al., BlazeFace: Sub-millisecond Neural Face Detection on Mobile GPUs, 2019"
    # MediaPipe feeds RGB scaled to [-1, 1].
    input_norm = InputNorm(mean=(127.5, 127.5, 127.5), std=(127.5, 127.5, 127.5), channel_order="RGB")
    coding = BoxCoding("ssd", (0.1, 0.2))
    num_keypoints = NUM_KEYPOINTS
    suppression = "blend"
    variant = "front"
    head_channels = (96, 96)

    def _build_heads(self) -> None:
        k16, k8 = ANCHORS_PER_CELL
        per_anchor = 4 + 2 * self.num_keypoints
        c16, c8 = self.head_channels
        self.reg = nn.ModuleList([nn.Conv2d(c16, k16 * per_anchor, 1), nn.Conv2d(c8, k8 * per_anchor, 1)])
        self.cls = nn.ModuleList([nn.Conv2d(c16, k16, 1), nn.Conv2d(c8, k8, 1)])
        init_head(self.reg, self.cls)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The 16x16 and 8x8 detection maps (at the native input size)."""
        f16 = self.stage16(self.stem(x))
        return [f16, self.stage8(f16)]

    def head(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        per_anchor = 4 + 2 * self.num_keypoints
        reg = torch.cat([flatten_head(r(f), per_anchor) for r, f in zip(self.reg, feats)], dim=1)
        logits = torch.cat([flatten_head(c(f), 1) for c, f in zip(self.cls, feats)], dim=1)[..., 0]
        deltas = reg[..., :4]
        points = reg[..., 4:].reshape(reg.shape[0], reg.shape[1], self.num_keypoints, 2)
        return deltas, logits, points

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.head(self.features(x))

    def anchors(self, height: int, width: int) -> np.ndarray:
        return anchor_gen.blazeface_anchors(height, width, self.variant)

    def describe_anchors(self) -> str:
        groups = anchor_gen.ssd_scale_templates(**anchor_gen.BLAZEFACE_ANCHOR_OPTIONS[self.variant])
        h, _ = self.fixed_input_size or (0, 0)
        parts = []
        for stride, sizes in groups:
            sides = "/".join(f"{w * h:.0f}" for w, _ in sizes)
            parts.append(f"stride {stride}: {len(sizes)} per cell, sides {sides} px")
        return "; ".join(parts) + " (896 at the native size)"


@register("blazeface_front")
class BlazeFaceFront(_BlazeFaceBase):
    """Front-camera BlazeFace, 128x128 (paper Table 4, double BlazeBlocks)."""

    name = "blazeface_front"
    fixed_input_size = (128, 128)
    train_input_size = (128, 128)
    variant = "front"

    def __init__(self, kernel_size: int = 5) -> None:
        super().__init__(kernel_size=kernel_size)
        k = kernel_size
        self.stem = ConvBNAct(3, 24, 5, stride=2)  # 128 -> 64
        self.stage16 = nn.Sequential(
            BlazeBlock(24, 24, kernel_size=k),
            BlazeBlock(24, 24, kernel_size=k),
            BlazeBlock(24, 48, stride=2, kernel_size=k),  # -> 32
            BlazeBlock(48, 48, kernel_size=k),
            BlazeBlock(48, 48, kernel_size=k),
            DoubleBlazeBlock(48, 24, 96, stride=2, kernel_size=k),  # -> 16
            DoubleBlazeBlock(96, 24, 96, kernel_size=k),
            DoubleBlazeBlock(96, 24, 96, kernel_size=k),
        )
        self.stage8 = nn.Sequential(
            DoubleBlazeBlock(96, 24, 96, stride=2, kernel_size=k),  # -> 8
            DoubleBlazeBlock(96, 24, 96, kernel_size=k),
            DoubleBlazeBlock(96, 24, 96, kernel_size=k),
        )
        self._build_heads()


def _single_stage(in_ch: int, out_ch: int, repeats: int, k: int) -> list[nn.Module]:
    return [BlazeBlock(in_ch, out_ch, stride=2, kernel_size=k)] + [
        BlazeBlock(out_ch, out_ch, kernel_size=k) for _ in range(repeats)
    ]


@register("blazeface_back")
class BlazeFaceBack(_BlazeFaceBase):
    """Back-camera BlazeFace, 256x256 (MediaPipe ``face_detection_back_256x256`` layout)."""

    name = "blazeface_back"
    fixed_input_size = (256, 256)
    train_input_size = (256, 256)
    variant = "back"

    def __init__(self, kernel_size: int = 5) -> None:
        super().__init__(kernel_size=kernel_size)
        k = kernel_size
        self.stem = nn.Sequential(
            ConvBNAct(3, 24, 5, stride=2),  # 256 -> 128
            *[BlazeBlock(24, 24, kernel_size=k) for _ in range(7)],
        )
        self.stage16 = nn.Sequential(
            *_single_stage(24, 24, 7, k),  # -> 64
            *_single_stage(24, 48, 7, k),  # -> 32
            *_single_stage(48, 96, 7, k),  # -> 16
        )
        self.stage8 = BlazeBlock(96, 96, stride=2, kernel_size=k)  # -> 8
        self._build_heads()
