"""COCO-style JSON (``images``, ``annotations`` with ``bbox`` = ``x y w h``, ``categories``).

Face sets in COCO form usually have a category named like ``face``; by default every
category whose name contains "face" (any case) is kept, or pass ``category_ids``. Boxes
``x y w h`` become ``xyxy``; ``iscrowd`` is kept as an attribute. Images with no face
annotation are kept as negatives.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from facespot.data.records import FaceRecord
from facespot.errors import FacespotError, located


def _default_image_root(json_path: Path) -> Path:
    for candidate in (json_path.parent / "images", json_path.parent.parent / "images"):
        if candidate.is_dir():
            return candidate
    return json_path.parent


def _require(obj: Any, key: str, kind: type | tuple[type, ...], path: Path, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise FacespotError(f"{path}: {where} lacks the key {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise FacespotError(f"{path}: {where}[{key!r}] has the wrong type {type(value).__name__}")
    return value


def read_coco(
    json_path: str | Path,
    image_root: str | Path | None = None,
    category_ids: Iterable[int] | None = None,
) -> list[FaceRecord]:
    """Read a COCO JSON file into records (one per entry of ``images``, in file order).

    ``image_root`` defaults to an ``images/`` folder beside the JSON (or one level up),
    else the JSON's folder; ``file_name`` is relative to it.
    """
    path = Path(json_path)
    if not path.is_file():
        raise FacespotError(f"{path}: COCO annotation file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise located(path, exc.lineno, f"not valid JSON ({exc.msg})") from None
    except UnicodeDecodeError:
        raise FacespotError(f"{path}: not a UTF-8 text file") from None
    if not isinstance(data, dict):
        raise FacespotError(f"{path}: expected a JSON object with 'images', 'annotations', 'categories'")
    images = _require(data, "images", list, path, "the file")
    annotations = _require(data, "annotations", list, path, "the file")
    categories = data.get("categories", [])
    if not isinstance(categories, list):
        raise FacespotError(f"{path}: 'categories' must be a list")
    cat_names = {}
    for i, cat in enumerate(categories):
        cid = _require(cat, "id", int, path, f"categories[{i}]")
        cat_names[cid] = str(cat.get("name", ""))
    if category_ids is not None:
        keep = {int(c) for c in category_ids}
        unknown = keep - set(cat_names)
        if unknown and cat_names:
            raise FacespotError(f"{path}: category id(s) {sorted(unknown)} not in categories {cat_names}")
    else:
        keep = {cid for cid, name in cat_names.items() if "face" in name.lower()}
        if not keep:
            raise FacespotError(
                f"{path}: no category name contains 'face' (categories: {cat_names}); pass category ids"
            )
    root = Path(image_root) if image_root is not None else _default_image_root(path)
    by_id: dict[int, dict[str, Any]] = {}
    order = []
    for i, img in enumerate(images):
        iid = _require(img, "id", int, path, f"images[{i}]")
        fname = _require(img, "file_name", str, path, f"images[{i}]")
        if iid in by_id:
            raise FacespotError(f"{path}: images[{i}] repeats image id {iid}")
        w, h = img.get("width"), img.get("height")
        size = (int(w), int(h)) if isinstance(w, (int, float)) and isinstance(h, (int, float)) and w > 0 and h > 0 else None
        by_id[iid] = {"file": fname, "size": size, "boxes": [], "crowd": []}
        order.append(iid)
    for i, ann in enumerate(annotations):
        where = f"annotations[{i}]"
        iid = _require(ann, "image_id", int, path, where)
        cid = _require(ann, "category_id", int, path, where)
        if cid not in keep:
            continue
        if iid not in by_id:
            raise FacespotError(f"{path}: {where} refers to image id {iid}, which is not in 'images'")
        bbox = _require(ann, "bbox", list, path, where)
        if len(bbox) != 4:
            raise FacespotError(f"{path}: {where}['bbox'] must have 4 numbers 'x y w h', has {len(bbox)}")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox):
            raise FacespotError(f"{path}: {where}['bbox'] must hold numbers, got {bbox}")
        x, y, w, h = (float(v) for v in bbox)
        if not all(np.isfinite((x, y, w, h))):
            raise FacespotError(f"{path}: {where}['bbox'] must hold finite numbers, got {bbox}")
        if w < 0 or h < 0:
            raise FacespotError(f"{path}: {where} has a negative box size w={w:g} h={h:g}")
        by_id[iid]["boxes"].append((x, y, x + w, y + h))
        by_id[iid]["crowd"].append(int(bool(ann.get("iscrowd", 0))))
    records = []
    for iid in order:
        entry = by_id[iid]
        rel = Path(entry["file"])
        records.append(
            FaceRecord(
                image_path=root / rel,
                boxes=np.asarray(entry["boxes"], np.float32).reshape(-1, 4),
                attributes={"iscrowd": np.asarray(entry["crowd"], np.int32)},
                name=rel.with_suffix("").as_posix(),
                size=entry["size"],
            )
        )
    return records
