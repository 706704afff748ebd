"""The official WIDER FACE evaluation ground truth: ``wider_face_val.mat`` + easy/medium/hard lists.

The official tool does not read ``wider_face_val_bbx_gt.txt``; it reads four MATLAB files:

* ``wider_face_val.mat``: ``event_list`` (61 event folder names), ``file_list`` (per event, the
  image names without extension) and ``face_bbx_list`` (per event, per image, an ``(N, 4)``
  ``x y w h`` array of *all* annotated faces).
* ``wider_{easy,medium,hard}_val.mat``: ``gt_list`` with the same nesting, giving per image the
  **1-based** indices of the faces that count in that setting. Every other face is *ignored*: a
  detection on it is neither a true nor a false positive.

These files are the reference, so they are read as they are: the real val set holds a few boxes
with zero or negative width and four images whose only "face" is ``0 0 0 0`` with no face counted;
they are kept, because the official tool keeps them (they change which detections are ignored).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from facespot.errors import FacespotError

SETTINGS = ("easy", "medium", "hard")
GT_FILE = "wider_face_val.mat"
SETTING_FILE = "wider_{}_val.mat"


@dataclass
class WiderGTImage:
    """Ground truth of one val image as the official evaluation sees it.

    Attributes
    ----------
    event, name:
        Event folder (``"0--Parade"``) and image name without extension.
    boxes:
        ``(N, 4)`` float64 ``xyxy`` boxes, ``x2 = x + w`` (the official tool's own conversion;
        its IoU then adds one pixel, see :func:`facespot.eval.wider.evaluate_wider`).
    keep:
        Per setting, the 0-based indices (into ``boxes``) of the faces that count.
    """

    event: str
    name: str
    boxes: np.ndarray = field(repr=False)
    keep: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def key(self) -> str:
        """``"event/name"``: the prediction file path without ``.txt``."""
        return f"{self.event}/{self.name}"

    def counted(self, setting: str) -> np.ndarray:
        """Boolean mask of the faces that count in ``setting`` (the rest are ignored)."""
        mask = np.zeros(len(self.boxes), dtype=bool)
        mask[self.keep[setting]] = True
        return mask


# --------------------------------------------------------------------------- reading


def _load(path: Path, required: Sequence[str]) -> dict:
    from scipy.io import loadmat

    if not path.is_file():
        raise FacespotError(f"{path}: file not found (the WIDER FACE eval ground truth folder needs it)")
    try:
        mat = loadmat(str(path))
    except Exception as exc:  # scipy raises several types for corrupt / non-MAT files
        raise FacespotError(f"{path}: not a readable MATLAB .mat file ({exc})") from None
    missing = [k for k in required if k not in mat]
    if missing:
        present = sorted(k for k in mat if not k.startswith("__"))
        raise FacespotError(f"{path}: missing variable(s) {', '.join(missing)}; it has {', '.join(present) or 'none'}")
    return mat


def _cells(path: Path, var: str, value: object, n: int | None, where: str = "") -> list:
    """A MATLAB cell column (``(n, 1)`` object array) as a list, with a clear error otherwise."""
    arr = value
    if not isinstance(arr, np.ndarray) or arr.dtype != object or arr.ndim != 2 or arr.shape[1] != 1:
        shape = getattr(arr, "shape", type(arr).__name__)
        raise FacespotError(f"{path}: {var}{where} should be an (n, 1) cell array, got {shape}")
    if n is not None and arr.shape[0] != n:
        raise FacespotError(f"{path}: {var}{where} has {arr.shape[0]} entries, expected {n}")
    return [arr[i, 0] for i in range(arr.shape[0])]


def _string(path: Path, var: str, value: object, where: str) -> str:
    if isinstance(value, np.ndarray) and value.dtype.kind == "U" and value.size == 1:
        return str(value.reshape(-1)[0])
    raise FacespotError(f"{path}: {var}{where} should be a string, got {getattr(value, 'shape', value)!r}")


def _numeric(path: Path, var: str, value: object, where: str) -> np.ndarray:
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "iuf":
        raise FacespotError(f"{path}: {var}{where} should be a numeric array, got {type(value).__name__}")
    return value


def read_wider_mat(gt_dir: str | Path, settings: Iterable[str] = SETTINGS) -> list[WiderGTImage]:
    """Read the official val ground truth (``gt_dir`` holds the four ``.mat`` files).

    Returns one :class:`WiderGTImage` per image, in the files' event/image order. Every
    structural problem (missing file or variable, wrong nesting, an index outside the image's
    faces, setting files that disagree with ``wider_face_val.mat``) raises a
    :class:`FacespotError` naming the file and the event/image.
    """
    gt_dir = Path(gt_dir)
    settings = tuple(settings)
    for s in settings:
        if s not in SETTINGS:
            raise FacespotError(f"unknown WIDER setting {s!r}; expected one of {', '.join(SETTINGS)}")
    path = gt_dir / GT_FILE
    mat = _load(path, ("event_list", "file_list", "face_bbx_list"))
    events = [_string(path, "event_list", v, f"{{{i + 1}}}") for i, v in enumerate(_cells(path, "event_list", mat["event_list"], None))]
    n_events = len(events)
    files = _cells(path, "file_list", mat["file_list"], n_events)
    bbxs = _cells(path, "face_bbx_list", mat["face_bbx_list"], n_events)

    images: list[WiderGTImage] = []
    per_event: list[list[WiderGTImage]] = []
    for e, event in enumerate(events):
        where = f"{{{e + 1}}} ({event})"
        names = [_string(path, "file_list", v, f"{where}{{{j + 1}}}") for j, v in enumerate(_cells(path, "file_list", files[e], None, where))]
        boxes = _cells(path, "face_bbx_list", bbxs[e], len(names), where)
        event_images = []
        for j, (name, b) in enumerate(zip(names, boxes)):
            b = _numeric(path, "face_bbx_list", b, f"{where}{{{j + 1}}} ({name})")
            if b.size == 0:
                b = b.reshape(0, 4)
            if b.ndim != 2 or b.shape[1] != 4:
                raise FacespotError(f"{path}: face_bbx_list{where} image {name}: boxes should be (N, 4) x y w h, got {b.shape}")
            xywh = b.astype(np.float64)
            xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
            event_images.append(WiderGTImage(event=event, name=name, boxes=xyxy))
        per_event.append(event_images)
        images.extend(event_images)

    for s in settings:
        spath = gt_dir / SETTING_FILE.format(s)
        smat = _load(spath, ("gt_list",))
        gt_lists = _cells(spath, "gt_list", smat["gt_list"], n_events)
        if "event_list" in smat:  # the official files carry it: check they describe the same set
            s_events = [_string(spath, "event_list", v, "") for v in _cells(spath, "event_list", smat["event_list"], n_events)]
            if s_events != events:
                bad = next(i for i, (a, b) in enumerate(zip(s_events, events)) if a != b)
                raise FacespotError(f"{spath}: event {bad + 1} is {s_events[bad]!r} but {path.name} has {events[bad]!r}")
        for e, event_images in enumerate(per_event):
            where = f"{{{e + 1}}} ({events[e]})"
            keeps = _cells(spath, "gt_list", gt_lists[e], len(event_images), where)
            for j, (img, k) in enumerate(zip(event_images, keeps)):
                k = _numeric(spath, "gt_list", k, f"{where}{{{j + 1}}} ({img.name})")
                idx = k.reshape(-1).astype(np.int64)
                if idx.size and (idx.min() < 1 or idx.max() > len(img.boxes) or not np.all(idx == k.reshape(-1))):
                    raise FacespotError(
                        f"{spath}: gt_list{where} image {img.name}: indices must be integers in 1..{len(img.boxes)} "
                        f"(1-based face numbers), got {k.reshape(-1).tolist()}"
                    )
                img.keep[s] = np.unique(idx - 1)
    return images


# --------------------------------------------------------------------------- writing


def write_wider_mat(gt_dir: str | Path, images: Sequence[WiderGTImage], settings: Iterable[str] = SETTINGS) -> None:
    """Write ground truth in the official layout (for fixtures, subsets and benchmarks).

    Images are grouped by event in first-seen order, like the official files.
    """
    from scipy.io import savemat

    gt_dir = Path(gt_dir)
    gt_dir.mkdir(parents=True, exist_ok=True)
    events: dict[str, list[WiderGTImage]] = {}
    for img in images:
        events.setdefault(img.event, []).append(img)

    def column(items: list) -> np.ndarray:
        out = np.empty((len(items), 1), dtype=object)
        for i, item in enumerate(items):
            out[i, 0] = item
        return out

    event_list = column([np.array([e]) for e in events])
    file_list = column([column([np.array([im.name]) for im in ims]) for ims in events.values()])

    def xywh(im: WiderGTImage) -> np.ndarray:
        b = np.asarray(im.boxes, dtype=np.float64).reshape(-1, 4)
        out = np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1)
        return out.astype(np.int32) if np.all(out == np.round(out)) else out

    bbx = column([column([xywh(im) for im in ims]) for ims in events.values()])
    savemat(str(gt_dir / GT_FILE), {"event_list": event_list, "file_list": file_list, "face_bbx_list": bbx})
    for s in settings:
        gt_list = column(
            [column([(np.asarray(im.keep.get(s, []), dtype=np.int64) + 1).astype(np.uint16).reshape(-1, 1) for im in ims]) for ims in events.values()]
        )
        savemat(str(gt_dir / SETTING_FILE.format(s)), {"event_list": event_list, "file_list": file_list, "gt_list": gt_list})
