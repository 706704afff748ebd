"""Torch datasets over :class:`FaceRecord` lists, and a reproducible hold-out split.

Items are plain dicts of NumPy arrays so augmentation and target assignment can stay
framework-free; the trainer's collate function turns them into tensors.
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable, Iterable, Sequence

from torch.utils.data import ConcatDataset, Dataset

from facespot.data.records import FaceRecord
from facespot.errors import FacespotError
from facespot.images import DEFAULT_MAX_PIXELS, read_image

Sample = dict[str, Any]


class FaceDataset(Dataset):
    """Images and their faces, decoded lazily.

    Each item is ``{"image": HxWx3 uint8 RGB, "boxes": (N, 4) float32 xyxy pixels,
    "landmarks": (N, K, 2) float32 or None, "name": str}``, passed through ``transform``
    when given. An image that cannot be read raises :class:`FacespotError` naming the
    file; the trainer decides whether to skip it.
    """

    def __init__(
        self,
        records: Iterable[FaceRecord],
        transform: Callable[[Sample], Sample] | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        self.records = list(records)
        self.transform = transform
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> Sample:
        rec = self.records[index]
        image = read_image(rec.image_path, max_pixels=self.max_pixels)
        sample: Sample = {
            "image": image,
            "boxes": rec.boxes.copy(),
            "landmarks": None if rec.landmarks is None else rec.landmarks.copy(),
            "name": rec.name,
        }
        return self.transform(sample) if self.transform is not None else sample


class ConcatFaceDataset(ConcatDataset):
    """Several face datasets as one (e.g. WIDER + Caltech + VOC for training).

    ``records`` lists every source's records in order, so statistics and splits can be
    taken over the union.
    """

    def __init__(self, datasets: Sequence[FaceDataset]) -> None:
        if not datasets:
            raise FacespotError("ConcatFaceDataset needs at least one dataset")
        super().__init__(list(datasets))

    @property
    def records(self) -> list[FaceRecord]:
        return [r for d in self.datasets for r in d.records]


def _rank(seed: int, name: str) -> bytes:
    return hashlib.sha1(f"{seed}:{name}".encode("utf-8")).digest()


def split_records(
    records: Iterable[FaceRecord], val_fraction: float, seed: int = 0
) -> tuple[list[str], list[str]]:
    """Split record names into ``(train_names, val_names)``.

    The split depends only on the names and ``seed`` (each name is ranked by a hash of
    ``seed:name``), not on the input order, so it is the same on every machine and run;
    adding images to a set moves few existing names across the split. ``val_fraction``
    of the names (rounded, at least one when the fraction is above 0 and there are two or
    more names) go to validation.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise FacespotError(f"val_fraction must be in [0, 1), got {val_fraction}")
    names = list(dict.fromkeys(r.name for r in records))
    n_val = int(round(val_fraction * len(names)))
    if val_fraction > 0 and n_val == 0 and len(names) >= 2:
        n_val = 1
    ranked = sorted(names, key=lambda n: _rank(seed, n))
    val = set(ranked[:n_val])
    return [n for n in names if n not in val], [n for n in names if n in val]


def select(records: Iterable[FaceRecord], names: Iterable[str]) -> list[FaceRecord]:
    """The records whose names are in ``names``, in their original order."""
    wanted = set(names)
    return [r for r in records if r.name in wanted]

