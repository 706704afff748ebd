"""Image -> network input, and the exact way back from network pixels to image pixels.

Every detection the runtime reports goes through one :class:`View`: a crop of the original
image (the whole image, or a tile), resized by ``(fx, fy)`` and pasted at the top-left of a
canvas filled with grey 114 -- the same letterbox the trainer uses
(:class:`facespot.data.augment.Resize` with ``keep_ratio``), so a model sees at test time
the padding it saw in training. Because the paste is at the top-left and the scale is known
per axis, mapping back is exact: ``x_image = x_canvas / fx + crop_x``.

Resize policies (``resize=``):

* ``"auto"`` (default): fixed-size models (BlazeFace) letterbox to their square input;
  grid models (YOLO-style, box sizes relative to the whole input) letterbox to their square
  training size; fully convolutional SSD models (FaceBoxes, Tiny Faces) run at the native
  size, downscaled only when the long side exceeds ``max_side`` and upscaled when it is below
  ``min_side`` (small web images: their faces are smaller than any the model was trained
  on at 512-1024 pixel crops; on the Caltech hold-out, ~290 px photos, AP@0.5 rises from
  0.44 at native size to 0.71 at a 640 px long side) -- by at most ``max_upscale`` (4x):
  interpolation beyond that adds no detail, and a thumbnail (or a 1x1 image) blown up to
  640 px is a flat field the network was never shown.
* ``"native"``: native size for fully convolutional models (same ``max_side`` cap).
* an integer ``N``: keep-aspect resize so the long side is ``N`` (square canvas ``N x N``
  for grid models, no padding for the others).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from facespot.errors import FacespotError
from facespot.spec import normalize  # noqa: F401  (how a model wants its pixels: the spec's; re-exported here)

PAD_VALUE = 114
"""Letterbox fill, the trainer's (``Resize.fill``)."""


@dataclass(frozen=True)
class View:
    """One network input cut from an image; knows how to map its detections back.

    ``crop`` is ``(x, y, w, h)`` in original pixels; the crop is resized to ``(new_w, new_h)``
    and pasted at the top-left of a ``(canvas_h, canvas_w)`` canvas.
    """

    crop: tuple[int, int, int, int]
    new_w: int
    new_h: int
    canvas_w: int
    canvas_h: int

    @property
    def fx(self) -> float:
        return self.new_w / self.crop[2]

    @property
    def fy(self) -> float:
        return self.new_h / self.crop[3]

    def to_image(self, xy: np.ndarray) -> np.ndarray:
        """``(..., 2k)`` interleaved x, y values normalised to the canvas -> original pixels."""
        xy = np.asarray(xy, dtype=np.float32)
        k = xy.shape[-1] // 2
        scale = np.tile(np.array([self.canvas_w / self.fx, self.canvas_h / self.fy], np.float32), k)
        offset = np.tile(np.array([self.crop[0], self.crop[1]], np.float32), k)
        return xy * scale + offset


def _long_side_size(w: int, h: int, target: int) -> tuple[int, int]:
    f = target / max(w, h)
    return max(int(round(w * f)), 1), max(int(round(h * f)), 1)


def plan_view(
    crop: tuple[int, int, int, int],
    resize: str | int,
    fixed_input_size: tuple[int, int] | None,
    square_size: int | None,
    max_side: int | None,
    min_side: int | None = None,
    max_upscale: float | None = None,
) -> View:
    """Choose the resize and canvas for one crop under a resize policy (see module doc).

    ``square_size`` is set for models that need a square canvas (grid coding): the default
    letterbox target. ``fixed_input_size`` (height, width) overrides everything.
    """
    _, _, w, h = crop
    if w <= 0 or h <= 0:
        raise FacespotError(f"cannot run a detector on an empty image region {w}x{h}")
    if fixed_input_size is not None:
        ch, cw = int(fixed_input_size[0]), int(fixed_input_size[1])
        f = min(ch / h, cw / w)
        nw, nh = max(int(round(w * f)), 1), max(int(round(h * f)), 1)
        return View(crop, min(nw, cw), min(nh, ch), cw, ch)
    if isinstance(resize, str) and resize not in ("auto", "native"):
        if not resize.isdigit():
            raise FacespotError(f"resize must be 'auto', 'native' or a long-side length in pixels, got {resize!r}")
        resize = int(resize)
    if isinstance(resize, (int, np.integer)) and not isinstance(resize, bool):
        target = int(resize)
        if target < 16:
            raise FacespotError(f"resize target {target} is too small (at least 16 pixels)")
        nw, nh = _long_side_size(w, h, target)
        if square_size is not None:
            return View(crop, nw, nh, target, target)
        return View(crop, nw, nh, nw, nh)
    if resize == "auto" and square_size is not None:
        nw, nh = _long_side_size(w, h, square_size)
        return View(crop, nw, nh, square_size, square_size)
    if square_size is not None:  # "native" on a grid model: native size, padded to a square
        side = max(w, h) if max_side is None else min(max(w, h), max_side)
        nw, nh = _long_side_size(w, h, side)
        return View(crop, nw, nh, side, side)
    if max_side is not None and max(w, h) > max_side:
        nw, nh = _long_side_size(w, h, max_side)
        return View(crop, nw, nh, nw, nh)
    if max_side is not None and min_side is not None:
        min_side = min(min_side, max_side)
    if resize == "auto" and min_side is not None and max(w, h) < min_side:
        target = min_side if max_upscale is None else min(min_side, max(int(round(max(w, h) * max_upscale)), max(w, h)))
        nw, nh = _long_side_size(w, h, target)
        return View(crop, nw, nh, nw, nh)
    return View(crop, w, h, w, h)


def render_view(image: np.ndarray, view: View) -> np.ndarray:
    """Cut, resize and letterbox ``image`` (``HxWx3`` uint8) into the view's canvas.

    A view at native size returns the (possibly strided) crop itself: no copy.
    """
    x, y, w, h = view.crop
    patch = image[y : y + h, x : x + w]
    if (view.new_w, view.new_h) != (w, h):
        interp = cv2.INTER_AREA if view.new_w < w else cv2.INTER_LINEAR
        patch = cv2.resize(np.ascontiguousarray(patch), (view.new_w, view.new_h), interpolation=interp)
    if (view.canvas_w, view.canvas_h) == (view.new_w, view.new_h):
        return patch
    canvas = np.full((view.canvas_h, view.canvas_w, 3), PAD_VALUE, np.uint8)
    canvas[: view.new_h, : view.new_w] = patch
    return canvas


def tile_crops(width: int, height: int, tile: int, overlap: float) -> list[tuple[int, int, int, int]]:
    """Overlapping ``tile x tile`` crops covering the image (edge tiles shifted inwards).

    Why overlap: a face cut by one tile border is whole in the neighbouring tile when it is
    smaller than the overlap; the merge NMS then keeps the complete box.
    """
    if tile <= 0:
        raise FacespotError(f"tile size must be positive, got {tile}")
    if not 0.0 <= overlap < 1.0:
        raise FacespotError(f"tile overlap must be in [0, 1), got {overlap}")
    step = max(1, int(round(tile * (1.0 - overlap))))

    def starts(size: int) -> list[int]:
        if size <= tile:
            return [0]
        out = list(range(0, size - tile, step))
        out.append(size - tile)
        return sorted(set(out))

    return [(x, y, min(tile, width), min(tile, height)) for y in starts(height) for x in starts(width)]
