"""YOLO text labels: ``images/<rel>.jpg`` with ``labels/<rel>.txt`` beside it.

Each label line is ``class cx cy w h`` with the centre and size normalised to the image
(0..1), so the image size is needed to get pixels: it is read from the image header
(:func:`facespot.images.image_size`), which is fast. An image without a label file is a
picture with no faces (the YOLO convention for negatives). ``face_classes`` keeps only
the listed class ids (all classes are faces when None).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from facespot.data.records import FaceRecord
from facespot.errors import FacespotError, located
from facespot.images import image_size, is_image_file

# normalised coordinates a hair outside 0..1 come from rounding in export tools
_TOLERANCE = 1e-3


def parse_label_file(
    path: str | Path, width: int, height: int, face_classes: Iterable[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(boxes xyxy pixels, class ids)`` from one label file for an image of ``width x height``."""
    path = Path(path)
    keep = None if face_classes is None else {int(c) for c in face_classes}
    boxes, classes = [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 5:
                raise located(path, lineno, f"expected 5 fields 'class cx cy w h', found {len(fields)}")
            try:
                cls_f = float(fields[0])
                cx, cy, w, h = (float(v) for v in fields[1:])
            except ValueError:
                raise located(path, lineno, f"expected numbers 'class cx cy w h', got {line.strip()!r}") from None
            if not cls_f.is_integer() or cls_f < 0:
                raise located(path, lineno, f"class id must be a non-negative integer, got {fields[0]!r}")
            if not all(np.isfinite((cx, cy, w, h))):
                raise located(path, lineno, "coordinates must be finite numbers")
            if w < 0 or h < 0:
                raise located(path, lineno, f"negative box size w={w:g} h={h:g}")
            if not all(-_TOLERANCE <= v <= 1 + _TOLERANCE for v in (cx, cy, w, h)):
                raise located(path, lineno, f"expected coordinates normalised to 0..1, got {cx:g} {cy:g} {w:g} {h:g}")
            if keep is not None and int(cls_f) not in keep:
                continue
            boxes.append(((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height))
            classes.append(int(cls_f))
    return np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(classes, np.int32)


def read_yolo(root: str | Path, face_classes: Iterable[int] | None = None) -> list[FaceRecord]:
    """Read a YOLO folder (``images/`` + ``labels/``, subfolders mirrored) into records.

    Names are image paths relative to ``images/`` without extension. A label file with no
    matching image raises, because it means the set was copied incompletely.
    """
    root = Path(root)
    img_dir, lbl_dir = root / "images", root / "labels"
    if not img_dir.is_dir() or not lbl_dir.is_dir():
        raise FacespotError(f"{root}: not a YOLO folder; expected images/ and labels/ side by side")
    images = sorted(p for p in img_dir.rglob("*") if p.is_file() and is_image_file(p))
    if not images:
        raise FacespotError(f"{img_dir}: no images found")
    classes = None if face_classes is None else list(face_classes)
    by_stem = {p.relative_to(img_dir).with_suffix("").as_posix(): p for p in images}
    orphans = [
        p for p in sorted(lbl_dir.rglob("*.txt"))
        if p.relative_to(lbl_dir).with_suffix("").as_posix() not in by_stem and p.name != "classes.txt"
    ]
    if orphans:
        shown = ", ".join(str(p) for p in orphans[:5])
        raise FacespotError(f"{lbl_dir}: {len(orphans)} label file(s) have no image under {img_dir}: {shown}")
    records = []
    for name, img in by_stem.items():
        label = lbl_dir / f"{name}.txt"
        w, h = image_size(img)
        if label.is_file():
            boxes, cls = parse_label_file(label, w, h, classes)
        else:
            boxes, cls = np.zeros((0, 4), np.float32), np.zeros(0, np.int32)
        records.append(FaceRecord(image_path=img, boxes=boxes, attributes={"class_id": cls}, name=name, size=(w, h)))
    return records
