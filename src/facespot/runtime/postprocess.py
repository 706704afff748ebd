"""Dense network outputs -> a few scored boxes, in NumPy, cheaply.

Order matters for speed: a 640x480 FaceBoxes frame has 6,400 anchors (Tiny Faces: ~120,000),
almost all background. So we (1) threshold the *logits* (``logit >= log(t / (1 - t))``, no
sigmoid over every anchor), (2) cap what survives at ``pre_nms_top_k`` with ``argpartition``,
(3) decode only those anchors with the shared :func:`facespot.spec.decode_outputs`, and
(4) suppress (hard NMS, or BlazeFace's blending NMS) with ``max_faces`` as the output cap.
Everything is vectorised; the NMS loop runs once per *kept* box.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from facespot import boxes as B
from facespot.spec import BoxCoding, decode_outputs


@dataclass
class PostprocessOptions:
    """Thresholds that turn scores into faces.

    score_threshold: minimum face probability.  iou_threshold: NMS overlap.
    max_faces: most faces per image.  min_face_size: drop faces whose shorter side (original
    pixels) is below this.  pre_nms_top_k: most candidates entering NMS per input.
    """

    score_threshold: float = 0.5
    iou_threshold: float = 0.3
    max_faces: int = 750
    min_face_size: float = 0.0
    pre_nms_top_k: int = 5000

    def check(self) -> None:
        from facespot.errors import FacespotError

        if not 0.0 <= self.score_threshold <= 1.0:
            raise FacespotError(f"score threshold must be in [0, 1], got {self.score_threshold}")
        if not 0.0 < self.iou_threshold <= 1.0:
            raise FacespotError(f"NMS IoU threshold must be in (0, 1], got {self.iou_threshold}")
        if self.max_faces < 1 or self.pre_nms_top_k < 1:
            raise FacespotError("max_faces and pre_nms_top_k must be at least 1")
        if self.min_face_size < 0:
            raise FacespotError(f"min face size must be >= 0, got {self.min_face_size}")


def logit_threshold(score_threshold: float) -> float:
    """The logit whose sigmoid is ``score_threshold`` (``-inf`` for 0, ``inf`` for 1)."""
    if score_threshold <= 0.0:
        return -math.inf
    if score_threshold >= 1.0:
        return math.inf
    return math.log(score_threshold / (1.0 - score_threshold))


def candidate_indices(logits: np.ndarray, opts: PostprocessOptions) -> np.ndarray:
    """Anchors whose flat face ``logits`` pass the score threshold, at most ``pre_nms_top_k``
    of them (the highest): steps (1) and (2) above."""
    idx = np.flatnonzero(logits >= logit_threshold(opts.score_threshold))
    if idx.size > opts.pre_nms_top_k:
        part = np.argpartition(-logits[idx], opts.pre_nms_top_k - 1)[: opts.pre_nms_top_k]
        idx = idx[part]
    return idx


def select_candidates(
    outputs: list[np.ndarray], anchors: np.ndarray, coding: BoxCoding, opts: PostprocessOptions
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One image's dense outputs (no batch axis) -> candidates above threshold, decoded.

    Returns ``(boxes (K, 4) xyxy normalised to the input, scores (K,), points (K, P, 2) or None)``.
    """
    logits = np.asarray(outputs[1], dtype=np.float32).reshape(-1)
    idx = candidate_indices(logits, opts)
    deltas = np.asarray(outputs[0], dtype=np.float32)[idx]
    points = None
    if len(outputs) > 2 and outputs[2] is not None:
        points = np.asarray(outputs[2], dtype=np.float32)[idx]
    boxes, scores, pts = decode_outputs((deltas, logits[idx], points), anchors[idx], coding)
    keep = scores >= opts.score_threshold  # exact comparison after the cheap logit test
    boxes = np.asarray(boxes, np.float32)[keep]
    return boxes, np.asarray(scores, np.float32)[keep], None if pts is None else np.asarray(pts, np.float32)[keep]


def suppress(
    boxes: np.ndarray,
    scores: np.ndarray,
    points: np.ndarray | None,
    kind: str,
    iou_threshold: float,
    max_out: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Hard NMS (``kind="hard"``) or blending NMS (``"blend"``); best score first."""
    if len(boxes) == 0:
        return boxes.reshape(0, 4), scores.reshape(0), points
    if kind == "blend":
        return B.blending_nms(boxes, scores, iou_threshold, points=points, max_out=max_out)
    keep = B.nms(boxes, scores, iou_threshold, max_out=max_out)
    return boxes[keep], scores[keep], None if points is None else points[keep]


def drop_small(
    boxes: np.ndarray, scores: np.ndarray, points: np.ndarray | None, min_size: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Remove faces whose shorter side is below ``min_size`` pixels."""
    if min_size <= 0 or len(boxes) == 0:
        return boxes, scores, points
    side = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    keep = side >= min_size
    return boxes[keep], scores[keep], None if points is None else points[keep]


# ---------------------------------------------------------------------- merging tiles


@dataclass
class ViewFaces:
    """One view's faces after its own suppression, in original-image pixels. ``crop`` is the
    tile ``(x, y, w, h)``, or None for a whole-image pass."""

    boxes: np.ndarray
    scores: np.ndarray
    points: np.ndarray | None
    crop: tuple[int, int, int, int] | None


def cut_sides(boxes: np.ndarray, crop: tuple[int, int, int, int] | None, width: int, height: int) -> np.ndarray:
    """``(K, 4)`` bools: does each box touch the tile's left / top / right / bottom border
    where that border is *inside* the image (a face there is probably cut by the tile)?

    "Touch" allows 2% of the tile's long side (at least 2 px): a network places the edge of a
    face it cannot see fully a little inside the border."""
    out = np.zeros((len(boxes), 4), bool)
    if crop is None or not len(boxes):
        return out
    x, y, w, h = crop
    m = max(2.0, 0.02 * max(w, h))
    out[:, 0] = (x > 0) & (boxes[:, 0] <= x + m)
    out[:, 1] = (y > 0) & (boxes[:, 1] <= y + m)
    out[:, 2] = (x + w < width) & (boxes[:, 2] >= x + w - m)
    out[:, 3] = (y + h < height) & (boxes[:, 3] >= y + h - m)
    return out


def _inside_uncut(box: np.ndarray, crop: tuple[int, int, int, int], width: int, height: int) -> bool:
    """Does ``crop`` hold ``box`` whole, away from its own inner borders (so that tile saw it uncut)?"""
    x, y, w, h = crop
    if not (x <= box[0] and y <= box[1] and box[2] <= x + w and box[3] <= y + h):
        return False
    return not cut_sides(box[None], crop, width, height).any()


def _io_min(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Intersection over the smaller area: 1 when one box lies inside the other (a face fragment)."""
    lt = np.maximum(box[:2], others[:, :2])
    rb = np.minimum(box[2:], others[:, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=1)
    area = lambda b: np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)  # noqa: E731
    return inter / np.maximum(np.minimum(area(box), area(others)), 1e-9)


def _stitch(boxes, scores, points, cut, views) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """Join the two halves of a face larger than the tile overlap: a box cut at a tile's right
    (bottom) inner border and one from another tile cut at its left (top) border, overlapping
    on the seam and lined up across it, become their union (best score, best half's points)."""
    alive = np.ones(len(boxes), bool)
    boxes, cut = boxes.copy(), cut.copy()
    merged = True
    while merged:
        merged = False
        for i in np.flatnonzero(alive & (cut[:, 2] | cut[:, 3])):
            for axis, (far, near) in ((0, (2, 0)), (1, (3, 1))):  # x: right of i meets left of j; y: bottom/top
                if not cut[i, far]:
                    continue
                a, b = (1, 3) if axis == 0 else (0, 2)  # the other axis' interval
                for j in np.flatnonzero(alive & cut[:, near] & (views != views[i])):
                    if j == i or not (boxes[j, axis] <= boxes[i, axis + 2] and boxes[i, axis] < boxes[j, axis]):
                        continue
                    lo, hi = max(boxes[i, a], boxes[j, a]), min(boxes[i, b], boxes[j, b])
                    span = max(boxes[i, b], boxes[j, b]) - min(boxes[i, a], boxes[j, a])
                    if span <= 0 or (hi - lo) / span < 0.5:  # not the same face across the seam
                        continue
                    keep, drop = (i, j) if scores[i] >= scores[j] else (j, i)
                    union = np.concatenate([np.minimum(boxes[i, :2], boxes[j, :2]), np.maximum(boxes[i, 2:], boxes[j, 2:])])
                    flags = cut[i] | cut[j]
                    flags[far], flags[near] = cut[j, far], cut[i, near]  # the seam is no longer a cut
                    boxes[keep], cut[keep] = union, flags
                    scores[keep] = max(scores[i], scores[j])
                    alive[drop] = False
                    merged = True
                    break
                if merged:
                    break
            if merged:
                break
    return boxes[alive], scores[alive], None if points is None else points[alive], cut[alive]


def merge_views(
    parts: list[ViewFaces], width: int, height: int, kind: str, iou_threshold: float, max_out: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Faces of a whole-image pass and overlapping tiles -> one set, without seam fragments.

    1. A face cut by an inner tile border is dropped when another tile holds the same box
       whole (that tile saw the face complete).
    2. The two cut halves of a face wider than the overlap are stitched into one box.
    3. Uncut faces are suppressed as usual (hard or blending NMS); the remaining cut faces
       are kept only when they overlap no kept face by IoU above the threshold nor lie mostly
       (intersection over the smaller box >= 0.5) inside one -- a fragment of a face found
       whole elsewhere.
    """
    if not parts:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), None
    boxes = np.concatenate([p.boxes for p in parts]).reshape(-1, 4).astype(np.float32)
    scores = np.concatenate([p.scores for p in parts]).reshape(-1).astype(np.float32)
    with_points = all(p.points is not None for p in parts)
    points = np.concatenate([p.points for p in parts]) if with_points and len(boxes) else None
    views = np.concatenate([np.full(len(p.boxes), k) for k, p in enumerate(parts)])
    cut = np.concatenate([cut_sides(p.boxes.reshape(-1, 4), p.crop, width, height) for p in parts]).reshape(-1, 4)
    tiles = [(k, p.crop) for k, p in enumerate(parts) if p.crop is not None]
    is_cut = cut.any(axis=1)
    drop = np.zeros(len(boxes), bool)
    for i in np.flatnonzero(is_cut):
        drop[i] = any(k != views[i] and _inside_uncut(boxes[i], crop, width, height) for k, crop in tiles)
    keep = ~drop
    boxes, scores, views, cut = boxes[keep], scores[keep], views[keep], cut[keep]
    points = None if points is None else points[keep]
    boxes, scores, points, cut = _stitch(boxes, scores, points, cut, views)
    is_cut = cut.any(axis=1)
    whole = ~is_cut
    kb, ks, kp = suppress(boxes[whole], scores[whole], None if points is None else points[whole], kind, iou_threshold, max_out)
    kept_b, kept_s = [kb], [ks]
    kept_p = [kp] if points is not None else None
    for i in np.flatnonzero(is_cut)[np.argsort(-scores[is_cut], kind="stable")]:
        others = np.concatenate(kept_b)
        if len(others):
            if (B.iou(boxes[i : i + 1], others)[0] > iou_threshold).any() or (_io_min(boxes[i], others) >= 0.5).any():
                continue
        kept_b.append(boxes[i : i + 1])
        kept_s.append(scores[i : i + 1])
        if kept_p is not None:
            kept_p.append(points[i : i + 1])
    out_b, out_s = np.concatenate(kept_b).reshape(-1, 4), np.concatenate(kept_s)
    out_p = None if kept_p is None else np.concatenate(kept_p)
    order = np.argsort(-out_s, kind="stable")[:max_out]
    return out_b[order], out_s[order], None if out_p is None else out_p[order]
