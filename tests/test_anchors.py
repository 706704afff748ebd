"""Anchor generators: counts from the papers, hand-computed positions and sizes, order."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facespot import anchors as A
from facespot import boxes as B


def test_feature_size_is_ceil():
    assert A.feature_size(1024, 32) == 32
    assert A.feature_size(1000, 32) == 32
    assert A.feature_size(1025, 32) == 33
    assert A.feature_size(64, 128) == 1


def test_faceboxes_count_1024():
    # FaceBoxes section 3.3: 21 anchors per inception3 cell, 1 on conv3_2 / conv4_2.
    a = A.faceboxes_anchors(1024, 1024)
    assert a.shape == (32 * 32 * 21 + 16 * 16 * 1 + 8 * 8 * 1, 4) == (21824, 4)
    assert a.dtype == np.float32


def test_faceboxes_count_non_square():
    # 480x640: 15x20 cells at stride 32, 8x10 at 64, 4x5 at 128
    assert len(A.faceboxes_anchors(480, 640)) == 15 * 20 * 21 + 8 * 10 + 4 * 5


def test_faceboxes_first_cell_templates_hand_computed():
    a = A.faceboxes_anchors(1024, 1024) * 1024  # back to pixels
    cell = a[:21]
    # 16 anchors of side 32 on a 4x4 sub-grid at 4, 12, 20, 28 px (row-major: y outer)
    xs = [4, 12, 20, 28]
    expect32 = np.array([(x, y, 32, 32) for y in xs for x in xs], np.float32)
    np.testing.assert_allclose(cell[:16], expect32, atol=1e-3)
    # 4 anchors of side 64 on a 2x2 sub-grid at 8, 24 px
    expect64 = np.array([(x, y, 64, 64) for y in (8, 24) for x in (8, 24)], np.float32)
    np.testing.assert_allclose(cell[16:20], expect64, atol=1e-3)
    # one anchor of side 128 at the cell centre
    np.testing.assert_allclose(cell[20], [16, 16, 128, 128], atol=1e-3)
    # the next cell is one stride (32 px) to the right, same row
    np.testing.assert_allclose(a[21], [36, 4, 32, 32], atol=1e-3)
    # first cell of the second row
    np.testing.assert_allclose(a[32 * 21], [4, 36, 32, 32], atol=1e-3)
    # conv3_2 and conv4_2 levels start after all 21504 inception3 anchors
    np.testing.assert_allclose(a[21504], [32, 32, 256, 256], atol=1e-3)
    np.testing.assert_allclose(a[21504 + 256], [64, 64, 512, 512], atol=1e-3)


def test_faceboxes_normalised_per_side():
    a = A.faceboxes_anchors(480, 640)
    # a 32 px anchor is 32/640 wide and 32/480 tall in normalised units
    np.testing.assert_allclose(a[0, 2:], [32 / 640, 32 / 480], rtol=1e-6)


@pytest.mark.parametrize("side", [32, 64, 128, 256, 512])
def test_faceboxes_densification_covers_every_position(side):
    """Densification makes every scale equally dense: a square face of a listed side
    anywhere in the image has an anchor within 1/8 of its side in x and y, i.e. an
    IoU of at least (7/8)^2 / (2 - (7/8)^2) = 0.620 (without it, 32 px faces could
    drop to 0.14)."""
    rng = np.random.default_rng(side)
    a = A.faceboxes_anchors(1024, 1024) * 1024
    a = a[np.isclose(a[:, 2], side)]
    c = rng.uniform(side / 2, 1024 - side / 2, size=(200, 2))
    faces = np.concatenate([c - side / 2, c + side / 2], axis=1).astype(np.float32)
    best = B.iou(faces, B.cxcywh_to_xyxy(a)).max(axis=1)
    bound = (7 / 8) ** 2 / (2 - (7 / 8) ** 2)
    assert best.min() >= bound - 1e-4


def test_ssd_scale_templates_hand_computed():
    groups = A.ssd_scale_templates((8, 16, 16, 16), 0.1484375, 0.75)
    assert [g[0] for g in groups] == [8, 16]
    s = [0.1484375 + (0.75 - 0.1484375) * i / 3 for i in range(4)]
    sides0 = [w for w, _ in groups[0][1]]
    assert sides0 == pytest.approx([s[0], math.sqrt(s[0] * s[1])])
    sides1 = [w for w, _ in groups[1][1]]
    expect1 = [s[1], math.sqrt(s[1] * s[2]), s[2], math.sqrt(s[2] * s[3]), s[3], math.sqrt(s[3] * 1.0)]
    assert sides1 == pytest.approx(expect1)
    # aspect ratio 2 gives w = s * sqrt(2), h = s / sqrt(2)
    (_, sizes), = A.ssd_scale_templates((8,), 0.2, 0.2, aspect_ratios=(2.0,), interpolated_scale=False)
    assert sizes[0] == pytest.approx((0.2 * math.sqrt(2), 0.2 / math.sqrt(2)))


@pytest.mark.parametrize("variant,size", [("front", 128), ("back", 256)])
def test_blazeface_896(variant, size):
    # BlazeFace section 2.2: 2 anchors per cell at 16x16, 6 at 8x8 -> 896
    a = A.blazeface_anchors(size, size, variant)
    assert a.shape == (16 * 16 * 2 + 8 * 8 * 6, 4) == (896, 4)
    # first anchor: centre of cell (0, 0) of the 16x16 map
    assert a[0, :2] == pytest.approx([0.5 / 16, 0.5 / 16])
    # first anchor of the 8x8 map, and its cell-mates share the centre
    assert a[512, :2] == pytest.approx([0.5 / 8, 0.5 / 8])
    np.testing.assert_allclose(a[512:518, :2], np.tile(a[512, :2], (6, 1)))
    # the second cell of the first row
    assert a[2, :2] == pytest.approx([1.5 / 16, 0.5 / 16])


def test_blazeface_front_sizes_pixels():
    a = A.blazeface_anchors(128, 128, "front") * 128
    assert a[0, 2] == pytest.approx(0.1484375 * 128)  # 19 px
    assert a[512, 2] == pytest.approx((0.1484375 + (0.75 - 0.1484375) / 3) * 128)
    assert a[517, 2] == pytest.approx(math.sqrt(0.75) * 128)


def test_blazeface_unknown_variant():
    with pytest.raises(ValueError):
        A.blazeface_anchors(128, 128, "side")


def test_densified_templates_mismatched_lengths():
    with pytest.raises(ValueError):
        A.densified_templates(32, (32, 64), (4,))
