"""Training targets: which anchor learns which face, and what it should predict.

Two assignment schemes cover every facespot model:

* **SSD matching** (FaceBoxes, BlazeFace, Tiny Faces templates): IoU between every face and
  every anchor; an anchor whose best IoU reaches ``pos_iou`` is positive, below ``neg_iou``
  is background, in between is ignored. Every face additionally gets its single best
  anchor, so small or oddly shaped faces are never left without a learner (Liu et al.
  2016, section 2.2; FaceBoxes uses ``pos_iou = neg_iou = 0.35``).
* **Grid assignment** (YOLOv1-style grid / YOLO models, ``coding.kind == "grid"``): the cell
  that holds the face centre is responsible for it (Redmon et al. 2016, section 2.2).

Everything works on torch tensors so targets are built on the training device.
Boxes enter as *normalised* ``xyxy`` (divided by the input width/height); landmarks as
normalised ``(N, K, 2)`` points with NaN for "not annotated".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from facespot import boxes as B

POSITIVE = 1
BACKGROUND = 0
IGNORE = -1


@dataclass
class Targets:
    """Dense per-anchor targets of a batch.

    Attributes
    ----------
    labels:
        ``(B, A)`` long: 1 face, 0 background, -1 ignored (no classification loss).
    boxes:
        ``(B, A, 4)`` regression targets (only rows with ``labels == 1`` mean anything).
        SSD coding: :func:`facespot.boxes.encode` deltas. Grid coding: the *sigmoid-space*
        values ``(sx, sy, w, h)`` that :func:`facespot.boxes.decode_grid` would map back.
    gt_boxes:
        ``(B, A, 4)`` the matched face as normalised ``xyxy`` (for IoU-aware losses).
    points:
        ``(B, A, K, 2)`` landmark targets or ``None`` for models without keypoints.
    point_mask:
        ``(B, A, K)`` bool: the point is annotated *and* the anchor is positive.
    """

    labels: torch.Tensor
    boxes: torch.Tensor
    gt_boxes: torch.Tensor
    points: torch.Tensor | None = None
    point_mask: torch.Tensor | None = None

    @property
    def num_positive(self) -> int:
        return int((self.labels == POSITIVE).sum())


def match_anchors(
    gt: torch.Tensor, anchors_xyxy: torch.Tensor, pos_iou: float = 0.35, neg_iou: float | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """SSD matching of ``gt`` (N, 4) to anchors (A, 4), both ``xyxy``.

    Returns ``(labels (A,) long, matched (A,) long)``: ``matched[a]`` is the index of the face
    anchor ``a`` regresses to (meaningful where ``labels == 1``).
    ``neg_iou`` defaults to ``pos_iou`` (no ignore band, as FaceBoxes/SSD).
    """
    neg_iou = pos_iou if neg_iou is None else neg_iou
    a = anchors_xyxy.shape[0]
    labels = torch.zeros(a, dtype=torch.long, device=anchors_xyxy.device)
    matched = torch.zeros(a, dtype=torch.long, device=anchors_xyxy.device)
    if gt.numel() == 0:
        return labels, matched
    overlap = B.iou(gt, anchors_xyxy)  # (N, A)
    best_iou, best_gt = overlap.max(dim=0)  # per anchor
    matched = best_gt.clone()
    labels[best_iou >= pos_iou] = POSITIVE
    labels[(best_iou >= neg_iou) & (best_iou < pos_iou)] = IGNORE
    # Every face keeps its best anchor even below the threshold. Faces are processed in
    # order, so when two faces share a best anchor the later one wins, as in SSD's code.
    best_anchor = overlap.argmax(dim=1)  # per face
    for j in range(gt.shape[0]):
        if overlap[j, best_anchor[j]] <= 0:
            continue  # a face that overlaps nothing (e.g. outside the input) cannot be learned
        matched[best_anchor[j]] = j
        labels[best_anchor[j]] = POSITIVE
    return labels, matched


def assign_grid(
    gt: torch.Tensor, cells: torch.Tensor, pred_xyxy: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """YOLOv1 assignment: the cell holding a face's centre is responsible for it.

    ``cells`` are the model's ``(A, 4)`` ``cxcywh`` cells (a cell may appear several times,
    once per predictor). Among a cell's predictors the one whose current prediction
    (``pred_xyxy``, when given) overlaps the face best takes it, as in YOLOv1; otherwise
    the first free predictor. If two faces fall in one cell and it has fewer predictors
    than faces, the larger face wins (it is the one a single box describes better).
    Returns ``(labels (A,), matched (A,))`` like :func:`match_anchors`.
    """
    a = cells.shape[0]
    labels = torch.zeros(a, dtype=torch.long, device=cells.device)
    matched = torch.zeros(a, dtype=torch.long, device=cells.device)
    if gt.numel() == 0:
        return labels, matched
    centre = (gt[:, :2] + gt[:, 2:]) / 2  # (N, 2)
    lo = cells[:, :2] - cells[:, 2:] / 2  # (A, 2)
    hi = cells[:, :2] + cells[:, 2:] / 2
    # Half-open cells [lo, hi) so a centre on a border belongs to exactly one cell; a
    # centre exactly on the image's far edge is pulled inside.
    c = centre.clamp(0, 1 - 1e-6)
    inside = ((c[:, None, :] >= lo[None]) & (c[:, None, :] < hi[None])).all(-1)  # (N, A)
    area = B.area(gt)
    taken = torch.zeros(a, dtype=torch.bool, device=cells.device)
    for j in torch.argsort(area, descending=True).tolist():
        cand = torch.nonzero(inside[j] & ~taken).flatten()
        if cand.numel() == 0:
            continue
        if pred_xyxy is not None and cand.numel() > 1:
            scores = B.iou(gt[j : j + 1], pred_xyxy[cand])[0]
            k = cand[int(scores.argmax())]
        else:
            k = cand[0]
        taken[k] = True
        labels[k] = POSITIVE
        matched[k] = j
    return labels, matched


def encode_grid(gt_xyxy: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`facespot.boxes.decode_grid` in sigmoid space: ``(sx, sy, w, h)``."""
    c = B.xyxy_to_cxcywh(gt_xyxy)
    origin = cells[..., :2] - cells[..., 2:] / 2
    sxy = ((c[..., :2] - origin) / cells[..., 2:]).clamp(0, 1)
    return torch.cat([sxy, c[..., 2:].clamp(0, 1)], dim=-1)


def build_targets(
    gt_boxes: Sequence[torch.Tensor],
    anchors: torch.Tensor,
    coding_kind: str = "ssd",
    variances: Sequence[float] = B.DEFAULT_VARIANCES,
    gt_points: Sequence[torch.Tensor | None] | None = None,
    num_keypoints: int = 0,
    pos_iou: float = 0.35,
    neg_iou: float | None = None,
    pred_deltas: torch.Tensor | None = None,
) -> Targets:
    """Targets for a batch.

    Parameters
    ----------
    gt_boxes:
        One ``(N_i, 4)`` normalised ``xyxy`` tensor per image.
    anchors:
        ``(A, 4)`` ``cxcywh`` normalised anchors (or grid cells), as the model gives them.
    gt_points:
        One ``(N_i, K_i, 2)`` normalised tensor (NaN = missing) or ``None`` per image. A
        source with fewer points than the model (Caltech's 4 vs BlazeFace's 6) is padded
        with NaN, i.e. the extra points are simply not supervised.
    pred_deltas:
        ``(B, A, 4)`` current predictions; only grid coding uses them (YOLOv1 picks the
        predictor whose box already fits best).
    """
    device = anchors.device
    n_img, a = len(gt_boxes), anchors.shape[0]
    labels = torch.zeros(n_img, a, dtype=torch.long, device=device)
    box_t = torch.zeros(n_img, a, 4, dtype=torch.float32, device=device)
    gt_t = torch.zeros(n_img, a, 4, dtype=torch.float32, device=device)
    pts_t = pts_m = None
    if num_keypoints > 0:
        pts_t = torch.zeros(n_img, a, num_keypoints, 2, dtype=torch.float32, device=device)
        pts_m = torch.zeros(n_img, a, num_keypoints, dtype=torch.bool, device=device)
    anchors = anchors.float()
    anchors_xyxy = B.cxcywh_to_xyxy(anchors)
    for i, gt in enumerate(gt_boxes):
        gt = gt.to(device=device, dtype=torch.float32).reshape(-1, 4)
        if coding_kind == "ssd":
            lab, idx = match_anchors(gt, anchors_xyxy, pos_iou, neg_iou)
        elif coding_kind == "grid":
            pred = None
            if pred_deltas is not None:
                pred = B.decode_grid(pred_deltas[i].detach().float(), anchors)
            lab, idx = assign_grid(gt, anchors, pred)
        else:
            raise ValueError(f"unknown box coding {coding_kind!r}")
        labels[i] = lab
        if gt.shape[0] == 0:
            continue
        pos = lab == POSITIVE
        matched_gt = gt[idx[pos]]
        gt_t[i, pos] = matched_gt
        if coding_kind == "ssd":
            box_t[i, pos] = B.encode(matched_gt, anchors[pos], variances)
        else:
            box_t[i, pos] = encode_grid(matched_gt, anchors[pos])
        if pts_t is not None and gt_points is not None and gt_points[i] is not None:
            p = gt_points[i].to(device=device, dtype=torch.float32)
            p = _fit_points(p, num_keypoints)
            mp = p[idx[pos]]  # (P, K, 2)
            valid = torch.isfinite(mp).all(-1)
            enc = B.encode_points(torch.nan_to_num(mp), anchors[pos], variances[0])
            pts_t[i, pos] = torch.where(valid[..., None], enc, torch.zeros_like(enc))
            pts_m[i, pos] = valid
    return Targets(labels, box_t, gt_t, pts_t, pts_m)


def _fit_points(p: torch.Tensor, k: int) -> torch.Tensor:
    """Pad (with NaN = missing) or cut ``(N, K', 2)`` points to ``K``."""
    if p.shape[1] == k:
        return p
    if p.shape[1] > k:
        return p[:, :k]
    pad = torch.full((p.shape[0], k - p.shape[1], 2), float("nan"), dtype=p.dtype, device=p.device)
    return torch.cat([p, pad], dim=1)
