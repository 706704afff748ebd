"""Where a trained detector's scores are cut: putting its operating point at 0.5.

Losses give different score scales. Quality focal loss (SpotNet) trains a face's score
towards the IoU its box reaches, so well-found faces score 0.6-0.9; cross-entropy pushes
faces towards 1. facespot's commands share one default threshold (0.5 to detect, 0.02 for AP
files), so before a model ships its face logit is shifted
(:meth:`facespot.models.base.FaceModel.shift_face_logit`) to make 0.5 the lowest score at which

* detections on annotated photos held out of training reach ``precision`` (IoU 0.5, a
  detection of any annotated face counting as true: :mod:`facespot.eval.operating_point`), and
* face-free training photos get at most ``max_fp_per_image`` false faces, and
* blank, uniform and noise frames get none.

Each budget is met exactly, not approximately: every threshold is placed halfway (in logit
space) between the last score a budget admits and the next one it does not, so rounding in the
shifted float32 network cannot move a boundary detection across it, and
:func:`check_budgets` measures the shipped detector again before it is registered.

The shift is monotone, so rankings and every AP are unchanged.

Before that, models with score groups (SpotNet: one per level and anchor size) get one logit
offset per group (:func:`choose_group_offsets`): a shared classifier gives a 16-px anchor and
a 128-px one the same score scale, but at equal scores the small one is far more often a false
face, so tiny false faces outrank large real ones. The offsets are chosen on held-out WIDER
images by the official protocol (mean of easy / medium / hard AP); unlike the shift they do
change rankings, and they are reported before and after.

This is a shipping step (``scripts/ship_model.py``), not training: it only uses a
:class:`facespot.runtime.Detector`'s public calls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from facespot import boxes as B
from facespot.data.negatives import read_record_image
from facespot.data.records import FaceRecord
from facespot.eval.operating_point import OperatingPoint, operating_point
from facespot.eval.simple_ap import match_image

MARGIN = 0.05  # logit above the highest score a zero budget must keep out (nothing above it to halve towards)


def logit(p: float) -> float:
    p = min(max(float(p), 1e-7), 1 - 1e-7)
    return math.log(p / (1 - p))


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@dataclass
class Calibration:
    threshold: float  # the score (before shifting) that becomes 0.5
    precision_threshold: float
    negatives_threshold: float
    blank_threshold: float
    precision: float  # the budget: lowest precision allowed at the threshold
    max_fp_per_image: float  # the budget on face-free photos
    at_threshold: OperatingPoint  # measured on the annotated photos at the threshold
    fp_per_image_at_threshold: float  # measured on the face-free photos
    blank_faces_at_threshold: int

    @property
    def logit_shift(self) -> float:
        return -logit(self.threshold)

    @property
    def recall_at_threshold(self) -> float:
        return self.at_threshold.recall[min(self.at_threshold.recall)]

    def summary(self) -> str:
        op = self.at_threshold
        return (
            f"threshold {self.threshold:.4f} (precision >= {self.precision:.2f} from {self.precision_threshold:.4f}, "
            f"<= {self.max_fp_per_image:g} false faces per face-free photo from {self.negatives_threshold:.4f}, "
            f"no face on blank frames from {self.blank_threshold:.4f}); at it: {op.precision_text()}, "
            f"recall of faces {op.recall_text()}; {self.fp_per_image_at_threshold:.4f} false faces per face-free photo, "
            f"{self.blank_faces_at_threshold} on blank frames"
        )


def _detect(detector, records: Sequence[FaceRecord], progress: Callable[[], None] | None = None
            ) -> dict[str, tuple[np.ndarray, np.ndarray]]:  # fmt: skip
    out = {}
    for rec in records:
        faces = detector(read_record_image(rec), rgb=True)
        out[rec.name] = (np.array([f.box for f in faces], np.float64).reshape(-1, 4), np.array([f.score for f in faces], np.float64))
        if progress is not None:
            progress()
    return out


def _between(admitted: float | None, refused: float) -> float:
    """A threshold above ``refused`` and at or below ``admitted``: halfway in logit space
    (``MARGIN`` above ``refused`` when nothing is admitted)."""
    if admitted is None:
        return sigmoid(logit(refused) + MARGIN)
    return sigmoid((logit(admitted) + logit(refused)) / 2)


def allowed_false_faces(max_fp_per_image: float, photos: int) -> int:
    """How many false faces ``max_fp_per_image`` allows on ``photos`` face-free photos (rounded down)."""
    return int(math.floor(max_fp_per_image * photos + 1e-9))


def count_threshold(scores: np.ndarray, allowed: int) -> float:
    """The lowest threshold letting at most ``allowed`` of ``scores`` through (0 when all may pass)."""
    s = np.sort(np.asarray(scores, np.float64))[::-1]
    if len(s) <= allowed:
        return 0.0
    refused = s[allowed]  # the first score that must stay out, with every score tied to it
    above = s[s > refused]
    return _between(float(above.min()) if len(above) else None, float(refused))


def precision_threshold(records: Sequence[FaceRecord], predictions, precision: float, iou: float = 0.5) -> float:
    """The lowest threshold at which the detections reach ``precision`` (1.0 when none does)."""
    scores, tp = [], []
    for rec in records:
        boxes, sc = predictions.get(rec.name, (np.zeros((0, 4)), np.zeros(0)))
        order, t, keep, _ = match_image(rec, boxes, sc, iou)
        scores.append(np.asarray(sc, np.float64)[order][keep])
        tp.append(t[keep])
    s = np.concatenate(scores) if scores else np.zeros(0)
    t = np.concatenate(tp) if tp else np.zeros(0, bool)
    if not len(s):
        return 1.0
    order = np.argsort(-s, kind="stable")
    s, t = s[order], t[order]
    levels, first = np.unique(-s, return_index=True)  # distinct scores, highest first
    last = np.r_[first[1:], len(s)] - 1  # last detection at or above each level
    ctp = np.cumsum(t)[last]
    prec = ctp / (last + 1)
    ok = np.flatnonzero(prec >= precision)
    if not len(ok):
        return 1.0
    k = int(ok[-1])  # the lowest level still meeting the budget
    admitted = float(-levels[k])
    if k + 1 >= len(levels):  # every detection admitted: a little below the lowest
        return sigmoid(logit(admitted) - MARGIN)
    return _between(admitted, float(-levels[k + 1]))


def calibrate(
    detector, faces: Sequence[FaceRecord], negatives: Sequence[FaceRecord], blanks: Sequence[FaceRecord],
    precision: float = 0.95, max_fp_per_image: float = 0.01, progress: Callable[[], None] | None = None,
) -> Calibration:
    """Measure the operating threshold of ``detector`` (a :class:`facespot.runtime.Detector`
    built with a low ``score_threshold``, e.g. 0.02) on held-out annotated ``faces``, face-free
    ``negatives`` and synthetic ``blanks``."""
    pred = _detect(detector, faces, progress)
    t_prec = precision_threshold(faces, pred, precision)
    neg = _detect(detector, negatives, progress)
    neg_scores = np.concatenate([s for _, s in neg.values()] or [np.zeros(0)])
    allowed = allowed_false_faces(max_fp_per_image, len(negatives))
    t_neg = count_threshold(neg_scores, allowed)
    blank_scores = np.concatenate([s for _, s in _detect(detector, blanks, progress).values()] or [np.zeros(0)])
    t_blank = count_threshold(blank_scores, 0)
    t = max(t_prec, t_neg, t_blank)
    return Calibration(
        t, t_prec, t_neg, t_blank, precision, max_fp_per_image, operating_point(faces, pred, t),
        float((neg_scores >= t).sum()) / max(len(negatives), 1), int((blank_scores >= t).sum()),
    )


@dataclass
class BudgetCheck:
    ok: bool
    at_threshold: OperatingPoint
    fp_per_image: float
    blank_faces: int
    problems: list[str]


def check_budgets(
    detector, faces: Sequence[FaceRecord], negatives: Sequence[FaceRecord], blanks: Sequence[FaceRecord],
    precision: float, max_fp_per_image: float, threshold: float = 0.5, progress: Callable[[], None] | None = None,
) -> BudgetCheck:
    """Measure a calibrated (shifted) detector at ``threshold`` on the calibration images again:
    what ships must meet the budgets it states."""
    op = operating_point(faces, _detect(detector, faces, progress), threshold)
    fp = sum(int((s >= threshold).sum()) for _, s in _detect(detector, negatives, progress).values())
    blank = sum(int((s >= threshold).sum()) for _, s in _detect(detector, blanks, progress).values())
    allowed = allowed_false_faces(max_fp_per_image, len(negatives))
    problems = []
    if op.detections and op.precision < precision:
        problems.append(f"precision {op.precision:.4f} < {precision}")
    if fp > allowed:
        problems.append(f"{fp} false faces on {len(negatives)} face-free photos > {allowed} allowed")
    if blank:
        problems.append(f"{blank} false faces on blank frames")
    return BudgetCheck(not problems, op, fp / max(len(negatives), 1), blank, problems)


# ---------------------------------------------------------------- per-group score offsets


def group_candidates(
    detector, records: Sequence[FaceRecord], progress: Callable[[], None] | None = None
) -> dict[str, np.ndarray]:
    """Every candidate above ``detector``'s score threshold, before NMS, as
    ``(N, 6) [x1, y1, x2, y2, face logit, score group]`` in image pixels, per record name
    (:meth:`facespot.runtime.Detector.candidates`: each image as ``facespot detect`` sees it)."""
    out: dict[str, np.ndarray] = {}
    for rec in records:
        c = detector.candidates(read_record_image(rec), rgb=True)
        groups = detector.model.score_groups(*c.canvas)[c.anchors]
        out[rec.name] = np.concatenate([c.boxes, c.logits[:, None], groups[:, None].astype(np.float32)], axis=1)
        if progress is not None:
            progress()
    return out


@dataclass
class GroupOffsets:
    offsets: np.ndarray  # one logit offset per score group
    before: dict[str, float]  # WIDER AP per setting on the images chosen on, no offsets
    after: dict[str, float]  # ... with them

    def summary(self) -> str:
        def aps(d: dict[str, float]) -> str:
            return " / ".join(f"{v:.3f}" for v in d.values())

        return (
            f"score offsets {' '.join(f'{v:+.2f}' for v in self.offsets)}; held-out WIDER images easy / medium / hard "
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


def nms_survivors(candidates: dict[str, np.ndarray], iou_threshold: float, offsets: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The candidates NMS keeps at their scores plus ``offsets`` (per score group; none: plain):
    an offset search runs NMS once with them, since offsets move few boxes across it."""
    out = {}
    for name, c in candidates.items():
        if len(c):
            z = c[:, 4] if offsets is None else c[:, 4] + offsets[c[:, 5].astype(np.int64)]
            c = c[B.nms(c[:, :4], z, iou_threshold, max_out=750)]
        out[name] = c
    return out


def wider_ap_search(gt, candidates: dict[str, np.ndarray], iou_threshold: float = 0.3) -> Callable[[np.ndarray], list[float]]:
    """``offsets -> [easy, medium, hard] WIDER AP`` of ``candidates`` for an offset search: NMS
    is run once on the plain scores (offsets move few boxes across it)."""
    survivors = nms_survivors(candidates, iou_threshold)

    def aps(offsets: np.ndarray) -> list[float]:
        return list(_wider_aps(gt, survivors, np.asarray(offsets), iou_threshold, True).values())

    return aps


def choose_group_offsets(
    candidates: dict[str, np.ndarray], gt, groups: int, iou_threshold: float = 0.3,
    slopes: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5), step: float = 0.3,
) -> GroupOffsets:
    """Offsets that maximise the mean WIDER AP (easy, medium, hard) of ``candidates``
    (from :func:`group_candidates`, on images held out of training; ``gt`` from
    :func:`facespot.data.wider_mat.read_wider_mat`).

    Groups are numbered from the smallest anchors up. First a line across them (``slope``
    per group: small anchors down, large up), then one pass nudging each group by
    ``+-step``. The search keeps the NMS survivors of the plain scores (offsets move few
    boxes across NMS); the numbers it returns are exact.
    """
    aps = wider_ap_search(gt, candidates, iou_threshold)

    def mean_ap(off: np.ndarray) -> float:
        return float(np.mean(aps(off)))

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


@dataclass
class RecallOffsets:
    offsets: np.ndarray  # one logit offset per score group (mean 0)
    min_height: int  # the faces whose recall was maximised (>= this many pixels high)
    recall_before: float  # at the operating point the budgets allow, on the annotated images
    recall_after: float
    ap_before: list[float]  # WIDER AP (easy, medium, hard) of the annotated images; empty without ``aps``
    ap_after: list[float]
    binding: str  # the budget that sets the threshold with the chosen offsets

    def summary(self) -> str:
        show = lambda v: " / ".join(f"{x:.3f}" for x in v)  # noqa: E731
        ap = f", easy / medium / hard AP {show(self.ap_before)} -> {show(self.ap_after)}" if self.ap_before else ""
        return (
            f"recall offsets {' '.join(f'{v:+.2f}' for v in self.offsets)}: recall of faces >= {self.min_height} px at the "
            f"operating point {self.recall_before:.3f} -> {self.recall_after:.3f}{ap}; the {self.binding} budget binds"
        )


def choose_recall_offsets(
    faces: Sequence[FaceRecord], face_cands: dict[str, np.ndarray], negative_cands: dict[str, np.ndarray],
    blank_cands: dict[str, np.ndarray], start: np.ndarray, precision: float = 0.95, max_fp_per_image: float = 0.01,
    min_height: int = 24, aps: Callable[[np.ndarray], Sequence[float]] | None = None, ap_tolerance: float = 0.01,
    iou_threshold: float = 0.3, steps: Sequence[float] = (0.1, 0.2, 0.4, 0.8, 1.6), passes: int = 3,
) -> RecallOffsets:
    """Score-group offsets that let the most faces ``>= min_height`` px through at 0.5 while every
    calibration budget still holds.

    Why: the threshold that becomes 0.5 is the highest of three budgets, and on SpotNet it is
    the face-free photos' (cat and dog faces, which the runtime enlarges from their ~180-px
    thumbnails, fire on the large anchors), so small real faces that score below the pets are
    cut with them. Offsets per group (level x anchor size) can lower the groups the false faces
    come from and raise the ones real faces come from. Starting from ``start`` (the AP-chosen
    offsets), each group is nudged by ``+-steps`` in turn, a change kept when recall at the
    operating point rises and every AP (``aps(offsets)``, e.g. WIDER easy / medium / hard from
    :func:`wider_ap_search`) stays within ``ap_tolerance`` of the start's: recall at 0.5 is what
    users meet, but the ranking is what AP and every lower threshold see. Candidates are
    :func:`group_candidates`' (before NMS); NMS is run once on the start's scores, as in
    :func:`choose_group_offsets`: the exact threshold is measured afterwards by
    :func:`calibrate` on the detector with the offsets added.
    """
    start = np.asarray(start, np.float64)
    allowed = allowed_false_faces(max_fp_per_image, len(negative_cands))

    kept_faces, kept_neg, kept_blank = (nms_survivors(c, iou_threshold, start) for c in (face_cands, negative_cands, blank_cands))

    def scores(c: np.ndarray, off: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(c[:, 4].astype(np.float64) + off[c[:, 5].astype(np.int64)]))) if len(c) else np.zeros(0)

    def measure(off: np.ndarray) -> tuple[float, str]:
        pred = {n: (c[:, :4].astype(np.float64), scores(c, off)) for n, c in kept_faces.items()}
        limits = {
            "precision": precision_threshold(faces, pred, precision),
            "face-free photos": count_threshold(np.concatenate([scores(c, off) for c in kept_neg.values()] or [np.zeros(0)]), allowed),
            "blank frames": count_threshold(np.concatenate([scores(c, off) for c in kept_blank.values()] or [np.zeros(0)]), 0),
        }
        binding = max(limits, key=limits.get)
        return operating_point(faces, pred, limits[binding], (min_height,)).recall[min_height], binding

    ap0 = list(aps(start)) if aps is not None else []
    best_off = start.copy()
    best, binding = measure(best_off)
    recall0 = best
    for _ in range(passes):
        moved = False
        for g in range(len(best_off)):
            for d in [s for step in steps for s in (step, -step)]:
                off = best_off.copy()
                off[g] += d
                r, b = measure(off)
                if r <= best + 1e-9:
                    continue
                if aps is not None and any(a < a0 - ap_tolerance for a, a0 in zip(aps(off), ap0)):
                    continue
                best_off, best, binding, moved = off, r, b, True
                break
        if not moved:
            break
    best_off = best_off - best_off.mean()  # the overall level is the threshold shift's job
    ap1 = list(aps(best_off)) if aps is not None else []
    return RecallOffsets(best_off.astype(np.float32), min_height, recall0, best, ap0, ap1, binding)
