"""Training and validation records from a recipe's data sources.

Kept apart from the loop so that everything that needs "the images of a recipe" (the loop,
the training pack, the GPU-resident set) reads them the same way, and none of them has
to import the loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from facespot.data.records import FaceRecord
from facespot.errors import FacespotError
from facespot.train.config import SourceConfig


def recipe_relative(path: str, where: str) -> Path:
    """A file that comes with a recipe (split list, label overlay): relative paths are read
    from the recipe's folder."""
    p = Path(path)
    if not p.is_absolute() and where and Path(where).exists():
        p = Path(where).parent / p
    return p


def read_name_list(path: str | list[str], where: str) -> set[str]:
    """Image names of a split file (one per line, ``#`` starts a comment), found next to
    the recipe when the path is relative; a list of files gives the union of their names."""
    if isinstance(path, list):
        return set().union(*(read_name_list(p, where) for p in path)) if path else set()
    p = recipe_relative(path, where)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise FacespotError(f"{where}: cannot read image list {p}: {exc.strerror or exc}") from None
    return {ln.split("#", 1)[0].strip() for ln in lines} - {""}


def load_source(s: SourceConfig, where: str) -> list[FaceRecord]:
    """Records of one source, filtered by its ``include`` / ``exclude`` name lists, with its
    label overlay (``labels``) laid over them."""
    from facespot.data.formats import open_records

    got = open_records(s.path, s.format, **s.options) if s.options else open_records(s.path, s.format)
    if s.include:
        keep = read_name_list(s.include, where)
        got = [r for r in got if r.name in keep]
        if not got:
            raise FacespotError(f"{where}: none of the images listed in {s.include} is in {s.path}")
    if s.exclude:
        drop = read_name_list(s.exclude, where)
        got = [r for r in got if r.name not in drop]
    if s.labels:
        from facespot.data.overlay import apply_overlay

        got = apply_overlay(got, recipe_relative(s.labels, where))
    if s.keypoints is not None:
        got = [remap_keypoints(r, s.keypoints, where) for r in got]
    return got


def remap_keypoints(rec: FaceRecord, slots: Sequence[int | None], where: str = "") -> FaceRecord:
    """``rec`` with its landmarks in the model's slots: slot j takes point ``slots[j]`` (None: NaN).
    A record without landmarks keeps none."""
    if rec.landmarks is None:
        return rec
    pts = rec.landmarks.reshape(len(rec), -1, 2)
    bad = [v for v in slots if v is not None and not 0 <= v < pts.shape[1]]
    if bad:
        raise FacespotError(f"{where}: keypoints {list(slots)} names point {bad[0]}, but {rec.name} has {pts.shape[1]} points")
    out = np.full((len(rec), len(slots), 2), np.nan, np.float32)
    for j, v in enumerate(slots):
        if v is not None:
            out[:, j] = pts[:, v]
    rec.landmarks = out
    return rec


def load_sources(sources: Sequence[SourceConfig], where: str) -> list[FaceRecord]:
    """Records of every source, in order."""
    return load_weighted_sources(sources, where)[0]


def load_weighted_sources(sources: Sequence[SourceConfig], where: str) -> tuple[list[FaceRecord], list[float]]:
    """Records of every source and, per record, its source's ``repeat`` factor (how many
    times an epoch shows it; see :class:`facespot.train.sampling.EpochSampler`)."""
    records: list[FaceRecord] = []
    repeats: list[float] = []
    for s in sources:
        got = load_source(s, where)
        records.extend(got)
        repeats.extend([float(s.repeat)] * len(got))
    return records, repeats


def split_holdout(records: list[FaceRecord], fraction: float, seed: int) -> tuple[list[FaceRecord], list[FaceRecord]]:
    """Deterministic train/val split by a seeded permutation (same seed, same split)."""
    if fraction <= 0 or len(records) < 2:
        return records, []
    idx = np.random.default_rng(seed).permutation(len(records))
    n_val = max(1, int(round(len(records) * fraction)))
    val = set(idx[:n_val].tolist())
    return [r for i, r in enumerate(records) if i not in val], [r for i, r in enumerate(records) if i in val]
