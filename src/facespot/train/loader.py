"""Training batches: decode, augment, normalise coordinates, collate.

Images are decoded and augmented in loader workers and shipped as ``uint8`` tensors (a
quarter of float32's bytes); normalisation happens on the training device with the
model's own :meth:`~facespot.models.base.FaceModel.preprocess`.

An image that fails to decode never ends the epoch: the dataset returns a marker, the
collate function drops it and reports its name, and the loop counts and warns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from facespot.data.augment import Sample
from facespot.data.records import FaceRecord
from facespot.errors import FacespotError


@dataclass
class Failed:
    """Stand-in for an example whose image could not be read."""

    name: str
    reason: str


@dataclass
class Batch:
    images: torch.Tensor  # (B, H, W, 3) uint8 RGB
    boxes: list[torch.Tensor]  # per image (N, 4) normalised xyxy
    points: list[torch.Tensor | None]  # per image (N, K, 2) normalised, NaN = missing
    names: list[str]
    failed: list[Failed] = field(default_factory=list)
    ignore_boxes: list[torch.Tensor | None] = field(default_factory=list)  # per image (M, 4) normalised xyxy or None

    def __len__(self) -> int:
        return len(self.names)


def _read(record: FaceRecord) -> np.ndarray:
    from facespot.data.negatives import read_record_image

    return read_record_image(record)


class TrainDataset(torch.utils.data.Dataset):
    """Records -> augmented samples with normalised coordinates.

    Items are asked for as ``(epoch, index, copy)`` (from
    :class:`facespot.train.sampling.EpochSampler`) or as a bare index (epoch from
    :meth:`set_epoch`, copy 0). The random generator of an item is seeded from
    ``(seed, epoch, index, copy)``, so a run is reproducible whatever the number of workers
    or the order they run in, and the copies of a repeated image differ.
    ``image_source`` replaces file decoding (a training pack's images plug in here).
    """

    def __init__(
        self,
        records: Sequence[FaceRecord],
        transform: Callable[[Sample, np.random.Generator], Sample],
        seed: int = 0,
        min_face: float = 0.0,
        image_source: Callable[[int], np.ndarray] | None = None,
    ) -> None:
        self.records = list(records)
        self.transform = transform
        self.seed = int(seed)
        self.epoch = 0
        self.min_face = float(min_face)
        self.image_source = image_source

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, item: int | tuple[int, int, int]) -> dict[str, Any] | Failed:
        epoch, i, copy = item if isinstance(item, tuple) else (self.epoch, int(item), 0)
        rec = self.records[i]
        try:
            image = self.image_source(i) if self.image_source is not None else _read(rec)
        except FacespotError as exc:
            return Failed(rec.name, str(exc))
        boxes = rec.boxes.astype(np.float32)
        points = None if rec.landmarks is None else rec.landmarks.astype(np.float32).reshape(len(boxes), -1, 2)
        if self.min_face > 0 and len(boxes):
            wh = boxes[:, 2:] - boxes[:, :2]
            keep = (wh >= self.min_face).all(1)
            boxes = boxes[keep]
            points = None if points is None else points[keep]
        ignore = None
        if rec.ignore_boxes is not None and len(rec.ignore_boxes):  # ride along with the faces, flagged
            ignore = np.r_[np.zeros(len(boxes), bool), np.ones(len(rec.ignore_boxes), bool)]
            boxes = np.concatenate([boxes, rec.ignore_boxes.astype(np.float32)])
            if points is not None:
                points = np.concatenate([points, np.full((len(rec.ignore_boxes),) + points.shape[1:], np.nan, np.float32)])
        rng = np.random.default_rng([self.seed, epoch, i] + ([copy] if copy else []))
        s = self.transform(Sample(image, boxes, points, rec.name, ignore), rng)
        h, w = s.image.shape[:2]
        scale = np.array([w, h, w, h], np.float32)
        face = np.ones(len(s.boxes), bool) if s.ignore is None else ~s.ignore
        out_boxes = torch.from_numpy((s.boxes[face] / scale).astype(np.float32)).reshape(-1, 4)
        out_points = None
        if s.points is not None:
            out_points = torch.from_numpy((s.points[face] / scale[:2]).astype(np.float32))
        out_ignore = None if s.ignore is None else torch.from_numpy((s.boxes[~face] / scale).astype(np.float32)).reshape(-1, 4)
        return {"image": torch.from_numpy(np.ascontiguousarray(s.image)), "boxes": out_boxes, "points": out_points,
                "name": rec.name, "ignore": out_ignore}  # fmt: skip


def collate(items: list[dict[str, Any] | Failed]) -> Batch:
    """Stack images (all the same size after the pipeline's resize); keep faces as lists."""
    ok = [x for x in items if not isinstance(x, Failed)]
    failed = [x for x in items if isinstance(x, Failed)]
    if ok:
        images = torch.stack([x["image"] for x in ok])
    else:
        images = torch.zeros(0, 1, 1, 3, dtype=torch.uint8)
    return Batch(images, [x["boxes"] for x in ok], [x["points"] for x in ok], [x["name"] for x in ok], failed,
                 [x.get("ignore") for x in ok])  # fmt: skip


def worker_init(worker_id: int) -> None:
    """Keep each worker to one thread: OpenCV and torch would otherwise each spawn one
    per core in every worker and fight over the CPU."""
    import cv2

    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def make_loader(
    dataset: TrainDataset,
    batch_size: int,
    workers: int,
    seed: int = 0,
    sampler: torch.utils.data.Sampler | None = None,
    drop_last: bool = True,
    pin_memory: bool = False,
) -> torch.utils.data.DataLoader:
    """Batches of ``dataset`` in ``sampler``'s order (shuffled with ``seed`` when none).

    Workers start once and serve every epoch (``persistent_workers``): the sampler's items
    carry their epoch, so nothing inside a worker has to change between epochs.
    """
    g = torch.Generator()
    g.manual_seed(seed)
    n = len(sampler) if sampler is not None else len(dataset)
    # Workers start from a fresh "forkserver" process, not a fork of this one: a fork taken
    # while OpenCV's or OpenMP's thread pools are busy can inherit a held lock and hang forever.
    context = "forkserver" if workers else None
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate,
        drop_last=drop_last and n >= batch_size,
        worker_init_fn=worker_init if workers else None,
        generator=g,
        pin_memory=pin_memory,
        multiprocessing_context=context,
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers else None,
    )
