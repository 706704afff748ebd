"""``facespot data preview``: a contact sheet of augmented training samples.

Why: a wrong augmentation (boxes that drift off the faces after a flip or rotation,
landmarks swapped the wrong way, faces cropped away) silently ruins a training run; one
look at a grid of samples with their boxes and points drawn catches it before the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from facespot.data.augment import Compose, Sample, build_augment
from facespot.data.records import FaceRecord
from facespot.errors import FacespotError

# Point colours (RGB) by index: left eye, right eye, nose, mouth, then any further points.
_POINT_COLOURS = [(255, 60, 60), (60, 120, 255), (255, 220, 0), (255, 0, 255), (0, 255, 255), (255, 140, 0)]


def draw_sample(sample: Sample, tile: int = 256) -> np.ndarray:
    """The sample scaled to fit a ``tile x tile`` square (letterboxed), boxes in green and
    points coloured by index, as an RGB ``uint8`` image."""
    h, w = sample.image.shape[:2]
    f = tile / max(h, w)
    nw, nh = max(int(round(w * f)), 1), max(int(round(h * f)), 1)
    canvas = np.full((tile, tile, 3), 40, np.uint8)
    canvas[:nh, :nw] = cv2.resize(sample.image, (nw, nh), interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
    for b in sample.boxes * f:
        cv2.rectangle(canvas, (int(round(b[0])), int(round(b[1]))), (int(round(b[2])), int(round(b[3]))), (0, 255, 0), 1)
    if sample.points is not None:
        for face in sample.points * f:
            for k, p in enumerate(face):
                if np.isfinite(p).all():
                    cv2.circle(canvas, (int(round(p[0])), int(round(p[1]))), 2, _POINT_COLOURS[k % len(_POINT_COLOURS)], -1)
    label = f"{sample.name[-28:]}  {len(sample.boxes)} faces"
    cv2.putText(canvas, label, (3, tile - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas


def write_preview(
    records: Sequence[FaceRecord],
    out_path: str | Path,
    augment: Sequence[Any] | Compose | None = None,
    size: tuple[int, int] = (640, 640),
    count: int = 16,
    columns: int = 4,
    tile: int = 256,
    seed: int = 0,
) -> Path:
    """Write an image grid (PNG or JPEG, by the name) of ``count`` augmented samples drawn from ``records``.

    Parameters
    ----------
    augment:
        A built pipeline, or the recipe's ``augment`` list (``None`` = the default steps).
    size:
        Training input ``(height, width)`` the pipeline resizes to.
    seed:
        Picks the records and drives the augmentation; the same seed gives the same sheet.

    Unreadable images are skipped; only when none can be read is it an error.
    """
    from facespot.images import read_image

    if not records:
        raise FacespotError("preview: the data set holds no images")
    if count < 1 or columns < 1 or tile < 32:
        raise FacespotError("preview: count and columns must be >= 1 and tile >= 32")
    pipe = augment if isinstance(augment, Compose) else build_augment(augment, size, where="preview augment")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(records))
    tiles: list[np.ndarray] = []
    errors: list[str] = []
    i = 0
    while len(tiles) < count and i < max(len(records) * 4, count):
        rec = records[int(order[i % len(records)])]
        i += 1
        try:
            image = read_image(rec.image_path)
        except FacespotError as exc:
            errors.append(str(exc))
            continue
        pts = None if rec.landmarks is None else rec.landmarks.reshape(len(rec), -1, 2)
        s = pipe(Sample(image, rec.boxes.copy(), None if pts is None else pts.copy(), rec.name), rng)
        tiles.append(draw_sample(s, tile))
    if not tiles:
        raise FacespotError(f"preview: no image could be read; first error: {errors[0] if errors else 'none'}")
    rows = -(-len(tiles) // columns)
    sheet = np.full((rows * tile, columns * tile, 3), 20, np.uint8)
    for k, t in enumerate(tiles):
        r, c = divmod(k, columns)
        sheet[r * tile : (r + 1) * tile, c * tile : (c + 1) * tile] = t
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        ok = cv2.imwrite(str(out_path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    except cv2.error:  # OpenCV raises, rather than returns False, for an unknown extension
        ok = False
    if not ok:
        raise FacespotError(f"{out_path}: cannot write the preview image (use a .png or .jpg name)")
    return out_path
