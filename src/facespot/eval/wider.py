"""The official WIDER FACE val protocol (``wider_eval.m`` / ``evaluation.m``), vectorised.

What the official MATLAB tool does, step by step, and how it is reproduced here:

1. **Read** each ``<event>/<name>.txt`` and sort its boxes by score, descending (stable).
2. **Normalise scores** over *all* predictions: ``(s - min) / (max - min)``. (The popular Python
   port starts its running min/max at 1/0, which only differs when scores leave [0, 1]; the
   MATLAB tool does a true min-max, as here.) If every score is equal the official division is
   0/0 and it scores nothing; here all scores then become 1 instead.
3. **Match per image, in score order.** Boxes become ``x2 = x + w`` and the IoU is computed
   *pixel-inclusively* (``+1`` on widths and heights, ``boxoverlap.m``). Each detection looks
   only at the ground-truth face with the highest IoU (first one on ties), over *all* faces of
   the image, ignored ones included. If that IoU >= 0.5:

   * the face is **ignored** in this setting -> the detection is ignored (not a proposal);
   * the face counts and is not yet recalled -> it is recalled (true positive);
   * the face counts and was already recalled -> nothing; the detection stays a proposal, so a
     duplicate is a false positive, *even if it also overlaps another, unrecalled face*.

   A detection whose best IoU is below 0.5 is a false positive. Images with no ground-truth
   box or no detection are skipped (their faces still count; their detections are not FPs).
4. **1000 thresholds** ``1 - t/1000`` (t = 1..1000): at each, per image, the proposals and
   recalled faces among detections with normalised score >= threshold are summed over the set.
   Precision = recalled / proposals, recall = recalled / faces that count.
5. **AP** = ``voc_ap(recall, precision)``: the area under the precision *envelope* (precision made
   non-increasing in recall), summed where recall changes. A threshold with no proposals has
   precision 0/0; MATLAB's ``max`` skips NaN, so NaN is skipped here too (``np.fmax``).

Vectorisation: which face each detection points at (step 3's argmax) does not depend on the
setting, so one IoU pass per image serves all three settings. Within an image, "recalled"
means "first detection pointing at this counted face", found for the whole set at once with
``np.unique(return_index=True)``. Since detections are sorted, "detections of an image above a
threshold" is a prefix, so the per-threshold sums of step 4 are sums over *all* detections
with score >= threshold: one sort and two cumulative sums.

Subsets: only the images the predictions cover (or an explicit image list) are evaluated;
their faces are the denominators, and the result states how many images and faces of the full
ground truth that is. Scores are normalised over the evaluated images' detections, so a subset
result does not depend on files outside it. With every image covered this is exactly the
official computation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np

from facespot.boxes import iou
from facespot.data.wider_mat import SETTINGS, WiderGTImage
from facespot.errors import FacespotError

IOU_THRESHOLD = 0.5
THRESH_NUM = 1000


@dataclass
class SettingResult:
    """PR curve and AP of one setting (easy / medium / hard).

    ``precision``, ``recall``, ``proposals`` and ``recalled`` are indexed like ``thresholds``
    (1000 values from 0.999 down to 0); ``precision`` is NaN where no detection counts.
    """

    name: str
    ap: float
    precision: np.ndarray
    recall: np.ndarray
    thresholds: np.ndarray
    proposals: np.ndarray
    recalled: np.ndarray
    faces: int
    faces_total: int


@dataclass
class WiderEvalResult:
    """Result of :func:`evaluate_wider`.

    Attributes
    ----------
    settings:
        ``{"easy": SettingResult, ...}``.
    images, images_total:
        Images evaluated vs images in the ground truth (a subset when they differ).
    images_without_predictions:
        Evaluated images with no prediction entry at all (scored as "found nothing").
    predictions:
        Detections on the evaluated images.
    """

    settings: dict[str, SettingResult]
    images: int
    images_total: int
    images_without_predictions: int
    predictions: int
    iou_threshold: float = IOU_THRESHOLD
    notes: list[str] = field(default_factory=list)

    @property
    def ap(self) -> dict[str, float]:
        return {k: v.ap for k, v in self.settings.items()}

    @property
    def is_subset(self) -> bool:
        return self.images != self.images_total

    def to_dict(self, curves: bool = True) -> dict:
        """JSON-ready summary (curves as lists, NaN as ``None``)."""

        def clean(a: np.ndarray) -> list:
            return [None if not np.isfinite(x) else float(x) for x in a]

        out: dict = {
            "protocol": "WIDER FACE official (evaluation.m), pixel-inclusive IoU",
            "iou_threshold": self.iou_threshold,
            "images": self.images,
            "images_total": self.images_total,
            "subset": self.is_subset,
            "images_without_predictions": self.images_without_predictions,
            "predictions": self.predictions,
            "notes": list(self.notes),
            "settings": {},
        }
        for name, s in self.settings.items():
            entry: dict = {
                "ap": None if not np.isfinite(s.ap) else float(s.ap),
                "faces": s.faces,
                "faces_total": s.faces_total,
            }
            if curves:
                entry.update(
                    thresholds=clean(s.thresholds), precision=clean(s.precision), recall=clean(s.recall)
                )
            out["settings"][name] = entry
        return out


def normalize_scores(scores: np.ndarray) -> np.ndarray:
    """Min-max normalise to [0, 1] over the whole detection set (official step 2).

    Why global: the 1000 fixed thresholds only make sense once every detector's scores span
    [0, 1]. Constant scores (where the official tool divides 0/0) become all ones.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.size == 0:
        return s.copy()
    lo, hi = float(s.min()), float(s.max())
    if hi == lo:
        return np.ones_like(s)
    return (s - lo) / (hi - lo)


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the precision envelope (VOC-style, no 11-point sampling).

    ``recall`` must be non-decreasing. NaN precisions (no proposals) are skipped, as MATLAB's
    ``max`` does.
    """
    mrec = np.concatenate(([0.0], np.asarray(recall, dtype=np.float64), [1.0]))
    mpre = np.concatenate(([0.0], np.asarray(precision, dtype=np.float64), [0.0]))
    mpre = np.fmax.accumulate(mpre[::-1])[::-1]
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def match_image(dets: np.ndarray, gt_boxes: np.ndarray, iou_threshold: float = IOU_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """For each detection (already sorted by score): index of its best face, and IoU >= threshold.

    The pairing the official tool uses before applying a setting's ignore flags.
    """
    ov = iou(np.asarray(dets, dtype=np.float64)[:, :4], np.asarray(gt_boxes, dtype=np.float64), pixel_inclusive=True)
    best = ov.argmax(axis=1)
    best_iou = ov[np.arange(len(best)), best]
    return best, best_iou >= iou_threshold


def _select_images(gt: Sequence[WiderGTImage], predictions: Mapping[str, np.ndarray], images: Iterable[str] | None) -> list[WiderGTImage]:
    by_key = {g.key: g for g in gt}
    if images is None:
        unknown = [k for k in predictions if k not in by_key]
        if unknown:
            raise FacespotError(
                f"{len(unknown)} prediction image(s) are not in the ground truth, e.g. {unknown[0]!r}"
            )
        chosen = [g for g in gt if g.key in predictions]
    else:
        keys = list(images)
        missing = [k for k in keys if k not in by_key]
        if missing:
            raise FacespotError(f"{len(missing)} listed image(s) are not in the ground truth, e.g. {missing[0]!r}")
        chosen = [by_key[k] for k in dict.fromkeys(keys)]
    if not chosen:
        raise FacespotError("no images to evaluate: the predictions cover no ground-truth image")
    return chosen


def evaluate_wider(
    gt: Sequence[WiderGTImage],
    predictions: Mapping[str, np.ndarray],
    images: Iterable[str] | None = None,
    settings: Sequence[str] = SETTINGS,
    iou_threshold: float = IOU_THRESHOLD,
    thresh_num: int = THRESH_NUM,
) -> WiderEvalResult:
    """Evaluate detections with the official WIDER FACE protocol (see the module docstring).

    Parameters
    ----------
    gt:
        Ground truth from :func:`facespot.data.wider_mat.read_wider_mat`.
    predictions:
        ``{"event/name": (N, 5) [x1, y1, x2, y2, score]}`` (``x2 = x + w``), e.g.
        :func:`facespot.data.predictions.read_wider_predictions` ``.boxes``.
    images:
        Keys to evaluate; default: every image that has a prediction entry.
    """
    chosen = _select_images(gt, predictions, images)
    empty = np.zeros((0, 5))
    dets = [np.asarray(predictions.get(g.key, empty), dtype=np.float64).reshape(-1, 5) for g in chosen]
    n_pred = sum(len(d) for d in dets)
    notes: list[str] = []

    # Step 2 statistics over every evaluated detection (also those on images skipped below).
    all_scores = np.concatenate([d[:, 4] for d in dets]) if n_pred else np.zeros(0)
    lo = float(all_scores.min()) if n_pred else 0.0
    hi = float(all_scores.max()) if n_pred else 1.0
    if n_pred and hi == lo:
        notes.append("all scores are equal: every detection is kept at every threshold")

    scores, face_ids, matched = [], [], []
    counted = {s: [] for s in settings}
    offset = 0
    skipped = 0
    for g, d in zip(chosen, dets):
        for s in settings:
            counted[s].append(g.counted(s))
        n_gt = len(g.boxes)
        if len(d) and n_gt:
            d = d[np.argsort(-d[:, 4], kind="stable")]
            best, ok = match_image(d, g.boxes, iou_threshold)
            scores.append(d[:, 4])
            face_ids.append(best + offset)
            matched.append(ok)
        elif len(d):
            skipped += len(d)
        offset += n_gt
    if skipped:
        notes.append(f"{skipped} detection(s) on images without ground-truth boxes are not scored (as in the official tool)")

    raw = np.concatenate(scores) if scores else np.zeros(0)
    score = np.ones_like(raw) if hi == lo else (raw - lo) / (hi - lo)
    face_ids_a = np.concatenate(face_ids) if face_ids else np.zeros(0, dtype=np.int64)
    matched_a = np.concatenate(matched) if matched else np.zeros(0, dtype=bool)
    thresholds = 1.0 - np.arange(1, thresh_num + 1) / thresh_num

    # Sum "at or above threshold" via one ascending sort + cumulative sums.
    order = np.argsort(score, kind="stable")
    sorted_score = score[order]
    below = np.searchsorted(sorted_score, thresholds, side="left")  # detections with score < thr

    def count_at_or_above(flags: np.ndarray) -> np.ndarray:
        c = np.concatenate(([0], np.cumsum(flags[order], dtype=np.int64)))
        return c[-1] - c[below]

    results: dict[str, SettingResult] = {}
    for s in settings:
        counts = np.concatenate(counted[s])
        faces = int(counts.sum())
        faces_total = int(sum(len(g.keep[s]) for g in gt))
        hit = np.flatnonzero(matched_a)
        on_counted = counts[face_ids_a[hit]] if hit.size else np.zeros(0, dtype=bool)
        proposal = np.ones(len(score), dtype=bool)
        proposal[hit[~on_counted]] = False  # detections on ignored faces are ignored
        candidates = hit[on_counted]
        _, first = np.unique(face_ids_a[candidates], return_index=True)
        recall_step = np.zeros(len(score), dtype=bool)
        recall_step[candidates[first]] = True  # first (best-scored) detection of each counted face

        proposals = count_at_or_above(proposal)
        recalled = count_at_or_above(recall_step)
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.where(proposals > 0, recalled / np.maximum(proposals, 1), np.nan)
        if faces:
            recall = recalled / faces
            ap = voc_ap(recall, precision)
        else:
            recall = np.full(thresh_num, np.nan)
            ap = float("nan")
            notes.append(f"{s}: no face counts in the evaluated images, AP undefined")
        results[s] = SettingResult(
            name=s, ap=ap, precision=precision, recall=recall, thresholds=thresholds,
            proposals=proposals, recalled=recalled, faces=faces, faces_total=faces_total,
        )
    return WiderEvalResult(
        settings=results,
        images=len(chosen),
        images_total=len(gt),
        images_without_predictions=sum(1 for g in chosen if g.key not in predictions),
        predictions=n_pred,
        iou_threshold=iou_threshold,
        notes=notes,
    )


def format_wider_result(result: WiderEvalResult) -> str:
    """The table the CLI prints: AP, images and counted faces per setting, subset stated."""
    lines = [f"WIDER FACE val, official protocol (IoU >= {result.iou_threshold:g}, pixel-inclusive, {THRESH_NUM} thresholds)"]
    if result.is_subset:
        lines.append(
            f"SUBSET: {result.images} of {result.images_total} ground-truth images evaluated; "
            "AP is over these images only and is not comparable with full-val numbers."
        )
    if result.images_without_predictions:
        lines.append(f"{result.images_without_predictions} evaluated image(s) have no prediction file (scored as no detections).")
    header = ["setting", "AP", "images", "faces", "of total"]
    rows = []
    for s in result.settings.values():
        ap = "n/a" if not np.isfinite(s.ap) else f"{s.ap:.4f}"
        rows.append([s.name, ap, f"{result.images}/{result.images_total}", str(s.faces), str(s.faces_total)])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def fmt(r: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

    lines += [fmt(header), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)]
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)
