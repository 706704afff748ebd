"""Helpers for the evaluation tests: tiny hand-made ground truth and data paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facespot.data.wider_mat import SETTINGS, WiderGTImage

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "eval"
SHARED = REPO.parent / "shared" / "data"
REAL_GT = SHARED / "widerface" / "eval_tools"
DEV = SHARED / "wider-val-dev"


def gt_image(key: str, xywh, keep=None) -> WiderGTImage:
    """A ground-truth image from ``x y w h`` boxes; ``keep``: one index list for all settings,
    or ``{setting: indices}``; default every face counts."""
    event, name = key.split("/")
    b = np.asarray(xywh, dtype=np.float64).reshape(-1, 4).copy()
    b[:, 2:] += b[:, :2]
    if keep is None:
        keep = list(range(len(b)))
    if not isinstance(keep, dict):
        keep = {s: keep for s in SETTINGS}
    return WiderGTImage(event, name, b, {s: np.asarray(keep[s], dtype=np.int64) for s in SETTINGS})


def dets(rows) -> np.ndarray:
    """``[[x, y, w, h, score], ...]`` -> the in-memory ``(N, 5)`` xyxy+score form."""
    d = np.asarray(rows, dtype=np.float64).reshape(-1, 5).copy()
    d[:, 2:4] += d[:, :2]
    return d
