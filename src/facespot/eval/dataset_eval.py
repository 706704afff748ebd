"""Score a detector on any annotated data set: AP@IoU and landmark NME, from a model or a file.

Why: WIDER FACE has its own protocol (:mod:`facespot.eval.wider`), but the hold-outs we
train against (Caltech Web Faces, VOC face sets, ...) need the same numbers for every
detector -- ours run in-process, and peers (MediaPipe) that can only hand over a
prediction file. Both paths meet in one per-image form, :class:`ImagePredictions`, and one
scorer, :func:`evaluate_dataset`:

* **AP** at one IoU threshold comes from :func:`facespot.eval.simple_ap.evaluate_ap` (VOC
  all-point AP, ``difficult``/``invalid`` faces ignored), not re-implemented here.
* **Landmark NME** (normalised mean error): a detection is matched to a true face by the
  same greedy rule as AP (highest score first, best free face with IoU >= the threshold);
  for each matched face with landmarks, the mean point-to-point distance over the annotated
  points divided by the inter-ocular distance of the true eyes. Only detections scoring at
  least ``landmark_threshold`` are matched, so the NME describes the faces a user would
  actually be shown, and the result says how many faces that was.

Predicted keypoints are mapped onto the data set's landmarks explicitly
(``keypoint_map[j]`` = the predicted keypoint for true landmark ``j``), because detectors
order them differently (:data:`KEYPOINT_MAPS`).

Prediction files are the JSON lines of ``facespot detect --json`` (one line per image:
``{"source", "width", "height", "faces": [{"box": [x1, y1, x2, y2], "score", "keypoints"}]}``,
``{"source", "error"}`` for unreadable images). ``source`` is matched to a record's
``name`` by its path without extension, or a trailing part of it (``images/pic001.jpg``
-> ``pic001``), or, when unique, its base name. Run ``facespot detect`` with a low
``--threshold`` (0.02): AP needs the low-score tail.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from facespot.data.records import FaceRecord
from facespot.errors import FacespotError, located
from facespot.eval.simple_ap import evaluate_ap, overlaps
from facespot.images import IMAGE_EXTENSIONS

# Keypoint orders -> Caltech's landmark order (left eye, right eye, nose, mouth; "left" is the
# image's left, see facespot.data.caltech).
# * facespot BlazeFace trained on Caltech keeps Caltech's order in slots 0-3 (slots 4-5, ears,
#   are unlabelled): identity.
# * MediaPipe BlazeFace: right eye, left eye, nose tip, mouth centre, right ear, left ear, the
#   *person's* right/left. A person's right eye is on the image's left in an unmirrored photo,
#   so MediaPipe keypoint 0 is Caltech's "left_eye" (checked on the Caltech hold-out with the
#   full-range model: NME 0.16 with this map, 0.60 with the eyes swapped), slots 0-3 in order.
# * 5-point detectors in RetinaFace / InsightFace order (eyes, nose, mouth corners, image left
#   first: facespot's SpotNet with landmarks): Caltech's mouth point is the mouth's centre, the
#   mean of the two corners ("3+4").
KEYPOINT_MAPS: dict[str, tuple | None] = {
    "identity": None,
    "mediapipe": (0, 1, 2, 3),
    "5point": (0, 1, 2, (3, 4)),
}
EYE_INDICES = (0, 1)
"""True landmarks whose distance normalises the error (both Caltech and 5-point WIDER
annotations list the two eyes first)."""


@dataclass
class ImagePredictions:
    """Detections of one image in pixels: ``boxes`` (M, 4) xyxy, ``scores`` (M,),
    ``keypoints`` (M, K, 2) or None."""

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, np.float64).reshape(-1, 4)  # float64: any finite JSON number fits
        self.scores = np.asarray(self.scores, np.float32).reshape(-1)
        if len(self.boxes) != len(self.scores):
            raise ValueError(f"{len(self.boxes)} boxes but {len(self.scores)} scores")
        if self.keypoints is not None:
            self.keypoints = np.asarray(self.keypoints, np.float64).reshape(len(self.boxes), -1, 2)

    @classmethod
    def empty(cls) -> "ImagePredictions":
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))


@dataclass
class LandmarkResult:
    """NME over matched faces. ``faces_measured``: matched true faces with landmarks;
    ``faces_with_landmarks``: all true faces with a usable inter-ocular distance."""

    mean: float
    median: float
    fraction_below_0_1: float
    faces_measured: int
    faces_with_landmarks: int
    keypoint_map: list[int]
    score_threshold: float


@dataclass
class DatasetEvalResult:
    """What :func:`evaluate_dataset` measured on one data set."""

    label: str
    ap: float
    iou_threshold: float
    num_images: int
    num_faces: int
    num_detections: int
    images_without_predictions: int = 0
    min_score: float | None = None
    landmarks: LandmarkResult | None = None
    recall: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    precision: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (PR curve sampled at 101 recall points, VOC 2007 style)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("recall", "precision")}
        if out["landmarks"] is not None:  # no matched face -> NaN, which JSON cannot hold
            out["landmarks"] = {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in out["landmarks"].items()}
        grid = np.linspace(0, 1, 101)
        if len(self.recall):
            prec = [float(self.precision[self.recall >= r].max()) if (self.recall >= r).any() else 0.0 for r in grid]
        else:
            prec = [0.0] * len(grid)
        out["pr_curve"] = {"recall": grid.round(2).tolist(), "precision": [round(p, 5) for p in prec]}
        return out


# ---------------------------------------------------------------------- inputs


def _strip_image_ext(name: str) -> str:
    p = name.replace("\\", "/").strip("/")
    for ext in IMAGE_EXTENSIONS:
        if p.lower().endswith(ext):
            return p[: -len(ext)]
    return p


def read_include_list(path: str | Path) -> list[str]:
    """Image names of a split file (one a line, ``#`` starts a comment; extension optional)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise FacespotError(f"{path}: not a UTF-8 text file") from None
    except OSError as exc:
        raise FacespotError(f"{path}: cannot read image list ({exc.strerror})") from None
    names: list[str] = []
    for raw in lines:
        item = raw.split("#", 1)[0].strip()
        if item:
            names.append(_strip_image_ext(item))
    return names


def select_records(records: Sequence[FaceRecord], include: str | Path | None) -> tuple[list[FaceRecord], list[str]]:
    """Records named in ``include`` (all when None) and the listed names not in the data.

    An include list that matches no record is an error: evaluating nothing would print AP 0.
    """
    if include is None:
        return list(records), []
    names = read_include_list(include)
    if not names:
        raise FacespotError(f"{include}: the image list names no image")
    wanted = set(names)
    kept = [r for r in records if r.name in wanted]
    if not kept:
        example = records[0].name if records else "(none)"
        raise FacespotError(
            f"{include}: none of its {len(wanted)} image names is in the data (names look like {example!r})"
        )
    have = {r.name for r in kept}
    return kept, [n for n in dict.fromkeys(names) if n not in have]


class _NameResolver:
    """``source`` strings of prediction lines -> record names (see the module docstring)."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = set(names)
        by_base: dict[str, list[str]] = {}
        for n in self.names:
            by_base.setdefault(n.rsplit("/", 1)[-1], []).append(n)
        self.by_base = by_base

    def __call__(self, source: str) -> str | None:
        key = _strip_image_ext(source)
        parts = key.split("/")
        for i in range(len(parts)):
            cand = "/".join(parts[i:])
            if cand in self.names:
                return cand
        hits = self.by_base.get(parts[-1], [])
        return hits[0] if len(hits) == 1 else None


def _check_number_list(path: Path, lineno: int, value: Any, n: int, what: str) -> list[float]:
    if not isinstance(value, list) or len(value) != n or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise located(path, lineno, f"{what} must be a list of {n} numbers, got {json.dumps(value)[:80]}")
    if not all(math.isfinite(v) for v in value):
        raise located(path, lineno, f"{what} has a non-finite number: {value}")
    return [float(v) for v in value]


def _parse_faces(path: Path, lineno: int, faces: Any) -> ImagePredictions:
    if not isinstance(faces, list):
        raise located(path, lineno, f'"faces" must be a list, got {type(faces).__name__}')
    boxes, scores, kps = [], [], []
    for i, f in enumerate(faces):
        if not isinstance(f, dict) or "box" not in f or "score" not in f:
            raise located(path, lineno, f'face {i} must be an object with "box" and "score"')
        box = _check_number_list(path, lineno, f["box"], 4, f"face {i} box")
        if box[2] < box[0] or box[3] < box[1]:
            raise located(path, lineno, f"face {i} box {box} is not x1 y1 x2 y2 with x2 >= x1, y2 >= y1")
        score = _check_number_list(path, lineno, [f["score"]], 1, f"face {i} score")[0]
        boxes.append(box)
        scores.append(score)
        k = f.get("keypoints")
        if k is not None:
            if not isinstance(k, list) or not k:
                raise located(path, lineno, f"face {i} keypoints must be a list of [x, y] pairs or null")
            kps.append([_check_number_list(path, lineno, p, 2, f"face {i} keypoint") for p in k])
        else:
            kps.append(None)
    keypoints = None
    if kps and all(k is not None for k in kps):
        if len({len(k) for k in kps}) != 1:
            raise located(path, lineno, "faces of one image have different numbers of keypoints")
        keypoints = np.asarray(kps, np.float64)
    return ImagePredictions(np.asarray(boxes, np.float64), np.asarray(scores, np.float32), keypoints)


@dataclass
class PredictionFile:
    """A read JSON-lines prediction file: per record name, plus images that failed to read."""

    predictions: dict[str, ImagePredictions]
    failed: list[str] = field(default_factory=list)


def read_prediction_jsonl(path: str | Path, records: Sequence[FaceRecord]) -> PredictionFile:
    """Read ``facespot detect --json`` lines and key them by the records' names.

    Every line must name an image of ``records`` (the whole data set, so predictions made on
    more images than the evaluated subset are fine); malformed lines, unknown images, a
    video's frame lines and duplicates are errors naming ``path:line``.
    """
    path = Path(path)
    if not path.is_file():
        raise FacespotError(f"{path}: prediction file not found")
    resolve = _NameResolver(r.name for r in records)
    out = PredictionFile({})
    seen: dict[str, int] = {}
    try:
        f = open(path, encoding="utf-8")
    except OSError as exc:
        raise FacespotError(f"{path}: cannot read ({exc.strerror})") from None
    with f:
        try:
            lines = list(enumerate(f, 1))
        except UnicodeDecodeError:
            raise FacespotError(f"{path}: not a UTF-8 text file") from None
    for lineno, raw in lines:
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise located(path, lineno, f"not valid JSON ({exc.msg} at column {exc.colno}); expected one object per line "
                                        'as written by `facespot detect --json`') from None  # fmt: skip
        if not isinstance(obj, dict) or not isinstance(obj.get("source"), str):
            raise located(path, lineno, 'expected an object with a "source" image name and a "faces" list')
        if "frame" in obj:
            raise located(path, lineno, "a video frame line; only image predictions can be scored against a data set")
        name = resolve(obj["source"])
        if name is None:
            raise located(path, lineno, f"image {obj['source']!r} is not in the data set (wrong folder or file?)")
        if name in seen:
            raise located(path, lineno, f"image {obj['source']!r} already has predictions on line {seen[name]}")
        seen[name] = lineno
        if "error" in obj:
            out.failed.append(name)
            continue
        if "faces" not in obj:
            raise located(path, lineno, 'missing "faces" (expected a list of {"box", "score", "keypoints"} objects)')
        out.predictions[name] = _parse_faces(path, lineno, obj["faces"])
    if not seen:
        raise FacespotError(f"{path}: no prediction lines")
    return out


def predict_records(detector: Any, records: Sequence[FaceRecord], progress: bool | None = None) -> dict[str, ImagePredictions]:
    """Run a :class:`facespot.runtime.detector.Detector` over the records' images.

    Build the detector with a low ``score_threshold`` (0.02): AP needs low-score detections.
    """
    from tqdm import tqdm

    show = sys.stderr.isatty() if progress is None else progress
    out: dict[str, ImagePredictions] = {}
    for rec in tqdm(records, desc="eval", unit="img", disable=not show, file=sys.stderr):
        faces = detector(rec.image_path)
        if not faces:
            out[rec.name] = ImagePredictions.empty()
            continue
        kps = None
        if all(f.keypoints is not None for f in faces):
            kps = np.stack([np.asarray(f.keypoints, np.float32) for f in faces])
        out[rec.name] = ImagePredictions(
            np.asarray([f.box for f in faces], np.float32), np.asarray([f.score for f in faces], np.float32), kps
        )
    return out


# ---------------------------------------------------------------------- scoring


def parse_keypoint_map(spec: str | Sequence | None) -> tuple | None:
    """``"identity"`` / ``"mediapipe"`` / ``"5point"`` / ``"0,1,2,3+4"`` / a sequence -> map (None: identity).

    Each entry is a predicted keypoint index, or ``a+b`` (a tuple): the mean of those points
    (a mouth centre from two corners)."""
    if spec is None:
        return None
    if isinstance(spec, str) and spec in KEYPOINT_MAPS:
        return KEYPOINT_MAPS[spec]
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    try:
        idx = tuple(
            tuple(int(v) for v in it.split("+")) if isinstance(it, str) and "+" in it
            else tuple(int(v) for v in it) if isinstance(it, (tuple, list)) else int(it)
            for it in items
        )
    except (ValueError, TypeError):
        raise FacespotError(
            f"keypoint map {spec!r}: expected {' or '.join(KEYPOINT_MAPS)} or comma-separated indices such as 0,1,2,3 "
            "(a+b: the mean of two points)"
        ) from None
    flat = [v for e in idx for v in (e if isinstance(e, tuple) else (e,))]
    if not idx or not flat or min(flat) < 0:
        raise FacespotError(f"keypoint map {spec!r}: indices must be non-negative")
    return idx


def _map_points(points: np.ndarray, kmap: Sequence) -> np.ndarray:
    """``(K, 2)`` predicted points -> one point per map entry (tuples averaged)."""
    return np.stack([points[list(e)].mean(0) if isinstance(e, tuple) else points[e] for e in kmap])


def _map_needs(kmap: Sequence) -> int:
    return 1 + max(v for e in kmap for v in (e if isinstance(e, tuple) else (e,)))


def match_detections(
    pred_boxes: np.ndarray, scores: np.ndarray, gt_boxes: np.ndarray, iou_threshold: float = 0.5
) -> np.ndarray:
    """For each true face, the index of its matched detection (-1: none).

    Greedy as in AP: detections by descending score, each takes the free true face it
    overlaps most, if IoU >= ``iou_threshold``.
    """
    match = np.full(len(gt_boxes), -1, np.int64)
    if not len(gt_boxes) or not len(pred_boxes):
        return match
    overlap = overlaps(pred_boxes, gt_boxes)
    for d in np.argsort(-np.asarray(scores), kind="stable"):
        o = np.where(match < 0, overlap[d], -1.0)
        j = int(o.argmax())
        if o[j] >= iou_threshold:
            match[j] = d
    return match


def face_nme(pred: np.ndarray, gt: np.ndarray, eye_indices: tuple[int, int] = EYE_INDICES) -> float:
    """Mean distance over annotated points / inter-ocular distance (NaN if not measurable)."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)  # float32 squares overflow at 1e19
    iod = float(np.linalg.norm(gt[eye_indices[0]] - gt[eye_indices[1]]))
    ok = np.isfinite(gt).all(axis=1) & np.isfinite(pred).all(axis=1)
    if not np.isfinite(iod) or iod <= 0 or not ok.any():
        return float("nan")
    return float(np.linalg.norm(pred[ok] - gt[ok], axis=1).mean() / iod)


def landmark_errors(
    records: Sequence[FaceRecord],
    predictions: Mapping[str, ImagePredictions],
    keypoint_map: Sequence[int] | None = None,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.5,
    eye_indices: tuple[int, int] = EYE_INDICES,
) -> tuple[np.ndarray, int, tuple[int, ...]]:
    """Per-face NME of matched faces, the count of faces with landmarks, and the map used.

    Raises when predicted keypoints are fewer than the map needs.
    """
    errors: list[float] = []
    n_with = 0
    used: tuple[int, ...] | None = None
    for rec in records:
        if rec.landmarks is None or not len(rec):
            continue
        gt = rec.landmarks.reshape(len(rec), -1, 2)
        k_gt = gt.shape[1]
        if max(eye_indices) >= k_gt:
            raise FacespotError(f"{rec.name}: landmarks have {k_gt} points; the eyes are expected at {eye_indices}")
        measurable = np.array([np.isfinite(g[list(eye_indices)]).all() and np.linalg.norm(g[eye_indices[0]] - g[eye_indices[1]]) > 0 for g in gt])
        n_with += int(measurable.sum())
        p = predictions.get(rec.name)
        if p is None or p.keypoints is None or not len(p.boxes):
            continue
        if keypoint_map is not None:
            kmap = tuple(keypoint_map)
        elif p.keypoints.shape[1] == 5 and k_gt == 4:  # a 5-point model on Caltech's eyes / nose / mouth
            kmap = KEYPOINT_MAPS["5point"]
        else:
            kmap = tuple(range(k_gt))
        if len(kmap) != k_gt:
            raise FacespotError(f"keypoint map {list(kmap)} has {len(kmap)} entries; the data has {k_gt} landmarks per face")
        if _map_needs(kmap) > p.keypoints.shape[1]:
            raise FacespotError(
                f"keypoint map {list(kmap)} needs {_map_needs(kmap)} predicted keypoints; {rec.name} has {p.keypoints.shape[1]}"
            )
        used = kmap
        keep = p.scores >= score_threshold
        idx = np.flatnonzero(keep)
        match = match_detections(p.boxes[keep], p.scores[keep], rec.boxes, iou_threshold)
        for j in np.flatnonzero((match >= 0) & measurable):
            e = face_nme(_map_points(p.keypoints[idx[match[j]]], kmap), gt[j], eye_indices)
            if np.isfinite(e):
                errors.append(e)
    return np.asarray(errors, np.float64), n_with, used or ()


def evaluate_dataset(
    records: Sequence[FaceRecord],
    predictions: Mapping[str, ImagePredictions],
    label: str = "",
    iou_threshold: float = 0.5,
    keypoint_map: Sequence[int] | None = None,
    landmark_threshold: float = 0.5,
    eye_indices: tuple[int, int] = EYE_INDICES,
) -> DatasetEvalResult:
    """AP at ``iou_threshold`` and, when both sides have landmarks, NME.

    Records without an entry in ``predictions`` count as images with no detections (and are
    counted in ``images_without_predictions``); predictions for other images are ignored.
    """
    if not records:
        raise FacespotError("no images to evaluate")
    names = {r.name for r in records}
    preds = {k: v for k, v in predictions.items() if k in names}
    ap = evaluate_ap(records, {k: (v.boxes, v.scores) for k, v in preds.items()}, iou_threshold)
    scores = [v.scores for v in preds.values() if len(v.scores)]
    result = DatasetEvalResult(
        label=label, ap=ap.ap, iou_threshold=iou_threshold, num_images=len(records), num_faces=ap.num_faces,
        num_detections=ap.num_detections, images_without_predictions=len(names - set(preds)),
        min_score=float(np.concatenate(scores).min()) if scores else None, recall=ap.recall, precision=ap.precision,
    )  # fmt: skip
    has_gt = any(r.landmarks is not None for r in records)
    has_pred = any(v.keypoints is not None for v in preds.values())
    if has_gt and has_pred:
        errs, n_with, used = landmark_errors(records, preds, keypoint_map, iou_threshold, landmark_threshold, eye_indices)
        result.landmarks = LandmarkResult(
            mean=float(errs.mean()) if len(errs) else float("nan"),
            median=float(np.median(errs)) if len(errs) else float("nan"),
            fraction_below_0_1=float((errs < 0.1).mean()) if len(errs) else float("nan"),
            faces_measured=int(len(errs)), faces_with_landmarks=n_with, keypoint_map=[list(e) if isinstance(e, tuple) else e for e in used],
            score_threshold=landmark_threshold,
        )  # fmt: skip
    return result


def format_table(results: Sequence[DatasetEvalResult]) -> str:
    """Side-by-side table, one row per result (``-`` where a detector has no landmarks)."""
    head = f"{'data / detector':34s} {'images':>6s} {'faces':>6s} {'dets':>7s} {'AP@IoU':>12s} {'NME mean':>9s} {'median':>7s} {'<0.1':>6s} {'lm faces':>11s}"
    rows = [head, "-" * len(head)]
    for r in results:
        ap = f"{r.ap:.4f}@{r.iou_threshold:g}"
        line = f"{r.label[:34]:34s} {r.num_images:6d} {r.num_faces:6d} {r.num_detections:7d} {ap:>12s}"
        lm = r.landmarks
        if lm is None:
            line += f" {'-':>9s} {'-':>7s} {'-':>6s} {'-':>11s}"
        else:
            line += f" {lm.mean:9.4f} {lm.median:7.4f} {lm.fraction_below_0_1:6.3f} {f'{lm.faces_measured}/{lm.faces_with_landmarks}':>11s}"
        rows.append(line)
    return "\n".join(rows)
