"""FDDB discrete-score ROC: true positive rate against the number of false positives.

The FDDB protocol (Jain & Learned-Miller, ``evaluate`` tool): per image, detections and faces
are paired one-to-one, a pair counting when its overlap is > 0.5; the *discrete* score gives a
paired detection 1 and everything else 0. Sweeping a threshold over the detection scores gives
(FP count, TPR) points; papers quote TPR at a fixed number of false positives over the whole
set (e.g. 1000 or 2000).

Choices made here, and why:

* **Boxes, not ellipses.** FDDB annotates ellipses; :mod:`facespot.data.fddb` turns them into
  boxes, and the overlap is plain (continuous) box IoU. The official tool rasterises the
  ellipse, so numbers are close to, not identical with, published ones.
* **Maximum-cardinality matching** of the pairs with IoU > 0.5. The official tool maximises
  the summed overlap (Hungarian); for a discrete score the number of pairs is what matters,
  and the two agree except in contrived chains. Its advantage: adding a detection never lowers
  the count, so all thresholds come from one pass. Detections are added in score order and
  each tries an augmenting path (Kuhn's algorithm); after the first ``k`` detections the
  matching is maximum for those ``k``, i.e. exactly the matching at that threshold.
* Thresholds are the distinct detection scores; detections with equal scores enter together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from facespot.boxes import iou
from facespot.data.records import FaceRecord
from facespot.errors import FacespotError

IOU_THRESHOLD = 0.5
FP_POINTS = (100, 500, 1000, 2000)


@dataclass
class FddbRocResult:
    """Discrete ROC over the evaluated images.

    ``thresholds`` are the distinct detection scores, descending; ``tp`` / ``fp`` count the
    detections with score >= each threshold that are / are not paired with a face.
    """

    thresholds: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    faces: int
    images: int
    detections: int
    tpr_at_fp: dict[int, float] = field(default_factory=dict)

    @property
    def tpr(self) -> np.ndarray:
        return self.tp / max(self.faces, 1)

    def tpr_at(self, max_fp: int) -> float:
        """Best TPR with at most ``max_fp`` false positives (0 if even the top score exceeds it)."""
        ok = self.fp <= max_fp
        return float(self.tp[ok].max() / max(self.faces, 1)) if ok.any() else 0.0

    def to_dict(self, curve: bool = True) -> dict:
        out: dict = {
            "protocol": "FDDB discrete ROC, box IoU > 0.5, maximum matching",
            "faces": self.faces,
            "images": self.images,
            "detections": self.detections,
            "tpr_at_fp": {str(k): v for k, v in self.tpr_at_fp.items()},
        }
        if curve:
            out.update(thresholds=self.thresholds.tolist(), tp=self.tp.tolist(), fp=self.fp.tolist())
        return out


def _augment(det: int, adj: list[np.ndarray], face_of_det: dict[int, int], det_of_face: dict[int, int], seen: set[int]) -> bool:
    """Kuhn's augmenting path from detection ``det``; rewires the matching on success."""
    for f in adj[det]:
        f = int(f)
        if f in seen:
            continue
        seen.add(f)
        other = det_of_face.get(f)
        if other is None or _augment(other, adj, face_of_det, det_of_face, seen):
            det_of_face[f] = det
            face_of_det[det] = f
            return True
    return False


def image_true_positives(dets: np.ndarray, gt_boxes: np.ndarray, iou_threshold: float = IOU_THRESHOLD) -> np.ndarray:
    """For detections sorted by score: 1 where adding it grows the maximum matching, else 0.

    The cumulative sum is the number of matched faces using the first ``k`` detections.
    """
    n = len(dets)
    gained = np.zeros(n, dtype=np.int64)
    if n == 0 or len(gt_boxes) == 0:
        return gained
    ov = iou(np.asarray(dets, dtype=np.float64)[:, :4], np.asarray(gt_boxes, dtype=np.float64))
    # Best-overlap faces first, so the initial matching is also the intuitive one.
    adj = [np.flatnonzero(row > iou_threshold)[np.argsort(-row[row > iou_threshold], kind="stable")] for row in ov]
    face_of_det: dict[int, int] = {}
    det_of_face: dict[int, int] = {}
    for k in range(n):
        if adj[k].size and _augment(k, adj, face_of_det, det_of_face, set()):
            gained[k] = 1
    return gained


def evaluate_fddb(
    records: Sequence[FaceRecord],
    detections: Mapping[str, np.ndarray],
    iou_threshold: float = IOU_THRESHOLD,
    fp_points: Sequence[int] = FP_POINTS,
) -> FddbRocResult:
    """Discrete ROC of ``detections`` (``{name: (N, 5) xyxy+score}``) against ``records``.

    Every record is evaluated (an image without detections contributes missed faces); a
    detection entry for an image that is not among the records is an error.
    """
    from facespot.data.predictions import normalize_fddb_name

    by_name: dict[str, FaceRecord] = {}
    for r in records:
        by_name[normalize_fddb_name(r.name)] = r
    dets = {normalize_fddb_name(k): np.asarray(v, dtype=np.float64).reshape(-1, 5) for k, v in detections.items()}
    unknown = [k for k in dets if k not in by_name]
    if unknown:
        example = next(iter(by_name), "none")
        raise FacespotError(
            f"{len(unknown)} detection image(s) are not in the FDDB folds, e.g. {unknown[0]!r} "
            f"(fold images are named like {example!r})"
        )
    if not by_name:
        raise FacespotError("no FDDB ground-truth images to evaluate")

    scores, gains = [], []
    for name, rec in by_name.items():
        d = dets.get(name)
        if d is None or not len(d):
            continue
        d = d[np.argsort(-d[:, 4], kind="stable")]
        scores.append(d[:, 4])
        gains.append(image_true_positives(d, rec.boxes, iou_threshold))
    s = np.concatenate(scores) if scores else np.zeros(0)
    g = np.concatenate(gains) if gains else np.zeros(0, dtype=np.int64)
    order = np.argsort(-s, kind="stable")
    s, g = s[order], g[order]
    tp_cum = np.cumsum(g)
    # One ROC point per distinct score: the last detection of each tie group.
    last = np.flatnonzero(np.r_[s[1:] != s[:-1], True]) if s.size else np.zeros(0, dtype=np.int64)
    tp = tp_cum[last]
    fp = (last + 1) - tp
    faces = int(sum(len(r.boxes) for r in by_name.values()))
    result = FddbRocResult(
        thresholds=s[last], tp=tp, fp=fp, faces=faces, images=len(by_name), detections=int(s.size)
    )
    result.tpr_at_fp = {int(n): result.tpr_at(int(n)) for n in fp_points}
    return result


def format_fddb_result(result: FddbRocResult) -> str:
    """The table the CLI prints: TPR at each requested number of false positives."""
    lines = [
        f"FDDB discrete ROC (box IoU > {IOU_THRESHOLD:g}, maximum matching): "
        f"{result.images} images, {result.faces} faces, {result.detections} detections",
        "false positives  TPR",
        "---------------  ------",
    ]
    total_fp = int(result.fp[-1]) if result.fp.size else 0
    for n, v in result.tpr_at_fp.items():
        flag = "  (all detections used: only {} FP in total)".format(total_fp) if n > total_fp else ""
        lines.append(f"{n:>15d}  {v:.4f}{flag}")
    return "\n".join(lines)
