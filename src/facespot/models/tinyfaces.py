"""Tiny Faces (Hu & Ramanan, "Finding Tiny Faces", CVPR 2017, arXiv:1612.04402).

Following the paper:

* **Scale-specific templates** (section 4, "Approach: scale-specific detection",
  multi-task modeling of scales): one detector per face shape, i.e. ``T`` templates
  ``(w, h)`` in input pixels, each with its own score and four box offsets at every
  stride-8 position, all sharing one feature hierarchy. Templates come from clustering
  training faces (:func:`facespot.anchors.fit_templates`); they are stored in the model
  config so a weights file carries them.
* **Context through hypercolumns** (section 3, "Exploring context and resolution", and the
  architecture of section 4): predictions fuse ``res3`` (stride 8) with bilinearly
  upsampled ``res4`` (optionally ``res5``), whose receptive fields reach far beyond a small
  face. As in the official model, each level has its own 1x1 scoring conv and the score
  maps are summed after upsampling; a 1x1 conv and bilinear upsampling are both linear
  and commute, so this equals one linear classifier on the concatenated hypercolumn at a
  fraction of the cost.
* **Box coding**: offsets relative to the template box, ``t_xy = (c - a_c) / a_wh``,
  ``t_wh = log(wh / a_wh)`` -- SSD coding with variances ``(1, 1)``.
* **Resolution / image pyramid** (sections 3 and 4, "hybrid resolution"): tiny faces are
  found by upsampling the image 2x, large ones by downsampling to 0.5x, each template
  being used at the scale it was trained for; :func:`detect_pyramid` runs the model at
  several scales and merges with NMS (0.3 IoU, as in the official WIDER FACE runs).

Backbones: ResNet-18/34/50/101 (the paper's best model is ResNet-101, ``hr_res101``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from facespot import anchors as anchor_gen
from facespot import boxes as B
from facespot.errors import FacespotError
from facespot.models.backbones import build_backbone
from facespot.models.base import BoxCoding, FaceModel, InputNorm, decode_outputs
from facespot.models.layers import flatten_head
from facespot.models.registry import register

STRIDE = 8
BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101")
IMAGENET_NORM = InputNorm(mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375))
PRIOR_PROBABILITY = 0.01  # initial face probability of every anchor (keeps early training stable)

# The 25 templates of the official ResNet-101 model (peiyunh/tiny, ``hr_res101.mat``,
# ``net.meta.clusters``; the same numbers ship as ``templates.json`` in the
# tiny-faces-pytorch port): k-medoids of WIDER FACE train faces with a 1 - IoU distance.
# Stored as (w, h) = (x2 - x1 + 1, y2 - y1 + 1) of the official (x1, y1, x2, y2) rows.
# The label is the image scale each template was defined at: 0.5 = large faces seen on a
# half-size image, 1 = native, 2 = tiny faces seen on a 2x upsampled image.
DEFAULT_TEMPLATES: tuple[tuple[float, float], ...] = (
    (173.676, 227.888), (98.5, 131.5), (67.5, 88.5), (52.5, 68.5),
    (82.0, 110.0), (70.0, 88.0), (58.0, 77.0), (52.318, 63.644),
    (44.227, 56.195), (41.0, 46.0), (36.0, 52.0), (33.656, 42.771),
    (59.951, 69.961), (51.840, 75.212), (49.424, 61.429), (45.026, 50.412),
    (39.628, 57.040), (36.935, 46.570), (32.225, 40.181), (27.368, 37.684),
    (28.006, 31.158), (23.218, 33.982), (22.954, 29.096), (20.944, 25.821),
    (20.323, 22.232),
)  # fmt: skip
DEFAULT_TEMPLATE_SCALES: tuple[float, ...] = (0.5,) * 4 + (1.0,) * 8 + (2.0,) * 13


@register("tinyfaces")
class TinyFaces(FaceModel):
    """Tiny Faces detector; ``forward(x) -> (deltas (B,A,4), logits (B,A))``, ``A = H/8 * W/8 * T``.

    Parameters
    ----------
    backbone : ``"resnet18"``, ``"resnet34"``, ``"resnet50"`` or ``"resnet101"``.
    templates : ``[[w, h], ...]`` in input pixels; default :data:`DEFAULT_TEMPLATES`.
    template_scales : per-template pyramid scale it is meant for (see
        :func:`templates_for_scale`); default all 1 for custom templates.
    use_res5 : also fuse ``res5`` (stride 32) into the hypercolumn.
    """

    name = "tinyfaces"
    paper = "Hu & Ramanan, Finding Tiny Faces, CVPR 2017 (arXiv:1612.04402)"
    input_norm = IMAGENET_NORM
    coding = BoxCoding("ssd", (1.0, 1.0))
    num_keypoints = 0
    train_input_size = (500, 500)  # the paper trains on 500x500 crops
    suppression = "hard"
    stride = STRIDE

    def __init__(
        self,
        backbone: str = "resnet101",
        templates: Sequence[Sequence[float]] | None = None,
        template_scales: Sequence[float] | None = None,
        use_res5: bool = False,
    ) -> None:
        if backbone not in BACKBONES:
            raise FacespotError(f"tinyfaces: backbone must be one of {', '.join(BACKBONES)}, got {backbone!r}")
        if templates is None:
            templates = DEFAULT_TEMPLATES
            if template_scales is None:
                template_scales = DEFAULT_TEMPLATE_SCALES
        t = np.asarray(templates, dtype=np.float64)
        if t.ndim != 2 or t.shape[1] != 2 or len(t) == 0 or not np.all(np.isfinite(t)) or np.any(t <= 0):
            raise FacespotError(f"tinyfaces: templates must be a non-empty list of positive [w, h] pairs, got shape {t.shape}")
        scales = [1.0] * len(t) if template_scales is None else [float(s) for s in template_scales]
        if len(scales) != len(t) or any(not s > 0 for s in scales):
            raise FacespotError(f"tinyfaces: template_scales needs {len(t)} positive values, got {len(scales)}")
        super().__init__(
            backbone=backbone,
            templates=[[round(float(w), 4), round(float(h), 4)] for w, h in t],
            template_scales=scales,
            use_res5=bool(use_res5),
        )
        self.templates = np.asarray(self.config["templates"], dtype=np.float32)
        self.template_scales = np.asarray(scales, dtype=np.float32)
        num_t = len(self.templates)
        self.backbone = build_backbone(backbone, max_stride=32 if use_res5 else 16)
        levels = [1, 2, 3] if use_res5 else [1, 2]  # res3, res4[, res5]
        self.levels = levels
        self.score = nn.ModuleList(nn.Conv2d(self.backbone.channels[i], 5 * num_t, 1) for i in levels)
        # Scores start at a 1 % face prior (the fused map is a sum over levels, so the
        # prior bias is split among them); offsets start near zero, so an untrained model
        # predicts its template boxes rather than boxes scattered by random features.
        bias = -math.log((1 - PRIOR_PROBABILITY) / PRIOR_PROBABILITY) / len(levels)
        with torch.no_grad():
            for conv in self.score:
                nn.init.normal_(conv.weight, std=0.01)
                conv.weight[num_t:] *= 0.1
                nn.init.zeros_(conv.bias)
                conv.bias[:num_t] = bias

    @torch.no_grad()
    def shift_face_logit(self, delta: float) -> None:
        # the score map is res3's plus the others bilinearly upsampled: a constant added to
        # res3's template scores moves every fused score by exactly that much
        self.score[0].bias[: len(self.templates)] += float(delta)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.backbone(x)
        base = feats[self.levels[0]]
        out = self.score[0](base)
        for conv, i in zip(self.score[1:], self.levels[1:]):
            out = out + F.interpolate(conv(feats[i]), size=base.shape[-2:], mode="bilinear", align_corners=False)
        num_t = len(self.templates)
        logits = flatten_head(out[:, :num_t], 1)[..., 0]
        deltas = flatten_head(out[:, num_t:], 4)
        return deltas, logits

    def anchors(self, height: int, width: int) -> np.ndarray:
        return anchor_gen.template_anchors(height, width, STRIDE, self.templates)

    def describe_anchors(self) -> str:
        t = self.templates
        fused = "res3+res4+res5" if self.config["use_res5"] else "res3+res4"
        return (
            f"{len(t)} templates ({t[:, 0].min():.0f}x{t[:, 1].min():.0f} to {t[:, 0].max():.0f}x{t[:, 1].max():.0f} px)"
            f" on every stride-{STRIDE} cell; {fused} hypercolumn; image pyramid at test time"
        )


# --------------------------------------------------------------------------- image pyramid


@dataclass
class PyramidDetections:
    """Merged pyramid detections in the original image frame."""

    boxes: np.ndarray  # (K, 4) xyxy, normalised to the original image (0..1)
    scores: np.ndarray  # (K,) face probability
    scales: np.ndarray  # (K,) pyramid scale each detection came from


def templates_for_scale(template_scales: Sequence[float], scale: float) -> np.ndarray:
    """Which templates to trust at pyramid scale ``scale`` (boolean mask).

    A template labelled 1 is used at every scale; one labelled below 1 (defined on
    downsampled images, for large faces) only at scales below 1, and one labelled above 1
    (defined on upsampled images, for tiny faces) only at scales above 1 -- the paper's
    hybrid-resolution rule (section 4). The official demo additionally never uses its
    0.5X templates and skips six of its 2X ones; we keep the rule uniform.
    """
    r = np.asarray(template_scales, dtype=np.float64)
    return (r == 1.0) | ((r < 1.0) & (scale < 1.0)) | ((r > 1.0) & (scale > 1.0))


def auto_scales(height: int, width: int, templates: np.ndarray, max_side: int = 3000) -> list[float]:
    """Pyramid scales for one image, as the official detector picks them.

    Downsample in octaves until the largest template covers the whole image (so faces
    as big as the image are still matched), then add upsampled half-octaves while the
    long side stays below ``max_side`` (at most 2x).
    """
    t = np.asarray(templates, dtype=np.float64)
    lo = min(math.floor(math.log2(t[:, 0].max() / width)), math.floor(math.log2(t[:, 1].max() / height)), 0)
    hi = min(1.0, -math.log2(max(height, width) / max_side))
    exps = [float(e) for e in range(lo, 1)] + [e for e in np.arange(0.5, hi + 1e-9, 0.5).tolist()]
    return [2.0**e for e in exps]


def detect_pyramid(
    model: TinyFaces,
    image: np.ndarray,
    scales: Sequence[float] | str = (0.5, 1.0, 2.0),
    score_threshold: float = 0.5,
    iou_threshold: float = 0.3,
    max_side: int = 3000,
    pre_nms_top_k: int = 5000,
    max_detections: int = 1000,
    forward: Callable[[np.ndarray], Sequence[np.ndarray]] | None = None,
) -> PyramidDetections:
    """Run ``model`` on an image pyramid and merge the detections with hard NMS.

    Parameters
    ----------
    model : the Tiny Faces model; gives anchors, templates and input normalisation
        (and runs the network unless ``forward`` is given).
    image : ``(H, W, 3)`` uint8 RGB.
    scales : resize factors (``>1`` upsamples for tiny faces), or ``"auto"`` for
        :func:`auto_scales`. Scales whose long side would exceed ``max_side`` are skipped.
    forward : optional ``(1, 3, h, w) float32 -> (deltas, logits)`` callable, e.g. an
        ONNX Runtime session, used instead of the torch model.

    Resizing maps ``[0, W]`` onto ``[0, w_s]`` linearly, so boxes normalised to a resized
    input are already normalised to the original image.
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise FacespotError(f"detect_pyramid: expected an (H, W, 3) uint8 RGB image, got {img.shape} {img.dtype}")
    height, width = img.shape[:2]
    if scales == "auto":
        scales = auto_scales(height, width, model.templates, max_side)
    elif isinstance(scales, str):
        raise FacespotError(f"detect_pyramid: scales must be a list of numbers or 'auto', got {scales!r}")
    use = [float(s) for s in scales if s > 0 and max(height, width) * s <= max_side]
    if not use:
        use = [max_side / max(height, width)]
    num_t = len(model.templates)
    all_boxes, all_scores, all_scales = [], [], []
    for s in use:
        hs, ws = max(1, round(height * s)), max(1, round(width * s))
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
        resized = img if (hs, ws) == (height, width) else cv2.resize(img, (ws, hs), interpolation=interp)
        x = model.preprocess(torch.from_numpy(np.ascontiguousarray(resized))[None])
        if forward is None:
            was_training = model.training
            model.eval()
            device = next(model.parameters()).device
            with torch.no_grad():
                deltas, logits = (t.float().cpu().numpy() for t in model(x.to(device)))
            model.train(was_training)
        else:
            deltas, logits = (np.asarray(t, dtype=np.float32) for t in forward(x.numpy())[:2])
        boxes, scores, _ = decode_outputs((deltas[0], logits[0]), model.anchors(hs, ws), model.coding)
        allowed = templates_for_scale(model.template_scales, s)[np.arange(len(scores)) % num_t]
        keep = np.nonzero((scores >= score_threshold) & allowed)[0]
        if keep.size > pre_nms_top_k:
            keep = keep[np.argsort(-scores[keep], kind="stable")[:pre_nms_top_k]]
        all_boxes.append(boxes[keep])
        all_scores.append(scores[keep])
        all_scales.append(np.full(keep.size, s, dtype=np.float32))
    boxes = np.concatenate(all_boxes).astype(np.float32)
    scores = np.concatenate(all_scores).astype(np.float32)
    from_scale = np.concatenate(all_scales)
    keep = B.nms(boxes, scores, iou_threshold, max_out=max_detections)
    boxes = np.clip(boxes[keep], 0.0, 1.0).reshape(-1, 4)
    return PyramidDetections(boxes=boxes, scores=scores[keep], scales=from_scale[keep])
