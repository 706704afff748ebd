"""Face alignment: the 5 landmarks mapped onto ArcFace's template, as face recognition expects.

Recognition models (ArcFace / InsightFace and most of their descendants) were trained on
112x112 crops made by one similarity transform (rotation, uniform scale, translation) that
moves a face's 5 points -- eyes, nose tip, mouth corners, in RetinaFace order with the image's
left first -- as close as possible (least squares) to fixed template positions. A crop made any
other way (a box crop, another template) costs them accuracy, so :func:`align` reproduces that
transform: Umeyama's closed form (Umeyama 1991, "Least-squares estimation of transformation
parameters between two point patterns"), then one ``cv2.warpAffine``.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from facespot.errors import FacespotError

# InsightFace's ``arcface_dst`` for 112x112 crops: left eye, right eye, nose, left and right
# mouth corner (image left first), in pixels.
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]], np.float64
)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 similarity (no shear, no reflection) taking points ``src`` (N, 2) closest to ``dst``."""
    src = np.asarray(src, np.float64).reshape(-1, 2)
    dst = np.asarray(dst, np.float64).reshape(-1, 2)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    var_s = (s**2).sum() / len(src)
    if var_s <= 0:
        raise FacespotError("cannot align: the landmarks all lie on one point")
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # a reflection would fit better: refuse it
        sign[1, 1] = -1
    rot = u @ sign @ vt
    scale = float((sig * np.diag(sign)).sum() / var_s)
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def align(image: Any, face: Any, size: int = 112) -> np.ndarray:
    """The ``size`` x ``size`` crop of ``face`` on the ArcFace 5-point template.

    ``image``: the array the face was found in (any channel order; the crop keeps it), or a
    path (read as OpenCV reads it, BGR, so ``cv2.imwrite`` saves the crop as it looks).
    ``face``: a :class:`facespot.Face` with 5 keypoints (the default detector gives them), or
    the ``(5, 2)`` points themselves. The template is scaled for sizes other than 112.
    """
    if isinstance(image, (str, bytes)) or hasattr(image, "__fspath__"):
        from facespot.images import read_image

        image = cv2.cvtColor(read_image(image), cv2.COLOR_RGB2BGR)
    image = np.asarray(image)
    if image.ndim not in (2, 3) or image.size == 0:
        raise FacespotError(f"align() takes an image array (H, W) or (H, W, C), got shape {image.shape}")
    points = getattr(face, "keypoints", face)
    if points is None:
        raise FacespotError("this face has no landmarks (its detector gives none); align needs the 5 points of the default detector")
    pts = np.asarray(points, np.float64)
    if pts.shape != (5, 2) or not np.isfinite(pts).all():
        raise FacespotError(f"align needs 5 finite (x, y) landmarks (eyes, nose, mouth corners), got shape {pts.shape}")
    if int(size) < 16:
        raise FacespotError(f"align: size must be at least 16 pixels, got {size}")
    m = similarity_transform(pts, ARCFACE_TEMPLATE * (int(size) / 112.0))
    return cv2.warpAffine(image, m, (int(size), int(size)), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
