"""Box math shared by every model, the trainer, the runtime and the evaluator.

Conventions, everywhere in facespot:

* ``xyxy`` boxes are ``(x1, y1, x2, y2)`` in continuous coordinates: a box from pixel
  column 10 that is 5 pixels wide is ``x1=10, x2=15`` (WIDER's ``x y w h`` maps to
  ``x, y, x+w, y+h``).
* Anchors (priors) are ``(cx, cy, w, h)``, normalised to the network input (0..1).
* SSD encoding uses *variances* ``(v_center, v_size)``: ``t_xy = (c - a_c) / (v_c * a_wh)``,
  ``t_wh = log(wh / a_wh) / v_s``. Tiny Faces uses the same form with variances ``(1, 1)``.

Every function here takes either NumPy arrays (runtime, evaluation) or torch tensors
(training) and returns the same kind it was given, so there is one implementation of each
formula. This module imports nothing of facespot's and never imports torch itself.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

Array = Any  # np.ndarray or torch.Tensor

DEFAULT_VARIANCES = (0.1, 0.2)


def _is_torch(x: Array) -> bool:
    return type(x).__module__.startswith("torch")


def _cat(parts: Sequence[Array], axis: int = -1) -> Array:
    if _is_torch(parts[0]):
        import torch

        return torch.cat(list(parts), dim=axis)
    return np.concatenate(parts, axis=axis)


def _stack(parts: Sequence[Array], axis: int = -1) -> Array:
    if _is_torch(parts[0]):
        import torch

        return torch.stack(list(parts), dim=axis)
    return np.stack(parts, axis=axis)


def _exp(x: Array) -> Array:
    return x.exp() if _is_torch(x) else np.exp(x)


def _log(x: Array) -> Array:
    return x.log() if _is_torch(x) else np.log(x)


def _clip(x: Array, lo: float | None = None, hi: float | None = None) -> Array:
    if _is_torch(x):
        return x.clamp(min=lo, max=hi)
    return np.clip(x, lo, hi)


def _maximum(a: Array, b: Array) -> Array:
    if _is_torch(a):
        import torch

        return torch.maximum(a, b)
    return np.maximum(a, b)


def _minimum(a: Array, b: Array) -> Array:
    if _is_torch(a):
        import torch

        return torch.minimum(a, b)
    return np.minimum(a, b)


# --------------------------------------------------------------------------- formats


def xywh_to_xyxy(b: Array) -> Array:
    """``(x, y, w, h)`` (top-left corner + size, WIDER's format) to ``xyxy``."""
    return _cat([b[..., :2], b[..., :2] + b[..., 2:4]])


def xyxy_to_xywh(b: Array) -> Array:
    return _cat([b[..., :2], b[..., 2:4] - b[..., :2]])


def cxcywh_to_xyxy(b: Array) -> Array:
    half = b[..., 2:4] / 2
    return _cat([b[..., :2] - half, b[..., :2] + half])


def xyxy_to_cxcywh(b: Array) -> Array:
    return _cat([(b[..., :2] + b[..., 2:4]) / 2, b[..., 2:4] - b[..., :2]])


def area(b: Array) -> Array:
    """Area of ``xyxy`` boxes; degenerate (inverted) boxes have area 0."""
    w = _clip(b[..., 2] - b[..., 0], 0)
    h = _clip(b[..., 3] - b[..., 1], 0)
    return w * h


def clip(b: Array, width: float, height: float) -> Array:
    """Clip ``xyxy`` boxes to an image of the given size."""
    x = _clip(b[..., 0::2], 0, width)
    y = _clip(b[..., 1::2], 0, height)
    return _stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]])


# --------------------------------------------------------------------------- overlap


def iou(a: Array, b: Array, pixel_inclusive: bool = False) -> Array:
    """Pairwise IoU of ``a`` (N, 4) and ``b`` (M, 4) ``xyxy`` boxes -> (N, M).

    ``pixel_inclusive`` adds 1 to widths and heights, as the official WIDER FACE
    MATLAB tool does (it treats ``x2`` as the last pixel *inside* the box).
    """
    one = 1.0 if pixel_inclusive else 0.0
    lt = _maximum(a[:, None, :2], b[None, :, :2])
    rb = _minimum(a[:, None, 2:4], b[None, :, 2:4])
    wh = _clip(rb - lt + one, 0)
    inter = wh[..., 0] * wh[..., 1]
    area_a = _clip(a[:, 2] - a[:, 0] + one, 0) * _clip(a[:, 3] - a[:, 1] + one, 0)
    area_b = _clip(b[:, 2] - b[:, 0] + one, 0) * _clip(b[:, 3] - b[:, 1] + one, 0)
    union = area_a[:, None] + area_b[None, :] - inter
    return inter / _clip(union, 1e-12)


# --------------------------------------------------------------------------- SSD coding


def encode(boxes: Array, anchors: Array, variances: Sequence[float] = DEFAULT_VARIANCES) -> Array:
    """Regression targets for ``xyxy`` boxes matched to ``cxcywh`` anchors (same shape)."""
    c = xyxy_to_cxcywh(boxes)
    t_xy = (c[..., :2] - anchors[..., :2]) / (variances[0] * anchors[..., 2:4])
    t_wh = _log(_clip(c[..., 2:4] / anchors[..., 2:4], 1e-12)) / variances[1]
    return _cat([t_xy, t_wh])


def decode(deltas: Array, anchors: Array, variances: Sequence[float] = DEFAULT_VARIANCES) -> Array:
    """Inverse of :func:`encode`: ``(..., A, 4)`` deltas + ``(A, 4)`` anchors -> ``xyxy``."""
    xy = anchors[..., :2] + deltas[..., :2] * variances[0] * anchors[..., 2:4]
    wh = anchors[..., 2:4] * _exp(deltas[..., 2:4] * variances[1])
    return _cat([xy - wh / 2, xy + wh / 2])


def encode_points(points: Array, anchors: Array, variance: float = DEFAULT_VARIANCES[0]) -> Array:
    """Landmark targets: ``(A, K, 2)`` points relative to ``(A, 4)`` anchors."""
    return (points - anchors[..., None, :2]) / (variance * anchors[..., None, 2:4])


def decode_points(deltas: Array, anchors: Array, variance: float = DEFAULT_VARIANCES[0]) -> Array:
    """Inverse of :func:`encode_points`: ``(..., A, K, 2)`` deltas -> points."""
    return anchors[..., None, :2] + deltas * variance * anchors[..., None, 2:4]


def decode_grid(deltas: Array, cells: Array, reach: float = 0.0) -> Array:
    """YOLO-style cell decoding: centre offset from the cell, size relative to the image.

    ``deltas`` are raw ``(tx, ty, tw, th)``; the centre is ``cell_origin + o * cell`` with
    ``o = (1 + 2 reach) sigmoid(t) - reach``: inside the cell for ``reach = 0`` (YOLOv1), up to
    half a cell beyond it for ``reach = 0.5`` (YOLOv5's ``2 sigmoid(t) - 0.5``), so a cell next to
    the one holding a face's centre can also box it. The size is ``sigmoid(t)`` of the whole
    input, so every value is bounded. ``cells`` are ``(cx, cy, w, h)`` of the grid cells, normalised.
    """
    if _is_torch(deltas):
        s = deltas.sigmoid()
    else:
        s = 1.0 / (1.0 + np.exp(-deltas))
    o = s[..., :2] if not reach else (1.0 + 2.0 * reach) * s[..., :2] - reach
    xy = cells[..., :2] - cells[..., 2:4] / 2 + o * cells[..., 2:4]
    wh = s[..., 2:4]
    return _cat([xy - wh / 2, xy + wh / 2])


# --------------------------------------------------------------------------- suppression


def _to_numpy(x: Array) -> np.ndarray:
    if _is_torch(x):
        return x.detach().float().cpu().numpy()
    return np.asarray(x)


def nms(boxes: Array, scores: Array, iou_threshold: float = 0.3, max_out: int | None = None) -> np.ndarray:
    """Greedy hard NMS; returns kept indices (into ``boxes``), best score first.

    The runtime's hot path, so written for speed (about 2x a plain loop): the boxes are
    sorted once into contiguous coordinate arrays, each step compares the kept box with
    a *slice* of the later ones (no gathers, in-place arithmetic, ``inter <= t * union``
    instead of a division), and the arrays are compacted only every 32 kept boxes.
    """
    s = _to_numpy(scores)
    order = np.argsort(-s, kind="stable")
    b = _to_numpy(boxes).astype(np.float32, copy=False)[order]
    x1, y1, x2, y2 = (np.ascontiguousarray(b[:, k]) for k in range(4))
    areas = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    idx = np.arange(len(b))
    alive = np.ones(len(b), bool)
    keep: list[int] = []
    i, n = 0, len(b)
    t = np.float32(iou_threshold)
    while i < n:
        if not alive[i]:
            later = np.flatnonzero(alive[i:])
            if later.size == 0:
                break
            i += int(later[0])
        keep.append(int(idx[i]))
        if max_out is not None and len(keep) >= max_out:
            break
        j = i + 1
        if j >= n:
            break
        w = np.minimum(x2[i], x2[j:])
        w -= np.maximum(x1[i], x1[j:])
        np.maximum(w, 0, out=w)
        h = np.minimum(y2[i], y2[j:])
        h -= np.maximum(y1[i], y1[j:])
        np.maximum(h, 0, out=h)
        w *= h  # intersection
        union = areas[j:] + areas[i]
        union -= w
        np.maximum(union, 1e-12, out=union)
        union *= t
        alive[j:] &= w <= union
        i = j
        if len(keep) % 32 == 0:  # drop suppressed boxes so later steps touch fewer
            sel = np.flatnonzero(alive[i:]) + i
            x1, y1, x2, y2, areas, idx = (a[sel] for a in (x1, y1, x2, y2, areas, idx))
            alive = np.ones(len(sel), bool)
            i, n = 0, len(sel)
    return order[np.asarray(keep, dtype=np.int64)]


def blending_nms(
    boxes: Array,
    scores: Array,
    iou_threshold: float = 0.3,
    points: Array | None = None,
    max_out: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """BlazeFace's weighted ("blending") NMS (Bazarevsky et al. 2019, section 2.3).

    Instead of keeping only the best box of each overlapping cluster, the output box (and
    keypoints) is the score-weighted mean of every box in the cluster, which makes
    predictions steadier across video frames. The cluster keeps its best score.
    Coordinates are sorted once into contiguous arrays (this runs on every video frame).

    Returns ``(boxes (K, 4), scores (K,), points (K, P, 2) or None)`` as NumPy arrays.
    """
    b = _to_numpy(boxes).astype(np.float32, copy=False)
    s = _to_numpy(scores).astype(np.float32, copy=False)
    p = None if points is None else _to_numpy(points).astype(np.float32, copy=False)
    if len(b) == 0:
        return b.reshape(0, 4), s.reshape(0), None if p is None else p.reshape((0,) + p.shape[1:])
    order = np.argsort(-s, kind="stable")
    b, s = b[order], s[order]
    p = None if p is None else p[order]
    x1, y1, x2, y2 = (np.ascontiguousarray(b[:, k]) for k in range(4))
    areas = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    rest = np.arange(len(b))
    out_b, out_s, out_p = [], [], []
    while rest.size:
        i = rest[0]
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        overlap = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-12)
        hit = overlap > iou_threshold
        members = rest[hit] if hit.any() else rest[:1]
        wgt = s[members]
        total = float(wgt.sum())
        out_b.append((b[members] * wgt[:, None]).sum(0) / total)
        out_s.append(s[i])
        if p is not None:
            out_p.append((p[members] * wgt[:, None, None]).sum(0) / total)
        if max_out is not None and len(out_b) >= max_out:
            break
        rest = rest[~hit] if hit.any() else rest[1:]  # a zero-area box overlaps nothing, itself included
    return (
        np.stack(out_b).astype(np.float32),
        np.asarray(out_s, np.float32),
        None if p is None else np.stack(out_p).astype(np.float32),
    )
