"""Data sets: parsers for common face annotation formats, datasets and augmentation, and the
benchmarks' prediction files (WIDER FACE folders, FDDB lists)."""

from facespot.data.records import FaceRecord
from facespot.data.caltech import read_caltech
from facespot.data.coco import read_coco
from facespot.data.fddb import read_folds
from facespot.data.formats import FORMATS, detect_format, open_records
from facespot.data.predictions import (
    read_fddb_detections,
    read_wider_predictions,
    write_fddb_detections,
    write_wider_predictions,
)
from facespot.data.stats import compute_stats, format_stats
from facespot.data.voc import read_voc
from facespot.data.wider import WiderFace, read_wider_gt, write_wider_gt
from facespot.data.yolo import read_yolo

__all__ = [
    "FORMATS",
    "FaceRecord",
    "WiderFace",
    "compute_stats",
    "detect_format",
    "format_stats",
    "open_records",
    "read_caltech",
    "read_coco",
    "read_fddb_detections",
    "read_folds",
    "read_voc",
    "read_wider_gt",
    "read_wider_predictions",
    "read_yolo",
    "write_fddb_detections",
    "write_wider_gt",
    "write_wider_predictions",
]
# FaceDataset, ConcatFaceDataset and split_records live in facespot.data.dataset; they are
# not imported here because they pull in torch, which commands such as `data stats` avoid.
