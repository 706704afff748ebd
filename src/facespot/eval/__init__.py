"""Evaluation: the official WIDER FACE protocol, FDDB discrete ROC, PR plots. The prediction
files they read are the data layer's (:mod:`facespot.data.predictions`)."""

from facespot.eval.fddb import FddbRocResult, evaluate_fddb
from facespot.eval.wider import SettingResult, WiderEvalResult, evaluate_wider, voc_ap

__all__ = [
    "FddbRocResult",
    "SettingResult",
    "WiderEvalResult",
    "evaluate_fddb",
    "evaluate_wider",
    "voc_ap",
]
