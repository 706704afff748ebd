"""Detection losses over the dense outputs of :class:`facespot.models.base.FaceModel`.

* :func:`multibox_loss` — SSD / FaceBoxes / BlazeFace: smooth-L1 on positive anchors plus a
  face/background loss with online hard negative mining (the 3 * P highest-loss
  negatives per image, Liu et al. 2016) or, optionally, a focal loss over all anchors
  (Lin et al. 2017), plus smooth-L1 on annotated landmarks.
* :func:`yolo_loss` — YOLOv1 sum-squared loss (Redmon et al. 2016, eq. 3) for grid coding.
* :func:`tiny_loss` — Tiny Faces: logistic loss on a balanced random sample of positive and
  negative templates (Hu & Ramanan 2017, section 4) plus smooth-L1 on positives.
* :func:`quality_loss` — SpotNet: quality focal loss over every anchor, whose target for a
  positive anchor is the IoU of its current box with its face (Li et al., "Generalized
  Focal Loss", NeurIPS 2020), plus GIoU loss on the decoded boxes (Rezatofighi et al. 2019).

Every loss returns a :class:`LossParts` so the loop can log each term.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from facespot import boxes as B
from facespot.train.targets import BACKGROUND, POSITIVE, Targets


@dataclass
class LossParts:
    """The total (what is back-propagated) and its named terms (floats, for logging)."""

    total: torch.Tensor
    terms: dict[str, float] = field(default_factory=dict)
    num_positive: int = 0


def hard_negative_mask(neg_loss: torch.Tensor, labels: torch.Tensor, ratio: float = 3.0, min_neg: int = 0) -> torch.Tensor:
    """Per image, the ``ratio * P`` (at least ``min_neg``) background anchors of highest loss.

    ``neg_loss`` and ``labels`` are ``(B, A)``. Only anchors labelled background compete;
    ties are broken by anchor index (stable sort) so the choice is deterministic.
    """
    is_neg = labels == BACKGROUND
    loss = neg_loss.detach().masked_fill(~is_neg, float("-inf"))
    order = torch.sort(loss, dim=1, descending=True, stable=True).indices
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
    num_pos = (labels == POSITIVE).sum(1, keepdim=True)
    num_neg = (num_pos.float() * ratio).long().clamp(min=min_neg)
    num_neg = torch.minimum(num_neg, is_neg.sum(1, keepdim=True))
    return (rank < num_neg) & is_neg


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """Element-wise sigmoid focal loss (no reduction)."""
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p = logits.sigmoid()
    p_t = p * target + (1 - p) * (1 - target)
    a_t = alpha * target + (1 - alpha) * (1 - target)
    return a_t * (1 - p_t).pow(gamma) * ce


def multibox_loss(
    deltas: torch.Tensor,
    logits: torch.Tensor,
    targets: Targets,
    points: torch.Tensor | None = None,
    neg_pos_ratio: float = 3.0,
    min_negatives: int = 0,
    box_weight: float = 1.0,
    cls_weight: float = 1.0,
    landmark_weight: float = 1.0,
    focal: bool = False,
    focal_alpha: float = 0.25,
    focal_gamma: float = 2.0,
) -> LossParts:
    """SSD multibox loss, normalised by the number of positive anchors in the batch.

    With ``focal=True`` every non-ignored anchor takes part (no mining), as in RetinaNet.
    """
    labels = targets.labels
    pos = labels == POSITIVE
    n_pos = int(pos.sum())
    norm = max(n_pos, 1)
    logits = logits.float()
    if focal:
        valid = labels != -1
        cls = focal_loss(logits[valid], pos[valid].float(), focal_alpha, focal_gamma).sum() / norm
    else:
        neg_loss = F.softplus(logits)  # = BCE(logit, 0)
        neg = hard_negative_mask(neg_loss, labels, neg_pos_ratio, min_negatives)
        pos_loss = F.softplus(-logits)  # = BCE(logit, 1)
        cls = (pos_loss[pos].sum() + neg_loss[neg].sum()) / norm
    box = F.smooth_l1_loss(deltas.float()[pos], targets.boxes[pos], reduction="sum") / norm
    total = box_weight * box + cls_weight * cls
    terms = {"box": float(box.detach()), "cls": float(cls.detach())}
    if points is not None and targets.points is not None and landmark_weight > 0:
        m = targets.point_mask
        n_pts = int(m.sum())
        if n_pts:
            lm = F.smooth_l1_loss(points.float()[m], targets.points[m], reduction="sum") / n_pts
        else:
            lm = points.float().sum() * 0.0
        total = total + landmark_weight * lm
        terms["landmark"] = float(lm.detach())
    terms["total"] = float(total.detach())
    return LossParts(total, terms, n_pos)


def yolo_loss(
    deltas: torch.Tensor,
    logits: torch.Tensor,
    targets: Targets,
    lambda_coord: float = 5.0,
    lambda_noobj: float = 0.5,
    rescore: bool = False,
    cells: torch.Tensor | None = None,
    reach: float = 0.0,
) -> LossParts:
    """YOLOv1 loss on grid coding, averaged over the images of the batch.

    Box terms compare ``sigmoid(deltas)`` with :func:`~facespot.train.targets.encode_grid`
    targets; width/height use square roots, so an error on a small face costs more than
    the same error on a large one. Confidence is ``sigmoid(logit)`` against 1 for the
    responsible predictor (or, with ``rescore``, against the IoU of its current box, as
    the paper; needs ``cells``) and 0 elsewhere, the empty cells weighted by ``lambda_noobj``.
    """
    labels = targets.labels
    pos = labels == POSITIVE
    n_img = max(labels.shape[0], 1)
    s = deltas.float().sigmoid()
    conf = logits.float().sigmoid()
    t = targets.boxes
    xy = ((s[..., :2] - t[..., :2]) ** 2).sum(-1)
    wh = ((s[..., 2:].clamp_min(1e-9).sqrt() - t[..., 2:].clamp_min(0).sqrt()) ** 2).sum(-1)
    coord = (xy + wh)[pos].sum()
    obj_target = torch.ones_like(conf)
    if rescore:
        if cells is None:
            raise ValueError("yolo_loss(rescore=True) needs the model's grid cells")
        with torch.no_grad():
            pred = B.decode_grid(deltas.float(), cells, reach)[pos]
            obj_target = torch.diagonal(B.iou(pred, targets.gt_boxes[pos])) if pred.shape[0] else pred[:, 0]
        obj = ((conf[pos] - obj_target) ** 2).sum()
    else:
        obj = ((conf[pos] - obj_target[pos]) ** 2).sum()
    noobj = (conf[labels == BACKGROUND] ** 2).sum()
    total = (lambda_coord * coord + obj + lambda_noobj * noobj) / n_img
    terms = {
        "coord": float(coord.detach()) / n_img,
        "obj": float(obj.detach()) / n_img,
        "noobj": float(noobj.detach()) / n_img,
        "total": float(total.detach()),
    }
    return LossParts(total, terms, int(pos.sum()))


def tiny_loss(
    deltas: torch.Tensor,
    logits: torch.Tensor,
    targets: Targets,
    samples_per_image: int = 256,
    max_positive_fraction: float = 0.5,
    box_weight: float = 1.0,
    generator: torch.Generator | None = None,
) -> LossParts:
    """Tiny Faces loss: balanced random sampling of templates, per image.

    Up to ``samples_per_image * max_positive_fraction`` positives are drawn at random, and
    negatives fill the rest of the sample, so the vast background does not swamp the few
    face templates (the paper samples 128 + 128 per image). The logistic loss is averaged
    over the sample; the regression loss over the sampled positives.
    """
    labels = targets.labels
    n_img, _ = labels.shape
    logits = logits.float()
    sampled = torch.zeros_like(labels, dtype=torch.bool)
    for i in range(n_img):
        pos_idx = torch.nonzero(labels[i] == POSITIVE).flatten()
        neg_idx = torch.nonzero(labels[i] == BACKGROUND).flatten()
        n_pos = min(pos_idx.numel(), int(samples_per_image * max_positive_fraction))
        n_neg = min(neg_idx.numel(), samples_per_image - n_pos)
        pos_idx = pos_idx[torch.randperm(pos_idx.numel(), generator=generator, device="cpu")[:n_pos].to(pos_idx.device)]
        neg_idx = neg_idx[torch.randperm(neg_idx.numel(), generator=generator, device="cpu")[:n_neg].to(neg_idx.device)]
        sampled[i, pos_idx] = True
        sampled[i, neg_idx] = True
    pos = sampled & (labels == POSITIVE)
    target = pos.float()
    n_s = max(int(sampled.sum()), 1)
    cls = F.binary_cross_entropy_with_logits(logits[sampled], target[sampled], reduction="sum") / n_s
    n_pos = int(pos.sum())
    box = F.smooth_l1_loss(deltas.float()[pos], targets.boxes[pos], reduction="sum") / max(n_pos, 1)
    total = cls + box_weight * box
    return LossParts(total, {"cls": float(cls.detach()), "box": float(box.detach()), "total": float(total.detach())}, n_pos)


def giou(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Element-wise ``(IoU, GIoU)`` of ``xyxy`` boxes ``a`` and ``b`` (same shape ``(..., 4)``)."""
    lt = torch.maximum(a[..., :2], b[..., :2])
    rb = torch.minimum(a[..., 2:], b[..., 2:])
    inter = (rb - lt).clamp_min(0).prod(-1)
    union = B.area(a) + B.area(b) - inter
    iou = inter / union.clamp_min(1e-12)
    hull = (torch.maximum(a[..., 2:], b[..., 2:]) - torch.minimum(a[..., :2], b[..., :2])).clamp_min(0).prod(-1)
    return iou, iou - (hull - union) / hull.clamp_min(1e-12)


def quality_loss(
    deltas: torch.Tensor,
    logits: torch.Tensor,
    targets: Targets,
    anchors: torch.Tensor,
    variances=(0.1, 0.2),
    points: torch.Tensor | None = None,
    box_weight: float = 2.0,
    cls_weight: float = 1.0,
    landmark_weight: float = 0.1,
    beta: float = 2.0,
) -> LossParts:
    """Quality focal loss + GIoU, normalised by the number of positive anchors.

    Every non-ignored anchor takes part in classification (no mining: the ``|p - q|**beta``
    factor already silences the easy background). The score a positive anchor learns is
    the IoU its box reaches, so at test time a well-placed box outranks a loose one --
    the order AP integrates over.
    """
    labels = targets.labels
    pos = labels == POSITIVE
    n_pos = int(pos.sum())
    norm = max(n_pos, 1)
    logits = logits.float()
    quality = torch.zeros_like(logits)
    if n_pos:
        pred = B.decode(deltas.float()[pos], anchors.expand(labels.shape[0], -1, -1)[pos], variances)
        iou, g = giou(pred, targets.gt_boxes[pos])
        quality[pos] = iou.detach().clamp(0, 1)
        box = (1 - g).sum() / norm
    else:
        box = deltas.float().sum() * 0.0
    valid = labels != -1
    p = logits.sigmoid()
    qfl = F.binary_cross_entropy_with_logits(logits, quality, reduction="none") * (p - quality).abs().pow(beta)
    cls = qfl[valid].sum() / norm
    total = box_weight * box + cls_weight * cls
    terms = {"box": float(box.detach()), "cls": float(cls.detach())}
    if points is not None and targets.points is not None and landmark_weight > 0:
        m = targets.point_mask
        n_pts = int(m.sum())
        lm = F.smooth_l1_loss(points.float()[m], targets.points[m], reduction="sum") / n_pts if n_pts else points.float().sum() * 0.0
        total = total + landmark_weight * lm
        terms["landmark"] = float(lm.detach())
    terms["total"] = float(total.detach())
    return LossParts(total, terms, n_pos)
