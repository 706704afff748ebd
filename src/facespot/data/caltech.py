"""Caltech 10,000 Web Faces: four landmarks per face, turned into face boxes.

``WebFaces_GroundThruth.txt`` has one line per face: the image file name, then eight
numbers, the ``(x, y)`` pixel positions of the left eye, right eye, nose and mouth centre
("left" is the image's left). An image with several faces has several lines.

The set gives no boxes, so one is derived from the points (:func:`box_from_landmarks`):
a square centred a little below the eyes, sized from the eye-mouth and eye-eye
distances so it spans forehead to chin like a WIDER FACE box. The points are kept as
``(N, 4, 2)`` landmarks because landmark heads (BlazeFace) train on them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facespot.data.records import FaceRecord
from facespot.errors import FacespotError, located

GROUND_TRUTH_NAME = "WebFaces_GroundThruth.txt"
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth")

# Box rule constants, tuned by drawing boxes on Caltech images next to how WIDER FACE boxes
# frame faces (top of forehead to chin, ear to ear without the ears); see box_from_landmarks.
CENTER_SHIFT = 0.4
"""Box centre = eye midpoint + CENTER_SHIFT * (mouth - eye midpoint)."""
SIDE_PER_EYE_MOUTH = 2.4
"""Box side in units of the eye-midpoint-to-mouth distance (the measure that survives yaw)."""
SIDE_PER_EYE_EYE = 2.1
"""Box side in units of the inter-ocular distance (the measure that survives pitch)."""


def box_from_landmarks(points: np.ndarray) -> np.ndarray:
    """Square ``xyxy`` face boxes from ``(N, 4, 2)`` eye/eye/nose/mouth points.

    Rule (all distances in pixels)::

        e    = (left_eye + right_eye) / 2
        d_em = |mouth - e|              # eye-mouth distance
        d_ee = |right_eye - left_eye|   # inter-ocular distance
        c    = e + CENTER_SHIFT * (mouth - e)
        side = max(SIDE_PER_EYE_MOUTH * d_em, SIDE_PER_EYE_EYE * d_ee)
        box  = square of that side centred on c

    Why both distances: a turned head shrinks the eye-eye distance, a nodding head the
    eye-mouth distance; the larger of the two scaled measures stays close to the true face
    size in both cases. Shifting the centre toward the mouth (rather than centring on the
    eyes) puts the chin inside the box, as WIDER annotators do.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 4, 2)
    le, re, mouth = pts[:, 0], pts[:, 1], pts[:, 3]
    eyes = (le + re) / 2.0
    d_em = np.linalg.norm(mouth - eyes, axis=1)
    d_ee = np.linalg.norm(re - le, axis=1)
    center = eyes + CENTER_SHIFT * (mouth - eyes)
    half = np.maximum(SIDE_PER_EYE_MOUTH * d_em, SIDE_PER_EYE_EYE * d_ee) / 2.0
    return np.stack(
        [center[:, 0] - half, center[:, 1] - half, center[:, 0] + half, center[:, 1] + half], axis=1
    ).astype(np.float32)


def read_caltech(gt_path: str | Path, image_root: str | Path | None = None) -> list[FaceRecord]:
    """Parse ``WebFaces_GroundThruth.txt`` into one :class:`FaceRecord` per image.

    ``image_root`` defaults to ``<gt folder>/images`` when that folder exists, else the
    ground-truth file's folder. Records keep the order in which images first appear.
    Malformed lines raise :class:`FacespotError` with ``file:line``.
    """
    gt_path = Path(gt_path)
    if not gt_path.is_file():
        raise FacespotError(f"{gt_path}: Caltech ground-truth file not found")
    if image_root is None:
        image_root = gt_path.parent / "images" if (gt_path.parent / "images").is_dir() else gt_path.parent
    image_root = Path(image_root)
    faces: dict[str, list[np.ndarray]] = {}
    with open(gt_path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 9:
                raise located(
                    gt_path, lineno,
                    f"expected an image name and 8 numbers (left eye, right eye, nose, mouth x y), "
                    f"found {len(fields)} fields",
                )
            try:
                values = np.array([float(v) for v in fields[1:]], dtype=np.float64)
            except ValueError:
                raise located(gt_path, lineno, f"expected 8 numbers after the image name, got {' '.join(fields[1:])!r}") from None
            if not np.all(np.isfinite(values)):
                raise located(gt_path, lineno, "landmark coordinates must be finite numbers")
            faces.setdefault(fields[0], []).append(values.reshape(4, 2))
    if not faces:
        raise FacespotError(f"{gt_path}: no faces found (expected lines 'name x1 y1 ... x4 y4')")
    records = []
    for file_name, pts in faces.items():
        landmarks = np.stack(pts).astype(np.float32)
        records.append(
            FaceRecord(
                image_path=image_root / file_name,
                boxes=box_from_landmarks(landmarks),
                landmarks=landmarks,
                name=Path(file_name).with_suffix("").as_posix(),
            )
        )
    return records
