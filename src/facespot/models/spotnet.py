"""SpotNet: facespot's own CPU-first detector for faces from ~8 pixels up.

None of the five seed designs finds small faces cheaply: FaceBoxes' first detection layer
has stride 32 and 32-pixel anchors, BlazeFace shrinks the photo to 128 pixels, Tiny Faces
costs tens of GMACs. SpotNet takes what the small-face literature found to matter at a few
hundred MMACs (SCRFD, Guo et al. 2021; YuNet, Wu et al. 2023; RetinaFace, Deng et al. 2020):

* **Backbone**: a stride-2 3x3 stem, then depthwise-separable residual blocks (depthwise
  kxk -> BN -> pointwise 1x1 -> BN -> ReLU, plus identity) in four stages at strides
  4 / 8 / 16 / 32. Depthwise convolutions make width cheap; plain ReLU and BN fold into
  the convolutions for ONNX Runtime. 5x5 depthwise kernels in the deep stages grow the
  receptive field for large faces at little cost.
* **Neck**: a top-down feature pyramid (1x1 laterals, nearest upsampling, addition, a
  depthwise-separable smoothing conv per level) so the stride-8 map that finds the tiny
  faces sees the context of the deep layers.
* **Head**: shared across the three levels (one set of conv weights, a BatchNorm per
  level, as NAS-FPN / NanoDet do), two anchors per cell (``anchors.SPOTNET_LEVELS``:
  16 + 32 px at stride 8 up to 256 + 512 px at stride 32). Trained with ATSS assignment,
  a quality-focal classification target (the IoU of the predicted box) and GIoU box loss
  (:mod:`facespot.train.targets`, :mod:`facespot.train.losses`): scores then rank boxes by
  how well they fit, which is what AP measures.
* **Score offsets** per anchor group (level x anchor size), a buffer the trainer never
  touches: set when a model ships (:func:`facespot.train.calibrate.choose_group_offsets`,
  chosen on training images) because a quality score of 0.4 on a 16-px anchor is more often
  a false face than 0.4 on a 128-px one, and one shared classifier cannot know that.
* Optional ``num_keypoints`` landmark outputs (anchor-relative, like RetinaFace's).

Widths: ``spotnet_n`` (~0.15 M parameters, ~0.23 GMACs at 640x480) and ``spotnet_s``
(~0.3 M, ~0.4 GMACs). Fully convolutional: any input size.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from facespot import anchors as anchor_gen
from facespot.models.base import BoxCoding, FaceModel, InputNorm
from facespot.models.layers import ConvBNAct, flatten_head, init_head
from facespot.models.registry import register

# width presets: stem, stride-4, -8, -16, -32 channels; blocks per stage; pyramid channels
WIDTHS: dict[str, dict] = {
    "n": {"channels": (16, 24, 48, 96, 160), "blocks": (1, 2, 3, 2), "neck": 48},
    "s": {"channels": (24, 32, 64, 128, 256), "blocks": (1, 2, 3, 2), "neck": 64},
}
DEEP_KERNEL = 5  # depthwise kernel of the stride-16 and stride-32 stages


class SeparableDown(nn.Sequential):
    """Depthwise kxk (stride ``s``) -> pointwise 1x1 changing the width; both BN + ReLU."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, kernel: int = 3) -> None:
        super().__init__(ConvBNAct(in_ch, in_ch, kernel, stride, groups=in_ch), ConvBNAct(in_ch, out_ch, 1))


class SeparableResidual(nn.Module):
    """``x + relu(bn(pw(bn(dw(x)))))``: the backbone's repeated block."""

    def __init__(self, channels: int, kernel: int = 3) -> None:
        super().__init__()
        self.body = nn.Sequential(
            ConvBNAct(channels, channels, kernel, groups=channels, act=None), ConvBNAct(channels, channels, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _stage(in_ch: int, out_ch: int, blocks: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(SeparableDown(in_ch, out_ch, 2, kernel), *[SeparableResidual(out_ch, kernel) for _ in range(blocks)])


class SharedHead(nn.Module):
    """Depthwise-separable tower whose conv weights all levels share; BN is per level
    because feature statistics differ from level to level."""

    def __init__(self, channels: int, levels: int, layers: int, anchors_per_cell: int, num_keypoints: int) -> None:
        super().__init__()
        convs = []
        for _ in range(layers):
            convs.append(nn.Conv2d(channels, channels, 3, 1, 1, groups=channels, bias=False))
            convs.append(nn.Conv2d(channels, channels, 1, bias=False))
        self.convs = nn.ModuleList(convs)
        self.norms = nn.ModuleList(nn.ModuleList(nn.BatchNorm2d(channels) for _ in convs) for _ in range(levels))
        k = anchors_per_cell
        self.cls = nn.Conv2d(channels, k, 1)
        self.box = nn.Conv2d(channels, 4 * k, 1)
        self.kps = nn.Conv2d(channels, 2 * num_keypoints * k, 1) if num_keypoints else None
        init_head(self.box, self.cls, *([self.kps] if self.kps is not None else []))
        # Focal-style losses start from a face prior of 1%: without it the first steps are
        # spent pushing ~10k background anchors per image down from p = 0.5.
        nn.init.constant_(self.cls.bias, -math.log((1 - 0.01) / 0.01))
        # Face-logit offset of each (level, anchor) group; zeros until a model ships.
        self.register_buffer("score_offsets", torch.zeros(levels, k))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # weights saved before score offsets existed load with none (zeros), strictly otherwise
        state_dict.setdefault(prefix + "score_offsets", torch.zeros_like(self.score_offsets))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: torch.Tensor, level: int) -> tuple[torch.Tensor, ...]:
        for conv, norm in zip(self.convs, self.norms[level]):
            x = F.relu(norm(conv(x)))
        out = [self.box(x), self.cls(x) + self.score_offsets[level].view(1, -1, 1, 1)]
        if self.kps is not None:
            out.append(self.kps(x))
        return tuple(out)


class SpotNet(FaceModel):
    """``forward(x) -> (deltas (B, A, 4), logits (B, A)[, points (B, A, K, 2)])``."""

    name = "spotnet"
    paper = "facespot SpotNet (after SCRFD, Guo et al. 2021, and YuNet, Wu et al. 2023)"
    input_norm = InputNorm(mean=(127.5, 127.5, 127.5), std=(128.0, 128.0, 128.0), channel_order="RGB")
    coding = BoxCoding("ssd", (0.1, 0.2))
    fixed_input_size = None
    train_input_size = (640, 640)
    suppression = "hard"
    assigner = "atss"  # how the trainer picks positive anchors (see facespot.train.targets)

    def __init__(self, width: str = "s", num_keypoints: int = 0, head_layers: int = 2) -> None:
        if width not in WIDTHS:
            raise ValueError(f"unknown SpotNet width {width!r}; known: {', '.join(WIDTHS)}")
        # the registered name (spotnet_n / spotnet_s) carries the width, the config the rest
        super().__init__(num_keypoints=int(num_keypoints), head_layers=int(head_layers))
        self.width = width
        self.name = f"spotnet_{width}"
        w = WIDTHS[width]
        c0, c1, c2, c3, c4 = w["channels"]
        b4, b8, b16, b32 = w["blocks"]
        self.num_keypoints = int(num_keypoints)
        self.levels = anchor_gen.SPOTNET_LEVELS
        self.stem = nn.Sequential(ConvBNAct(3, c0, 3, 2), _stage(c0, c1, b4, 3))  # stride 4
        self.stage8 = _stage(c1, c2, b8, 3)
        self.stage16 = _stage(c2, c3, b16, DEEP_KERNEL)
        self.stage32 = _stage(c3, c4, b32, DEEP_KERNEL)
        neck = w["neck"]
        self.lateral = nn.ModuleList(ConvBNAct(c, neck, 1) for c in (c2, c3, c4))
        self.smooth = nn.ModuleList(SeparableDown(neck, neck) for _ in range(3))
        self.head = SharedHead(neck, 3, int(head_layers), len(self.levels[0][1]), self.num_keypoints)

    def pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The three detection maps (strides 8, 16, 32)."""
        c3 = self.stage8(self.stem(x))
        c4 = self.stage16(c3)
        c5 = self.stage32(c4)
        p5 = self.lateral[2](c5)
        p4 = self.lateral[1](c4) + F.interpolate(p5, size=c4.shape[-2:], mode="nearest")
        p3 = self.lateral[0](c3) + F.interpolate(p4, size=c3.shape[-2:], mode="nearest")
        return [s(p) for s, p in zip(self.smooth, (p3, p4, p5))]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outs = [self.head(p, i) for i, p in enumerate(self.pyramid(x))]
        deltas = torch.cat([flatten_head(o[0], 4) for o in outs], dim=1)
        logits = torch.cat([flatten_head(o[1], 1) for o in outs], dim=1)[..., 0]
        if not self.num_keypoints:
            return deltas, logits
        k = self.num_keypoints
        points = torch.cat([flatten_head(o[2], 2 * k) for o in outs], dim=1)
        return deltas, logits, points.reshape(points.shape[0], points.shape[1], k, 2)

    @torch.no_grad()
    def shift_face_logit(self, delta: float) -> None:
        self.head.cls.bias.add_(float(delta))  # one shared classifier serves every level and anchor

    def score_groups(self, height: int, width: int) -> np.ndarray:
        """The score-offset group (``level * anchors_per_cell + slot``) of every anchor."""
        return anchor_gen.pyramid_groups(height, width, self.levels)

    @torch.no_grad()
    def add_score_offsets(self, offsets) -> None:
        """Add one logit offset per :meth:`score_groups` group (rankings across groups change)."""
        off = torch.as_tensor(np.asarray(offsets, np.float32)).view_as(self.head.score_offsets)
        self.head.score_offsets.add_(off)

    @torch.no_grad()
    def reset_score_offsets(self) -> None:
        """Back to no offsets (before fine-tuning a shipped model: offsets are chosen at shipping)."""
        self.head.score_offsets.zero_()

    def anchors(self, height: int, width: int) -> np.ndarray:
        return anchor_gen.pyramid_anchors(height, width, self.levels)

    def describe_anchors(self) -> str:
        return "; ".join(f"stride {s}: {'/'.join(str(v) for v in sides)}" for s, sides in self.levels) + " (2 per cell)"


@register("spotnet_n")
def spotnet_n(num_keypoints: int = 0, head_layers: int = 2) -> SpotNet:
    """SpotNet, narrow: for the tightest CPU budgets."""
    return SpotNet("n", num_keypoints, head_layers)


@register("spotnet_s")
def spotnet_s(num_keypoints: int = 0, head_layers: int = 2) -> SpotNet:
    """SpotNet, small: facespot's accurate default."""
    return SpotNet("s", num_keypoints, head_layers)
