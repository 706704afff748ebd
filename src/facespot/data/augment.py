"""Training-time augmentation in NumPy/OpenCV: boxes and landmarks move with the pixels.

Each transform is a small class called as ``t(sample, rng) -> sample`` with an explicit
``numpy.random.Generator`` so a seeded run is reproducible (every loader worker gets its
own generator). A pipeline is built from the config's list of steps by
:func:`build_augment`, e.g.::

    augment:
      - square_crop: {scales: [0.3, 0.45, 0.6, 0.8, 1.0]}   # FaceBoxes (Zhang et al. 2017)
      - photometric: {}
      - hflip: {p: 0.5}
      - resize: {}                                          # to the model's training size
      - drop_small: {min_size: 4}

BlazeFace-style recipes use ``rotate_scale: {max_angle: 45, scale: [0.7, 1.0]}``.
Written by hand (Albumentations is not a dependency) because face training needs only
these few geometric steps and they must carry NaN-marked landmarks along.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

import cv2
import numpy as np

from facespot.errors import FacespotError


@dataclass
class Sample:
    """One training example: an RGB ``uint8`` image and its faces in pixel ``xyxy``.

    ``points`` is ``(N, K, 2)`` in pixels with NaN for missing, or ``None``.
    ``name`` is carried for error messages and previews. ``ignore`` (``(N,)`` bool, or
    ``None``) marks boxes that are ignore regions, not faces: they move and are cropped
    like faces, and the loader hands them to training apart.
    """

    image: np.ndarray
    boxes: np.ndarray
    points: np.ndarray | None = None
    name: str = ""
    ignore: np.ndarray | None = None

    def keep(self, mask: np.ndarray) -> "Sample":
        return replace(self, boxes=self.boxes[mask], points=None if self.points is None else self.points[mask],
                       ignore=None if self.ignore is None else self.ignore[mask])  # fmt: skip


Transform = Callable[[Sample, np.random.Generator], Sample]

# Left/right pairs to swap when the image is mirrored, by number of keypoints:
# 4 = Caltech (left eye, right eye, nose, mouth), 5 = RetinaFace (eyes, nose, mouth
# corners), 6 = BlazeFace (eyes, nose, mouth, ear tragions).
DEFAULT_FLIP_PAIRS: dict[int, tuple[tuple[int, int], ...]] = {
    4: ((0, 1),),
    5: ((0, 1), (3, 4)),
    6: ((0, 1), (4, 5)),
}


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms = list(transforms)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        for t in self.transforms:
            sample = t(sample, rng)
        return sample

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(type(t).__name__ for t in self.transforms) + ")"


@dataclass
class RandomSquareCrop:
    """FaceBoxes' data-anchoring crop: a random square of ``scale * short side``.

    Faces whose centres fall inside the crop are kept (clipped to it), others dropped;
    a crop keeping no face is retried up to ``max_tries`` times, after which the
    sample is returned unchanged so a hard image never stalls the loader.

    Scales above 1 zoom *out* (SCRFD's "sample redistribution", Guo et al. 2021): the
    square is larger than the image, which lands somewhere inside it on a ``fill``
    canvas, so after the resize its faces are smaller than in any in-image crop. That is
    how a set of mostly medium faces yields enough small training faces.
    """

    scales: Sequence[float] = (0.3, 0.45, 0.6, 0.8, 1.0)
    max_tries: int = 250
    fill: tuple[int, int, int] = (114, 114, 114)

    def __call__(self, s: Sample, rng: np.random.Generator) -> Sample:
        h, w = s.image.shape[:2]
        short = min(h, w)
        for _ in range(self.max_tries):
            side = max(int(short * float(rng.choice(self.scales))), 1)
            # in-image crops start inside the image; larger squares start before it
            x0 = int(rng.integers(0, w - side + 1)) if side <= w else int(rng.integers(w - side, 1))
            y0 = int(rng.integers(0, h - side + 1)) if side <= h else int(rng.integers(h - side, 1))
            c = (s.boxes[:, :2] + s.boxes[:, 2:]) / 2
            inside = (c[:, 0] > x0) & (c[:, 0] < x0 + side) & (c[:, 1] > y0) & (c[:, 1] < y0 + side)
            if len(s.boxes) and not inside.any():
                continue
            out = s.keep(inside)
            b = out.boxes.copy()
            b[:, 0::2] = np.clip(b[:, 0::2] - x0, 0, side)
            b[:, 1::2] = np.clip(b[:, 1::2] - y0, 0, side)
            pts = None if out.points is None else out.points - np.array([x0, y0], np.float32)
            if x0 >= 0 and y0 >= 0 and x0 + side <= w and y0 + side <= h:
                image = s.image[y0 : y0 + side, x0 : x0 + side]
            else:
                image = np.empty((side, side, 3), np.uint8)
                image[:] = np.asarray(self.fill, np.uint8)
                sx, sy = max(x0, 0), max(y0, 0)
                ex, ey = min(x0 + side, w), min(y0 + side, h)
                image[sy - y0 : ey - y0, sx - x0 : ex - x0] = s.image[sy:ey, sx:ex]
            return replace(out, image=image, boxes=b, points=pts)
        return s


@dataclass
class PhotometricDistort:
    """SSD-style colour jitter: brightness, contrast, saturation, hue, each with probability ``p``."""

    brightness: float = 32.0
    contrast: tuple[float, float] = (0.5, 1.5)
    saturation: tuple[float, float] = (0.5, 1.5)
    hue: float = 18.0
    p: float = 0.5

    def __call__(self, s: Sample, rng: np.random.Generator) -> Sample:
        img = s.image.astype(np.float32)
        if rng.random() < self.p:
            img += float(rng.uniform(-self.brightness, self.brightness))
        contrast_first = rng.random() < 0.5
        if contrast_first and rng.random() < self.p:
            img *= float(rng.uniform(*self.contrast))
        if rng.random() < self.p or rng.random() < self.p:
            hsv = cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
            if rng.random() < self.p:
                hsv[..., 1] *= float(rng.uniform(*self.saturation))
            if rng.random() < self.p:
                # OpenCV's 8-bit hue runs 0..179 (degrees / 2)
                hsv[..., 0] = (hsv[..., 0] + float(rng.uniform(-self.hue, self.hue)) / 2) % 180
            img = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
        if not contrast_first and rng.random() < self.p:
            img *= float(rng.uniform(*self.contrast))
        return replace(s, image=np.clip(img, 0, 255).astype(np.uint8))


@dataclass
class HorizontalFlip:
    """Mirror with probability ``p``; landmark left/right pairs are swapped."""

    p: float = 0.5
    flip_pairs: Sequence[Sequence[int]] | None = None

    def __call__(self, s: Sample, rng: np.random.Generator) -> Sample:
        if rng.random() >= self.p:
            return s
        w = s.image.shape[1]
        b = s.boxes.copy()
        b[:, [0, 2]] = w - s.boxes[:, [2, 0]]
        pts = None
        if s.points is not None:
            pts = s.points.copy()
            pts[..., 0] = w - pts[..., 0]
            pairs = self.flip_pairs if self.flip_pairs is not None else DEFAULT_FLIP_PAIRS.get(pts.shape[1], ())
            for a, c in pairs:
                pts[:, [a, c]] = pts[:, [c, a]]
        return replace(s, image=np.ascontiguousarray(s.image[:, ::-1]), boxes=b, points=pts)


@dataclass
class RandomScale:
    """Scale jitter: resize the whole image by a factor drawn from ``scale``."""

    scale: tuple[float, float] = (0.8, 1.2)

    def __call__(self, s: Sample, rng: np.random.Generator) -> Sample:
        f = float(rng.uniform(*self.scale))
        h, w = s.image.shape[:2]
        nw, nh = max(int(round(w * f)), 1), max(int(round(h * f)), 1)
        fx, fy = nw / w, nh / h
        img = cv2.resize(s.image, (nw, nh), interpolation=cv2.INTER_LINEAR)
        b = s.boxes * np.array([fx, fy, fx, fy], np.float32)
        pts = None if s.points is None else s.points * np.array([fx, fy], np.float32)
        return replace(s, image=img, boxes=b, points=pts)


@dataclass
class RandomRotateScale:
    """BlazeFace-style: rotate by up to ``max_angle`` degrees and zoom out by ``scale``.

    Rotation is about the image centre onto a canvas of the same size, filled with
    ``fill``. Landmarks are rotated exactly. A rotated box's new box is the bounding box
    of its *inscribed ellipse* after rotation, not of its corners: faces are roughly
    elliptical, and the corner hull grows by up to 41% at 45 degrees, which would teach the
    model loose boxes.
    """

    max_angle: float = 45.0
    scale: tuple[float, float] = (0.7, 1.0)
    p: float = 1.0
    fill: tuple[int, int, int] = (114, 114, 114)

    def __call__(self, s: Sample, rng: np.random.Generator) -> Sample:
        if rng.random() >= self.p:
            return s
        angle = float(rng.uniform(-self.max_angle, self.max_angle))
        f = float(rng.uniform(*self.scale))
        h, w = s.image.shape[:2]
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, f)  # positive angle = counter-clockwise
        img = cv2.warpAffine(s.image, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=self.fill)
        c = (s.boxes[:, :2] + s.boxes[:, 2:]) / 2
        nc = c @ m[:, :2].T + m[:, 2]
        a = (s.boxes[:, 2] - s.boxes[:, 0]) / 2 * f
        bb = (s.boxes[:, 3] - s.boxes[:, 1]) / 2 * f
        t = math.radians(angle)
        hw = np.sqrt((a * math.cos(t)) ** 2 + (bb * math.sin(t)) ** 2)
        hh = np.sqrt((a * math.sin(t)) ** 2 + (bb * math.cos(t)) ** 2)
        boxes = np.stack([nc[:, 0] - hw, nc[:, 1] - hh, nc[:, 0] + hw, nc[:, 1] + hh], 1).astype(np.float32)
        pts = None
        if s.points is not None:
            pts = (s.points @ m[:, :2].T + m[:, 2]).astype(np.float32)  # NaN stays NaN
        out = replace(s, image=img, boxes=boxes.reshape(-1, 4), points=pts)
        # faces rotated out of the canvas are dropped; the rest are clipped to it
        cc = (out.boxes[:, :2] + out.boxes[:, 2:]) / 2
        keep = (cc[:, 0] >= 0) & (cc[:, 0] < w) & (cc[:, 1] >= 0) & (cc[:, 1] < h)
        out = out.keep(keep)
        out.boxes[:, 0::2] = np.clip(out.boxes[:, 0::2], 0, w)
        out.boxes[:, 1::2] = np.clip(out.boxes[:, 1::2], 0, h)
        return out


_INTERPOLATIONS = (cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_AREA, cv2.INTER_NEAREST, cv2.INTER_LANCZOS4)


@dataclass
class Resize:
    """Resize to ``size = (height, width)``; ``keep_ratio`` letterboxes (pads bottom/right).

    ``random_interp`` picks the interpolation at random, as FaceBoxes does, so the model
    does not learn one resampler's artefacts.
    """

    size: tuple[int, int] = (1024, 1024)
    keep_ratio: bool = False
    random_interp: bool = False
    fill: tuple[int, int, int] = (114, 114, 114)

    def __call__(self, s: Sample, rng: np.random.Generator) -> Sample:
        th, tw = int(self.size[0]), int(self.size[1])
        h, w = s.image.shape[:2]
        interp = _INTERPOLATIONS[int(rng.integers(len(_INTERPOLATIONS)))] if self.random_interp else cv2.INTER_LINEAR
        if self.keep_ratio:
            f = min(th / h, tw / w)
            nw, nh = max(int(round(w * f)), 1), max(int(round(h * f)), 1)
            canvas = np.empty((th, tw, 3), np.uint8)
            canvas[:] = np.asarray(self.fill, np.uint8)
            canvas[:nh, :nw] = cv2.resize(s.image, (nw, nh), interpolation=interp)
            fx, fy, img = nw / w, nh / h, canvas
        else:
            img = cv2.resize(s.image, (tw, th), interpolation=interp)
            fx, fy = tw / w, th / h
        b = s.boxes * np.array([fx, fy, fx, fy], np.float32)
        pts = None if s.points is None else s.points * np.array([fx, fy], np.float32)
        return replace(s, image=img, boxes=b, points=pts)


@dataclass
class DropSmall:
    """Drop faces narrower or shorter than ``min_size`` pixels (after resize): no anchor
    can match them, so they would only add noise to the matching."""

    min_size: float = 2.0

    def __call__(self, s: Sample, rng: np.random.Generator) -> Sample:
        wh = s.boxes[:, 2:] - s.boxes[:, :2]
        return s.keep((wh >= self.min_size).all(1))


# ------------------------------------------------------------------- building from config

_STEPS: dict[str, type] = {
    "square_crop": RandomSquareCrop,
    "photometric": PhotometricDistort,
    "hflip": HorizontalFlip,
    "scale": RandomScale,
    "rotate_scale": RandomRotateScale,
    "resize": Resize,
    "drop_small": DropSmall,
}

DEFAULT_STEPS: list[dict[str, Any]] = [
    {"square_crop": {}},
    {"photometric": {}},
    {"hflip": {}},
    {"resize": {}},
    {"drop_small": {}},
]


def build_augment(
    steps: Sequence[dict[str, Any] | str] | None,
    size: tuple[int, int],
    where: str = "augment",
) -> Compose:
    """A pipeline from config: a list of ``{name: {options}}`` (or bare names).

    ``size`` (height, width) fills any ``resize`` step that does not name one, and a
    pipeline without a ``resize`` step gets one appended so every batch has one shape.
    Unknown step names or options raise :class:`FacespotError` naming ``where``.
    """
    steps = DEFAULT_STEPS if steps is None else steps
    out: list[Transform] = []
    for i, step in enumerate(steps):
        if isinstance(step, str):
            name, opts = step, {}
        elif isinstance(step, dict) and len(step) == 1:
            name, opts = next(iter(step.items()))
            opts = dict(opts or {})
        else:
            raise FacespotError(f"{where}[{i}]: expected a step name or {{name: {{options}}}}, got {step!r}")
        if name not in _STEPS:
            raise FacespotError(f"{where}[{i}]: unknown augmentation {name!r}; known: {', '.join(sorted(_STEPS))}")
        cls = _STEPS[name]
        if cls is Resize and "size" not in opts:
            opts["size"] = tuple(size)
        known = set(cls.__dataclass_fields__)
        bad = sorted(set(opts) - known)
        if bad:
            raise FacespotError(f"{where}[{i}] ({name}): unknown option {bad[0]!r}; known: {', '.join(sorted(known))}")
        for k, v in opts.items():
            if isinstance(v, list):
                opts[k] = tuple(tuple(x) if isinstance(x, list) else x for x in v)
        out.append(cls(**opts))
    if not any(isinstance(t, Resize) for t in out):
        out.append(Resize(size=tuple(size)))
    return Compose(out)


def eval_transform(size: tuple[int, int], keep_ratio: bool = False) -> Compose:
    """Deterministic validation transform: resize only."""
    return Compose([Resize(size=tuple(size), keep_ratio=keep_ratio)])
