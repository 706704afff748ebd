"""Detection files as the benchmarks expect them: a WIDER FACE folder and an FDDB list file.

WIDER FACE (one file per image, ``<pred_dir>/<event>/<name>.txt``)::

    0_Parade_marchingband_1_20.jpg      <- image name (basename; extension optional)
    2                                   <- number of boxes
    10.5 20 30 40 0.98                  <- x y w h score (pixels, top-left + size)
    ...

FDDB (all images in one file, same block layout, the image name being the FDDB path
``2002/08/11/big/img_591`` without extension).

In memory a detection set is ``{key: (N, 5) float64 [x1, y1, x2, y2, score]}`` (``xyxy``, the
project convention, with ``x2 = x + w``); WIDER keys are ``"event/name"``.

The official MATLAB reader silently skips a malformed file (and so silently scores it as "no
detections"); here every problem is an error naming the file and line, because a silent zero
is the worst possible failure of an evaluator. One choice: a prediction file for an image that
is not in the ground truth (usually a misnamed file or a wrong event folder) is an **error** by
default, so nothing is dropped unnoticed; ``allow_unknown=True`` (CLI ``--allow-unknown``)
turns it into a listed warning and skips the file, for folders that also hold test-set images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Container, Iterable, Mapping

import numpy as np

from facespot.errors import FacespotError, located
from facespot.files import write_atomically

_IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")


def _strip_ext(name: str) -> str:
    for ext in _IMAGE_EXTS:
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return name


def _parse_boxes(path: Path, lines: list[str], first_line: int) -> np.ndarray:
    """``x y w h score`` lines -> ``(N, 5)`` xyxy+score; errors point at ``path:line``."""
    if not lines:
        return np.zeros((0, 5), dtype=np.float64)
    tokens = [ln.split() for ln in lines]
    for i, t in enumerate(tokens):
        if len(t) != 5:
            raise located(path, first_line + i, f"expected 5 numbers 'x y w h score', got {len(t)} field(s): {lines[i].strip()!r}")
    try:  # fast path: one conversion for the whole file
        arr = np.array(tokens, dtype=np.float64)
    except ValueError:
        for i, t in enumerate(tokens):
            for tok in t:
                try:
                    float(tok)
                except ValueError:
                    raise located(path, first_line + i, f"not a number: {tok!r} in {lines[i].strip()!r}") from None
        raise  # pragma: no cover - the loop above always finds the culprit
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise located(path, first_line + i, f"not a finite number in {lines[i].strip()!r}")
    neg = (arr[:, 2] < 0) | (arr[:, 3] < 0)
    if neg.any():
        i = int(np.flatnonzero(neg)[0])
        raise located(path, first_line + i, f"negative width or height in {lines[i].strip()!r} (expected x y w h with w, h >= 0)")
    arr[:, 2] += arr[:, 0]
    arr[:, 3] += arr[:, 1]
    return arr


def _parse_count(path: Path, line_no: int, text: str) -> int:
    t = text.strip()
    try:
        n = int(t)
    except ValueError:
        try:  # some writers print "12.0"
            f = float(t)
        except ValueError:
            f = math.nan
        if not (math.isfinite(f) and f == int(f)):
            raise located(path, line_no, f"expected the number of boxes (an integer), got {t!r}") from None
        n = int(f)
    if n < 0:
        raise located(path, line_no, f"the number of boxes cannot be negative, got {n}")
    return n


def _read_text(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise FacespotError(f"{path}: not a UTF-8 text file") from None
    except OSError as exc:
        raise FacespotError(f"{path}: cannot read ({exc.strerror})") from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():  # trailing blank lines are harmless
        lines.pop()
    return lines


# --------------------------------------------------------------------------- WIDER FACE


def read_prediction_file(path: str | Path) -> tuple[str, np.ndarray]:
    """One WIDER prediction file -> ``(image name from line 1, (N, 5) xyxy+score)``.

    Line 1 must name the same image as the file (its basename without extension), which
    catches files written under the wrong name.
    """
    path = Path(path)
    lines = _read_text(path)
    if not lines:
        raise located(path, None, "empty file; expected the image name, the number of boxes, then 'x y w h score' lines")
    image = lines[0].strip()
    stem = _strip_ext(image.replace("\\", "/").rsplit("/", 1)[-1])
    if not image:
        raise located(path, 1, "expected the image name on line 1, got an empty line")
    if stem != path.stem:
        raise located(path, 1, f"line 1 names image {image!r} but the file is for {path.stem!r}")
    if len(lines) < 2:
        raise located(path, None, "missing line 2 (the number of boxes)")
    n = _parse_count(path, 2, lines[1])
    body = lines[2:]
    if len(body) != n:
        raise located(path, 2, f"says {n} box(es) but the file has {len(body)} box line(s)")
    return image, _parse_boxes(path, body, 3)


@dataclass
class WiderPredictions:
    """A read prediction folder.

    Attributes
    ----------
    boxes:
        ``{"event/name": (N, 5) xyxy+score}``, one entry per prediction file.
    unknown:
        Keys of files skipped because they are not in the ground truth (only with
        ``allow_unknown=True``).
    """

    folder: Path
    boxes: dict[str, np.ndarray] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)


def read_wider_predictions(
    folder: str | Path,
    known: Container[str] | None = None,
    allow_unknown: bool = False,
    only: Container[str] | None = None,
) -> WiderPredictions:
    """Read ``<folder>/<event>/<name>.txt`` files.

    Parameters
    ----------
    known:
        Valid ``"event/name"`` keys (the ground truth). A file outside it is an error, or, with
        ``allow_unknown``, skipped and listed in ``unknown``.
    only:
        If given, read only these keys (an image-list subset); other files are not opened.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FacespotError(f"{folder}: prediction folder not found")
    out = WiderPredictions(folder=folder)
    stray = sorted(p.name for p in folder.glob("*.txt"))
    if stray:
        raise FacespotError(
            f"{folder}: found {stray[0]} directly in the folder; expected the official layout <event>/<name>.txt"
        )
    for event_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        for f in sorted(event_dir.glob("*.txt")):
            key = f"{event_dir.name}/{f.stem}"
            if known is not None and key not in known:
                if allow_unknown:
                    out.unknown.append(key)
                    continue
                raise FacespotError(
                    f"{f}: image {key!r} is not in the ground truth (wrong name or event folder?); "
                    "use --allow-unknown to skip such files with a warning"
                )
            if only is not None and key not in only:
                continue
            out.boxes[key] = read_prediction_file(f)[1]
    if not out.boxes and not out.unknown:
        raise FacespotError(f"{folder}: no prediction files; expected <event>/<name>.txt files")
    return out


def write_wider_predictions(folder: str | Path, predictions: Mapping[str, np.ndarray], decimals: int = 3) -> None:
    """Write ``{"event/name": (N, 5) xyxy+score}`` in the official folder layout."""
    folder = Path(folder)
    for key, det in predictions.items():
        if "/" not in key:
            raise FacespotError(f"prediction key {key!r} must be 'event/name'")
        event, name = key.split("/", 1)
        d = np.asarray(det, dtype=np.float64).reshape(-1, 5)
        path = folder / event / f"{name}.txt"
        text = f"{name}.jpg\n{len(d)}\n" + _format_rows(d, decimals)
        # whole or not at all: a full disk or a stop mid-write leaves no cut-off file to evaluate
        write_atomically(path, lambda tmp, text=text: Path(tmp).write_text(text, encoding="utf-8"))


def _format_rows(d: np.ndarray, decimals: int) -> str:
    xywh = d.copy()
    xywh[:, 2:4] -= xywh[:, 0:2]
    xywh[:, 2:4] = np.maximum(xywh[:, 2:4], 0.0)  # guard against -0.0 / rounding below zero
    fmt = f"%.{decimals}f %.{decimals}f %.{decimals}f %.{decimals}f %.6f"
    return "".join(fmt % tuple(row) + "\n" for row in xywh)


def read_image_list(path: str | Path, keys: Iterable[str]) -> list[str]:
    """An image-list file (one image a line) -> ground-truth keys.

    A line may be ``event/name``, ``event/name.jpg`` or a bare ``name`` (WIDER names are unique);
    blank lines and ``#`` comments are skipped. Unknown or duplicate images are errors.
    """
    path = Path(path)
    if not path.is_file():
        raise FacespotError(f"{path}: image list not found")
    keys = list(keys)
    key_set = set(keys)
    by_name = {k.split("/", 1)[-1]: k for k in keys}
    out: list[str] = []
    seen: set[str] = set()
    for i, raw in enumerate(_read_text(path), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        item = _strip_ext(line.replace("\\", "/").strip("/"))
        parts = item.split("/")
        key = "/".join(parts[-2:]) if len(parts) >= 2 else by_name.get(item, item)
        if key not in key_set:
            raise located(path, i, f"image {line!r} is not in the ground truth")
        if key in seen:
            raise located(path, i, f"image {line!r} is listed twice")
        seen.add(key)
        out.append(key)
    if not out:
        raise located(path, None, "the image list is empty")
    return out


# --------------------------------------------------------------------------- FDDB


def normalize_fddb_name(name: str) -> str:
    """FDDB image key: forward slashes, no leading ``./`` or ``/``, no image extension."""
    n = name.strip().replace("\\", "/")
    while n.startswith("./"):
        n = n[2:]
    return _strip_ext(n.lstrip("/"))


def read_fddb_detections(path: str | Path) -> dict[str, np.ndarray]:
    """An FDDB detection file (blocks of name / count / ``x y w h score`` lines) -> dict.

    Keys go through :func:`normalize_fddb_name`. An image listed twice is an error (merging
    two blocks silently would double its detections).
    """
    path = Path(path)
    if not path.is_file():
        raise FacespotError(f"{path}: detection file not found")
    lines = _read_text(path)
    if not lines:
        raise located(path, None, "empty detection file; expected blocks of: image name, count, 'x y w h score' lines")
    out: dict[str, np.ndarray] = {}
    first_line: dict[str, int] = {}
    i = 0
    while i < len(lines):
        if not lines[i].strip():  # tolerate blank lines between blocks
            i += 1
            continue
        name_line = i + 1
        name = normalize_fddb_name(lines[i])
        if len(lines[i].split()) != 1:
            raise located(path, name_line, f"expected an image name, got {lines[i].strip()!r}")
        if i + 1 >= len(lines):
            raise located(path, name_line, f"image {name!r} has no count line")
        n = _parse_count(path, i + 2, lines[i + 1])
        body = lines[i + 2 : i + 2 + n]
        if len(body) < n:
            raise located(path, i + 2, f"says {n} box(es) for {name!r} but only {len(body)} line(s) follow")
        if name in out:
            raise located(path, name_line, f"image {name!r} appears twice (first at line {first_line[name]})")
        out[name] = _parse_boxes(path, body, i + 3)
        first_line[name] = name_line
        i += 2 + n
    return out


def write_fddb_detections(path: str | Path, detections: Mapping[str, np.ndarray], decimals: int = 3) -> None:
    """Write ``{name: (N, 5) xyxy+score}`` as one FDDB detection file."""
    parts = []
    for name, det in detections.items():
        d = np.asarray(det, dtype=np.float64).reshape(-1, 5)
        parts.append(f"{name}\n{len(d)}\n" + _format_rows(d, decimals))
    Path(path).write_text("".join(parts), encoding="utf-8")
