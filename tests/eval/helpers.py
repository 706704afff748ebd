"""Helpers for the evaluation tests: tiny hand-made ground truth and data paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facespot.data.wider_mat import SETTINGS, WiderGTImage

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "eval"
SHARED = REPO.parent / "shared" / "data"
REAL_GT = SHARED / "widerface" / "eval_tools"
EVAL = SHARED / "wider-val-eval"  # 500 val images, official layout
DEV100 = SHARED / "widerface" / "splits" / "dev100.txt"  # 100 of them: the former wider-val-dev


def dev100_keys() -> list[str]:
    """The ``event/name`` keys of the 100 dev images, as ``wider-val-eval`` holds them; skips the
    test when the shared data is absent."""
    if not DEV100.is_file() or not (EVAL / "images").is_dir():
        pytest.skip("wider-val-eval or widerface/splits/dev100.txt not present")
    names = [line.strip() for line in DEV100.read_text().splitlines() if line.strip()]
    assert all((EVAL / "images" / n).is_file() for n in names)
    return sorted(n[: -len(".jpg")] for n in names)


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
