"""Recognise a data set's format from its files, and open any of them as records.

Why: commands such as ``facespot data stats DATASET`` (and training configs) should take a
folder as the user has it and work out which parser applies, instead of asking for a
format flag each time. Detection looks only at names and at most the first lines of one
file, so it is instant even on large sets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facespot.data.caltech import GROUND_TRUTH_NAME, read_caltech
from facespot.data.coco import read_coco
from facespot.data.fddb import FOLD_PATTERN, read_fold_file, read_folds
from facespot.data.records import FaceRecord
from facespot.data.voc import ANNOTATION_DIRS, IMAGE_DIRS, read_voc
from facespot.data.wider import SPLITS, WiderFace, available_splits, read_wider_gt
from facespot.data.yolo import read_yolo
from facespot.errors import FacespotError
from facespot.images import is_image_file

FORMATS = ("wider", "voc", "yolo", "coco", "caltech", "fddb", "negatives", "synthetic")

ACCEPTED_LAYOUTS = """accepted layouts:
  wider:   DIR/wider_face_split/wider_face_{train,val}_bbx_gt.txt + DIR/WIDER_{split}/images/ (or DIR/images/), or the .txt itself
  voc:     DIR/annotations/*.xml + DIR/images/ (or Annotations/ + JPEGImages/)
  yolo:    DIR/images/ + DIR/labels/*.txt ('class cx cy w h', normalised)
  coco:    a COCO .json file, or DIR holding one (also DIR/annotations/*.json)
  caltech: DIR/WebFaces_GroundThruth.txt + DIR/images/, or the .txt itself
  fddb:    DIR/FDDB-folds/FDDB-fold-XX-ellipseList.txt + DIR/originalPics/, or the FDDB-folds folder
  negatives: DIR of face-free images (recursive; no annotations, never auto-detected)
  synthetic: generated face-free frames, path ignored, options {count: N, seed: S} (training only)"""


def _first_lines(path: Path, n: int = 3) -> list[list[str]]:
    out = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.strip():
                    out.append(line.split())
                if len(out) >= n:
                    break
    except OSError:
        pass
    return out


def _sniff_txt(path: Path) -> str | None:
    if FOLD_PATTERN.search(path.name):
        return "fddb"
    if path.name == GROUND_TRUTH_NAME:
        return "caltech"
    lines = _first_lines(path)
    if len(lines) >= 2 and len(lines[0]) == 1 and len(lines[1]) == 1 and lines[1][0].isdigit():
        return "wider" if is_image_file(lines[0][0]) else "fddb"
    if lines and len(lines[0]) == 9 and is_image_file(lines[0][0]):
        return "caltech"
    return None


def _is_coco_json(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            head = f.read(1 << 16)
    except OSError:
        return False
    return '"images"' in head or '"annotations"' in head


def _coco_jsons(folder: Path) -> list[Path]:
    found = []
    for d in (folder, folder / "annotations"):
        if d.is_dir():
            found += sorted(p for p in d.glob("*.json") if _is_coco_json(p))
    return found


def detect_format(path: str | Path) -> str:
    """Name of the format of a data folder or annotation file (one of :data:`FORMATS`)."""
    path = Path(path)
    if not path.exists():
        raise FacespotError(f"{path}: no such file or folder")
    if path.is_file():
        if path.suffix.lower() == ".json":
            return "coco"
        if path.suffix.lower() == ".xml":
            return "voc"
        if path.suffix.lower() == ".txt":
            fmt = _sniff_txt(path)
            if fmt:
                return fmt
        raise FacespotError(f"{path}: cannot tell the annotation format of this file\n{ACCEPTED_LAYOUTS}")
    if available_splits(path):
        return "wider"
    if (path / GROUND_TRUTH_NAME).is_file():
        return "caltech"
    if (path / "FDDB-folds").is_dir() or any(FOLD_PATTERN.search(p.name) for p in path.glob("FDDB-fold-*")):
        return "fddb"
    if any((path / d).is_dir() for d in ANNOTATION_DIRS) and any((path / d).is_dir() for d in IMAGE_DIRS):
        for d in ANNOTATION_DIRS:
            if (path / d).is_dir() and any((path / d).glob("*.xml")):
                return "voc"
    if (path / "images").is_dir() and (path / "labels").is_dir():
        return "yolo"
    if _coco_jsons(path):
        return "coco"
    has_images = any(is_image_file(p) for p in path.iterdir()) or (path / "images").is_dir()
    what = "images but no annotations I recognise" if has_images else "no annotations I recognise"
    raise FacespotError(f"{path}: {what}\n{ACCEPTED_LAYOUTS}")


def open_records(path: str | Path, format: str = "auto", **options: Any) -> list[FaceRecord]:
    """Read any supported data set into records.

    ``options`` go to the format's reader: ``split`` (wider), ``class_map`` (voc),
    ``face_classes`` (yolo), ``category_ids`` (coco), ``folds`` (fddb), ``image_root``
    (coco, caltech, fddb, a bare WIDER .txt), ``drop_invalid``/``min_size``/``missing``
    (wider). WIDER folders use :class:`WiderFace`'s defaults (invalid faces dropped, missing
    images an error); a bare WIDER ``.txt`` is read as it is.
    """
    path = Path(path)
    if format == "synthetic":
        from facespot.data.negatives import synthetic_records

        extra = set(options) - {"count", "seed"}
        if extra:
            raise FacespotError(f"option(s) {sorted(extra)} do not apply to the synthetic format (count, seed)")
        return synthetic_records(int(options.get("count", 100)), int(options.get("seed", 0)))
    fmt = detect_format(path) if format == "auto" else format
    if fmt not in FORMATS:
        raise FacespotError(f"unknown data format {format!r}; expected auto or one of {', '.join(FORMATS)}")
    if not path.exists():
        raise FacespotError(f"{path}: no such file or folder")

    def allowed(*names: str) -> dict[str, Any]:
        extra = set(options) - set(names)
        if extra:
            raise FacespotError(f"option(s) {sorted(extra)} do not apply to the {fmt} format")
        return {k: v for k, v in options.items() if v is not None}

    if fmt == "negatives":
        from facespot.data.negatives import read_negatives

        allowed()
        return read_negatives(path / "images" if (path / "images").is_dir() else path)
    if fmt == "wider":
        if path.is_file():
            opts = allowed("image_root")
            root = opts.get("image_root")
            if root is None:  # .../wider_face_split/x.txt -> sibling images folder
                base = path.parent.parent if path.parent.name == "wider_face_split" else path.parent
                split = next((s for s in SPLITS if f"_{s}_" in path.name), None)
                cands = ([base / f"WIDER_{split}" / "images"] if split else []) + [base / "images"]
                root = next((c for c in cands if c.is_dir()), path.parent)
            return read_wider_gt(path, root, allow_negative=True)
        opts = allowed("split", "drop_invalid", "min_size", "missing")
        split = opts.pop("split", None)
        if split is None:
            splits = available_splits(path)
            if len(splits) != 1:
                found = ", ".join(splits) or "none"
                raise FacespotError(f"{path}: pick a WIDER FACE split (found: {found}); pass --split / split='val'")
            split = splits[0]
        return WiderFace(path, split=split, **opts).records
    if fmt == "voc":
        opts = allowed("class_map")
        if path.is_file():
            from facespot.data.voc import read_voc_file

            img_dir = next((path.parent.parent / d for d in IMAGE_DIRS if (path.parent.parent / d).is_dir()), path.parent)
            return [read_voc_file(path, img_dir, opts.get("class_map"))]
        return read_voc(path, **opts)
    if fmt == "yolo":
        return read_yolo(path, **allowed("face_classes"))
    if fmt == "coco":
        opts = allowed("image_root", "category_ids")
        if path.is_dir():
            jsons = _coco_jsons(path)
            if len(jsons) != 1:
                listed = ", ".join(p.name for p in jsons) or "none"
                raise FacespotError(f"{path}: expected exactly one COCO .json file, found {listed}; pass the file itself")
            path = jsons[0]
        return read_coco(path, **opts)
    if fmt == "caltech":
        opts = allowed("image_root")
        gt = path if path.is_file() else path / GROUND_TRUTH_NAME
        return read_caltech(gt, **opts)
    # fddb
    opts = allowed("image_root", "folds")
    image_root = opts.pop("image_root", None)
    if path.is_file():
        base = path.parent.parent
    elif (path / "FDDB-folds").is_dir():
        base = path
    else:
        base = path.parent
    if image_root is None:
        image_root = base / "originalPics" if (base / "originalPics").is_dir() else base
    if path.is_file():
        if opts.get("folds") is not None:
            raise FacespotError("folds= applies to a folder of FDDB folds, not to one ellipse-list file")
        return read_fold_file(path, image_root)
    fold_dir = path / "FDDB-folds" if (path / "FDDB-folds").is_dir() else path
    return read_folds(fold_dir, image_root, **opts)
