"""Face anonymisation for ``facespot blur``: Gaussian blur or pixelation inside each box.

The box is grown by ``margin`` (a fraction of its width/height on every side) because
detector boxes hug the face tightly and hair, ears and chin identify people too. Only pixels
inside the grown, image-clipped box change; everything outside is left bit-for-bit intact.
Blur strength scales with the face: a fixed kernel leaves large faces recognisable.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from facespot.errors import FacespotError

METHODS = ("gaussian", "pixelate")


def grow_box(box: Sequence[float], margin: float, width: int, height: int) -> tuple[int, int, int, int] | None:
    """``(x1, y1, x2, y2)`` grown by ``margin`` per side, rounded outwards, clipped; None if empty."""
    x1, y1, x2, y2 = (float(v) for v in box)
    mw, mh = (x2 - x1) * margin, (y2 - y1) * margin
    a = max(0, int(np.floor(x1 - mw)))
    b = max(0, int(np.floor(y1 - mh)))
    c = min(width, int(np.ceil(x2 + mw)))
    d = min(height, int(np.ceil(y2 + mh)))
    return (a, b, c, d) if c > a and d > b else None


def anonymize(image: np.ndarray, boxes: Sequence[Sequence[float]], method: str = "gaussian", margin: float = 0.2) -> np.ndarray:
    """A copy of ``image`` with every box region blurred (``gaussian``) or pixelated."""
    if method not in METHODS:
        raise FacespotError(f"unknown anonymisation method {method!r}; use one of {', '.join(METHODS)}")
    if not 0.0 <= margin <= 2.0:
        raise FacespotError(f"margin must be between 0 and 2 (a fraction of the box size), got {margin}")
    out = np.ascontiguousarray(image).copy()
    h, w = out.shape[:2]
    for box in boxes:
        r = grow_box(box, margin, w, h)
        if r is None:
            continue
        x1, y1, x2, y2 = r
        roi = out[y1:y2, x1:x2]
        rh, rw = roi.shape[:2]
        if method == "gaussian":
            k = max(3, (max(rw, rh) // 3) | 1)  # odd kernel about a third of the face
            out[y1:y2, x1:x2] = cv2.GaussianBlur(roi, (k, k), 0, borderType=cv2.BORDER_REPLICATE)
        else:
            cells = 8  # blocks along the longer side: enough to hide identity, still "a face here"
            f = cells / max(rw, rh)
            small = cv2.resize(roi, (max(1, round(rw * f)), max(1, round(rh * f))), interpolation=cv2.INTER_AREA)
            out[y1:y2, x1:x2] = cv2.resize(small, (rw, rh), interpolation=cv2.INTER_NEAREST)
    return out
