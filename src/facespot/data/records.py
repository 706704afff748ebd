"""The one in-memory form of an annotated image, whatever file format it came from.

Every parser (WIDER, FDDB, Caltech, VOC, YOLO, COCO) returns a list of
:class:`FaceRecord`, so datasets, statistics, training and evaluation never care
where the labels came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class FaceRecord:
    """Faces of one image.

    Attributes
    ----------
    image_path:
        Where the image lies (it is not read until it is needed).
    boxes:
        ``(N, 4)`` float32 ``xyxy`` boxes in pixels (see :mod:`facespot.boxes`).
    landmarks:
        ``(N, K, 2)`` float32 points in pixels, NaN where a point is not annotated,
        or ``None`` when the source has no landmarks at all.
    attributes:
        Per-face integer arrays of length ``N`` (WIDER: ``blur``, ``expression``,
        ``illumination``, ``invalid``, ``occlusion``, ``pose``; VOC: ``difficult`` ...).
    name:
        The image's key inside its data set (WIDER: ``"0--Parade/0_Parade_..."``
        without extension), used to match predictions to ground truth.
    size:
        ``(width, height)`` when the annotation states it, else ``None``.
    ignore_boxes:
        ``(M, 4)`` pixel ``xyxy`` regions training learns neither as face nor as background
        (faces the annotation missed, found by a teacher: :mod:`facespot.data.overlay`), or
        ``None``. They are not faces: evaluation and statistics never see them.
    """

    image_path: Path
    boxes: np.ndarray
    landmarks: np.ndarray | None = None
    attributes: dict[str, np.ndarray] = field(default_factory=dict)
    name: str = ""
    size: tuple[int, int] | None = None
    ignore_boxes: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.image_path = Path(self.image_path)
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        if self.landmarks is not None:
            self.landmarks = np.asarray(self.landmarks, dtype=np.float32)
        if self.ignore_boxes is not None:
            self.ignore_boxes = np.asarray(self.ignore_boxes, dtype=np.float32).reshape(-1, 4)
        if not self.name:
            self.name = self.image_path.stem

    def __len__(self) -> int:
        return len(self.boxes)
