"""A GPU-resident training set: every image on the device, augmented there in batches.

On a GPU a small face detector steps through thousands of images per second -- more than
a CPU farm decodes and augments, and a host-to-device copy per step costs time of its
own. ``data.gpu_augment: true`` therefore loads the whole training set once (from a
training pack, or decoded from the sources) into one ``(N, S, S, 3)`` uint8 tensor on the
device, each image letterboxed at the top-left of an ``S x S`` square (``S`` =
``data.gpu_side``; larger images, a pack's too, are shrunk to it), with its faces in one
flat tensor. Each step then:

1. anchors each crop on a random face of its image (FaceBoxes' data-anchoring: a crop
   always holds a face when the image has one), with a side of ``scale x short side`` for
   a scale drawn from ``data.gpu_crop_scales`` -- scales above 1 zoom out onto grey, as
   :class:`facespot.data.augment.RandomSquareCrop` does;
2. crops, mirrors and resizes the whole batch in one ``affine_grid`` + ``grid_sample``;
3. jitters brightness, contrast and saturation per image, vectorised;
4. moves, clips and filters every face of the batch at once.

No loader workers, no per-image Python work besides splitting the faces per image.
WIDER's training split at S = 1024 takes about 7.6 GB of device memory. Landmarks are not
carried (models with keypoints train through the CPU pipeline).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from facespot.data.records import FaceRecord
from facespot.errors import FacespotError
from facespot.images import shrink_to

PAD = 114  # the letterbox grey the CPU pipeline uses (augment.RandomSquareCrop.fill)


def gpu_crop_resize(
    images: torch.Tensor,
    boxes: Sequence[torch.Tensor],
    crops: torch.Tensor,
    out_size: tuple[int, int],
    flip: torch.Tensor | None = None,
    fill: float = 0.0,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Crop ``crops[k] = (x0, y0, side)`` from each image and resize to ``out_size``, batched.

    ``images`` is ``(B, S, S, 3)`` uint8 on any device, ``boxes`` per image ``(N, 4)`` pixel
    ``xyxy``. One ``affine_grid`` + bilinear ``grid_sample`` does every crop and resize at
    once (and the mirror, where ``flip[k]``); outside the square reads ``fill``. Faces whose
    centre leaves the crop are dropped; the rest are clipped. Returns
    ``(uint8 (B, H, W, 3), normalised xyxy boxes per image)``.
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
    x = images.permute(0, 3, 1, 2).float() - fill
    y = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + fill
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


def photometric_batch(images: torch.Tensor, gen: torch.Generator, p: float = 0.5,
                      brightness: float = 32.0, contrast=(0.5, 1.5), saturation=(0.5, 1.5)) -> torch.Tensor:
    """SSD-style colour jitter for a ``(B, H, W, 3)`` uint8 batch, each factor applied to a
    random half of the images (no hue shift: it needs an HSV round trip per pixel)."""
    b = images.shape[0]
    dev = images.device

    def draw(lo: float, hi: float, neutral: float) -> torch.Tensor:
        u = torch.rand(b, generator=gen) * (hi - lo) + lo
        on = torch.rand(b, generator=gen) < p
        return torch.where(on, u, torch.full_like(u, neutral)).to(dev).view(b, 1, 1, 1)

    x = images.float()
    x = x + draw(-brightness, brightness, 0.0)
    x = x * draw(*contrast, 1.0)
    grey = (x * torch.tensor([0.299, 0.587, 0.114], device=dev)).sum(-1, keepdim=True)
    x = grey + (x - grey) * draw(*saturation, 1.0)
    return x.round().clamp(0, 255).to(torch.uint8)


class DeviceSquares:
    """The training set on ``device`` (see the module notes) and its batch augmentation."""

    def __init__(self, records: Sequence[FaceRecord], image_fn: Callable[[int], np.ndarray], side: int,
                 device: torch.device, min_face: float = 0.0, threads: int = 8) -> None:
        if not records:
            raise FacespotError("the GPU-resident training set is empty")
        n = len(records)
        self.side = int(side)
        self.device = device
        self.images = torch.empty((n, side, side, 3), dtype=torch.uint8, device=device)
        self.valid = torch.zeros(n, 2)  # (w, h) of each image inside its square
        faces, counts = [], []

        self.unreadable: list[int] = []  # left as grey squares without faces; never to be sampled

        def load(i: int) -> tuple[int, np.ndarray | None, np.ndarray]:
            try:
                img, fx, fy = shrink_to(image_fn(i), side)
            except FacespotError:
                return i, None, np.ones(4, np.float32)
            return i, img, np.array([fx, fy, fx, fy], np.float32)

        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:  # OpenCV releases the GIL
            for i, img, f in pool.map(load, range(n)):
                if img is None:
                    self.unreadable.append(i)
                    faces.append(torch.zeros(0, 4))
                    counts.append(0)
                    continue
                h, w = img.shape[:2]
                square = torch.full((side, side, 3), PAD, dtype=torch.uint8)
                square[:h, :w] = torch.from_numpy(np.ascontiguousarray(img))
                self.images[i] = square.to(device, non_blocking=False)
                self.valid[i] = torch.tensor([w, h], dtype=torch.float32)
                b = records[i].boxes * f
                if min_face > 0 and len(b):
                    b = b[((records[i].boxes[:, 2:] - records[i].boxes[:, :2]) >= min_face).all(1)]
                faces.append(torch.from_numpy(np.ascontiguousarray(b, np.float32)).reshape(-1, 4))
                counts.append(len(b))
        self.counts = torch.tensor(counts, dtype=torch.long)
        self.offsets = torch.cumsum(self.counts, 0) - self.counts
        self.faces = torch.cat(faces).to(device) if sum(counts) else torch.zeros(0, 4, device=device)
        self.records = list(records)

    def __len__(self) -> int:
        return len(self.records)

    def crops(self, idx: torch.Tensor, scales: Sequence[float], gen: torch.Generator) -> torch.Tensor:
        """``(B, 3)`` crops ``(x0, y0, side)`` anchored on a random face of each image."""
        b = len(idx)
        wh = self.valid[idx]
        short = wh.min(1).values
        sc = torch.tensor([float(s) for s in scales])[torch.randint(len(scales), (b,), generator=gen)]
        side = (short * sc).clamp_min(1.0)
        # the crop may start anywhere that keeps it inside the image (or, zoomed out, the image inside it) ...
        lo = torch.minimum(torch.zeros(b, 2), wh - side[:, None])
        hi = torch.maximum(torch.zeros(b, 2), wh - side[:, None])
        # ... and, where the image has faces, that also keeps one random face's centre inside
        counts = self.counts[idx]
        has = counts > 0
        pick = self.offsets[idx] + (torch.rand(b, generator=gen) * counts.clamp_min(1)).long().clamp_max((counts - 1).clamp_min(0))
        faces = torch.zeros(b, 4)
        if has.any():  # a face-free image's offset may point past the last face: look up only real ones
            faces[has] = self.faces[pick[has].to(self.faces.device)].cpu()
        c = (faces[:, :2] + faces[:, 2:]) / 2
        lo = torch.where(has[:, None], torch.maximum(lo, c - side[:, None] + 1e-3), lo)
        hi = torch.where(has[:, None], torch.minimum(hi, c - 1e-3), hi)
        hi = torch.maximum(hi, lo)
        xy = lo + torch.rand(b, 2, generator=gen) * (hi - lo)
        return torch.cat([xy, side[:, None]], 1)

    def batch(self, idx: Sequence[int], out_size: tuple[int, int], scales: Sequence[float], gen: torch.Generator,
              flip_p: float = 0.5, photometric: bool = True, min_size: float = 1.0):
        """One augmented :class:`~facespot.train.loader.Batch` on the device."""
        from facespot.train.loader import Batch

        idx_t = torch.as_tensor(list(idx), dtype=torch.long)
        crops = self.crops(idx_t, scales, gen)
        flip = torch.rand(len(idx_t), generator=gen) < flip_p
        boxes = [self.faces[o : o + n] for o, n in zip(self.offsets[idx_t].tolist(), self.counts[idx_t].tolist())]
        images, boxes = gpu_crop_resize(self.images[idx_t.to(self.device)], boxes, crops, out_size, flip, fill=PAD)
        if photometric:
            images = photometric_batch(images, gen)
        scale = torch.tensor([out_size[1], out_size[0]], dtype=torch.float32, device=self.device)
        boxes = [bx[((bx[:, 2:] - bx[:, :2]) * scale >= min_size).all(1)] for bx in boxes]
        names = [self.records[i].name for i in idx_t.tolist()]
        return Batch(images, boxes, [None] * len(boxes), names)

    def epoch_batches(self, items: np.ndarray, batch_size: int, out_size: tuple[int, int], scales: Sequence[float],
                      gen: torch.Generator) -> Iterator:
        """Full batches over an epoch's ``(index, copy)`` items (as the sampler orders them)."""
        for start in range(0, len(items) - batch_size + 1, batch_size):
            yield self.batch(items[start : start + batch_size, 0].tolist(), out_size, scales, gen)
