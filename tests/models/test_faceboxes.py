"""FaceBoxes: shapes, the head/anchor layout, hand-checked blocks, the coding round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facespot import boxes as B
from facespot import models
from facespot.models.faceboxes import ANCHORS_PER_CELL, LEVEL_CHANNELS, FaceBoxes
from facespot.models.layers import CReLU, ConvBNAct


@pytest.fixture(scope="module")
def model() -> FaceBoxes:
    torch.manual_seed(0)
    return models.build("faceboxes").eval()


def test_registered_with_contract(model):
    assert model.config == {"name": "faceboxes"}
    assert model.fixed_input_size is None
    assert model.train_input_size == (1024, 1024)
    assert model.num_keypoints == 0
    assert model.suppression == "hard"
    assert ANCHORS_PER_CELL == (21, 1, 1)


@pytest.mark.parametrize("hw", [(320, 320), (480, 640), (1024, 1024), (333, 517)])
def test_output_shapes_match_anchors(model, hw):
    torch.set_num_threads(1)
    with torch.no_grad():
        out = model(torch.zeros(1, 3, *hw))
    a = model.anchors(*hw)
    assert len(out) == 2
    assert out[0].shape == (1, len(a), 4)
    assert out[1].shape == (1, len(a))
    if hw == (1024, 1024):
        assert len(a) == 21824


def test_feature_strides(model):
    with torch.no_grad():
        feats = model.features(torch.zeros(1, 3, 480, 640))
    assert [tuple(f.shape[1:]) for f in feats] == [(128, 15, 20), (256, 8, 10), (256, 4, 5)]


def test_crelu_doubles_channels_hand_computed():
    x = torch.tensor([[[[1.0, -2.0]], [[-3.0, 4.0]]]])  # (1, 2, 1, 2)
    y = CReLU()(x)
    expect = torch.tensor([[[[1.0, 0.0]], [[0.0, 4.0]], [[0.0, 2.0]], [[3.0, 0.0]]]])
    assert torch.equal(y, expect)
    assert ConvBNAct(3, 24, 7, 4, act="crelu").out_channels == 48


def test_logit_is_face_minus_background(model):
    """The 2-way softmax face probability equals sigmoid(logit)."""
    feats = [torch.randn(1, c, 2, 3) for c in LEVEL_CHANNELS]
    with torch.no_grad():
        _, logits = model.head(feats)
        raw = torch.cat([model.conf[i](f).permute(0, 2, 3, 1).reshape(1, -1, 2) for i, f in enumerate(feats)], 1)
    torch.testing.assert_close(logits.sigmoid(), raw.softmax(-1)[..., 1])


def test_head_layout_matches_anchor_order():
    """Make the box head echo (column, row, anchor slot) of each output, then check that
    anchor i of faceboxes_anchors lies in that cell and has that slot's size."""
    h, w = 320, 480  # non-square so a row/column swap would show
    m = FaceBoxes().eval()
    feats = []
    for c, stride in zip(LEVEL_CHANNELS, (32, 64, 128)):
        fh, fw = -(-h // stride), -(-w // stride)
        f = torch.zeros(1, c, fh, fw)
        f[0, 0] = torch.arange(fw, dtype=torch.float32).view(1, fw)
        f[0, 1] = torch.arange(fh, dtype=torch.float32).view(fh, 1)
        feats.append(f)
    with torch.no_grad():
        for loc, k in zip(m.loc, ANCHORS_PER_CELL):
            loc.weight.zero_()
            loc.bias.zero_()
            for j in range(k):
                loc.weight[4 * j + 0, 0, 1, 1] = 1.0  # centre tap copies the column
                loc.weight[4 * j + 1, 1, 1, 1] = 1.0  # ... and the row
                loc.bias[4 * j + 2] = j  # anchor slot within the cell
        deltas, _ = m.head(feats)
    d = deltas[0].numpy()
    a = m.anchors(h, w)
    assert len(a) == len(d)
    start = 0
    for (stride, sizes, dens), f in zip(((32, (32, 64, 128), (4, 2, 1)), (64, (256,), (1,)), (128, (512,), (1,))), feats):
        slot_sizes = [s for s, n in zip(sizes, dens) for _ in range(n * n)]
        n = f.shape[2] * f.shape[3] * len(slot_sizes)
        seg_d, seg_a = d[start : start + n], a[start : start + n]
        col = np.floor(seg_a[:, 0] * w / stride)
        row = np.floor(seg_a[:, 1] * h / stride)
        np.testing.assert_array_equal(seg_d[:, 0], col)
        np.testing.assert_array_equal(seg_d[:, 1], row)
        expect_side = np.asarray(slot_sizes)[seg_d[:, 2].astype(int)]
        np.testing.assert_allclose(seg_a[:, 2] * w, expect_side, rtol=1e-5)
        start += n
    assert start == len(a)


def test_encode_decode_round_trip_with_real_anchors(model):
    h, w = 480, 640
    a = model.anchors(h, w)
    faces_px = np.array([[100, 80, 140, 130], [300, 200, 420, 350], [10, 10, 30, 28]], np.float32)
    faces = faces_px / np.array([w, h, w, h], np.float32)
    best = B.iou(faces, B.cxcywh_to_xyxy(a)).argmax(axis=1)
    t = B.encode(faces, a[best], model.coding.variances)
    assert np.abs(t).max() < 10  # matched anchors are close, deltas small
    # a network that outputs exactly these deltas at the matched anchors decodes to the faces
    deltas = np.zeros((1, len(a), 4), np.float32)
    deltas[0, best] = t
    logits = np.full((1, len(a)), -10.0, np.float32)
    logits[0, best] = 10.0
    boxes, scores, points = models.decode_outputs((deltas, logits), a, model.coding)
    assert points is None
    np.testing.assert_allclose(boxes[0, best], faces, atol=1e-5)
    assert set(np.flatnonzero(scores[0] > 0.5)) == set(best.tolist())
