"""Validation during training: run the model on val records, score AP.

With ``data.wider_gt_dir`` set (WIDER val), the official protocol (:mod:`facespot.eval.wider`)
scores the val subset and its "hard" AP (the setting that also counts small faces) picks
the best model; every other source is scored with VOC-style AP@0.5
(:mod:`facespot.eval.simple_ap`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Sequence

import cv2
import numpy as np
import torch

from facespot import boxes as B
from facespot.data.records import FaceRecord
from facespot.errors import FacespotError
from facespot.eval.simple_ap import evaluate_ap
from facespot.models.base import decode_outputs


@dataclass
class Predictions:
    by_name: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)


@torch.no_grad()
def predict_records(
    model: torch.nn.Module,
    records: Sequence[FaceRecord],
    size: tuple[int, int],
    device: torch.device,
    batch_size: int = 8,
    score_threshold: float = 0.02,
    nms_iou: float = 0.4,
    top_k: int = 2000,
    max_det: int = 750,
    max_side: int | None = None,
) -> Predictions:
    """Detections in original-image pixels for each record (images that fail to read are
    listed in ``failed`` and skipped). Inputs are resized (not letterboxed) to ``size``, or,
    with ``max_side`` and a fully convolutional model, run one by one at their own size
    (long side capped at ``max_side``), as the runtime runs them."""
    from facespot.images import shrink_to

    was_training = model.training
    model.eval()
    h, w = size
    anchors = torch.from_numpy(np.asarray(model.anchors(h, w), np.float32)).to(device)
    out = Predictions()
    if max_side is not None and getattr(model, "fixed_input_size", None) is None:
        for rec in records:
            img = _read_or_note(rec, out)
            if img is None:
                continue
            ih, iw = img.shape[:2]
            img = shrink_to(img, max_side)[0]
            nh, nw = img.shape[:2]
            a = torch.from_numpy(np.asarray(model.anchors(nh, nw), np.float32)).to(device)
            outputs = model(model.preprocess(torch.from_numpy(img)[None].to(device)))
            boxes, scores, _ = decode_outputs([o.float() if o is not None else None for o in outputs], a, model.coding)
            out.by_name[rec.name] = _keep(boxes[0], scores[0], (iw, ih), score_threshold, top_k, nms_iou, max_det)
        if was_training:
            model.train()
        return out
    for start in range(0, len(records), batch_size):
        chunk = records[start : start + batch_size]
        imgs, sizes, names = [], [], []
        for rec in chunk:
            img = _read_or_note(rec, out)
            if img is None:
                continue
            sizes.append((img.shape[1], img.shape[0]))
            imgs.append(cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR))
            names.append(rec.name)
        if not imgs:
            continue
        x = model.preprocess(torch.from_numpy(np.stack(imgs)).to(device))
        outputs = model(x)
        boxes, scores, _ = decode_outputs([o.float() if o is not None else None for o in outputs], anchors, model.coding)
        for k, name in enumerate(names):
            out.by_name[name] = _keep(boxes[k], scores[k], sizes[k], score_threshold, top_k, nms_iou, max_det)
    if was_training:
        model.train()
    return out


def _read_or_note(rec: FaceRecord, out: Predictions):
    """The record's image, or None with its name noted as failed (one bad file never stops validation)."""
    from facespot.data.negatives import read_record_image  # synthetic frames are rendered, not read

    try:
        return read_record_image(rec)
    except FacespotError:
        out.failed.append(rec.name)
        return None


def _keep(boxes, scores, size, score_threshold, top_k, nms_iou, max_det) -> tuple[np.ndarray, np.ndarray]:
    """One image's decoded boxes -> thresholded, top-k, NMS'd detections in its pixels."""
    keep = torch.nonzero(scores >= score_threshold).flatten()
    if keep.numel() > top_k:
        keep = keep[torch.topk(scores[keep], top_k).indices]
    iw, ih = size
    bk = boxes[keep].cpu().numpy() * np.array([iw, ih, iw, ih], np.float32)
    sk = scores[keep].cpu().numpy()
    kept = B.nms(bk, sk, nms_iou, max_det)
    return bk[kept], sk[kept]


def validation_ap(
    model: torch.nn.Module,
    records: Sequence[FaceRecord],
    size: tuple[int, int],
    device: torch.device,
    wider_gt_dir: str | None = None,
    batch_size: int = 8,
    max_side: int | None = None,
) -> tuple[float, dict[str, float], int]:
    """``(ap used for model selection, all AP numbers, images that failed to read)``.

    With ``wider_gt_dir`` (the folder of ``wider_face_val.mat`` and the easy/medium/hard
    lists) the official protocol scores the subset and its *hard* AP selects the model;
    otherwise AP@0.5.
    """
    preds = predict_records(model, records, size, device, batch_size, max_side=max_side)
    if preds.failed:
        warnings.warn(f"validation: skipped {len(preds.failed)} unreadable image(s), first: {preds.failed[0]}")
    failed = set(preds.failed)
    ok = [r for r in records if r.name not in failed]
    res = evaluate_ap(ok, preds.by_name, 0.5)
    numbers = {"val/ap50": res.ap}
    if wider_gt_dir:
        wider_numbers = wider_ap(wider_gt_dir, [r.name for r in ok], preds)
        numbers.update(wider_numbers)
        return wider_numbers["val/wider_hard"], numbers, len(preds.failed)
    return res.ap, numbers, len(preds.failed)


@lru_cache(maxsize=2)
def _wider_gt(gt_dir: str):
    from facespot.data.wider_mat import read_wider_mat

    return read_wider_mat(gt_dir)


def check_validation(records: Sequence[FaceRecord], wider_gt_dir: str | None, where: str) -> None:
    """What validation will need, checked before the first training step: a bad
    ``data.wider_gt_dir``, or validation images its ground truth does not know (a VOC or
    Caltech val set scored by the WIDER protocol), would otherwise fail only at the first
    validation, after an epoch of training and before any weights were written."""
    if not wider_gt_dir or not records:
        return
    known = {g.key for g in _wider_gt(str(wider_gt_dir))}  # a missing or broken folder: one line naming it
    unknown = [r.name for r in records if r.name not in known]
    if unknown:
        raise FacespotError(
            f"{where}: data.wider_gt_dir {wider_gt_dir}: {len(unknown)} of {len(records)} validation image(s) are not in "
            f"its WIDER val ground truth (first: {unknown[0]!r}); the official protocol scores WIDER val images only: "
            "validate on those, or leave data.wider_gt_dir out to score AP@0.5"
        )


def wider_ap(gt_dir: str, names: Sequence[str], preds: Predictions) -> dict[str, float]:
    """Official WIDER easy/medium/hard AP on the val images ``names``."""
    from facespot.eval.wider import evaluate_wider

    gt = _wider_gt(str(gt_dir))
    known = {g.key for g in gt}
    missing = [n for n in names if n not in known]
    if missing:
        raise FacespotError(f"{gt_dir}: validation image {missing[0]!r} is not in the WIDER val ground truth")
    dets = {}
    for n in names:
        b, s = preds.by_name.get(n, (np.zeros((0, 4), np.float32), np.zeros(0, np.float32)))
        dets[n] = np.concatenate([b, s[:, None]], axis=1)
    result = evaluate_wider(gt, dets, images=list(names))
    return {f"val/wider_{k}": float(v) for k, v in result.ap.items()}
