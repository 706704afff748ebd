"""Face anonymisation for ``facespot blur``: Gaussian blur or pixelation inside each box.

The box is grown by ``margin`` (a fraction of its width/height on every side) because
detector boxes hug the face tightly and hair, ears and chin identify people too. Only pixels
inside the grown, image-clipped box change; everything outside is left bit-for-bit intact.
Blur strength scales with the face: a fixed kernel leaves large faces recognisable. It has a
floor too: a 12-pixel face blurred by a third of its size keeps half of its detail (measured
with ``benchmarks/anonymize_video.py``), so the Gaussian's sigma is at least 2 pixels and an
eighth of the region, and pixelation uses blocks of at least 4 pixels.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from facespot.errors import FacespotError

METHODS = ("gaussian", "pixelate")
SHAPES = ("ellipse", "box")
MARGIN = 0.2  # box growth per side where no measured one is known (deface grows 0.3: --mask-scale 1.3)


def check_cover(method: str, shape: str) -> None:
    """Refuse an unknown ``method`` or ``shape`` with the choices in the message."""
    if method not in METHODS:
        raise FacespotError(f"unknown anonymisation method {method!r}; use one of {', '.join(METHODS)}")
    if shape not in SHAPES:
        raise FacespotError(f"unknown anonymisation shape {shape!r}; use one of {', '.join(SHAPES)}")


def region_mask(box: Sequence[float], margin: float, region: tuple[int, int, int, int], shape: str) -> np.ndarray | None:
    """Which pixels of ``region`` (the clipped grown box of :func:`grow_box`) are covered: all of
    them for ``box``; for ``ellipse`` the ellipse inscribed in the grown box before clipping (a
    face cut by the frame edge keeps its ellipse). An ellipse covers a face as well as its box
    does (the ellipse of a box grown by 0.2 per side reaches its corners, within 1 %) with a
    fifth less of the wall around it blurred. None means the whole region."""
    if shape == "box":
        return None
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    ax, ay = max((x2 - x1) * (0.5 + margin), 0.5), max((y2 - y1) * (0.5 + margin), 0.5)
    a, b, c, d = region
    xs = (np.arange(a, c, dtype=np.float32) + 0.5 - cx) / ax
    ys = (np.arange(b, d, dtype=np.float32) + 0.5 - cy) / ay
    return ys[:, None] ** 2 + xs[None, :] ** 2 <= 1.0


def cover_mask(boxes: Sequence[Sequence[float]], margin: float, width: int, height: int, shape: str = "ellipse") -> np.ndarray:
    """``(height, width)`` bool: the pixels :func:`anonymize` changes for these boxes."""
    mask = np.zeros((height, width), bool)
    for box in boxes:
        r = grow_box(box, margin, width, height)
        if r is None:
            continue
        a, b, c, d = r
        inside = region_mask(box, margin, r, shape)
        if inside is None:
            mask[b:d, a:c] = True
        else:
            mask[b:d, a:c] |= inside
    return mask


def grow_box(box: Sequence[float], margin: float, width: int, height: int) -> tuple[int, int, int, int] | None:
    """``(x1, y1, x2, y2)`` grown by ``margin`` per side, rounded outwards, clipped; None if empty."""
    x1, y1, x2, y2 = (float(v) for v in box)
    mw, mh = (x2 - x1) * margin, (y2 - y1) * margin
    a = max(0, int(np.floor(x1 - mw)))
    b = max(0, int(np.floor(y1 - mh)))
    c = min(width, int(np.ceil(x2 + mw)))
    d = min(height, int(np.ceil(y2 + mh)))
    return (a, b, c, d) if c > a and d > b else None


def anonymize(image: np.ndarray, boxes: Sequence[Sequence[float]], method: str = "gaussian", margin: float = MARGIN,
              shape: str = "ellipse") -> np.ndarray:
    """A copy of ``image`` with every face blurred (``gaussian``) or pixelated: the ellipse
    inscribed in its grown box (``shape="ellipse"``) or the whole grown box (``"box"``)."""
    check_cover(method, shape)
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
            sigma = max(2.0, max(rw, rh) / 8.0)  # the detail that identifies a face, at any size, is gone
            f = sigma / 2.0  # blurred where sigma is 2 px, then enlarged: the same blur at a fraction of the cost
            if f >= 2.0:
                small = cv2.resize(roi, (max(1, round(rw / f)), max(1, round(rh / f))), interpolation=cv2.INTER_AREA)
                small = cv2.GaussianBlur(small, (0, 0), 2.0, borderType=cv2.BORDER_REPLICATE)
                hidden = cv2.resize(small, (rw, rh), interpolation=cv2.INTER_LINEAR)
            else:
                hidden = cv2.GaussianBlur(roi, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
        else:
            # blocks along the longer side: 8 (enough to hide identity, still "a face here"), fewer
            # for small faces so that a block is never under 4 pixels
            cells = max(2, min(8, max(rw, rh) // 4))
            f = cells / max(rw, rh)
            small = cv2.resize(roi, (max(1, round(rw * f)), max(1, round(rh * f))), interpolation=cv2.INTER_AREA)
            hidden = cv2.resize(small, (rw, rh), interpolation=cv2.INTER_NEAREST)
        inside = region_mask(box, margin, r, shape)
        if inside is None:
            out[y1:y2, x1:x2] = hidden
        else:
            roi[inside] = hidden[inside]  # roi is a view of out
    return out
