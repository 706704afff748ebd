"""Training targets: which anchor learns which face, and what it should predict.

Two assignment schemes cover every facespot model:

* **SSD matching** (FaceBoxes, BlazeFace, Tiny Faces templates): IoU between every face and
  every anchor; an anchor whose best IoU reaches ``pos_iou`` is positive, below ``neg_iou``
  is background, in between is ignored. Every face additionally gets its single best
  anchor, so small or oddly shaped faces are never left without a learner (Liu et al.
  2016, section 2.2; FaceBoxes uses ``pos_iou = neg_iou = 0.35``).
* **ATSS** (SpotNet; Zhang et al., CVPR 2020, "Bridging the Gap Between Anchor-based and
  Anchor-free Detection"): per face, the ``topk`` anchors of each pyramid level closest to
  its centre are candidates; those whose IoU reaches the mean + standard deviation of the
  candidates' IoUs, and whose centre lies inside the face, are positive. The threshold
  adapts to each face's size, which is what lets 8-pixel faces and 500-pixel faces both
  get a few good anchors without hand-tuned IoU bands.
* **Grid assignment** (YOLOv1-style grid / YOLO models, ``coding.kind == "grid"``): the cell
  that holds the face centre is responsible for it (Redmon et al. 2016, section 2.2); with a
  ``reach`` (YOLOv5 style) every cell whose reach covers the centre is.

Everything works on torch tensors so targets are built on the training device, and the
SSD and ATSS assignments handle the whole batch at once: the faces of every image are
stacked into one ``(G, 4)`` tensor with their image index, overlaps are computed in one
call, and an anchor's winning face within its image is chosen with one ``scatter_reduce``
(no Python loop over images or faces).
Boxes enter as *normalised* ``xyxy`` (divided by the input width/height); landmarks as
normalised ``(N, K, 2)`` points with NaN for "not annotated".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from facespot import boxes as B

POSITIVE = 1
BACKGROUND = 0
IGNORE = -1


@dataclass
class Targets:
    """Dense per-anchor targets of a batch.

    Attributes
    ----------
    labels:
        ``(B, A)`` long: 1 face, 0 background, -1 ignored (no classification loss).
    boxes:
        ``(B, A, 4)`` regression targets (only rows with ``labels == 1`` mean anything).
        SSD coding: :func:`facespot.boxes.encode` deltas. Grid coding: the *sigmoid-space*
        values ``(sx, sy, w, h)`` that :func:`facespot.boxes.decode_grid` would map back.
    gt_boxes:
        ``(B, A, 4)`` the matched face as normalised ``xyxy`` (for IoU-aware losses).
    points:
        ``(B, A, K, 2)`` landmark targets or ``None`` for models without keypoints.
    point_mask:
        ``(B, A, K)`` bool: the point is annotated *and* the anchor is positive.
    """

    labels: torch.Tensor
    boxes: torch.Tensor
    gt_boxes: torch.Tensor
    points: torch.Tensor | None = None
    point_mask: torch.Tensor | None = None

    @property
    def num_positive(self) -> int:
        return int((self.labels == POSITIVE).sum())


def _pack_key(quality: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
    """An int64 that orders by ``quality`` (0..1, 2**-20 steps) first and face index second,
    so ``scatter_reduce("amax")`` picks, per anchor, the best face -- and among equals the
    later one, as SSD's reference code does -- deterministically on any device."""
    q = (quality.clamp(0, 1) * float(1 << 20)).round().long()
    return (q << 24) | face


FACE_BITS = (1 << 24) - 1  # faces per batch the key can carry
FORCED = 1 << 46  # above every quality key: a face's own best anchor always wins it


def _winners(keys: torch.Tensor, flat_index: torch.Tensor, n_img: int, a: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Scatter ``(pair)`` keys into ``(B, A)``; return ``(has_face, face_index)`` per anchor."""
    best = torch.full((n_img * a,), -1, dtype=torch.long, device=keys.device)
    best.scatter_reduce_(0, flat_index, keys, reduce="amax", include_self=True)
    best = best.view(n_img, a)
    return best >= 0, (best.clamp_min(0) & FACE_BITS)


def stack_faces(gt_boxes: Sequence[torch.Tensor], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image ``(N_i, 4)`` boxes -> ``(G, 4)`` float32 and the ``(G,)`` image index of each."""
    parts = [g.to(device=device, dtype=torch.float32).reshape(-1, 4) for g in gt_boxes]
    counts = torch.tensor([len(p) for p in parts], device=device)
    gt = torch.cat(parts) if parts else torch.zeros(0, 4, device=device)
    img = torch.repeat_interleave(torch.arange(len(parts), device=device), counts)
    if len(gt) > FACE_BITS:
        raise ValueError(f"{len(gt)} faces in one batch: more than the assignment supports")
    return gt, img


def match_anchors_batch(
    gt: torch.Tensor, img: torch.Tensor, n_img: int, anchors_xyxy: torch.Tensor,
    pos_iou: float = 0.35, neg_iou: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """SSD matching for a whole batch: ``gt`` ``(G, 4)`` with image index ``img`` ``(G,)``.

    Returns ``(labels (B, A), matched (B, A))``; ``matched`` indexes ``gt``. Same rule as
    :func:`match_anchors`, which is this function on one image.
    """
    neg_iou = pos_iou if neg_iou is None else neg_iou
    a = anchors_xyxy.shape[0]
    device = anchors_xyxy.device
    labels = torch.zeros(n_img, a, dtype=torch.long, device=device)
    if gt.shape[0] == 0:
        return labels, torch.zeros(n_img, a, dtype=torch.long, device=device)
    overlap = B.iou(gt, anchors_xyxy)  # (G, A)
    g_idx = torch.arange(gt.shape[0], device=device)
    flat = (img[:, None] * a + torch.arange(a, device=device)[None, :]).reshape(-1)
    keys = _pack_key(overlap, g_idx[:, None].expand_as(overlap)).reshape(-1)
    # every face keeps its best anchor, even below the threshold (unless it overlaps nothing)
    best_anchor = overlap.argmax(dim=1)
    forced = overlap[g_idx, best_anchor] > 0
    f_flat = img[forced] * a + best_anchor[forced]
    keys = torch.cat([keys, FORCED | g_idx[forced]])
    flat = torch.cat([flat, f_flat])
    _, matched = _winners(keys, flat, n_img, a)
    best_iou = overlap.new_zeros(n_img * a).scatter_reduce_(
        0, (img[:, None] * a + torch.arange(a, device=device)[None, :]).reshape(-1), overlap.reshape(-1),
        reduce="amax", include_self=True,
    ).view(n_img, a)
    labels[best_iou >= pos_iou] = POSITIVE
    labels[(best_iou >= neg_iou) & (best_iou < pos_iou)] = IGNORE
    forced_mask = torch.zeros(n_img * a, dtype=torch.bool, device=device)
    forced_mask[f_flat] = True
    labels[forced_mask.view(n_img, a)] = POSITIVE
    return labels, matched


def match_anchors(
    gt: torch.Tensor, anchors_xyxy: torch.Tensor, pos_iou: float = 0.35, neg_iou: float | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """SSD matching of ``gt`` (N, 4) to anchors (A, 4), both ``xyxy``.

    Returns ``(labels (A,) long, matched (A,) long)``: ``matched[a]`` is the index of the face
    anchor ``a`` regresses to (meaningful where ``labels == 1``).
    ``neg_iou`` defaults to ``pos_iou`` (no ignore band, as FaceBoxes/SSD). Every face
    also keeps its best anchor; when two faces share a best anchor the later one wins, as
    in SSD's code.
    """
    gt = gt.reshape(-1, 4).to(anchors_xyxy)
    img = torch.zeros(gt.shape[0], dtype=torch.long, device=anchors_xyxy.device)
    labels, matched = match_anchors_batch(gt, img, 1, anchors_xyxy, pos_iou, neg_iou)
    return labels[0], matched[0]


def atss_assign_batch(
    gt: torch.Tensor, img: torch.Tensor, n_img: int, anchors: torch.Tensor, level_sizes: Sequence[int],
    topk: int = 9, aspect: tuple[float, float] = (1.0, 1.0), ignore_below: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """ATSS for a whole batch (see the module notes). ``anchors`` are ``(A, 4)`` ``cxcywh``
    listed level by level with ``level_sizes`` anchors each; ``aspect`` is the input's
    ``(width, height)`` so centre distances are measured in pixels, not normalised units.

    A face none of whose candidates passes (a face smaller than the anchor spacing can
    hold no anchor centre) keeps its best-IoU candidate, so no face goes unlearned.
    Faces whose shorter side is below ``ignore_below`` pixels (a crowd's 2-4 pixel
    specks) are learned neither as faces nor as background: their nearest first-level
    anchors are labelled ignore.
    Returns ``(labels (B, A), matched (B, A))`` like :func:`match_anchors_batch`.
    """
    a = anchors.shape[0]
    device = anchors.device
    labels = torch.zeros(n_img, a, dtype=torch.long, device=device)
    if gt.shape[0] == 0:
        return labels, torch.zeros(n_img, a, dtype=torch.long, device=device)
    scale = torch.tensor(aspect, dtype=torch.float32, device=device)
    centre = (gt[:, :2] + gt[:, 2:]) / 2
    dist = torch.cdist(centre * scale, anchors[:, :2] * scale)  # (G, A)
    cands, start = [], 0
    for n in level_sizes:  # a handful of pyramid levels, not images or faces
        k = min(topk, n)
        cands.append(dist[:, start : start + n].topk(k, dim=1, largest=False).indices + start)
        start += n
    cand = torch.cat(cands, dim=1)  # (G, C)
    cand_xyxy = B.cxcywh_to_xyxy(anchors[cand])  # (G, C, 4)
    g = gt[:, None, :]
    lt = torch.maximum(g[..., :2], cand_xyxy[..., :2])
    rb = torch.minimum(g[..., 2:], cand_xyxy[..., 2:])
    inter = (rb - lt).clamp_min(0).prod(-1)
    union = B.area(g) + B.area(cand_xyxy) - inter
    iou = inter / union.clamp_min(1e-12)  # (G, C)
    thr = iou.mean(1, keepdim=True) + iou.std(1, keepdim=True)
    c = anchors[cand][..., :2]
    inside = (c > g[..., :2]).all(-1) & (c < g[..., 2:]).all(-1)
    pos = (iou >= thr) & inside & (iou > 0)
    tiny = ((gt[:, 2:] - gt[:, :2]) * scale).min(1).values < ignore_below
    pos &= ~tiny[:, None]
    none = ~pos.any(1) & ~tiny
    if none.any():
        best = iou.argmax(1)
        rows = torch.nonzero(none & (iou.max(1).values > 0)).flatten()
        pos[rows, best[rows]] = True
    g_idx, c_idx = torch.nonzero(pos, as_tuple=True)
    anchor_idx = cand[g_idx, c_idx]
    flat = img[g_idx] * a + anchor_idx
    has, matched = _winners(_pack_key(iou[g_idx, c_idx], g_idx), flat, n_img, a)
    if tiny.any():
        near = cand[tiny][:, : min(topk, level_sizes[0])]  # the first level's candidates
        ignore = torch.zeros(n_img * a, dtype=torch.bool, device=device)
        ignore[(img[tiny][:, None] * a + near).reshape(-1)] = True
        labels[ignore.view(n_img, a)] = IGNORE
    labels[has] = POSITIVE
    return labels, matched


def assign_grid(
    gt: torch.Tensor, cells: torch.Tensor, pred_xyxy: torch.Tensor | None = None, reach: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """YOLOv1 assignment: the cell holding a face's centre is responsible for it.

    ``cells`` are the model's ``(A, 4)`` ``cxcywh`` cells (a cell may appear several times,
    once per predictor). Among a cell's predictors the one whose current prediction
    (``pred_xyxy``, when given) overlaps the face best takes it, as in YOLOv1; otherwise
    the first free predictor. If two faces fall in one cell and it has fewer predictors
    than faces, the larger face wins (it is the one a single box describes better).
    With ``reach`` > 0 (:func:`facespot.boxes.decode_grid`) every cell whose reach covers the
    centre -- up to four, the centre's own and the nearest neighbours -- gets one predictor
    for the face, as in YOLOv5 (more positives, and the neighbours that see the face learn
    to box it instead of firing with a box that cannot reach it).
    Returns ``(labels (A,), matched (A,))`` like :func:`match_anchors`.
    """
    a = cells.shape[0]
    labels = torch.zeros(a, dtype=torch.long, device=cells.device)
    matched = torch.zeros(a, dtype=torch.long, device=cells.device)
    if gt.numel() == 0:
        return labels, matched
    centre = (gt[:, :2] + gt[:, 2:]) / 2  # (N, 2)
    lo = cells[:, :2] - (0.5 + reach) * cells[:, 2:]  # (A, 2)
    hi = cells[:, :2] + (0.5 + reach) * cells[:, 2:]
    # Half-open cells [lo, hi) so a centre on a border belongs to exactly one cell; a
    # centre exactly on the image's far edge is pulled inside.
    c = centre.clamp(0, 1 - 1e-6)
    inside = ((c[:, None, :] >= lo[None]) & (c[:, None, :] < hi[None])).all(-1)  # (N, A)
    area = B.area(gt)
    taken = torch.zeros(a, dtype=torch.bool, device=cells.device)
    for j in torch.argsort(area, descending=True).tolist():
        cand = torch.nonzero(inside[j] & ~taken).flatten()
        if cand.numel() == 0:
            continue
        groups = [cand] if not reach else [cand[(cells[cand, :2] == c).all(-1)] for c in torch.unique(cells[cand, :2], dim=0)]
        for group in groups:  # one cell's free predictors
            if pred_xyxy is not None and group.numel() > 1:
                scores = B.iou(gt[j : j + 1], pred_xyxy[group])[0]
                k = group[int(scores.argmax())]
            else:
                k = group[0]
            taken[k] = True
            labels[k] = POSITIVE
            matched[k] = j
    return labels, matched


def encode_grid(gt_xyxy: torch.Tensor, cells: torch.Tensor, reach: float = 0.0) -> torch.Tensor:
    """Inverse of :func:`facespot.boxes.decode_grid` in sigmoid space: ``(sx, sy, w, h)``."""
    c = B.xyxy_to_cxcywh(gt_xyxy)
    origin = cells[..., :2] - cells[..., 2:] / 2
    sxy = (((c[..., :2] - origin) / cells[..., 2:] + reach) / (1.0 + 2.0 * reach)).clamp(0, 1)
    return torch.cat([sxy, c[..., 2:].clamp(0, 1)], dim=-1)


def build_targets(
    gt_boxes: Sequence[torch.Tensor],
    anchors: torch.Tensor,
    coding_kind: str = "ssd",
    variances: Sequence[float] = B.DEFAULT_VARIANCES,
    gt_points: Sequence[torch.Tensor | None] | None = None,
    num_keypoints: int = 0,
    pos_iou: float = 0.35,
    neg_iou: float | None = None,
    pred_deltas: torch.Tensor | None = None,
    assigner: str = "iou",
    level_sizes: Sequence[int] | None = None,
    atss_topk: int = 9,
    aspect: tuple[float, float] = (1.0, 1.0),
    ignore_below: float = 0.0,
    ignore_boxes: Sequence[torch.Tensor | None] | None = None,
    ignore_iou: float = 0.25,
    grid_reach: float = 0.0,
) -> Targets:
    """Targets for a batch.

    Parameters
    ----------
    gt_boxes:
        One ``(N_i, 4)`` normalised ``xyxy`` tensor per image.
    anchors:
        ``(A, 4)`` ``cxcywh`` normalised anchors (or grid cells), as the model gives them.
    gt_points:
        One ``(N_i, K_i, 2)`` normalised tensor (NaN = missing) or ``None`` per image. A
        source with fewer points than the model (Caltech's 4 vs BlazeFace's 6) is padded
        with NaN, i.e. the extra points are simply not supervised.
    pred_deltas:
        ``(B, A, 4)`` current predictions; only grid coding uses them (YOLOv1 picks the
        predictor whose box already fits best).
    assigner:
        ``"iou"`` (SSD matching with ``pos_iou`` / ``neg_iou``) or ``"atss"`` (needs
        ``level_sizes``: anchors per pyramid level); ignored for grid coding.
    aspect:
        The input's ``(width, height)`` (ATSS measures centre distances in pixels).
    ignore_below:
        ATSS only: faces with a shorter side below this many input pixels are ignored
        (neither face nor background).
    ignore_boxes:
        Per image ``(M, 4)`` normalised ``xyxy`` ignore regions (faces the annotation lacks) or
        ``None``: an anchor left as background that overlaps one by ``ignore_iou`` or more is
        ignored instead. Anchors positive for a real face stay positive. Grid coding has no
        background to spare and does not use them.
    """
    device = anchors.device
    n_img, a = len(gt_boxes), anchors.shape[0]
    anchors = anchors.float()
    if coding_kind == "grid":
        return _grid_targets(gt_boxes, anchors, pred_deltas, grid_reach)
    if coding_kind != "ssd":
        raise ValueError(f"unknown box coding {coding_kind!r}")
    gt, img = stack_faces(gt_boxes, device)
    if assigner == "atss":
        if level_sizes is None or sum(level_sizes) != a:
            raise ValueError("ATSS assignment needs level_sizes summing to the number of anchors")
        labels, matched = atss_assign_batch(gt, img, n_img, anchors, level_sizes, atss_topk, aspect, ignore_below)
    elif assigner == "iou":
        labels, matched = match_anchors_batch(gt, img, n_img, B.cxcywh_to_xyxy(anchors), pos_iou, neg_iou)
    else:
        raise ValueError(f"unknown assigner {assigner!r}; use 'iou' or 'atss'")
    if ignore_boxes is not None:
        ignore_regions(labels, ignore_boxes, B.cxcywh_to_xyxy(anchors), ignore_iou)
    pos = labels == POSITIVE
    box_t = torch.zeros(n_img, a, 4, dtype=torch.float32, device=device)
    gt_t = torch.zeros(n_img, a, 4, dtype=torch.float32, device=device)
    face = matched[pos]
    anchor_pos = anchors.expand(n_img, a, 4)[pos]
    gt_t[pos] = gt[face]
    box_t[pos] = B.encode(gt[face], anchor_pos, variances)
    pts_t = pts_m = None
    if num_keypoints > 0:
        pts_t = torch.zeros(n_img, a, num_keypoints, 2, dtype=torch.float32, device=device)
        pts_m = torch.zeros(n_img, a, num_keypoints, dtype=torch.bool, device=device)
        if gt_points is not None:
            all_pts = torch.cat([
                _fit_points(p.to(device=device, dtype=torch.float32), num_keypoints)
                if p is not None else torch.full((len(b), num_keypoints, 2), float("nan"), device=device)
                for p, b in zip(gt_points, gt_boxes)
            ]) if len(gt) else torch.zeros(0, num_keypoints, 2, device=device)
            mp = all_pts[face]  # (P, K, 2)
            valid = torch.isfinite(mp).all(-1)
            enc = B.encode_points(torch.nan_to_num(mp), anchor_pos, variances[0])
            pts_t[pos] = torch.where(valid[..., None], enc, torch.zeros_like(enc))
            pts_m[pos] = valid
    return Targets(labels, box_t, gt_t, pts_t, pts_m)


def ignore_regions(labels: torch.Tensor, regions: Sequence[torch.Tensor | None], anchors_xyxy: torch.Tensor,
                   min_iou: float) -> None:
    """Relabel, in place, background anchors overlapping an ignore region by ``min_iou`` or more."""
    parts = [torch.zeros(0, 4) if r is None else r for r in regions]
    if not any(len(p) for p in parts):
        return
    n_img, a = labels.shape
    gt, img = stack_faces(parts, labels.device)
    overlap = B.iou(gt, anchors_xyxy.to(gt))  # (M, A)
    best = overlap.new_zeros(n_img * a).scatter_reduce_(
        0, (img[:, None] * a + torch.arange(a, device=labels.device)[None, :]).reshape(-1), overlap.reshape(-1),
        reduce="amax", include_self=True,
    ).view(n_img, a)
    labels[(labels == BACKGROUND) & (best >= min_iou)] = IGNORE


def _grid_targets(
    gt_boxes: Sequence[torch.Tensor], cells: torch.Tensor, pred_deltas: torch.Tensor | None, reach: float = 0.0
) -> Targets:
    """YOLO-style targets: per image, since a cell's choice among its predictors depends on
    that image's current predictions (:func:`assign_grid`)."""
    device = cells.device
    n_img, a = len(gt_boxes), cells.shape[0]
    labels = torch.zeros(n_img, a, dtype=torch.long, device=device)
    box_t = torch.zeros(n_img, a, 4, dtype=torch.float32, device=device)
    gt_t = torch.zeros(n_img, a, 4, dtype=torch.float32, device=device)
    for i, gt in enumerate(gt_boxes):
        gt = gt.to(device=device, dtype=torch.float32).reshape(-1, 4)
        pred = None if pred_deltas is None else B.decode_grid(pred_deltas[i].detach().float(), cells, reach)
        lab, idx = assign_grid(gt, cells, pred, reach)
        labels[i] = lab
        pos = lab == POSITIVE
        if gt.shape[0] and pos.any():
            gt_t[i, pos] = gt[idx[pos]]
            box_t[i, pos] = encode_grid(gt[idx[pos]], cells[pos], reach)
    return Targets(labels, box_t, gt_t)


def _fit_points(p: torch.Tensor, k: int) -> torch.Tensor:
    """Pad (with NaN = missing) or cut ``(N, K', 2)`` points to ``K``."""
    if p.shape[1] == k:
        return p
    if p.shape[1] > k:
        return p[:, :k]
    pad = torch.full((p.shape[0], k - p.shape[1], 2), float("nan"), dtype=p.dtype, device=p.device)
    return torch.cat([p, pad], dim=1)
