"""What a model is trained to minimise: target assignment + loss, chosen per model family.

One loop trains every family because they all keep the same output contract
(:mod:`facespot.models.base`); what differs is read off the model itself: the box coding
(``model.coding.kind``), the assigner (``model.assigner``: ``iou`` SSD matching or ``atss``)
and from those the loss (``loss.kind: auto``): YOLOv1 for grid coding, Tiny Faces'
balanced sampling for Tiny Faces, quality focal + GIoU for ATSS models, SSD multibox with
hard negatives otherwise. Targets for the whole batch are built in one vectorised call on
the training device (:mod:`facespot.train.targets`).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from facespot import anchors as anchor_gen
from facespot.errors import FacespotError
from facespot.train.config import TrainConfig
from facespot.train.losses import LossParts, multibox_loss, quality_loss, tiny_loss, yolo_loss
from facespot.train.targets import Targets, build_targets


def assigner_for(cfg: TrainConfig, model: Any) -> str:
    return str(getattr(model, "assigner", "iou")) if cfg.loss.assigner == "auto" else cfg.loss.assigner


def check_objective(cfg: TrainConfig, model: Any) -> None:
    """Refuse, before any data loads, an assigner the model cannot take: ATSS picks candidates
    per pyramid level, which only models listing ``(stride, anchor sides)`` levels have."""
    if assigner_for(cfg, model) != "atss":
        return
    levels = getattr(model, "levels", None)
    if not levels or not all(isinstance(lv, (tuple, list)) and len(lv) == 2 for lv in levels):
        name = getattr(model, "name", type(model).__name__)
        raise FacespotError(f"loss.assigner: atss needs a pyramid model with (stride, anchor sides) levels (spotnet_n, spotnet_s); {name} has none: use assigner: iou or auto")


def loss_kind(cfg: TrainConfig, model: Any) -> str:
    if cfg.loss.kind != "auto":
        return cfg.loss.kind
    if model.coding.kind == "grid":
        return "yolo"
    if str(getattr(model, "config", {}).get("name", getattr(model, "name", ""))).startswith("tinyfaces"):
        return "tiny"
    if assigner_for(cfg, model) == "atss":
        return "quality"
    return "multibox"


def level_sizes(model: Any, size: tuple[int, int]) -> list[int]:
    """Anchors per pyramid level at the training size (ATSS picks its candidates per level);
    an ATSS model lists its ``(stride, anchor sides)`` levels as ``model.levels``."""
    return anchor_gen.level_sizes(size[0], size[1], model.levels)


def compute_targets(cfg: TrainConfig, model: Any, batch: Any, anchors: torch.Tensor, size: tuple[int, int],
                    pred_deltas: torch.Tensor | None = None) -> Targets:
    lc = cfg.loss
    assigner = assigner_for(cfg, model)
    return build_targets(
        batch.boxes, anchors, model.coding.kind, model.coding.variances,
        batch.points if model.num_keypoints else None, model.num_keypoints,
        lc.pos_iou, lc.neg_iou, pred_deltas if model.coding.kind == "grid" else None,
        assigner=assigner, level_sizes=level_sizes(model, size) if assigner == "atss" else None, atss_topk=lc.atss_topk,
        aspect=(float(size[1]), float(size[0])), ignore_below=lc.ignore_below,
        ignore_boxes=getattr(batch, "ignore_boxes", None) or None, ignore_iou=lc.ignore_region_iou,
        grid_reach=model.coding.reach,
    )


def loss_from_targets(
    kind: str, cfg: TrainConfig, model: Any, outputs: Sequence[torch.Tensor], targets: Targets, anchors: torch.Tensor,
    generator: torch.Generator | None = None,
) -> LossParts:
    deltas, logits = outputs[0], outputs[1]
    points = outputs[2] if len(outputs) > 2 else None
    lc = cfg.loss
    if kind == "yolo":
        return yolo_loss(deltas, logits, targets, lc.lambda_coord, lc.lambda_noobj, lc.rescore, anchors, model.coding.reach)
    if kind == "tiny":
        return tiny_loss(deltas, logits, targets, lc.samples_per_image, lc.max_positive_fraction, lc.box_weight, generator)
    if kind == "quality":
        return quality_loss(
            deltas, logits, targets, anchors, model.coding.variances, points, lc.box_weight, lc.cls_weight,
            lc.landmark_weight, lc.qfl_beta,
        )
    return multibox_loss(
        deltas, logits, targets, points, lc.neg_pos_ratio, lc.min_negatives, lc.box_weight, lc.cls_weight,
        lc.landmark_weight, lc.focal, lc.focal_alpha, lc.focal_gamma,
    )

