"""Decoded-image cache and GPU-side crop/resize: feeding a fast GPU without a CPU farm.

JPEG decoding dominates the CPU cost of face training (a 1024-wide WIDER image takes
~10 ms to decode, longer than a FaceBoxes step on a modern GPU). The cache decodes each
image once, letterboxes it into a ``side x side`` square (scaled so the long side fits,
never upscaled) and stores all of them in one ``uint8`` NumPy memmap
``images.u8`` of shape ``(N, side, side, 3)``; ``index.json`` holds each image's valid
region, scale and faces in cache pixels. Reading an image is then a memory copy.

Two ways to use it (``data.cache`` in a recipe):

* CPU pipeline: :class:`ImageCache` stands in for file decoding; the recipe's augmentation
  runs unchanged.
* ``data.gpu_augment: true``: whole cached squares go to the GPU and
  :func:`gpu_crop_resize` does the FaceBoxes-style square crop, the flip and the resize
  for the whole batch in one ``grid_sample`` call (photometric distortion is skipped).

Build a cache with :func:`write_cache` (``python -m facespot.train.cache RECIPE SIDE OUT``).
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from facespot.data.records import FaceRecord
from facespot.errors import FacespotError

INDEX = "index.json"
ARRAY = "images.u8"


def write_cache(records: Sequence[FaceRecord], folder: str | Path, side: int = 1024, progress: bool = False) -> Path:
    """Decode, letterbox and store ``records``; unreadable images are left out and listed."""
    from facespot.images import read_image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n = len(records)
    arr = np.lib.format.open_memmap(folder / (ARRAY + ".npy"), mode="w+", dtype=np.uint8, shape=(max(n, 1), side, side, 3))
    entries, skipped = [], []
    k = 0
    for i, rec in enumerate(records):
        try:
            img = read_image(rec.image_path)
        except FacespotError as exc:
            skipped.append({"name": rec.name, "reason": str(exc)})
            continue
        h, w = img.shape[:2]
        f = min(1.0, side / max(h, w))
        nw, nh = max(int(round(w * f)), 1), max(int(round(h * f)), 1)
        arr[k] = 0
        arr[k, :nh, :nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA) if f < 1 else img
        fx, fy = nw / w, nh / h
        pts = None
        if rec.landmarks is not None:
            p = rec.landmarks.reshape(len(rec), -1, 2) * np.array([fx, fy], np.float32)
            pts = [[[None if not np.isfinite(v) else float(v) for v in pt] for pt in face] for face in p]
        entries.append({
            "name": rec.name, "path": str(rec.image_path), "width": nw, "height": nh, "scale": [fx, fy],
            "boxes": (rec.boxes * np.array([fx, fy, fx, fy], np.float32)).round(3).tolist(), "landmarks": pts,
        })
        k += 1
        if progress and (i + 1) % 500 == 0:
            print(f"cached {i + 1}/{n}", file=sys.stderr)
    arr.flush()
    del arr
    (folder / INDEX).write_text(json.dumps({"side": side, "count": k, "images": entries, "skipped": skipped}), encoding="utf-8")
    if skipped:
        warnings.warn(f"image cache: left out {len(skipped)} unreadable image(s), first: {skipped[0]['name']}")
    return folder


class ImageCache:
    """Read side of :func:`write_cache` (memory-mapped: workers share the page cache)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        idx = self.folder / INDEX
        if not idx.is_file():
            raise FacespotError(f"{self.folder}: not an image cache (no {INDEX}); build one with write_cache")
        try:
            meta = json.loads(idx.read_text(encoding="utf-8"))
            self.side = int(meta["side"])
            self.entries = meta["images"]
            self.skipped = meta.get("skipped", [])
        except (ValueError, KeyError) as exc:
            raise FacespotError(f"{idx}: damaged cache index ({exc})") from None
        self._arr: np.ndarray | None = None

    @property
    def array(self) -> np.ndarray:
        if self._arr is None:  # opened lazily so the object pickles cheaply into workers
            self._arr = np.load(self.folder / (ARRAY + ".npy"), mmap_mode="r")
        return self._arr

    def __getstate__(self) -> dict:
        d = dict(self.__dict__)
        d["_arr"] = None
        return d

    def __len__(self) -> int:
        return len(self.entries)

    def image(self, i: int) -> np.ndarray:
        """The valid (unpadded) region of image ``i`` as a writable RGB array."""
        e = self.entries[i]
        return np.array(self.array[i, : e["height"], : e["width"]])

    def padded(self, i: int) -> np.ndarray:
        return np.asarray(self.array[i])

    def image_at(self, indices: Sequence[int], i: int) -> np.ndarray:
        """Image ``indices[i]``: the cache seen through a subset (``functools.partial``
        of this pickles into loader workers, a lambda would not)."""
        return self.image(indices[i])

    def records(self) -> list[FaceRecord]:
        """Records in cache pixel coordinates (matching :meth:`image`)."""
        out = []
        for e in self.entries:
            lm = None
            if e.get("landmarks") is not None:
                lm = np.array([[[np.nan if v is None else v for v in pt] for pt in face] for face in e["landmarks"]], np.float32)
                lm = lm.reshape(len(e["boxes"]), -1, 2)
            out.append(FaceRecord(Path(e["path"]), np.asarray(e["boxes"], np.float32).reshape(-1, 4), lm, name=e["name"], size=(e["width"], e["height"])))
        return out


class CachedSquares(torch.utils.data.Dataset):
    """Whole padded cache squares with pixel boxes, for :func:`gpu_augment_batch`."""

    def __init__(self, cache: ImageCache, min_face: float = 0.0, indices: Sequence[int] | None = None) -> None:
        self.cache = cache
        every = cache.records()
        self.indices = list(range(len(every))) if indices is None else [int(i) for i in indices]
        self.records = [every[i] for i in self.indices]
        self.min_face = float(min_face)

    def set_epoch(self, epoch: int) -> None:  # augmentation happens on the GPU, seeded there
        pass

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict:
        rec = self.records[i]
        b = rec.boxes
        if self.min_face > 0 and len(b):
            b = b[((b[:, 2:] - b[:, :2]) >= self.min_face).all(1)]
        return {
            "image": torch.from_numpy(np.array(self.cache.padded(self.indices[i]))),
            "boxes": torch.from_numpy(b.copy()),
            "points": None,
            "name": rec.name,
            "valid": rec.size,
        }


def gpu_augment_batch(batch, out_size: tuple[int, int], scales: Sequence[float], rng: np.random.Generator,
                      device: torch.device, flip_p: float = 0.5, min_size: float = 2.0):
    """Square crop + flip + resize of a :class:`~facespot.train.loader.Batch` of cached
    squares, on ``device``. Faces smaller than ``min_size`` output pixels are dropped."""
    crops = torch.from_numpy(sample_square_crops(batch.valid_wh.numpy(), scales, rng))
    flip = torch.from_numpy(rng.random(len(batch)) < flip_p)
    images, boxes = gpu_crop_resize(batch.images.to(device, non_blocking=True), batch.boxes, crops, out_size, flip)
    th, tw = out_size
    scale = torch.tensor([tw, th], dtype=torch.float32, device=device)
    kept = []
    for bx in boxes:
        wh = (bx[:, 2:] - bx[:, :2]) * scale
        kept.append(bx[(wh >= min_size).all(1)])
    batch.images, batch.boxes, batch.points, batch.valid_wh = images, kept, [None] * len(kept), None
    return batch


def sample_square_crops(
    valid_wh: np.ndarray, scales: Sequence[float], rng: np.random.Generator
) -> np.ndarray:
    """One random square crop ``(x0, y0, side)`` per image inside its valid region."""
    out = np.zeros((len(valid_wh), 3), np.float32)
    for k, (w, h) in enumerate(valid_wh):
        side = max(float(min(w, h)) * float(rng.choice(scales)), 1.0)
        out[k] = (rng.uniform(0, w - side) if w > side else 0.0, rng.uniform(0, h - side) if h > side else 0.0, side)
    return out


def gpu_crop_resize(
    images: torch.Tensor,
    boxes: Sequence[torch.Tensor],
    crops: torch.Tensor,
    out_size: tuple[int, int],
    flip: torch.Tensor | None = None,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Crop ``crops[k] = (x0, y0, side)`` from each image and resize to ``out_size``, batched.

    ``images`` is ``(B, S, S, 3)`` uint8 on any device, ``boxes`` per image ``(N, 4)`` pixel
    ``xyxy``. One ``affine_grid`` + bilinear ``grid_sample`` does every crop and resize at
    once (and the mirror, where ``flip[k]``). Faces whose centre leaves the crop are
    dropped; the rest are clipped. Returns ``(uint8 (B, H, W, 3), normalised xyxy boxes)``.
    """
    b, s_h, s_w, _ = images.shape
    th, tw = out_size
    dev = images.device
    crops = crops.to(dev, torch.float32)
    x0, y0, side = crops[:, 0], crops[:, 1], crops[:, 2]
    # affine_grid maps output [-1, 1] to input [-1, 1] (align_corners=False: pixel edges)
    theta = torch.zeros(b, 2, 3, device=dev)
    sx = side / s_w
    sy = side / s_h
    if flip is not None:
        sx = torch.where(flip.to(dev), -sx, sx)
    theta[:, 0, 0] = sx
    theta[:, 1, 1] = sy
    theta[:, 0, 2] = (2 * x0 + side) / s_w - 1
    theta[:, 1, 2] = (2 * y0 + side) / s_h - 1
    grid = F.affine_grid(theta, (b, 3, th, tw), align_corners=False)
    x = images.permute(0, 3, 1, 2).float()
    y = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    out_images = y.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()
    out_boxes = []
    for k, bx in enumerate(boxes):
        bx = bx.to(dev, torch.float32).reshape(-1, 4)
        c = (bx[:, :2] + bx[:, 2:]) / 2
        o = torch.stack([x0[k], y0[k]])
        inside = ((c > o) & (c < o + side[k])).all(1)
        nb = ((bx[inside] - o.repeat(2)) / side[k]).clamp(0, 1)
        if flip is not None and bool(flip[k]):
            nb = torch.stack([1 - nb[:, 2], nb[:, 1], 1 - nb[:, 0], nb[:, 3]], 1)
        out_boxes.append(nb)
    return out_images, out_boxes


def _main(argv: list[str]) -> int:  # pragma: no cover - thin command-line wrapper
    from facespot.train.config import load_config
    from facespot.train.loop import load_sources

    if len(argv) != 3:
        print("usage: python -m facespot.train.cache RECIPE.yaml SIDE OUT_DIR", file=sys.stderr)
        return 2
    cfg = load_config(argv[0])
    write_cache(load_sources(cfg.data.train, cfg.source), argv[2], int(argv[1]), progress=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_main(sys.argv[1:]))
