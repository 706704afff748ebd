"""WIDER FACE ground truth (``wider_face_{train,val}_bbx_gt.txt``) and its folder layout.

The text format repeats, per image::

    0--Parade/0_Parade_marchingband_1_465.jpg      <- image path under images/
    126                                            <- number of faces N
    345 211 4 4 2 0 0 0 2 0                        <- N lines: x y w h blur expression
    ...                                               illumination invalid occlusion pose

An image with ``0`` faces is followed by one dummy line of zeros (the official files do
this), which is consumed and ignored. Boxes ``x y w h`` become ``xyxy`` = ``x, y, x+w, y+h``.

The parser is strict: a wrong field count, a non-number, a negative size, a face count
that does not match the lines that follow, or a truncated file raise
:class:`FacespotError` with ``file:line``, because a silently mis-parsed ground truth
poisons every AP number computed from it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Iterator, Literal

import numpy as np

from facespot.data.records import FaceRecord
from facespot.errors import FacespotError, located
from facespot.images import IMAGE_EXTENSIONS

ATTRIBUTES = ("blur", "expression", "illumination", "invalid", "occlusion", "pose")
SPLITS = ("train", "val")


def _gt_name(split: str) -> str:
    return f"wider_face_{split}_bbx_gt.txt"


def _is_image_line(fields: list[str]) -> bool:
    return len(fields) == 1 and Path(fields[0]).suffix.lower() in IMAGE_EXTENSIONS


def read_wider_gt(
    gt_path: str | Path, image_root: str | Path | None = None, allow_negative: bool = False
) -> list[FaceRecord]:
    """Parse a WIDER FACE ground-truth text file into records.

    ``image_root`` is the folder the image lines are relative to (``.../images``); it
    defaults to the file's folder. Names are ``"<event>/<stem>"``, the key the official
    evaluation uses. Attributes ``blur ... pose`` are kept per face.

    A negative width or height is an error unless ``allow_negative``: the official
    ``wider_face_val_bbx_gt.txt`` itself holds one (``-2 23``), so :class:`WiderFace`
    allows them and keeps them as degenerate boxes (``x2 < x1``) that its
    ``drop_invalid`` removes and ``facespot data stats`` reports.
    """
    gt_path = Path(gt_path)
    if not gt_path.is_file():
        raise FacespotError(f"{gt_path}: WIDER FACE ground-truth file not found")
    image_root = Path(image_root) if image_root is not None else gt_path.parent
    with open(gt_path, encoding="utf-8", errors="replace") as f:
        lines = [(i, ln.split()) for i, ln in enumerate(f, 1)]
    # blank lines carry no information; drop them but keep line numbers for messages
    lines = [(i, fl) for i, fl in lines if fl]
    last_line = lines[-1][0] if lines else 0
    records: list[FaceRecord] = []
    pos = 0
    n = len(lines)
    while pos < n:
        lineno, fields = lines[pos]
        if not _is_image_line(fields):
            if records and len(fields) == 10:
                prev = records[-1]
                raise located(
                    gt_path, lineno,
                    f"count mismatch for {prev.image_path.name!r}: the count says {len(prev)} face line(s), "
                    f"but more face lines follow",
                )
            raise located(gt_path, lineno, f"expected an image path line (e.g. '0--Parade/0_Parade_x.jpg'), got {' '.join(fields)!r}")
        rel = fields[0]
        pos += 1
        if pos >= n:
            raise located(gt_path, last_line, f"file ends after image line for {rel!r}: expected a face count line")
        lineno, fields = lines[pos]
        if len(fields) != 1 or not fields[0].isdigit():
            raise located(gt_path, lineno, f"expected the number of faces of {rel!r} (a non-negative integer), got {' '.join(fields)!r}")
        count = int(fields[0])
        pos += 1
        xywh = np.zeros((count, 4), dtype=np.float64)
        attrs = np.zeros((count, len(ATTRIBUTES)), dtype=np.int64)
        n_face_lines = max(count, 1)  # a zero count is followed by one dummy line
        for k in range(n_face_lines):
            if pos >= n:
                raise located(
                    gt_path, last_line,
                    f"file ends inside {rel!r}: the count says {count} face line(s), found {k} (truncated file?)",
                )
            lineno, fields = lines[pos]
            if _is_image_line(fields) and count == 0:
                break  # some copies omit the dummy line after a zero count
            if _is_image_line(fields):
                raise located(
                    gt_path, lineno,
                    f"count mismatch for {rel!r}: the count says {count} face line(s), but only {k} precede the next image line",
                )
            if len(fields) != 10:
                raise located(
                    gt_path, lineno,
                    f"expected 10 fields 'x y w h blur expression illumination invalid occlusion pose', found {len(fields)}",
                )
            try:
                values = [float(v) for v in fields]
            except ValueError:
                raise located(gt_path, lineno, f"expected 10 numbers, got {' '.join(fields)!r}") from None
            if not all(np.isfinite(values)):
                raise located(gt_path, lineno, "box and attribute fields must be finite numbers")
            if not all(v.is_integer() for v in values[4:]):
                raise located(gt_path, lineno, "attribute fields (blur ... pose) must be integers")
            if (values[2] < 0 or values[3] < 0) and not allow_negative:
                raise located(
                    gt_path, lineno,
                    f"negative box size w={_fmt(values[2])} h={_fmt(values[3])} (expected sizes >= 0)",
                )
            if count > 0:
                xywh[k] = values[:4]
                attrs[k] = values[4:]
            pos += 1
        boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        records.append(
            FaceRecord(
                image_path=image_root / rel,
                boxes=boxes,
                attributes={a: attrs[:, j].astype(np.int32) for j, a in enumerate(ATTRIBUTES)},
                name=Path(rel).with_suffix("").as_posix(),
            )
        )
    if not records:
        raise FacespotError(f"{gt_path}: no image entries (an empty annotation file); expected 'event/name.jpg', a count, face lines")
    return records


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{float(v):g}"


def write_wider_gt(records: list[FaceRecord], path: str | Path, extension: str = ".jpg") -> None:
    """Write records in the WIDER FACE ground-truth text format.

    Image lines are ``name + extension`` (or the record's own suffix when it has one).
    Missing attributes are written as 0. Used to export other sets in WIDER form and to
    round-trip test the parser.
    """
    out = []
    for rec in records:
        suffix = rec.image_path.suffix or extension
        out.append(f"{rec.name}{suffix}")
        out.append(str(len(rec)))
        if len(rec) == 0:
            out.append("0 0 0 0 0 0 0 0 0 0 ")
        for i, (x1, y1, x2, y2) in enumerate(rec.boxes.astype(np.float64)):
            attrs = [int(rec.attributes[a][i]) if a in rec.attributes else 0 for a in ATTRIBUTES]
            vals = [_fmt(x1), _fmt(y1), _fmt(x2 - x1), _fmt(y2 - y1)] + [str(a) for a in attrs]
            out.append(" ".join(vals) + " ")
    Path(path).write_text("\n".join(out) + "\n", encoding="utf-8")


def find_wider_layout(root: str | Path, split: str) -> tuple[Path, Path]:
    """Locate ``(gt_file, image_root)`` for a split under ``root``.

    Accepted, unchanged:

    * the official layout: ``root/WIDER_<split>/images/<event>/*.jpg`` and
      ``root/wider_face_split/wider_face_<split>_bbx_gt.txt``;
    * the flat dev layout: ``root/images/<event>/*.jpg`` and the same ``wider_face_split``.
    """
    root = Path(root)
    if split not in SPLITS:
        raise FacespotError(f"WIDER FACE split must be one of {', '.join(SPLITS)}, got {split!r}")
    gt_candidates = [root / "wider_face_split" / _gt_name(split), root / _gt_name(split)]
    gt = next((p for p in gt_candidates if p.is_file()), None)
    if gt is None:
        raise FacespotError(
            f"{root}: no WIDER FACE {split} annotations; expected {root / 'wider_face_split' / _gt_name(split)}"
        )
    img_candidates = [root / f"WIDER_{split}" / "images", root / "images"]
    images = next((p for p in img_candidates if p.is_dir()), None)
    if images is None:
        raise FacespotError(
            f"{root}: no WIDER FACE {split} images; expected {img_candidates[0]} (official layout) or {img_candidates[1]}"
        )
    return gt, images


def available_splits(root: str | Path) -> list[str]:
    """Splits whose ground-truth file exists under ``root``."""
    root = Path(root)
    return [s for s in SPLITS if (root / "wider_face_split" / _gt_name(s)).is_file() or (root / _gt_name(s)).is_file()]


class WiderFace:
    """The records of one WIDER FACE split, read from the real folder layout.

    Parameters
    ----------
    root:
        Folder holding ``wider_face_split/`` and ``WIDER_<split>/images`` (or ``images/``).
    split:
        ``"train"`` or ``"val"``.
    drop_invalid:
        Drop faces flagged ``invalid`` and faces with zero width or height: both are
        unusable as training targets (the evaluator reads the ``.mat`` files instead).
    min_size:
        Drop faces whose width or height is below this many pixels.
    missing:
        ``"error"`` (default) raises listing the first missing image files;
        ``"skip"`` leaves those images out and counts them in :attr:`skipped`;
        ``"keep"`` keeps their records (for ``facespot data stats``, which reports them).
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        drop_invalid: bool = True,
        min_size: float = 0,
        missing: Literal["error", "skip", "keep"] = "error",
    ) -> None:
        if missing not in ("error", "skip", "keep"):
            raise FacespotError(f"missing must be 'error', 'skip' or 'keep', got {missing!r}")
        self.root = Path(root)
        self.split = split
        self.gt_path, self.image_root = find_wider_layout(self.root, split)
        records = read_wider_gt(self.gt_path, self.image_root, allow_negative=True)
        absent = [] if missing == "keep" else [r for r in records if not r.image_path.is_file()]
        if absent and missing == "error":
            shown = ", ".join(str(r.image_path) for r in absent[:5])
            more = f" and {len(absent) - 5} more" if len(absent) > 5 else ""
            raise FacespotError(
                f"{self.gt_path}: {len(absent)} of {len(records)} listed images are missing under "
                f"{self.image_root}: {shown}{more} (use missing='skip' to leave them out)"
            )
        absent_names = {r.name for r in absent}
        self.skipped = len(absent)
        if drop_invalid:  # dropping is right for training, but never silent: the set's own numbers change
            sizes = {r.name: r.boxes[:, 2:] - r.boxes[:, :2] for r in records if r.name not in absent_names}
            bad = [(name, wh) for name, wh in sizes.items() if (wh <= 0).any()]
            if bad:
                name, wh = bad[0]
                w, h = wh[(wh <= 0).any(axis=1)][0]
                n = sum(int((wh <= 0).any(axis=1).sum()) for _, wh in bad)
                warnings.warn(
                    f"{self.gt_path}: dropped {n} face box(es) with zero or negative width or height "
                    f"(first: {name}, w={_fmt(w)} h={_fmt(h)}); drop_invalid=False keeps them",
                    stacklevel=2,
                )
        self.records: list[FaceRecord] = [
            _filter(r, drop_invalid, min_size) for r in records if r.name not in absent_names
        ]

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> FaceRecord:
        return self.records[index]

    def __iter__(self) -> Iterator[FaceRecord]:
        return iter(self.records)

    def __repr__(self) -> str:
        faces = sum(len(r) for r in self.records)
        return f"WiderFace(root={str(self.root)!r}, split={self.split!r}, images={len(self)}, faces={faces})"


def _filter(rec: FaceRecord, drop_invalid: bool, min_size: float) -> FaceRecord:
    wh = rec.boxes[:, 2:] - rec.boxes[:, :2]
    keep = np.ones(len(rec), dtype=bool)
    if drop_invalid:
        keep &= (wh > 0).all(axis=1)
        if "invalid" in rec.attributes:
            keep &= rec.attributes["invalid"] == 0
    if min_size > 0:
        keep &= (wh >= min_size).all(axis=1)
    if keep.all():
        return rec
    return FaceRecord(
        image_path=rec.image_path,
        boxes=rec.boxes[keep],
        landmarks=None if rec.landmarks is None else rec.landmarks[keep],
        attributes={k: v[keep] for k, v in rec.attributes.items()},
        name=rec.name,
        size=rec.size,
    )
