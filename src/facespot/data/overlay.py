"""Label overlays: extra labels laid over a data set's own annotation, without touching it.

Why: WIDER FACE has boxes but no landmarks, and its annotators skipped some faces. A teacher
detector (CenterFace, run by ``scripts/teacher_labels.py``) can supply both, but its output must
never be mistaken for the ground truth: an overlay only *adds* to records that already exist.

* ``landmarks`` for annotated faces, matched to the record's own boxes by IoU (so an overlay
  written from the full annotation still fits a reader that dropped invalid faces);
* ``ignore`` regions: likely faces the annotation lacks, which training learns neither as
  face nor as background (:attr:`facespot.data.records.FaceRecord.ignore_boxes`).

File: JSON lines (gzip when the name ends in ``.gz``). The first line is a header
``{"format": "facespot-overlay-1", "keypoints": K, ...}`` (other keys, e.g. where the labels
came from, are kept for people); then one line per image::

    {"name": "0--Parade/0_Parade_marchingband_1_465",
     "faces": [{"box": [x1, y1, x2, y2], "keypoints": [[x, y], ...K]}, ...],
     "ignore": [[x1, y1, x2, y2], ...]}

Coordinates are pixels of the image as stored. Images the overlay does not name are left as
they are; an overlay naming no image of the source is an error (the wrong file).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from facespot import boxes as B
from facespot.data.records import FaceRecord
from facespot.errors import FacespotError

FORMAT = "facespot-overlay-1"
MATCH_IOU = 0.7  # an overlay face lands on the record box it overlaps at least this much


def _open_text(path: Path, mode: str):
    return gzip.open(path, mode + "t", encoding="utf-8") if path.suffix == ".gz" else open(path, mode, encoding="utf-8")


def write_overlay(path: str | Path, entries: Iterable[dict[str, Any]], keypoints: int, **header: Any) -> Path:
    """Write an overlay file atomically (header first; gzip when ``path`` ends in ``.gz``, with a
    fixed timestamp so the same labels give the same bytes); ``entries`` as described above."""
    from facespot.files import write_atomically

    path = Path(path)
    lines = [json.dumps({"format": FORMAT, "keypoints": int(keypoints), **header})]
    lines += [json.dumps(e, separators=(",", ":")) for e in entries]
    data = ("\n".join(lines) + "\n").encode("utf-8")

    def write(tmp: str) -> None:
        with open(tmp, "wb") as raw:
            if path.suffix == ".gz":
                with gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz:
                    gz.write(data)
            else:
                raw.write(data)

    return write_atomically(path, write)


def read_overlay(path: str | Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """``(header, {image name: entry})`` of an overlay file; a malformed one is a FacespotError with its line."""
    path = Path(path)
    if not path.is_file():
        raise FacespotError(f"{path}: label overlay not found")
    entries: dict[str, dict[str, Any]] = {}
    header: dict[str, Any] = {}
    try:
        with _open_text(path, "r") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise FacespotError(f"{path}:{lineno}: not a JSON line ({exc.msg})") from None
                if lineno == 1:
                    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
                        raise FacespotError(f"{path}:1: not a facespot label overlay (expected a header with format {FORMAT!r})")
                    header = obj
                    continue
                if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
                    raise FacespotError(f"{path}:{lineno}: expected an object with a 'name'")
                entries[obj["name"]] = _checked(obj, header, path, lineno)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise FacespotError(f"{path}: cannot read the label overlay ({exc})") from None
    if not header:
        raise FacespotError(f"{path}: empty label overlay")
    return header, entries


def _checked(obj: dict[str, Any], header: dict[str, Any], path: Path, lineno: int) -> dict[str, Any]:
    k = int(header.get("keypoints", 0))
    try:
        faces = obj.get("faces", [])
        boxes = np.asarray([f["box"] for f in faces], np.float32).reshape(-1, 4)
        pts = np.asarray([f.get("keypoints") if f.get("keypoints") is not None else [[np.nan, np.nan]] * k for f in faces],
                         np.float32).reshape(len(faces), k, 2)  # fmt: skip
        ignore = np.asarray(obj.get("ignore", []), np.float32).reshape(-1, 4)
    except (KeyError, TypeError, ValueError) as exc:
        raise FacespotError(f"{path}:{lineno}: faces need 'box' [x1, y1, x2, y2] and {k} keypoints [x, y] ({exc})") from None
    return {"boxes": boxes, "keypoints": pts, "ignore": ignore}


def apply_overlay(records: list[FaceRecord], path: str | Path) -> list[FaceRecord]:
    """Records with the overlay's landmarks and ignore regions added (records are changed in place)."""
    header, entries = read_overlay(path)
    k = int(header.get("keypoints", 0))
    hits = 0
    for rec in records:
        e = entries.get(rec.name)
        if e is None:
            continue
        hits += 1
        if len(e["ignore"]):
            rec.ignore_boxes = e["ignore"] if rec.ignore_boxes is None else np.concatenate([rec.ignore_boxes, e["ignore"]])
        if k == 0 or not len(e["boxes"]) or not len(rec):
            continue
        if rec.landmarks is not None and rec.landmarks.reshape(len(rec), -1, 2).shape[1] != k:
            raise FacespotError(f"{path}: {rec.name}: the source has {rec.landmarks.reshape(len(rec), -1, 2).shape[1]}-point "
                                f"landmarks, the overlay {k}-point ones")  # fmt: skip
        lm = np.full((len(rec), k, 2), np.nan, np.float32) if rec.landmarks is None else rec.landmarks.reshape(len(rec), k, 2).copy()
        iou = B.iou(rec.boxes.astype(np.float64), e["boxes"].astype(np.float64))
        best = iou.argmax(1)
        for i in np.flatnonzero(iou.max(1) >= MATCH_IOU):
            if np.isnan(lm[i]).all():  # the source's own points win
                lm[i] = e["keypoints"][best[i]]
        rec.landmarks = lm
    if entries and hits == 0:
        raise FacespotError(f"{path}: the label overlay names none of this source's {len(records)} image(s) (another data set?)")
    return records
