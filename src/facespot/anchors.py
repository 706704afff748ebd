"""Anchor (prior) generators: every anchor layout a facespot model uses, in NumPy.

All anchors are ``(cx, cy, w, h)`` normalised to the network input (see
:mod:`facespot.boxes`). Models call these from ``FaceModel.anchors(height, width)``;
the runtime calls them too, so the ONNX path decodes without the torch graph.
This module imports nothing of facespot's.
"""

from __future__ import annotations

import numpy as np

# ---------------------------------------------------------------- SSD-style (FaceBoxes, BlazeFace)
#
# Order of every generator below (and of ``facespot.models.layers.flatten_head``): feature
# cells row-major (row, then column), then the anchors of one cell in the order their
# templates are listed. A head conv with ``k * C`` output channels therefore lines up with
# these anchors after ``permute(0, 2, 3, 1).reshape(B, -1, C)``.


def feature_size(size: int, stride: int) -> int:
    """Side of the feature map a stride-``stride`` layer gives for an input side ``size``.

    Every padded conv / pool with stride ``s`` in our models maps ``n -> ceil(n / s)``, and
    nested ceilings of integer division compose, so one ``ceil`` covers the whole stack.
    """
    return -(-int(size) // int(stride))


def _tile(height: int, width: int, stride: int, templates: np.ndarray) -> np.ndarray:
    """Place ``(K, 4)`` cell-relative pixel templates ``(dx, dy, w, h)`` on every cell.

    ``dx, dy`` are offsets from the cell's top-left corner in input pixels. Returns
    ``(fh * fw * K, 4)`` normalised ``cxcywh`` anchors in the documented order.
    """
    fh, fw = feature_size(height, stride), feature_size(width, stride)
    ys, xs = np.meshgrid(np.arange(fh, dtype=np.float64), np.arange(fw, dtype=np.float64), indexing="ij")
    origin = np.stack([xs.ravel() * stride, ys.ravel() * stride], axis=1)  # (fh*fw, 2)
    t = np.asarray(templates, dtype=np.float64).reshape(-1, 4)
    cx = (origin[:, None, 0] + t[None, :, 0]) / width
    cy = (origin[:, None, 1] + t[None, :, 1]) / height
    w = np.broadcast_to(t[None, :, 2] / width, cx.shape)
    h = np.broadcast_to(t[None, :, 3] / height, cx.shape)
    return np.stack([cx, cy, w, h], axis=-1).reshape(-1, 4).astype(np.float32)


def densified_templates(stride: int, sizes: tuple[int, ...], densities: tuple[int, ...]) -> np.ndarray:
    """Cell templates of FaceBoxes' anchor densification (Zhang et al. 2017, section 3.3).

    A square anchor of side ``size`` is repeated on an ``n x n`` sub-grid of the cell
    (``n = density``), so small anchors are as dense as large ones (the paper's "tiling
    density" ``A_scale / A_interval``). The sub-grid is centred in the cell (offsets
    ``(k + 0.5) / n``), so ``n = 1`` is the usual cell centre; the reference
    implementation uses ``k / n``, a quarter-cell shift we do not copy. Per size the
    sub-grid is row-major (``dy`` outer, ``dx`` inner).
    """
    if len(sizes) != len(densities):
        raise ValueError("sizes and densities must have the same length")
    rows = []
    for size, n in zip(sizes, densities):
        offs = (np.arange(n, dtype=np.float64) + 0.5) / n * stride
        for dy in offs:
            for dx in offs:
                rows.append((dx, dy, float(size), float(size)))
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


def densified_anchors(
    height: int, width: int, stride: int, sizes: tuple[int, ...], densities: tuple[int, ...]
) -> np.ndarray:
    """Densified square anchors of one stride-``stride`` level, see :func:`densified_templates`."""
    return _tile(height, width, stride, densified_templates(stride, sizes, densities))


# FaceBoxes (section 3.3, Table 1): level stride, anchor sides (pixels), densities.
FACEBOXES_LEVELS: tuple[tuple[int, tuple[int, ...], tuple[int, ...]], ...] = (
    (32, (32, 64, 128), (4, 2, 1)),  # inception3: 16 + 4 + 1 = 21 anchors per cell
    (64, (256,), (1,)),  # conv3_2
    (128, (512,), (1,)),  # conv4_2
)


def faceboxes_anchors(height: int, width: int) -> np.ndarray:
    """All FaceBoxes anchors for an input of ``height x width`` (any size).

    1024 x 1024 gives ``32*32*21 + 16*16 + 8*8 = 21824`` anchors.
    """
    return np.concatenate([densified_anchors(height, width, s, z, d) for s, z, d in FACEBOXES_LEVELS], axis=0)


# SpotNet (facespot's own CPU-first small-face detector, see facespot.models.spotnet): a
# feature pyramid at strides 8 / 16 / 32 with two square anchors per cell, two octaves
# apart per level (as SCRFD's layout, Guo et al. 2021): 16 + 32, 64 + 128, 256 + 512 pixels.
SPOTNET_LEVELS: tuple[tuple[int, tuple[int, ...]], ...] = (
    (8, (16, 32)),
    (16, (64, 128)),
    (32, (256, 512)),
)


def pyramid_anchors(
    height: int, width: int, levels: tuple[tuple[int, tuple[int, ...]], ...] = SPOTNET_LEVELS
) -> np.ndarray:
    """Square anchors centred in every cell of each ``(stride, sides)`` level, level by level.

    640 x 480 with :data:`SPOTNET_LEVELS` gives ``2 * (80*60 + 40*30 + 20*15) = 12,600`` anchors.
    """
    return np.concatenate(
        [densified_anchors(height, width, stride, sides, (1,) * len(sides)) for stride, sides in levels], axis=0
    )


def pyramid_groups(
    height: int, width: int, levels: tuple[tuple[int, tuple[int, ...]], ...] = SPOTNET_LEVELS
) -> np.ndarray:
    """Per anchor of :func:`pyramid_anchors`, its group ``level * len(sides) + slot``: one
    group per level and anchor size, smallest anchors first (SpotNet's score offsets)."""
    k = len(levels[0][1])
    sizes = level_sizes(height, width, levels)
    return np.concatenate([lvl * k + np.arange(n) % k for lvl, n in enumerate(sizes)]).astype(np.int64)


def level_sizes(height: int, width: int, levels: tuple[tuple[int, tuple[int, ...]], ...] = SPOTNET_LEVELS) -> list[int]:
    """Number of anchors each level of :func:`pyramid_anchors` contributes (ATSS picks per level)."""
    return [feature_size(height, s) * feature_size(width, s) * len(sides) for s, sides in levels]


def ssd_scale_templates(
    strides: tuple[int, ...],
    min_scale: float,
    max_scale: float,
    aspect_ratios: tuple[float, ...] = (1.0,),
    interpolated_scale: bool = True,
) -> list[tuple[int, list[tuple[float, float]]]]:
    """SSD / MediaPipe ``SsdAnchorsCalculator`` scales, grouped by stride.

    Layer ``i`` of ``L`` has scale ``s_i = min + (max - min) * i / (L - 1)`` (relative to
    the input side); it gets one anchor per aspect ratio plus, with
    ``interpolated_scale``, a square one of side ``sqrt(s_i * s_{i+1})`` (``s_L = 1``).
    Consecutive layers with the same stride share a feature map, so their anchors stack
    in one cell (this is how BlazeFace gets 2 anchors at 16x16 and 6 at 8x8, paper
    section 2.2). Returns ``[(stride, [(w, h), ...]), ...]`` in relative units.
    """
    n = len(strides)
    scales = [min_scale + (max_scale - min_scale) * i / (n - 1) if n > 1 else (min_scale + max_scale) / 2 for i in range(n)]
    groups: list[tuple[int, list[tuple[float, float]]]] = []
    for i, stride in enumerate(strides):
        sizes = []
        for ar in aspect_ratios:
            r = float(np.sqrt(ar))
            sizes.append((scales[i] * r, scales[i] / r))
        if interpolated_scale:
            nxt = scales[i + 1] if i + 1 < n else 1.0
            s = float(np.sqrt(scales[i] * nxt))
            sizes.append((s, s))
        if groups and groups[-1][0] == stride:
            groups[-1][1].extend(sizes)
        else:
            groups.append((stride, sizes))
    return groups


def ssd_scale_anchors(
    height: int,
    width: int,
    strides: tuple[int, ...],
    min_scale: float,
    max_scale: float,
    aspect_ratios: tuple[float, ...] = (1.0,),
    interpolated_scale: bool = True,
) -> np.ndarray:
    """Anchors from :func:`ssd_scale_templates`, centred in each cell.

    Scales are relative to each side (``w = s * width`` pixels), as in MediaPipe, so a
    square input gives square anchors.
    """
    parts = []
    for stride, sizes in ssd_scale_templates(strides, min_scale, max_scale, aspect_ratios, interpolated_scale):
        t = np.asarray([(stride / 2, stride / 2, w * width, h * height) for w, h in sizes], dtype=np.float64)
        parts.append(_tile(height, width, stride, t))
    return np.concatenate(parts, axis=0)


# BlazeFace (Bazarevsky et al. 2019, section 2.2) in MediaPipe's anchor options:
# front camera 128x128 (strides 8,16,16,16), back camera 256x256 (strides 16,32,32,32).
# Both give 16x16x2 + 8x8x6 = 896 anchors.
BLAZEFACE_ANCHOR_OPTIONS: dict[str, dict] = {
    "front": {"strides": (8, 16, 16, 16), "min_scale": 0.1484375, "max_scale": 0.75},
    "back": {"strides": (16, 32, 32, 32), "min_scale": 0.15625, "max_scale": 0.75},
}


def blazeface_anchors(height: int, width: int, variant: str = "front") -> np.ndarray:
    """BlazeFace anchors (``variant`` ``"front"`` or ``"back"``); 896 at the native size.

    Unlike MediaPipe (``fixed_anchor_size: true``, every anchor 1x1 and deltas in
    pixels) the anchors keep their SSD scales, so the usual IoU matching and
    variance coding train them.
    """
    if variant not in BLAZEFACE_ANCHOR_OPTIONS:
        raise ValueError(f"unknown BlazeFace variant {variant!r}")
    return ssd_scale_anchors(height, width, **BLAZEFACE_ANCHOR_OPTIONS[variant])


# ---------------------------------------------------------------- Tiny Faces templates and grid cells
#
# Tiny Faces (Hu & Ramanan, CVPR 2017, section 3): every template (a pixel (w, h) at the
# training scale) is centred on every stride-``s`` cell, in the same order as above (cells
# row-major, then templates). Grid cells (YOLO-style detectors) are the cells themselves,
# repeated once per box predictor.


def template_anchors(height: int, width: int, stride: int, templates) -> np.ndarray:
    """Tiny Faces anchors: each ``(w, h)`` pixel template centred on each stride-``stride`` cell.

    Returns ``(ceil(h/s) * ceil(w/s) * T, 4)`` normalised ``cxcywh``; the centre of cell
    ``(i, j)`` is ``((j + 0.5) * s, (i + 0.5) * s)`` pixels.
    """
    t = np.asarray(templates, dtype=np.float64)
    if t.ndim != 2 or t.shape[1] != 2 or len(t) == 0:
        raise ValueError(f"templates must be a non-empty (T, 2) list of (w, h), got shape {t.shape}")
    half = stride / 2.0
    cell = np.concatenate([np.full((len(t), 2), half), t], axis=1)
    return _tile(height, width, stride, cell)


def grid_cells(
    grid_h: int, grid_w: int, boxes_per_cell: int = 1, cell_size: tuple[float, float] | None = None
) -> np.ndarray:
    """YOLO-style cells ``(cx, cy, w, h)``, row-major, each repeated ``boxes_per_cell`` times.

    ``cell_size`` is the normalised ``(w, h)`` of one cell; by default the grid tiles the
    input exactly (``1 / grid_w``, ``1 / grid_h``). A model whose input side is not a
    multiple of its stride passes ``(stride / width, stride / height)`` so the cells match
    the feature map (the last row / column then reaches past the image edge).
    """
    if grid_h < 1 or grid_w < 1 or boxes_per_cell < 1:
        raise ValueError(f"grid {grid_h}x{grid_w} with {boxes_per_cell} boxes per cell is empty")
    cw, ch = (1.0 / grid_w, 1.0 / grid_h) if cell_size is None else (float(cell_size[0]), float(cell_size[1]))
    ys, xs = np.meshgrid(np.arange(grid_h, dtype=np.float64), np.arange(grid_w, dtype=np.float64), indexing="ij")
    cells = np.stack([(xs.ravel() + 0.5) * cw, (ys.ravel() + 0.5) * ch, np.full(xs.size, cw), np.full(xs.size, ch)], 1)
    return np.repeat(cells, boxes_per_cell, axis=0).astype(np.float32)


def stride_grid_cells(height: int, width: int, stride: int, boxes_per_cell: int = 1) -> np.ndarray:
    """:func:`grid_cells` of a stride-``stride`` feature map on a ``height x width`` input."""
    return grid_cells(
        feature_size(height, stride), feature_size(width, stride), boxes_per_cell, (stride / width, stride / height)
    )


def _centred_iou(wh: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """IoU of boxes sharing one centre: ``(N, 2)`` vs ``(K, 2)`` sizes -> ``(N, K)``."""
    inter = np.minimum(wh[:, None, 0], centres[None, :, 0]) * np.minimum(wh[:, None, 1], centres[None, :, 1])
    union = wh[:, None, 0] * wh[:, None, 1] + centres[None, :, 0] * centres[None, :, 1] - inter
    return inter / union


def fit_templates(box_wh, k: int, seed: int = 0, max_iter: int = 100, n_init: int = 3) -> np.ndarray:
    """Cluster face sizes into ``k`` templates: k-means on ``(w, h)`` with ``1 - IoU`` distance.

    Why IoU: a template's job is to overlap its faces, and ``1 - IoU`` of centred boxes
    (the distance of Tiny Faces' k-medoids, ``rect_dist.m``, and of YOLOv2's dimension
    clusters) weighs a 2-pixel error on a 10-pixel face like a 20-pixel error on a
    100-pixel face, which Euclidean (w, h) distance does not. Centres are the member means.
    Seeding is k-means++ from ``numpy.random.default_rng(seed)``; the best of ``n_init``
    runs (highest mean IoU) is kept, so the result is a pure function of the inputs.

    Returns ``(k, 2)`` float32 ``(w, h)``, largest area first (the official order).
    """
    wh = np.asarray(box_wh, dtype=np.float64)
    if wh.ndim != 2 or wh.shape[1] != 2:
        raise ValueError(f"box_wh must be (N, 2) widths and heights, got shape {wh.shape}")
    if not np.all(np.isfinite(wh)) or np.any(wh <= 0):
        raise ValueError("box_wh must hold finite, positive widths and heights")
    if not 1 <= k <= len(wh):
        raise ValueError(f"cannot fit {k} templates to {len(wh)} boxes")
    rng = np.random.default_rng(seed)
    best, best_score = None, -np.inf
    for _ in range(max(1, n_init)):
        centres = _kmeanspp(wh, k, rng)
        assign = None
        for _ in range(max_iter):
            iou = _centred_iou(wh, centres)
            new = iou.argmax(1)
            if assign is not None and np.array_equal(new, assign):
                break
            assign = new
            for j in range(k):
                members = wh[assign == j]
                if len(members):
                    centres[j] = members.mean(0)
                else:  # empty cluster: move it to the worst-served box
                    centres[j] = wh[iou.max(1).argmin()]
        score = float(_centred_iou(wh, centres).max(1).mean())
        if score > best_score:
            best, best_score = centres.copy(), score
    order = np.argsort(-(best[:, 0] * best[:, 1]), kind="stable")
    return best[order].astype(np.float32)


def _kmeanspp(wh: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding under the ``1 - IoU`` distance."""
    centres = [wh[rng.integers(len(wh))]]
    for _ in range(1, k):
        d = 1.0 - _centred_iou(wh, np.asarray(centres)).max(1)
        p = d**2
        total = p.sum()
        idx = rng.integers(len(wh)) if total <= 0 else rng.choice(len(wh), p=p / total)
        centres.append(wh[idx])
    return np.asarray(centres, dtype=np.float64)
