"""FDDB folds: elliptical face regions, turned into axis-aligned boxes.

``FDDB-folds/FDDB-fold-XX-ellipseList.txt`` (XX = 01..10) repeats, per image::

    2002/08/11/big/img_591                      <- image path under originalPics/, no extension
    1                                           <- number of faces N
    123.58 85.55 1.265839 269.69 161.78 1       <- N lines: major_r minor_r angle cx cy 1

``angle`` is in radians, measured from the image x axis to the major axis. Detectors
output boxes, so each ellipse becomes the axis-aligned bounding box of the rotated
ellipse (:func:`ellipse_to_box`); the ellipses themselves stay available through
:func:`read_ellipses` for evaluators that score against the ellipse regions.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

import numpy as np

from facespot.data.records import FaceRecord
from facespot.errors import FacespotError, located

FOLD_PATTERN = re.compile(r"FDDB-fold-(\d+)-ellipseList\.txt$")


def ellipse_to_box(ellipses: np.ndarray) -> np.ndarray:
    """Axis-aligned ``xyxy`` bounding boxes of ``(N, 5)`` ellipses ``(a, b, angle, cx, cy)``.

    For semi-axes ``a`` (along ``angle``) and ``b``, the half extents of the rotated ellipse
    are ``hx = sqrt(a^2 cos^2 t + b^2 sin^2 t)`` and ``hy = sqrt(a^2 sin^2 t + b^2 cos^2 t)``:
    an unrotated ellipse gives a ``2a x 2b`` box, one at 90 degrees ``2b x 2a``. FDDB
    ellipses cover forehead to chin, so these boxes run taller than WIDER boxes.
    """
    e = np.asarray(ellipses, dtype=np.float64).reshape(-1, 5)
    a, b, t, cx, cy = e.T
    c, s = np.cos(t), np.sin(t)
    hx = np.sqrt((a * c) ** 2 + (b * s) ** 2)
    hy = np.sqrt((a * s) ** 2 + (b * c) ** 2)
    return np.stack([cx - hx, cy - hy, cx + hx, cy + hy], axis=1).astype(np.float32)


def _parse_fold(path: Path) -> list[tuple[str, np.ndarray]]:
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = [(i, ln.split()) for i, ln in enumerate(f, 1)]
    lines = [(i, fl) for i, fl in lines if fl]
    last = lines[-1][0] if lines else 0
    out: list[tuple[str, np.ndarray]] = []
    pos, n = 0, len(lines)
    while pos < n:
        lineno, fields = lines[pos]
        if len(fields) != 1 or fields[0].lstrip("-").replace(".", "", 1).isdigit():
            raise located(path, lineno, f"expected an image path line (e.g. '2002/08/11/big/img_591'), got {' '.join(fields)!r}")
        rel = fields[0]
        pos += 1
        if pos >= n:
            raise located(path, last, f"file ends after image line {rel!r}: expected a face count line")
        lineno, fields = lines[pos]
        if len(fields) != 1 or not fields[0].isdigit():
            raise located(path, lineno, f"expected the number of faces of {rel!r} (a non-negative integer), got {' '.join(fields)!r}")
        count = int(fields[0])
        pos += 1
        ell = np.zeros((count, 5), dtype=np.float64)
        for k in range(count):
            if pos >= n:
                raise located(path, last, f"file ends inside {rel!r}: the count says {count} ellipse(s), found {k}")
            lineno, fields = lines[pos]
            if len(fields) == 1:
                raise located(path, lineno, f"count mismatch for {rel!r}: the count says {count} ellipse(s), found {k}")
            if len(fields) != 6:
                raise located(path, lineno, f"expected 6 fields 'major_r minor_r angle cx cy 1', found {len(fields)}")
            try:
                vals = [float(v) for v in fields]
            except ValueError:
                raise located(path, lineno, f"expected 6 numbers, got {' '.join(fields)!r}") from None
            if not all(np.isfinite(vals)):
                raise located(path, lineno, "ellipse fields must be finite numbers")
            if vals[0] < 0 or vals[1] < 0:
                raise located(path, lineno, f"negative ellipse radius {vals[0]:g} {vals[1]:g}")
            ell[k] = vals[:5]
            pos += 1
        out.append((rel, ell))
    return out


def fold_files(fold_dir: str | Path, folds: Iterable[int] | None = None) -> list[Path]:
    """The ``FDDB-fold-XX-ellipseList.txt`` files to read, in fold order."""
    fold_dir = Path(fold_dir)
    if not fold_dir.is_dir():
        raise FacespotError(f"{fold_dir}: FDDB folds folder not found")
    found = {int(m.group(1)): p for p in fold_dir.iterdir() if (m := FOLD_PATTERN.search(p.name))}
    if folds is None:
        if not found:
            raise FacespotError(f"{fold_dir}: no FDDB-fold-XX-ellipseList.txt files found")
        return [found[k] for k in sorted(found)]
    files = []
    for k in folds:
        if int(k) not in found:
            raise FacespotError(f"{fold_dir}: fold {int(k)} not found (expected FDDB-fold-{int(k):02d}-ellipseList.txt)")
        files.append(found[int(k)])
    return files


def read_folds(
    fold_dir: str | Path, image_root: str | Path, folds: Iterable[int] | None = None
) -> list[FaceRecord]:
    """Read FDDB folds into records (boxes = bounding boxes of the ellipses).

    ``image_root`` is the folder holding the ``2002/...`` trees (``originalPics``); image
    paths get a ``.jpg`` suffix. ``folds`` are fold numbers 1..10 (all present when None).
    Names are the fold's image lines (``"2002/08/11/big/img_591"``). An image listed in
    several folds is an error: FDDB folds are disjoint, so it means a corrupt copy.
    """
    image_root = Path(image_root)
    records: list[FaceRecord] = []
    seen: dict[str, Path] = {}
    for path in fold_files(fold_dir, folds):
        for rel, ell in _parse_fold(path):
            if rel in seen:
                raise FacespotError(f"{path}: image {rel!r} is listed again (first in {seen[rel]})")
            seen[rel] = path
            records.append(
                FaceRecord(image_path=image_root / f"{rel}.jpg", boxes=ellipse_to_box(ell), name=rel)
            )
    return records


def read_fold_file(path: str | Path, image_root: str | Path) -> list[FaceRecord]:
    """Read one ellipse-list file (any name) into records, as :func:`read_folds` does."""
    path = Path(path)
    if not path.is_file():
        raise FacespotError(f"{path}: FDDB ellipse list not found")
    return [
        FaceRecord(image_path=Path(image_root) / f"{rel}.jpg", boxes=ellipse_to_box(ell), name=rel)
        for rel, ell in _parse_fold(path)
    ]


def read_ellipses(fold_dir: str | Path, folds: Iterable[int] | None = None) -> dict[str, np.ndarray]:
    """``name -> (N, 5)`` ellipses ``(major_r, minor_r, angle, cx, cy)`` in fold order."""
    out: dict[str, np.ndarray] = {}
    for path in fold_files(fold_dir, folds):
        for rel, ell in _parse_fold(path):
            out[rel] = ell
    return out
