"""BlazeFace front/back: shapes, 896 anchors, keypoints, blocks checked by hand, layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facespot import boxes as B
from facespot import models
from facespot.models.blazeface import ANCHORS_PER_CELL, BlazeBlock, DoubleBlazeBlock

VARIANTS = [("blazeface_front", 128), ("blazeface_back", 256)]


@pytest.mark.parametrize("name,size", VARIANTS)
def test_contract_and_shapes(name, size):
    torch.manual_seed(0)
    m = models.build(name).eval()
    assert m.fixed_input_size == (size, size) == m.train_input_size
    assert m.suppression == "blend"
    assert m.num_keypoints == 6
    assert m.config == {"name": name, "kernel_size": 5}
    with torch.no_grad():
        deltas, logits, points = m(torch.zeros(2, 3, size, size))
    assert deltas.shape == (2, 896, 4)
    assert logits.shape == (2, 896)
    assert points.shape == (2, 896, 6, 2)
    assert len(m.anchors(size, size)) == 896
    with torch.no_grad():
        f16, f8 = m.features(torch.zeros(1, 3, size, size))
    assert f16.shape[2:] == (16, 16) and f8.shape[2:] == (8, 8)


def test_blazeblock_shortcut_by_hand():
    """With the conv branch's last BN scaled to zero the block is relu(shortcut):
    a 2x2 max-pool for stride 2 and zero padding of the new channels."""
    blk = BlazeBlock(2, 4, stride=2).eval()
    with torch.no_grad():
        blk.pw[1].weight.zero_()
        blk.pw[1].bias.zero_()
    x = torch.tensor([[[[1.0, -5.0, 2.0, 0.0], [3.0, 0.5, -1.0, -2.0], [0.0, 0.0, 0.0, 0.0], [-1.0, -1.0, 7.0, 1.0]],
                       [[-1.0, -1.0, -1.0, -1.0], [-2.0, -2.0, -2.0, -2.0], [4.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, -9.0]]]])
    with torch.no_grad():
        y = blk(x)
    expect = torch.zeros(1, 4, 2, 2)
    expect[0, 0] = torch.tensor([[3.0, 2.0], [0.0, 7.0]])
    expect[0, 1] = torch.tensor([[0.0, 0.0], [4.0, 0.0]])  # relu(max(-1,-1,-2,-2)) = 0
    assert torch.equal(y, expect)


def test_double_blazeblock_shapes_and_params():
    blk = DoubleBlazeBlock(48, 24, 96, stride=2)
    y = blk(torch.randn(2, 48, 32, 32))
    assert y.shape == (2, 96, 16, 16)
    convs = [m for m in blk.modules() if isinstance(m, torch.nn.Conv2d)]
    # dw 5x5 on 48, 1x1 48->24, dw 5x5 on 24, 1x1 24->96 (no biases: BN follows each)
    assert [c.weight.numel() for c in convs] == [48 * 25, 48 * 24, 24 * 25, 24 * 96]
    assert convs[0].groups == 48 and convs[2].groups == 24


def test_kernel_size_option_rebuilds():
    m = models.build("blazeface_front", kernel_size=3)
    dw = [c for c in m.modules() if isinstance(c, torch.nn.Conv2d) and c.groups > 1]
    assert dw and all(c.kernel_size == (3, 3) for c in dw)
    assert m.config == {"name": "blazeface_front", "kernel_size": 3}


@pytest.mark.parametrize("name,size", VARIANTS)
def test_head_layout_matches_anchor_order(name, size):
    """Box head echoes (column, row, slot); anchor i must sit in that cell."""
    m = models.build(name).eval()
    per = 4 + 2 * m.num_keypoints
    feats = []
    for n in (16, 8):
        f = torch.zeros(1, 96, n, n)
        f[0, 0] = torch.arange(n, dtype=torch.float32).view(1, n)
        f[0, 1] = torch.arange(n, dtype=torch.float32).view(n, 1)
        feats.append(f)
    with torch.no_grad():
        for reg, k in zip(m.reg, ANCHORS_PER_CELL):
            reg.weight.zero_()
            reg.bias.zero_()
            for j in range(k):
                reg.weight[per * j + 0, 0] = 1.0
                reg.weight[per * j + 1, 1] = 1.0
                reg.bias[per * j + 2] = j
                reg.bias[per * j + 4] = 100 + j  # first keypoint x carries the slot too
        deltas, _, points = m.head(feats)
    d = deltas[0].numpy()
    a = m.anchors(size, size)
    n16 = 16 * 16 * 2
    for seg_d, seg_a, cells, k in ((d[:n16], a[:n16], 16, 2), (d[n16:], a[n16:], 8, 6)):
        np.testing.assert_array_equal(seg_d[:, 0], np.floor(seg_a[:, 0] * cells))
        np.testing.assert_array_equal(seg_d[:, 1], np.floor(seg_a[:, 1] * cells))
        # sizes grow with the slot inside a cell
        sides = seg_a[:k, 2]
        assert np.all(np.diff(sides) > 0)
        np.testing.assert_array_equal(seg_d[:, 2], np.tile(np.arange(k), cells * cells))
    np.testing.assert_array_equal(points[0, :, 0, 0].numpy(), 100 + d[:, 2])


def test_keypoint_round_trip_with_real_anchors():
    m = models.build("blazeface_front")
    a = m.anchors(128, 128)
    face = np.array([[0.30, 0.25, 0.62, 0.70]], np.float32)
    pts = np.array([[[0.40, 0.40], [0.52, 0.40], [0.46, 0.50], [0.46, 0.60], [0.31, 0.45], [0.61, 0.45]]], np.float32)
    i = int(B.iou(face, B.cxcywh_to_xyxy(a)).argmax())
    deltas = np.zeros((1, 896, 4), np.float32)
    points = np.zeros((1, 896, 6, 2), np.float32)
    deltas[0, i] = B.encode(face, a[i : i + 1], m.coding.variances)[0]
    points[0, i] = B.encode_points(pts, a[i : i + 1], m.coding.variances[0])[0]
    boxes, scores, dec_pts = models.decode_outputs((deltas, np.zeros((1, 896), np.float32), points), a, m.coding)
    np.testing.assert_allclose(boxes[0, i], face[0], atol=1e-5)
    np.testing.assert_allclose(dec_pts[0, i], pts[0], atol=1e-5)
    np.testing.assert_allclose(scores, 0.5)
