"""Box math: every number here is computed by hand."""

import numpy as np
import pytest
import torch

from facespot import boxes as B


def test_format_conversions_are_inverse():
    xywh = np.array([[10.0, 20.0, 5.0, 8.0]])
    xyxy = B.xywh_to_xyxy(xywh)
    np.testing.assert_allclose(xyxy, [[10, 20, 15, 28]])
    np.testing.assert_allclose(B.xyxy_to_xywh(xyxy), xywh)
    np.testing.assert_allclose(B.xyxy_to_cxcywh(xyxy), [[12.5, 24, 5, 8]])
    np.testing.assert_allclose(B.cxcywh_to_xyxy(B.xyxy_to_cxcywh(xyxy)), xyxy)


def test_iou_hand_values():
    a = np.array([[0, 0, 10, 10], [0, 0, 2, 2]], np.float32)
    b = np.array([[5, 5, 15, 15], [0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    got = B.iou(a, b)
    # 25 / (100 + 100 - 25); identical; disjoint.  Small box inside big: 4 / 100.
    np.testing.assert_allclose(got, [[25 / 175, 1.0, 0.0], [0.0, 0.04, 0.0]], rtol=1e-6)


def test_iou_pixel_inclusive_matches_official_matlab_convention():
    a = np.array([[0, 0, 9, 9]], np.float32)  # 10x10 pixels when x2 is inclusive
    b = np.array([[5, 5, 14, 14]], np.float32)
    np.testing.assert_allclose(B.iou(a, b, pixel_inclusive=True), [[25 / 175]], rtol=1e-6)


def test_iou_torch_and_numpy_agree():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 50, (7, 2))
    a = np.concatenate([a, a + rng.uniform(1, 30, (7, 2))], 1).astype(np.float32)
    b = a[::-1].copy() + 3
    got_t = B.iou(torch.from_numpy(a), torch.from_numpy(b))
    assert isinstance(got_t, torch.Tensor)
    np.testing.assert_allclose(got_t.numpy(), B.iou(a, b), rtol=1e-6)


def test_encode_hand_values_and_decode_round_trip():
    anchors = np.array([[0.5, 0.5, 0.2, 0.2]], np.float32)
    box = np.array([[0.42, 0.44, 0.62, 0.64]], np.float32)  # centre (0.52, 0.54), size 0.2 x 0.2
    t = B.encode(box, anchors, (0.1, 0.2))
    np.testing.assert_allclose(t, [[0.02 / 0.02, 0.04 / 0.02, 0.0, 0.0]], atol=1e-5)
    np.testing.assert_allclose(B.decode(t, anchors, (0.1, 0.2)), box, atol=1e-6)


@pytest.mark.parametrize("as_torch", [False, True])
def test_decode_inverts_encode_on_random_boxes(as_torch):
    rng = np.random.default_rng(1)
    anchors = np.concatenate([rng.uniform(0.1, 0.9, (50, 2)), rng.uniform(0.02, 0.5, (50, 2))], 1).astype(np.float32)
    c = anchors + rng.normal(0, 0.02, anchors.shape).astype(np.float32)
    c[:, 2:] = np.abs(c[:, 2:]) + 0.01
    boxes = B.cxcywh_to_xyxy(c)
    if as_torch:
        anchors_t, boxes_t = torch.from_numpy(anchors), torch.from_numpy(boxes)
        back = B.decode(B.encode(boxes_t, anchors_t), anchors_t).numpy()
    else:
        back = B.decode(B.encode(boxes, anchors), anchors)
    np.testing.assert_allclose(back, boxes, atol=1e-5)


def test_points_round_trip():
    anchors = np.array([[0.5, 0.5, 0.2, 0.4]], np.float32)
    pts = np.array([[[0.45, 0.4], [0.55, 0.4], [0.5, 0.6]]], np.float32)
    t = B.encode_points(pts, anchors)
    np.testing.assert_allclose(t[0, 0], [-0.05 / 0.02, -0.1 / 0.04], atol=1e-5)
    np.testing.assert_allclose(B.decode_points(t, anchors), pts, atol=1e-6)


def test_decode_grid_zero_deltas_gives_cell_centre_and_half_image():
    cells = np.array([[0.25, 0.75, 0.5, 0.5]], np.float32)
    got = B.decode_grid(np.zeros((1, 4), np.float32), cells)
    # sigmoid(0) = 0.5: centre = cell origin + half a cell = cell centre, size = 0.5 of the image
    np.testing.assert_allclose(got, [[0.0, 0.5, 0.5, 1.0]], atol=1e-6)



def test_decode_grid_reach_lets_a_centre_leave_its_cell():
    """reach 0.5 (YOLOv5): the offset runs from half a cell before the cell to half a cell after it."""
    cells = np.array([[0.5, 0.5, 0.2, 0.2]], np.float32)  # cell spans 0.4..0.6
    lo = B.decode_grid(np.array([[-50.0, -50.0, 0.0, 0.0]], np.float32), cells, reach=0.5)
    hi = B.decode_grid(np.array([[50.0, 50.0, 0.0, 0.0]], np.float32), cells, reach=0.5)
    mid = B.decode_grid(np.zeros((1, 4), np.float32), cells, reach=0.5)
    centre = lambda b: (b[0, :2] + b[0, 2:]) / 2  # noqa: E731
    np.testing.assert_allclose(centre(lo), [0.3, 0.3], atol=1e-6)  # 0.4 - half a cell
    np.testing.assert_allclose(centre(hi), [0.7, 0.7], atol=1e-6)
    np.testing.assert_allclose(centre(mid), [0.5, 0.5], atol=1e-6)  # sigmoid 0.5 is still the cell centre
    np.testing.assert_allclose(centre(B.decode_grid(np.array([[-50.0, -50.0, 0, 0]], np.float32), cells)), [0.4, 0.4], atol=1e-6)

def test_clip_and_area():
    b = np.array([[-5, 2, 12, 30]], np.float32)
    np.testing.assert_allclose(B.clip(b, 10, 20), [[0, 2, 10, 20]])
    np.testing.assert_allclose(B.area(np.array([[0, 0, 3, 4], [5, 5, 4, 4]], np.float32)), [12, 0])


def test_nms_keeps_best_of_each_cluster():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9]], np.float32)
    scores = np.array([0.9, 0.95, 0.5, 0.1], np.float32)
    # IoU(1, 0) = 81/119 = 0.68 > 0.3: suppressed; box 3 overlaps box 1 by 72/118: suppressed.
    np.testing.assert_array_equal(B.nms(boxes, scores, 0.3), [1, 2])
    np.testing.assert_array_equal(B.nms(boxes, scores, 0.3, max_out=1), [1])
    # A threshold above every overlap keeps all boxes, in score order.
    np.testing.assert_array_equal(B.nms(boxes, scores, 0.99), [1, 0, 2, 3])
    assert B.nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32)).size == 0


def test_blending_nms_averages_cluster_by_score():
    boxes = np.array([[0, 0, 10, 10], [2, 0, 12, 10], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.75, 0.25, 0.5], np.float32)
    pts = np.array([[[0, 0]], [[4, 0]], [[55, 55]]], np.float32)
    out_b, out_s, out_p = B.blending_nms(boxes, scores, 0.3, points=pts)
    # IoU(0, 1) = 80 / 120 > 0.3: merged with weights 0.75 / 0.25 -> x shifted by 0.25 * 2.
    np.testing.assert_allclose(out_b, [[0.5, 0, 10.5, 10], [50, 50, 60, 60]], atol=1e-6)
    np.testing.assert_allclose(out_s, [0.75, 0.5])
    np.testing.assert_allclose(out_p, [[[1, 0]], [[55, 55]]], atol=1e-6)


def test_blending_nms_empty():
    b, s, p = B.blending_nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))
    assert b.shape == (0, 4) and s.shape == (0,) and p is None
