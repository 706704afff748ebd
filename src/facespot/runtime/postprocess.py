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


def select_candidates(
    outputs: list[np.ndarray], anchors: np.ndarray, coding: BoxCoding, opts: PostprocessOptions
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One image's dense outputs (no batch axis) -> candidates above threshold, decoded.

    Returns ``(boxes (K, 4) xyxy normalised to the input, scores (K,), points (K, P, 2) or None)``.
    """
    logits = np.asarray(outputs[1], dtype=np.float32).reshape(-1)
    idx = np.flatnonzero(logits >= logit_threshold(opts.score_threshold))
    if idx.size > opts.pre_nms_top_k:
        part = np.argpartition(-logits[idx], opts.pre_nms_top_k - 1)[: opts.pre_nms_top_k]
        idx = idx[part]
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
