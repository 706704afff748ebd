"""Summary statistics and sanity checks of a data set (``facespot data stats``).

Why: before training on a set, one wants to know how many faces it holds, how big they
are (detectors are tuned to size ranges: the histogram shows whether anchors cover the
set), and whether its files are sound (missing images, empty or inverted boxes, boxes
outside the image, the same image listed twice).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from facespot.data.records import FaceRecord
from facespot.errors import FacespotError
from facespot.images import check_encoded, image_size

SIZE_EDGES = (10, 20, 40, 80, 160, 320)
"""Bucket edges (pixels) for face size = sqrt(w * h)."""

# A box may overhang the image by this much before it counts as "outside": annotation tools
# round to whole pixels and 1-based formats (VOC) often give x2 = width + 1.
OUTSIDE_TOLERANCE = 1.0


@dataclass
class Problem:
    """One thing wrong with the data: ``kind`` groups them, ``detail`` says where."""

    kind: str
    name: str
    detail: str


@dataclass
class DatasetStats:
    images: int
    faces: int
    images_without_faces: int
    size_labels: list[str]
    size_counts: list[int]
    median_size: float | None
    problems: list[Problem] = field(default_factory=list)

    @property
    def faces_per_image(self) -> float:
        return self.faces / self.images if self.images else 0.0

    def problem_counts(self) -> dict[str, int]:
        return dict(Counter(p.kind for p in self.problems))


def size_labels(edges: Iterable[float] = SIZE_EDGES) -> list[str]:
    e = list(edges)
    return [f"<{e[0]}"] + [f"{a}-{b}" for a, b in zip(e[:-1], e[1:])] + [f">{e[-1]}"]


def size_histogram(sizes: np.ndarray, edges: Iterable[float] = SIZE_EDGES) -> list[int]:
    """Counts of sizes per bucket; a size equal to an edge falls in the bucket above it."""
    e = np.asarray(list(edges), dtype=np.float64)
    idx = np.searchsorted(e, np.asarray(sizes, dtype=np.float64), side="right")
    return np.bincount(idx, minlength=len(e) + 1).tolist()


def compute_stats(records: list[FaceRecord], check_images: bool = True) -> DatasetStats:
    """Count faces, bucket their sizes and list problems.

    With ``check_images`` the image files are checked to exist and to be whole (read, not
    decoded: :func:`facespot.images.check_encoded`) and, where the annotation states no size,
    their size is read from the header, so boxes outside the image can be found; without it
    only the annotations are examined.
    """
    problems: list[Problem] = []
    if not records:  # an empty annotation file is a problem, never "none found"
        problems.append(Problem("no images", "-", "the annotations list no image at all (an empty file?)"))
    sizes = []
    for name, n in Counter(r.name for r in records).items():
        if n > 1:
            problems.append(Problem("duplicate name", name, f"listed {n} times"))
    for rec in records:
        wh = rec.boxes[:, 2:] - rec.boxes[:, :2]
        good = (wh > 0).all(axis=1) & np.isfinite(rec.boxes).all(axis=1)
        for i in np.flatnonzero(~good):
            b = rec.boxes[i]
            problems.append(
                Problem("degenerate box", rec.name, f"face {i}: {b[0]:g},{b[1]:g},{b[2]:g},{b[3]:g} (zero or negative size)")
            )
        sizes.append(np.sqrt(wh[good, 0] * wh[good, 1]))
        size = rec.size
        if check_images:
            if not rec.image_path.is_file():
                problems.append(Problem("missing image", rec.name, str(rec.image_path)))
                continue
            try:  # the file read whole but not decoded: empty, corrupt header, a JPEG cut short
                check_encoded(rec.image_path.read_bytes(), rec.image_path)
                if size is None:
                    size = image_size(rec.image_path)
            except OSError as exc:
                problems.append(Problem("unreadable image", rec.name, f"{rec.image_path}: {exc.strerror or exc}"))
                continue
            except FacespotError as exc:
                problems.append(Problem("unreadable image", rec.name, str(exc)))
                continue
        if size is not None and len(rec):
            w, h = size
            t = OUTSIDE_TOLERANCE
            b = rec.boxes
            out = (b[:, 0] < -t) | (b[:, 1] < -t) | (b[:, 2] > w + t) | (b[:, 3] > h + t)
            for i in np.flatnonzero(out):
                problems.append(
                    Problem(
                        "box outside image", rec.name,
                        f"face {i}: {b[i, 0]:g},{b[i, 1]:g},{b[i, 2]:g},{b[i, 3]:g} in a {w}x{h} image",
                    )
                )
    all_sizes = np.concatenate(sizes) if sizes else np.zeros(0)
    return DatasetStats(
        images=len(records),
        faces=int(sum(len(r) for r in records)),
        images_without_faces=sum(1 for r in records if len(r) == 0),
        size_labels=size_labels(),
        size_counts=size_histogram(all_sizes),
        median_size=float(np.median(all_sizes)) if len(all_sizes) else None,
        problems=problems,
    )


def format_stats(stats: DatasetStats, title: str = "", max_problems: int = 10, width: int = 40) -> str:
    """Human-readable report: counts, a text histogram of face sizes, then problems."""
    lines = [title] if title else []
    lines += [
        f"images:            {stats.images}",
        f"faces:             {stats.faces}",
        f"faces per image:   {stats.faces_per_image:.2f}",
        f"images w/o faces:  {stats.images_without_faces}",
    ]
    if stats.median_size is not None:
        lines.append(f"median face size:  {stats.median_size:.1f} px")
    lines.append("face size sqrt(w*h), px:")
    total = max(sum(stats.size_counts), 1)
    peak = max(max(stats.size_counts, default=0), 1)
    for label, count in zip(stats.size_labels, stats.size_counts):
        bar = "#" * int(round(width * count / peak))
        lines.append(f"  {label:>8} {count:>8} {100.0 * count / total:5.1f}% {bar}")
    if not stats.problems:
        lines.append("problems: none found")
    else:
        lines.append(f"problems: {len(stats.problems)}")
        for kind, n in sorted(stats.problem_counts().items()):
            lines.append(f"  {kind}: {n}")
            shown = [p for p in stats.problems if p.kind == kind][:max_problems]
            for p in shown:
                lines.append(f"    {p.name}: {p.detail}")
            if n > len(shown):
                lines.append(f"    ... and {n - len(shown)} more")
    return "\n".join(lines)
