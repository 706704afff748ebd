"""What a user meets at one threshold: recall of faces by size, and precision.

AP integrates over every threshold, so it hides where a detector's default threshold sits: a
model can rank faces well (high AP) and still report only a third of them at its default,
because the scores of small faces sit far below it. This module measures the operating point
itself on annotated images:

* **recall of faces at least H pixels high** (``min_heights``, e.g. 16 / 24 / 32), over the
  faces that count (WIDER's ``invalid`` and VOC's ``difficult`` faces do not);
* **precision**: detections at or above the threshold that take a real face (IoU >= 0.5,
  greedily by score, as in AP) over all detections at or above it, a detection that only
  overlaps an ignored face being neither (:func:`facespot.eval.simple_ap.match_image`).

Precision counts every annotated face, however small, as a true face: a detection of a real
10-px face is not a false alarm because the recall columns look at larger faces only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from facespot.data.records import FaceRecord
from facespot.eval.simple_ap import _ignored, match_image

MIN_HEIGHTS = (16, 24, 32)


@dataclass
class OperatingPoint:
    threshold: float
    precision: float  # NaN when nothing is detected
    detections: int  # at or above the threshold, ignored-face detections left out
    true_detections: int
    recall: dict[int, float]  # min face height (px) -> recall of the faces at least that high
    faces: dict[int, int]  # min face height (px) -> how many faces that is

    def to_dict(self) -> dict:
        d = asdict(self)
        d["recall"] = {str(k): v for k, v in self.recall.items()}
        d["faces"] = {str(k): v for k, v in self.faces.items()}
        return d

    def precision_interval(self, z: float = 1.645) -> tuple[float, float]:
        """Wilson score interval of the precision (90% for the default ``z``): how far another set of
        photos like these may put it. ~750 detections at 0.95 give +-0.013, so a threshold calibrated
        to exactly 0.95 on one hold-out lands under 0.95 on another about half the time."""
        return wilson_interval(self.true_detections, self.detections, z)

    def recall_text(self) -> str:
        return ", ".join(f">= {h} px {self.recall[h]:.3f}" for h in self.recall)

    def precision_text(self) -> str:
        lo, hi = self.precision_interval()
        return f"precision {self.precision:.3f} (90% interval {lo:.3f}-{hi:.3f}; {self.detections} detections)"

    def summary(self) -> str:
        return f"at {self.threshold:g}: recall of faces {self.recall_text()}; {self.precision_text()}"


def wilson_interval(k: int, n: int, z: float = 1.645) -> tuple[float, float]:
    """Wilson score interval of a proportion ``k / n`` at ``z`` standard deviations (NaN, NaN when n = 0)."""
    if n <= 0:
        return float("nan"), float("nan")
    p, z2 = k / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * float(np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)))
    return max(0.0, centre - half), min(1.0, centre + half)


def operating_point(
    records: Sequence[FaceRecord],
    predictions: Mapping[str, tuple[np.ndarray, np.ndarray]],
    threshold: float,
    min_heights: Sequence[int] = MIN_HEIGHTS,
    iou_threshold: float = 0.5,
) -> OperatingPoint:
    """Recall by face height and precision of ``predictions`` (``name -> (boxes xyxy px, scores)``)
    at ``threshold``; images without predictions contribute misses."""
    found = {h: 0 for h in min_heights}
    total = {h: 0 for h in min_heights}
    n_det = n_true = 0
    for rec in records:
        boxes, scores = predictions.get(rec.name, (np.zeros((0, 4)), np.zeros(0)))
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        scores = np.asarray(scores, np.float64).reshape(-1)
        keep = scores >= threshold
        _, tp, counted, face = match_image(rec, boxes[keep], scores[keep], iou_threshold)
        n_det += int(counted.sum())
        n_true += int(tp.sum())
        taken = np.zeros(len(rec), bool)
        taken[face[face >= 0]] = True
        real = ~_ignored(rec)
        height = rec.boxes[:, 3] - rec.boxes[:, 1] if len(rec) else np.zeros(0)
        for h in min_heights:
            sel = real & (height >= h)
            total[h] += int(sel.sum())
            found[h] += int((taken & sel).sum())
    return OperatingPoint(
        float(threshold), n_true / n_det if n_det else float("nan"), n_det, n_true,
        {h: found[h] / total[h] if total[h] else float("nan") for h in min_heights}, dict(total),
    )


def wider_folder_operating_point(
    records: Sequence[FaceRecord], folder: str | Path, threshold: float, min_heights: Sequence[int] = MIN_HEIGHTS,
) -> OperatingPoint:
    """:func:`operating_point` of a WIDER prediction folder (``<event>/<name>.txt``, as ``facespot
    detect --wider-out`` and the peers write it); files for images outside ``records`` are skipped."""
    from facespot.data.predictions import read_wider_predictions

    got = read_wider_predictions(folder, allow_unknown=True).boxes
    return operating_point(records, {k: (v[:, :4], v[:, 4]) for k, v in got.items()}, threshold, min_heights)
