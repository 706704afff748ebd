"""Where a trained detector's scores are cut: putting its operating point at 0.5.

Losses give different score scales. Quality focal loss (SpotNet) trains a face's score
towards the IoU its box reaches, so well-found faces score 0.6-0.9; cross-entropy pushes
faces towards 1. facespot's commands share one default threshold (0.5 to detect, 0.4 to
blur, 0.02 for AP files), so before a model ships its face logit is shifted
(:meth:`facespot.models.base.FaceModel.shift_face_logit`) to make 0.5 mean the same thing
for every packaged model: the lowest score at which

* detections on annotated *training* photos reach ``precision`` (IoU 0.5), and
* face-free *training* photos get at most ``max_fp_per_image`` false faces, and
* blank, uniform and noise frames get none.

The shift is monotone, so rankings and every AP are unchanged. Calibration never looks at
evaluation or hold-out images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from facespot.data.negatives import read_record_image
from facespot.data.records import FaceRecord
from facespot.eval.simple_ap import evaluate_ap


@dataclass
class Calibration:
    threshold: float  # the score (before shifting) that becomes 0.5
    precision_threshold: float
    negatives_threshold: float
    blank_threshold: float
    precision: float
    recall_at_threshold: float
    fp_per_image_at_threshold: float

    @property
    def logit_shift(self) -> float:
        t = min(max(self.threshold, 1e-6), 1 - 1e-6)
        return -math.log(t / (1 - t))

    def summary(self) -> str:
        return (
            f"threshold {self.threshold:.3f} (precision {self.precision:.2f} from {self.precision_threshold:.3f}, "
            f"negatives {self.negatives_threshold:.3f}, blank frames {self.blank_threshold:.3f}); at it: recall "
            f"{self.recall_at_threshold:.3f}, {self.fp_per_image_at_threshold:.3f} false faces per face-free photo"
        )


def _detect(detector, records: Sequence[FaceRecord]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for rec in records:
        faces = detector(read_record_image(rec), rgb=True)
        out[rec.name] = (np.array([f.box for f in faces], np.float32).reshape(-1, 4), np.array([f.score for f in faces], np.float32))
    return out


def _above(scores: np.ndarray, allowed: int) -> float:
    """The lowest threshold that lets through at most ``allowed`` of ``scores``."""
    s = np.sort(np.asarray(scores, np.float64))[::-1]
    return 0.0 if len(s) <= allowed else float(np.nextafter(s[allowed], 1.0))


def calibrate(
    detector, faces: Sequence[FaceRecord], negatives: Sequence[FaceRecord], blanks: Sequence[FaceRecord],
    precision: float = 0.9, max_fp_per_image: float = 0.01,
) -> Calibration:
    """Measure the operating threshold of ``detector`` (a :class:`facespot.runtime.Detector`
    built with a low ``score_threshold``, e.g. 0.02) on training records."""
    res = evaluate_ap(faces, _detect(detector, faces), 0.5)
    ok = np.flatnonzero(res.precision >= precision)
    # the lowest score whose cumulative precision still reaches the target
    t_prec = float(res.scores[ok[-1]]) if len(ok) else 1.0
    neg_scores = np.concatenate([s for _, s in _detect(detector, negatives).values()] or [np.zeros(0)])
    t_neg = _above(neg_scores, int(max_fp_per_image * len(negatives)))
    blank_scores = np.concatenate([s for _, s in _detect(detector, blanks).values()] or [np.zeros(0)])
    t_blank = _above(blank_scores, 0)
    t = max(t_prec, t_neg, t_blank)
    n_at = int((res.scores >= t).sum())
    recall = float(res.recall[n_at - 1]) if n_at else 0.0
    return Calibration(
        t, t_prec, t_neg, t_blank, precision, recall, float((neg_scores >= t).sum()) / max(len(negatives), 1),
    )
