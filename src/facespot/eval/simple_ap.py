"""Average precision at one IoU threshold over :class:`FaceRecord` ground truth (VOC style).

Used to pick the best checkpoint on validation sets that are not WIDER FACE (VOC,
Caltech, YOLO, COCO folders), where the WIDER protocol's easy/medium/hard lists do not
exist. Detections are ranked by score over the whole set; each detection is a true
positive when it overlaps a not-yet-taken face by at least ``iou_threshold``. Faces marked
``difficult`` (VOC) or ``invalid`` (WIDER) neither count as misses nor make their
detections false positives, as in the PASCAL VOC devkit. AP is the area under the
precision envelope at every recall step ("all points", VOC 2010+).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from facespot import boxes as B
from facespot.data.records import FaceRecord

IGNORE_ATTRIBUTES = ("difficult", "invalid")


@dataclass
class APResult:
    ap: float
    num_faces: int
    num_detections: int
    recall: np.ndarray
    precision: np.ndarray
    scores: np.ndarray | None = None  # detection scores, best first, aligned with recall / precision


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """All-point interpolated AP: area under the monotone precision envelope."""
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    step = np.nonzero(r[1:] != r[:-1])[0]
    return float(np.sum((r[step + 1] - r[step]) * p[step + 1]))


def _ignored(rec: FaceRecord) -> np.ndarray:
    mask = np.zeros(len(rec), bool)
    for key in IGNORE_ATTRIBUTES:
        a = rec.attributes.get(key)
        if a is not None and len(a) == len(rec):
            mask |= np.asarray(a) != 0
    return mask


def overlaps(pred_boxes: np.ndarray, true_boxes: np.ndarray) -> np.ndarray:
    """IoU of predictions against true faces for scoring: float64, and any box however large
    (a detector's 1e30 box) gives a plain 0 rather than numpy overflow warnings or NaN."""
    a = np.asarray(pred_boxes, np.float64).reshape(-1, 4)
    b = np.asarray(true_boxes, np.float64).reshape(-1, 4)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.nan_to_num(B.iou(a, b), nan=0.0, posinf=0.0, neginf=0.0)


def match_image(
    rec: FaceRecord, boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Greedy matching of one image's detections, best score first.

    Returns ``(order, tp, keep, face)`` over the detections in ``order`` (descending score):
    ``tp`` a real face taken, ``keep`` False for a detection that only overlaps an ignored face
    (neither true nor false), ``face`` the taken face's index (-1 for none).
    """
    ign = _ignored(rec)
    pb = np.asarray(boxes, np.float64).reshape(-1, 4)
    ps = np.asarray(scores, np.float32).reshape(-1)
    order = np.argsort(-ps, kind="stable")
    pb = pb[order]
    tp = np.zeros(len(ps), bool)
    keep = np.ones(len(ps), bool)
    face = np.full(len(ps), -1, np.int64)
    if len(rec) and len(ps):
        overlap = overlaps(pb, rec.boxes)
        taken = np.zeros(len(rec), bool)
        for d in range(len(ps)):
            o = overlap[d]
            # a detection goes to the best free real face first, then to ignored faces
            o_real = np.where(~taken & ~ign, o, -1.0)
            j = int(o_real.argmax())
            if o_real[j] >= iou_threshold:
                tp[d] = True
                taken[j] = True
                face[d] = j
                continue
            if ign.any() and o[ign].max() >= iou_threshold:
                keep[d] = False
    return order, tp, keep, face


def evaluate_ap(
    records: Sequence[FaceRecord],
    predictions: Mapping[str, tuple[np.ndarray, np.ndarray]],
    iou_threshold: float = 0.5,
) -> APResult:
    """AP of ``predictions`` (``name -> (boxes xyxy px (M, 4), scores (M,))``) on ``records``.

    Images without predictions simply contribute misses.
    """
    all_scores: list[np.ndarray] = []
    all_tp: list[np.ndarray] = []
    all_keep: list[np.ndarray] = []
    n_faces = 0
    for rec in records:
        n_faces += int((~_ignored(rec)).sum())
        pb, ps = predictions.get(rec.name, (np.zeros((0, 4), np.float32), np.zeros(0, np.float32)))
        ps = np.asarray(ps, np.float32).reshape(-1)
        order, tp, keep, _ = match_image(rec, pb, ps, iou_threshold)
        all_scores.append(ps[order])
        all_tp.append(tp)
        all_keep.append(keep)
    scores = np.concatenate(all_scores) if all_scores else np.zeros(0)
    tp = np.concatenate(all_tp) if all_tp else np.zeros(0, bool)
    keep = np.concatenate(all_keep) if all_keep else np.zeros(0, bool)
    scores, tp = scores[keep], tp[keep]
    order = np.argsort(-scores, kind="stable")
    tp, scores = tp[order], scores[order]
    ctp = np.cumsum(tp)
    cfp = np.cumsum(~tp)
    recall = ctp / max(n_faces, 1)
    precision = ctp / np.maximum(ctp + cfp, 1)
    ap = average_precision(recall, precision) if n_faces else 0.0
    return APResult(ap, n_faces, int(len(scores)), recall, precision, scores)
