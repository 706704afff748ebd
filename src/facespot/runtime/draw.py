"""Drawing detections for ``facespot detect --save``: boxes, scores and keypoints."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

BOX_COLOUR = (0, 255, 0)  # RGB
POINT_COLOUR = (255, 64, 64)


def draw_faces(image_rgb: np.ndarray, faces: Sequence, colour=BOX_COLOUR, show_score: bool = True) -> np.ndarray:
    """A copy of ``image_rgb`` with each face's box, score and keypoints drawn.

    Line width and font scale follow the image size, so annotations stay readable on
    both thumbnails and 4K frames.
    """
    out = np.ascontiguousarray(image_rgb).copy()
    h, w = out.shape[:2]
    thick = max(1, int(round(max(h, w) / 400)))
    font = max(0.35, max(h, w) / 1600)
    for face in faces:
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thick, cv2.LINE_AA)
        if show_score:
            label = f"{face.score:.2f}"
            (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font, 1)
            ty = y1 - 2 if y1 - th - base - 2 >= 0 else min(h - 1, y2 + th + 2)
            cv2.rectangle(out, (x1, ty - th - base), (x1 + tw, ty + base // 2), colour, -1)
            cv2.putText(out, label, (x1, ty - base // 2), cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0), 1, cv2.LINE_AA)
        if face.keypoints is not None:
            for px, py in np.asarray(face.keypoints):
                if np.isfinite(px) and np.isfinite(py):
                    cv2.circle(out, (int(round(px)), int(round(py))), thick + 1, POINT_COLOUR, -1, cv2.LINE_AA)
    return out
