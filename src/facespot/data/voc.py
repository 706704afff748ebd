"""Pascal VOC XML annotations (one ``.xml`` per image), as many face sets ship them.

Layouts accepted: ``root/annotations/*.xml`` + ``root/images/`` (the face-mask set) and the
classic ``root/Annotations/*.xml`` + ``root/JPEGImages/``.

Every ``<object>`` is a face unless ``class_map`` says otherwise: ``{"name": "face"}`` keeps
a class, ``{"name": None}`` drops it; names the map does not mention stay faces. The
``difficult`` flag is kept as an attribute.

Coordinates: VOC boxes are 1-based and pixel-inclusive (``xmin=1`` is the first column,
``xmax`` the last column inside the box), so ``xyxy = (xmin - 1, ymin - 1, xmax, ymax)``
in facespot's continuous convention.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from facespot.data.records import FaceRecord
from facespot.errors import FacespotError
from facespot.images import IMAGE_EXTENSIONS

ANNOTATION_DIRS = ("annotations", "Annotations")
IMAGE_DIRS = ("images", "JPEGImages")


def find_voc_layout(root: str | Path) -> tuple[Path, Path]:
    """``(annotation_dir, image_dir)`` under ``root``."""
    root = Path(root)
    ann = next((root / d for d in ANNOTATION_DIRS if (root / d).is_dir()), None)
    img = next((root / d for d in IMAGE_DIRS if (root / d).is_dir()), None)
    if ann is None or img is None:
        raise FacespotError(
            f"{root}: not a Pascal VOC folder; expected annotations/*.xml + images/ "
            f"(or Annotations/ + JPEGImages/)"
        )
    return ann, img


def _text(node: ET.Element, tag: str, path: Path, where: str) -> str:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise FacespotError(f"{path}: {where} lacks <{tag}>")
    return child.text.strip()


def _number(node: ET.Element, tag: str, path: Path, where: str) -> float:
    text = _text(node, tag, path, where)
    try:
        value = float(text)
    except ValueError:
        raise FacespotError(f"{path}: {where} <{tag}> must be a number, got {text!r}") from None
    if not np.isfinite(value):
        raise FacespotError(f"{path}: {where} <{tag}> must be finite, got {text!r}")
    return value


def _find_image(image_dir: Path, xml_path: Path, filename: str | None) -> Path:
    if filename:
        candidate = image_dir / filename
        if candidate.suffix.lower() in IMAGE_EXTENSIONS:
            return candidate
    for ext in IMAGE_EXTENSIONS:  # no usable <filename>: the image shares the XML's stem
        candidate = image_dir / f"{xml_path.stem}{ext}"
        if candidate.exists():
            return candidate
    return image_dir / (filename or f"{xml_path.stem}.jpg")


def read_voc_file(
    xml_path: str | Path, image_dir: str | Path, class_map: dict[str, str | None] | None = None
) -> FaceRecord:
    """One VOC XML file -> one record (see the module doc for the class map rule)."""
    xml_path = Path(xml_path)
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as exc:
        line = exc.position[0] if getattr(exc, "position", None) else None
        where = f"{xml_path}:{line}" if line else str(xml_path)
        raise FacespotError(f"{where}: not valid XML ({exc})") from None
    except OSError as exc:
        raise FacespotError(f"{xml_path}: cannot read ({exc})") from None
    if root.tag != "annotation":
        raise FacespotError(f"{xml_path}: expected a Pascal VOC <annotation> root, found <{root.tag}>")
    filename_node = root.find("filename")
    filename = filename_node.text.strip() if filename_node is not None and filename_node.text else None
    size = None
    size_node = root.find("size")
    if size_node is not None and size_node.find("width") is not None and size_node.find("height") is not None:
        w = _number(size_node, "width", xml_path, "<size>")
        h = _number(size_node, "height", xml_path, "<size>")
        if w > 0 and h > 0:  # some tools write 0 when they did not know the size
            size = (int(w), int(h))
    boxes, difficult = [], []
    for i, obj in enumerate(root.iter("object"), 1):
        where = f"object {i}"
        name = obj.findtext("name", default="").strip()
        if class_map is not None and name in class_map:
            target = class_map[name]
            if target is None:
                continue
            if target != "face":
                raise FacespotError(f"class_map maps {name!r} to {target!r}; expected 'face' or None")
        bnd = obj.find("bndbox")
        if bnd is None:
            raise FacespotError(f"{xml_path}: {where} ({name or 'unnamed'}) has no <bndbox>")
        x1, y1, x2, y2 = (_number(bnd, t, xml_path, f"{where} <bndbox>") for t in ("xmin", "ymin", "xmax", "ymax"))
        if x2 < x1 or y2 < y1:
            raise FacespotError(
                f"{xml_path}: {where} has xmax < xmin or ymax < ymin ({x1:g},{y1:g},{x2:g},{y2:g})"
            )
        boxes.append((x1 - 1.0, y1 - 1.0, x2, y2))
        diff = obj.findtext("difficult", default="0").strip() or "0"
        try:
            difficult.append(int(float(diff)))
        except ValueError:
            raise FacespotError(f"{xml_path}: {where} <difficult> must be 0 or 1, got {diff!r}") from None
    return FaceRecord(
        image_path=_find_image(Path(image_dir), xml_path, filename),
        boxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        attributes={"difficult": np.asarray(difficult, dtype=np.int32)},
        name=xml_path.stem,
        size=size,
    )


def read_voc(
    root: str | Path, class_map: dict[str, str | None] | None = None
) -> list[FaceRecord]:
    """Read every ``*.xml`` of a VOC folder, sorted by name."""
    ann_dir, img_dir = find_voc_layout(root)
    files = sorted(ann_dir.glob("*.xml"))
    if not files:
        raise FacespotError(f"{ann_dir}: no .xml annotation files found")
    return [read_voc_file(f, img_dir, class_map) for f in files]
