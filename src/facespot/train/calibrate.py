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

Before that, models with score groups (SpotNet: one per level and anchor size) get one
logit offset per group (:func:`choose_group_offsets`): a shared classifier gives a 16-px
anchor and a 128-px one the same score scale, but at equal scores the small one is far more
often a false face, so tiny false faces outrank large real ones. The offsets are chosen on
the WIDER *training* images by the official protocol (mean of easy / medium / hard AP);
unlike the shift they do change rankings, and they are reported before and after.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from facespot import boxes as B
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


# ---------------------------------------------------------------- per-group score offsets


def group_candidates(
    detector, records: Sequence[FaceRecord], progress: Callable[[], None] | None = None
) -> dict[str, np.ndarray]:
    """Every candidate above ``detector``'s score threshold, before NMS, as
    ``(N, 6) [x1, y1, x2, y2, face logit, score group]`` in image pixels, per record name.

    Each image is seen as ``facespot detect`` sees it (the detector's resize policy, one view).
    """
    from facespot.runtime import postprocess as post
    from facespot.runtime.preprocess import render_view
    from facespot.spec import decode_outputs

    model = detector.model
    out: dict[str, np.ndarray] = {}
    for rec in records:
        img = read_record_image(rec)
        h, w = img.shape[:2]
        view = detector._views(h, w)[0]
        net = detector.run_network(detector._normalize([render_view(img, view)]))
        logits = np.asarray(net[1][0], np.float32).reshape(-1)
        idx = post.candidate_indices(logits, detector.options)  # threshold and cap as at run time
        anchors = detector.anchors(view.canvas_h, view.canvas_w)[idx]
        boxes, _, _ = decode_outputs((np.asarray(net[0][0], np.float32)[idx], logits[idx], None), anchors, model.coding)
        boxes = view.to_image(np.asarray(boxes, np.float32))
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
        groups = model.score_groups(view.canvas_h, view.canvas_w)[idx]
        out[rec.name] = np.concatenate([boxes, logits[idx, None], groups[:, None].astype(np.float32)], axis=1)
        if progress is not None:
            progress()
    return out


@dataclass
class GroupOffsets:
    offsets: np.ndarray  # one logit offset per score group
    before: dict[str, float]  # WIDER AP per setting on the training images, no offsets
    after: dict[str, float]  # ... with them

    def summary(self) -> str:
        def aps(d: dict[str, float]) -> str:
            return " / ".join(f"{v:.3f}" for v in d.values())

        return (
            f"score offsets {' '.join(f'{v:+.2f}' for v in self.offsets)}; WIDER training images easy / medium / hard "
            f"AP {aps(self.before)} -> {aps(self.after)}"
        )


def _wider_aps(gt, candidates: dict[str, np.ndarray], offsets: np.ndarray, iou: float, nms_done: bool) -> dict[str, float]:
    from facespot.eval.wider import evaluate_wider

    preds = {}
    for name, c in candidates.items():
        d = c.copy()
        d[:, 4] += offsets[d[:, 5].astype(np.int64)]
        if not nms_done and len(d):
            d = d[B.nms(d[:, :4], d[:, 4], iou, max_out=750)]
        preds[name] = np.concatenate([d[:, :4], 1.0 / (1.0 + np.exp(-d[:, 4:5]))], axis=1)
    return {k: float(v) for k, v in evaluate_wider(gt, preds, images=list(candidates)).ap.items()}


def choose_group_offsets(
    candidates: dict[str, np.ndarray], gt, groups: int, iou_threshold: float = 0.3,
    slopes: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5), step: float = 0.3,
) -> GroupOffsets:
    """Offsets that maximise the mean WIDER AP (easy, medium, hard) of ``candidates``
    (from :func:`group_candidates`, on *training* images; ``gt`` from
    :func:`facespot.data.wider_mat.read_wider_mat`).

    Groups are numbered from the smallest anchors up. First a line across them (``slope``
    per group: small anchors down, large up), then one pass nudging each group by
    ``+-step``. The search keeps the NMS survivors of the plain scores (offsets move few
    boxes across NMS); the numbers it returns are exact.
    """
    survivors = {}
    for name, c in candidates.items():
        survivors[name] = c[B.nms(c[:, :4], c[:, 4], iou_threshold, max_out=750)] if len(c) else c

    def mean_ap(off: np.ndarray) -> float:
        return float(np.mean(list(_wider_aps(gt, survivors, off, iou_threshold, True).values())))

    centre = (groups - 1) / 2.0
    best_off, best = np.zeros(groups), -1.0
    for c in slopes:
        off = c * (np.arange(groups) - centre)
        m = mean_ap(off)
        if m > best + 1e-4:
            best_off, best = off, m
    for g in range(groups):
        for d in (-step, step):
            off = best_off.copy()
            off[g] += d
            m = mean_ap(off)
            if m > best + 1e-4:
                best_off, best = off, m
                break
    best_off = best_off - best_off.mean()  # the face logit's overall level is the threshold shift's job
    return GroupOffsets(
        best_off.astype(np.float32),
        _wider_aps(gt, candidates, np.zeros(groups), iou_threshold, False),
        _wider_aps(gt, candidates, best_off, iou_threshold, False),
    )
