"""Face-free training data: folders of real photos without faces, and synthetic frames.

A detector trained only on images that all hold faces never learns that an empty frame is
allowed: the FaceBoxes default shipped before SpotNet-s reported two "faces" on a black
1280x720 frame and eight on a white one. Two sources fix that in the data rather than with runtime special cases:

* ``negatives`` format: every image of a folder (recursively) with an empty face list
  (pets, landscapes, objects);
* ``synthetic`` format: ``count`` generated frames -- black, white, grey, uniform colours,
  gradients, white noise and smooth noise at assorted sizes -- rendered from their name
  alone, so they need no files and any loader worker redraws the same pixels.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from facespot.data.records import FaceRecord
from facespot.errors import FacespotError

SYNTHETIC_PREFIX = "synthetic:"
KINDS = ("black", "white", "grey", "colour", "gradient", "noise", "smooth_noise")


def read_negatives(folder: str | Path) -> list[FaceRecord]:
    """Every image under ``folder`` as a record with no faces."""
    from facespot.images import is_image_file

    root = Path(folder)
    if not root.is_dir():
        raise FacespotError(f"{root}: not a folder of face-free images")
    files = sorted(p for p in root.rglob("*") if p.is_file() and is_image_file(p))
    if not files:
        raise FacespotError(f"{root}: no images found")
    return [FaceRecord(p, np.zeros((0, 4), np.float32), name=p.relative_to(root).with_suffix("").as_posix()) for p in files]


def synthetic_records(count: int, seed: int = 0) -> list[FaceRecord]:
    """``count`` face-free synthetic frames, the kinds in turn."""
    if count < 1:
        raise FacespotError(f"synthetic negatives: count must be >= 1, got {count}")
    names = [f"{SYNTHETIC_PREFIX}{KINDS[i % len(KINDS)]}:{seed}:{i}" for i in range(int(count))]
    return [FaceRecord(Path(n.replace(":", "_")), np.zeros((0, 4), np.float32), name=n) for n in names]


def render_synthetic(name: str) -> np.ndarray:
    """The ``HxWx3`` uint8 RGB frame a synthetic record's name describes."""
    try:
        _, kind, seed, index = name.split(":")
        rng = np.random.default_rng([int(seed), int(index)])
    except ValueError:
        raise FacespotError(f"{name!r} is not a synthetic frame name") from None
    h, w = (int(v) for v in rng.integers(32, 1280, size=2))
    if kind == "black":
        return np.zeros((h, w, 3), np.uint8)
    if kind == "white":
        return np.full((h, w, 3), 255, np.uint8)
    if kind == "grey":
        return np.full((h, w, 3), int(rng.integers(0, 256)), np.uint8)
    if kind == "colour":
        return np.broadcast_to(rng.integers(0, 256, 3).astype(np.uint8), (h, w, 3)).copy()
    if kind == "gradient":
        a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        t = np.linspace(0, 1, w if rng.random() < 0.5 else h, dtype=np.float32)
        line = (a[None] + (b - a)[None] * t[:, None]).astype(np.uint8)
        return np.ascontiguousarray(np.broadcast_to(line[None], (h, w, 3)) if len(t) == w else np.broadcast_to(line[:, None], (h, w, 3)))
    if kind == "noise":
        mean, sd = rng.integers(0, 256), rng.uniform(5, 80)
        return np.clip(rng.normal(mean, sd, (h, w, 3)), 0, 255).astype(np.uint8)
    if kind == "smooth_noise":
        small = rng.integers(0, 256, (max(h // 32, 2), max(w // 32, 2), 3)).astype(np.uint8)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    raise FacespotError(f"{name!r}: unknown synthetic frame kind {kind!r}")


def read_record_image(record: FaceRecord) -> np.ndarray:
    """A record's pixels: rendered for synthetic frames, decoded from its file otherwise."""
    if record.name.startswith(SYNTHETIC_PREFIX):
        return render_synthetic(record.name)
    from facespot.images import read_image

    return read_image(record.image_path)
