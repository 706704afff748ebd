"""Training packs: a recipe's training images in one file, ready to train from.

Two problems, one format. On a CPU, JPEG decoding of a 1024-wide WIDER photo costs about as
much as augmenting it, and it competes with the training step for the same cores; on a
rented or lent GPU the data has to travel first (a lent machine takes 64 MiB). A pack is

* ``index.json``: per image its name, original path, packed size, scale, faces and
  landmarks (and ignore regions of a label overlay) in packed pixels, and where its bytes are;
* ``images.bin``: the images one after another, either ``raw`` RGB pixels (read back by
  memory mapping: no decoding at all) or re-encoded ``jpeg`` / ``webp`` (small, for moving).

Images are resized so the long side is at most ``max_side`` (never upscaled); faces and
landmarks are scaled with them. Synthetic face-free frames keep only their names (they
are rendered from the name). Build one with ``facespot data pack RECIPE OUT`` and train
from it with ``data.pack: OUT`` in the recipe; validation images are never packed.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from facespot.data.negatives import SYNTHETIC_PREFIX, read_record_image, render_synthetic
from facespot.data.records import FaceRecord
from facespot.errors import FacespotError
from facespot.images import shrink_to

INDEX = "index.json"
DATA = "images.bin"
ENCODINGS = ("raw", "jpeg", "webp")
FORMAT = "facespot-pack-1"


def _encode(img_rgb: np.ndarray, encoding: str, quality: int) -> bytes:
    if encoding == "raw":
        return np.ascontiguousarray(img_rgb).tobytes()
    ext, flag = (".jpg", cv2.IMWRITE_JPEG_QUALITY) if encoding == "jpeg" else (".webp", cv2.IMWRITE_WEBP_QUALITY)
    ok, buf = cv2.imencode(ext, cv2.cvtColor(img_rgb, cv2.COLOR_RGB2BGR), [flag, int(quality)])
    if not ok:
        raise FacespotError(f"OpenCV cannot encode {encoding}")
    return buf.tobytes()


def write_pack(
    records: Sequence[FaceRecord], folder: str | Path, max_side: int = 1024, encoding: str = "raw",
    quality: int = 90, repeats: Sequence[float] | None = None, progress: bool = False,
) -> Path:
    """Pack ``records`` (their ``repeats`` factors kept); unreadable images are left out and listed."""
    if encoding not in ENCODINGS:
        raise FacespotError(f"pack encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}")
    if max_side < 16:
        raise FacespotError(f"pack max_side must be at least 16, got {max_side}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    repeats = [1.0] * len(records) if repeats is None else list(repeats)
    entries, skipped, offset = [], [], 0
    from tqdm import tqdm

    with open(folder / DATA, "wb") as out:
        for rec, rep in tqdm(list(zip(records, repeats)), desc="pack", unit="img", disable=not progress):
            entry = {"name": rec.name, "path": str(rec.image_path), "repeat": float(rep)}
            if rec.name.startswith(SYNTHETIC_PREFIX):
                entries.append({**entry, "boxes": [], "landmarks": None})
                continue
            try:
                img = read_record_image(rec)
            except FacespotError as exc:
                skipped.append({"name": rec.name, "reason": str(exc)})
                continue
            img, fx, fy = shrink_to(img, max_side)
            nh, nw = img.shape[:2]
            data = _encode(img, encoding, quality)
            out.write(data)
            pts = None
            if rec.landmarks is not None and len(rec):  # no faces, no points (numpy cannot infer -1 from 0)
                p = rec.landmarks.reshape(len(rec), -1, 2) * np.array([fx, fy], np.float32)
                pts = [[[None if not np.isfinite(v) else round(float(v), 3) for v in pt] for pt in face] for face in p]
            entries.append({
                **entry, "width": nw, "height": nh, "scale": [fx, fy], "offset": offset, "nbytes": len(data),
                "boxes": (rec.boxes * np.array([fx, fy, fx, fy], np.float32)).round(3).tolist(), "landmarks": pts,
                **({"ignore": (rec.ignore_boxes * np.array([fx, fy, fx, fy], np.float32)).round(3).tolist()}
                   if rec.ignore_boxes is not None and len(rec.ignore_boxes) else {}),
            })  # fmt: skip
            offset += len(data)
    meta = {"format": FORMAT, "encoding": encoding, "max_side": int(max_side), "images": entries, "skipped": skipped}
    (folder / INDEX).write_text(json.dumps(meta), encoding="utf-8")
    if skipped:
        warnings.warn(f"pack: left out {len(skipped)} unreadable image(s), first: {skipped[0]['name']}")
    return folder


class Pack:
    """Read side of :func:`write_pack`. Opens its data lazily, so it pickles cheaply into
    loader workers (each maps the file itself; the OS shares the pages)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        idx = self.folder / INDEX
        if not idx.is_file():
            raise FacespotError(f"{self.folder}: not a training pack (no {INDEX}); build one with `facespot data pack`")
        try:
            meta = json.loads(idx.read_text(encoding="utf-8"))
            if meta.get("format") != FORMAT:
                raise KeyError("format")
            self.encoding = meta["encoding"]
            self.entries = meta["images"]
            self.skipped = meta.get("skipped", [])
        except (ValueError, KeyError) as exc:
            raise FacespotError(f"{idx}: damaged or foreign pack index ({exc})") from None
        self._data: np.ndarray | None = None

    def __getstate__(self) -> dict:
        d = dict(self.__dict__)
        d["_data"] = None
        return d

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def data(self) -> np.ndarray:
        if self._data is None:
            path = self.folder / DATA
            self._data = np.memmap(path, dtype=np.uint8, mode="r") if path.stat().st_size else np.zeros(0, np.uint8)
        return self._data

    def image(self, i: int) -> np.ndarray:
        """Image ``i`` as a writable ``HxWx3`` uint8 RGB array."""
        e = self.entries[i]
        if "offset" not in e:
            return render_synthetic(e["name"])
        raw = self.data[e["offset"] : e["offset"] + e["nbytes"]]
        if self.encoding == "raw":
            return np.array(raw).reshape(e["height"], e["width"], 3)
        img = cv2.imdecode(np.asarray(raw), cv2.IMREAD_COLOR)
        if img is None:
            raise FacespotError(f"{self.folder}: packed image {e['name']!r} does not decode")
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

    def image_at(self, indices: Sequence[int], i: int) -> np.ndarray:
        """Image ``indices[i]`` (a ``functools.partial`` of this pickles, a lambda would not)."""
        return self.image(indices[i])

    def records(self) -> list[FaceRecord]:
        """Records in packed pixel coordinates (matching :meth:`image`)."""
        out = []
        for e in self.entries:
            lm = None
            if e.get("landmarks") is not None and e["boxes"]:
                lm = np.array([[[np.nan if v is None else v for v in pt] for pt in face] for face in e["landmarks"]], np.float32)
                lm = lm.reshape(len(e["boxes"]), -1, 2)
            size = (e["width"], e["height"]) if "width" in e else None
            ignore = np.asarray(e["ignore"], np.float32).reshape(-1, 4) if e.get("ignore") else None
            out.append(FaceRecord(Path(e["path"]), np.asarray(e["boxes"], np.float32).reshape(-1, 4), lm, name=e["name"], size=size,
                                  ignore_boxes=ignore))  # fmt: skip
        return out

    def repeats(self) -> list[float]:
        return [float(e.get("repeat", 1.0)) for e in self.entries]

