"""Evaluation: the official WIDER FACE protocol, FDDB discrete ROC, PR plots."""

from facespot.eval.fddb import FddbRocResult, evaluate_fddb
from facespot.eval.predictions import (
    read_fddb_detections,
    read_wider_predictions,
    write_fddb_detections,
    write_wider_predictions,
)
from facespot.eval.wider import SettingResult, WiderEvalResult, evaluate_wider, voc_ap

__all__ = [
    "FddbRocResult",
    "SettingResult",
    "WiderEvalResult",
    "evaluate_fddb",
    "evaluate_wider",
    "read_fddb_detections",
    "read_wider_predictions",
    "voc_ap",
    "write_fddb_detections",
    "write_wider_predictions",
]
