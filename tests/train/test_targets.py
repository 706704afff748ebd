"""Anchor matching and grid assignment, checked against hand-worked numbers."""

import math

import numpy as np
import torch

from facespot import boxes as B
from facespot.train.targets import IGNORE, POSITIVE, assign_grid, build_targets, encode_grid, match_anchors


def _anchors():
    # Four 0.25-wide anchors centred on a 2x2 grid, plus one big anchor in the middle.
    return torch.tensor(
        [[0.25, 0.25, 0.25, 0.25], [0.75, 0.25, 0.25, 0.25], [0.25, 0.75, 0.25, 0.25], [0.75, 0.75, 0.25, 0.25], [0.5, 0.5, 0.8, 0.8]]
    )


def test_threshold_and_ignore_band():
    anchors = B.cxcywh_to_xyxy(_anchors())
    # Face = anchor 0 exactly -> IoU 1 with anchor 0; IoU with the big anchor = 0.0625/0.64.
    gt = torch.tensor([[0.125, 0.125, 0.375, 0.375]])
    labels, matched = match_anchors(gt, anchors, pos_iou=0.5, neg_iou=0.05)
    assert labels.tolist() == [POSITIVE, 0, 0, 0, IGNORE]  # 0.0977 is in [0.05, 0.5)
    assert matched[0] == 0


def test_every_face_gets_its_best_anchor_even_below_threshold():
    anchors = B.cxcywh_to_xyxy(_anchors())
    # A tiny face inside anchor 3: IoU = 0.01 / 0.0625 = 0.16 < 0.35, still matched.
    gt = torch.tensor([[0.70, 0.70, 0.80, 0.80]])
    labels, matched = match_anchors(gt, anchors, pos_iou=0.35)
    iou = B.iou(gt, anchors)[0]
    assert math.isclose(float(iou[3]), 0.16, rel_tol=1e-5)
    assert labels.tolist() == [0, 0, 0, POSITIVE, 0]


def test_encoded_targets_decode_back_and_landmarks_masked():
    anchors = _anchors()
    gt = torch.tensor([[0.1, 0.12, 0.4, 0.36]])
    pts = torch.tensor([[[0.2, 0.2], [0.3, 0.2], [float("nan"), float("nan")], [0.25, 0.3]]])  # 4 points, one missing
    t = build_targets([gt], anchors, "ssd", (0.1, 0.2), [pts], num_keypoints=6, pos_iou=0.35)
    pos = t.labels[0] == POSITIVE
    assert pos.tolist() == [True, False, False, False, False]
    back = B.decode(t.boxes[0, pos], anchors[pos], (0.1, 0.2))
    assert torch.allclose(back, gt, atol=1e-6)
    # hand value: cx=0.25, anchor cx=0.25 -> 0; w=0.3 -> log(0.3/0.25)/0.2
    assert math.isclose(float(t.boxes[0, 0, 2]), math.log(0.3 / 0.25) / 0.2, rel_tol=1e-5)
    # 6-point model, Caltech-like 4 points with one NaN -> mask [1,1,0,1,0,0]
    assert t.point_mask[0, 0].tolist() == [True, True, False, True, False, False]
    assert not t.point_mask[0, 1:].any()
    p = B.decode_points(t.points[0, 0], anchors[0], 0.1)
    assert torch.allclose(p[0], pts[0, 0]) and torch.allclose(p[3], pts[0, 3])


def test_empty_image_is_all_background():
    t = build_targets([torch.zeros(0, 4)], _anchors())
    assert t.num_positive == 0 and (t.labels == 0).all()


def test_grid_centre_cell_is_responsible():
    # 2x2 grid, two predictors per cell (cells repeated).
    cells = torch.tensor([[0.25, 0.25, 0.5, 0.5], [0.75, 0.25, 0.5, 0.5], [0.25, 0.75, 0.5, 0.5], [0.75, 0.75, 0.5, 0.5]])
    cells = cells.repeat_interleave(2, 0)  # predictors 2k, 2k+1 belong to cell k
    gt = torch.tensor([[0.6, 0.1, 0.8, 0.3], [0.55, 0.05, 0.95, 0.45], [0.0, 0.5, 0.2, 0.7]])
    labels, matched = assign_grid(gt, cells)
    # faces 0 and 1 have centres (0.7,0.2), (0.75,0.25) -> cell 1; face 2 centre (0.1,0.6) -> cell 2
    assert torch.nonzero(labels).flatten().tolist() == [2, 3, 4]
    assert matched[2] == 1  # the larger face takes the first predictor
    assert matched[3] == 0 and matched[4] == 2
    # A centre on the border x=0.5 belongs to the right cell (half-open cells).
    lab, _ = assign_grid(torch.tensor([[0.4, 0.1, 0.6, 0.2]]), cells)
    assert torch.nonzero(lab).flatten().tolist() == [2]


def test_grid_prefers_predictor_with_best_current_box():
    cells = torch.tensor([[0.5, 0.5, 1.0, 1.0], [0.5, 0.5, 1.0, 1.0]])
    gt = torch.tensor([[0.4, 0.4, 0.6, 0.6]])
    pred = torch.tensor([[0.0, 0.0, 0.1, 0.1], [0.38, 0.4, 0.6, 0.62]])
    labels, _ = assign_grid(gt, cells, pred)
    assert labels.tolist() == [0, 1]


def test_grid_encoding_inverts_decode_grid():
    cells = torch.tensor([[0.75, 0.25, 0.5, 0.5]])
    gt = torch.tensor([[0.6, 0.1, 0.8, 0.3]])
    s = encode_grid(gt, cells)
    assert torch.allclose(s, torch.tensor([[0.4, 0.4, 0.2, 0.2]]), atol=1e-6)
    logit = torch.log(s / (1 - s))
    assert torch.allclose(B.decode_grid(logit, cells), gt, atol=1e-6)
    t = build_targets([gt], cells, "grid")
    assert t.labels.tolist() == [[1]] and torch.allclose(t.boxes[0, 0], s[0])


def test_grid_reach_assigns_the_neighbours_whose_reach_covers_the_centre():
    """4x4 grid of 0.25 cells, one predictor each; a face centred at (0.30, 0.40), in cell (row 1,
    col 1). With reach 0.5 a cell covers its own span +- 0.125: in x, col 0 reaches to 0.375 and
    col 2 starts at 0.375, so cols 0 and 1; in y, row 0 reaches to 0.375 and row 2 starts there,
    so rows 1 and 2: four cells, each taught to box the face."""
    side = 0.25
    cells = torch.tensor([[(c + 0.5) * side, (r + 0.5) * side, side, side] for r in range(4) for c in range(4)])
    gt = torch.tensor([[0.25, 0.30, 0.35, 0.50]])  # centre (0.30, 0.40)
    own, _ = assign_grid(gt, cells)
    assert torch.nonzero(own).flatten().tolist() == [1 * 4 + 1]  # YOLOv1: the centre's cell only
    wide, matched = assign_grid(gt, cells, reach=0.5)
    assert sorted(torch.nonzero(wide).flatten().tolist()) == [1 * 4 + 0, 1 * 4 + 1, 2 * 4 + 0, 2 * 4 + 1]
    assert (matched[wide == POSITIVE] == 0).all()
    # each assigned cell's target decodes back to the face, though only one cell holds its centre
    pos = torch.nonzero(wide).flatten()
    s = encode_grid(gt.expand(len(pos), 4), cells[pos], reach=0.5)
    assert ((s > 0) & (s < 1)).all()
    logit = torch.log(s / (1 - s))
    assert torch.allclose(B.decode_grid(logit, cells[pos], reach=0.5), gt.expand(len(pos), 4), atol=1e-5)
    t = build_targets([gt], cells, "grid", grid_reach=0.5)
    assert t.num_positive == 4


def test_numpy_anchor_input_shape_contract():
    # models return NumPy anchors; the loop converts once: a float64 array must work too
    a = torch.from_numpy(np.asarray(_anchors().numpy(), dtype=np.float64))
    t = build_targets([torch.tensor([[0.1, 0.1, 0.4, 0.4]])], a)
    assert t.boxes.dtype == torch.float32 and t.num_positive >= 1


# ---------------------------------------------------------------- batched assignment, ATSS

from facespot import anchors as anchor_gen  # noqa: E402
from facespot import boxes as B  # noqa: E402
from facespot.train.targets import atss_assign_batch, match_anchors_batch, stack_faces  # noqa: E402


def test_batched_iou_matching_equals_matching_each_image():
    g = torch.Generator().manual_seed(0)
    anchors = torch.from_numpy(anchor_gen.faceboxes_anchors(256, 256))
    axyxy = B.cxcywh_to_xyxy(anchors)
    faces = []
    for n in (3, 0, 7, 1):
        c = torch.rand(n, 2, generator=g)
        s = torch.rand(n, 1, generator=g) * 0.4 + 0.03
        faces.append(torch.cat([c - s / 2, c + s / 2], 1))
    gt, img = stack_faces(faces, torch.device("cpu"))
    labels, matched = match_anchors_batch(gt, img, len(faces), axyxy, 0.35, 0.2)
    start = 0
    for i, f in enumerate(faces):
        lab, idx = match_anchors(f, axyxy, 0.35, 0.2)
        assert torch.equal(labels[i], lab)
        pos = lab == POSITIVE
        assert torch.equal(matched[i][pos] - start, idx[pos])
        start += len(f)


def _spot_anchors(size=480):
    a = torch.from_numpy(anchor_gen.pyramid_anchors(size, size))
    return a, anchor_gen.level_sizes(size, size)


def test_atss_positives_sit_inside_the_face_on_the_level_that_fits_it():
    anchors, sizes = _spot_anchors()
    for side, level in ((20, 0), (90, 1), (300, 2)):
        c = 240.0
        face = torch.tensor([[c - side / 2, c - side / 2, c + side / 2, c + side / 2]]) / 480
        labels, matched = atss_assign_batch(face, torch.zeros(1, dtype=torch.long), 1, anchors, sizes, aspect=(480, 480))
        pos = torch.nonzero(labels[0] == POSITIVE).flatten()
        assert 1 <= len(pos) <= 3 * 9
        centres = anchors[pos, :2]
        assert ((centres > face[0, :2]) & (centres < face[0, 2:])).all()
        bounds = np.cumsum([0] + sizes)
        levels = np.searchsorted(bounds, pos.numpy(), side="right") - 1
        assert np.bincount(levels, minlength=3).argmax() == level, (side, levels)


def test_atss_tiny_face_ignored_small_face_forced_and_overlap_goes_to_best_fit():
    anchors, sizes = _spot_anchors()
    tiny = torch.tensor([[100.0, 100.0, 103.0, 103.0]]) / 480   # 3 px: neither face nor background
    small = torch.tensor([[300.0, 300.0, 306.0, 306.0]]) / 480  # 6 px: no anchor passes, keeps its best
    labels, matched = atss_assign_batch(torch.cat([tiny, small]), torch.zeros(2, dtype=torch.long), 1, anchors, sizes,
                                        aspect=(480, 480), ignore_below=5)
    assert (labels[0] == IGNORE).sum() >= 1
    pos = torch.nonzero(labels[0] == POSITIVE).flatten()
    assert len(pos) >= 1 and (matched[0, pos] == 1).all()
    # two faces of one image sharing candidates: each anchor regresses to the face it overlaps most
    a = torch.tensor([[200.0, 200.0, 260.0, 260.0], [210.0, 205.0, 262.0, 262.0]]) / 480
    labels, matched = atss_assign_batch(a, torch.zeros(2, dtype=torch.long), 1, anchors, sizes, aspect=(480, 480))
    pos = labels[0] == POSITIVE
    ious = B.iou(a, B.cxcywh_to_xyxy(anchors[pos]))
    assert torch.equal(matched[0, pos], ious.argmax(0))


def test_atss_targets_decode_to_their_faces_across_a_batch():
    anchors, sizes = _spot_anchors(256)
    faces = [torch.tensor([[0.1, 0.1, 0.3, 0.35]]), torch.zeros(0, 4), torch.tensor([[0.5, 0.5, 0.9, 0.8], [0.2, 0.6, 0.25, 0.66]])]
    t = build_targets(faces, anchors, "ssd", (0.1, 0.2), assigner="atss", level_sizes=sizes, aspect=(256, 256))
    assert (t.labels[1] == 0).all()
    pos = t.labels == POSITIVE
    dec = B.decode(t.boxes[pos], anchors.expand(3, -1, -1)[pos], (0.1, 0.2))
    assert torch.allclose(dec, t.gt_boxes[pos], atol=1e-5)
    for i, f in enumerate(faces):
        got = {tuple(r.tolist()) for r in t.gt_boxes[i][t.labels[i] == POSITIVE]}
        assert got == {tuple(r.tolist()) for r in f}  # every face learned, in its own image only
