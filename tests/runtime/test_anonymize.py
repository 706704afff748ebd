"""Blur / pixelate change pixels inside the grown box (or its ellipse) only."""

from __future__ import annotations

import numpy as np
import pytest

from facespot.errors import FacespotError
from facespot.runtime.anonymize import anonymize, cover_mask, grow_box


def test_grow_box_hand_computed():
    assert grow_box((10, 20, 30, 60), 0.2, 100, 100) == (6, 12, 34, 68)  # 4 px and 8 px per side
    assert grow_box((0, 0, 10, 10), 0.5, 12, 12) == (0, 0, 12, 12)  # clipped
    assert grow_box((50, 50, 60, 60), 0.0, 40, 40) is None  # outside the image


@pytest.mark.parametrize("method", ["gaussian", "pixelate"])
def test_only_inside_changes(method):
    img = np.random.default_rng(0).integers(0, 255, (80, 100, 3), dtype=np.uint8)
    out = anonymize(img, [(20, 10, 60, 50)], method, margin=0.25, shape="box")  # grown: (10, 0, 70, 60)
    mask = np.zeros((80, 100), bool)
    mask[0:60, 10:70] = True
    assert np.array_equal(out[~mask], img[~mask])
    assert np.abs(out[mask].astype(int) - img[mask]).mean() > 20
    assert out[mask].std() < img[mask].std() / 2  # detail really removed
    assert np.array_equal(img, np.random.default_rng(0).integers(0, 255, (80, 100, 3), dtype=np.uint8))  # input untouched


def test_bad_method():
    with pytest.raises(FacespotError, match="pixelate"):
        anonymize(np.zeros((4, 4, 3), np.uint8), [], "swirl")


@pytest.mark.parametrize("method", ["gaussian", "pixelate"])
def test_ellipse_covers_the_face_and_less_around_it(method):
    """The default shape: the ellipse inscribed in the grown box (centre (40, 40), semi-axes
    0.7 x the 40-px box = 28 px), hand-checked pixels; the face box's middle all covered, the grown
    box's corners untouched, and exactly the pixels of ``cover_mask`` changed."""
    img = np.random.default_rng(1).integers(0, 255, (90, 100, 3), dtype=np.uint8)
    box = (20, 20, 60, 60)
    out = anonymize(img, [box], method, margin=0.2)
    changed = (out != img).any(axis=2)
    mask = cover_mask([box], 0.2, 100, 90)
    assert not changed[~mask].any()  # nothing outside the ellipse
    assert changed[mask].mean() > 0.9  # inside: (almost) every pixel differs
    assert mask[30:50, 30:50].all()  # the middle of the face
    assert mask[40, 12] and mask[40, 67] and mask[12, 40] and mask[67, 40]  # 27.5 px from the centre: inside
    assert not mask[40, 11] and not mask[11, 40] and not mask[40, 68]  # 28.5 px: outside
    assert not mask[12:16, 12:16].any() and not mask[64:68, 64:68].any()  # grown-box corners stay as they were
    assert abs(mask.sum() / (56 * 56) - np.pi / 4) < 0.02  # a fifth less than the box


def test_ellipse_of_a_face_cut_by_the_frame_edge_is_the_whole_face_ellipse():
    mask = cover_mask([(-20, 10, 20, 50)], 0.2, 60, 60)  # centre (0, 30): the right half of its ellipse
    assert mask[30, 0:27].all() and not mask[30, 28:].any()
    assert np.array_equal(mask, cover_mask([(-20, 10, 20, 50)], 0.2, 60, 60, "box") & mask)
    assert cover_mask([(70, 70, 80, 80)], 0.2, 60, 60).sum() == 0  # outside the frame


def test_bad_shape():
    with pytest.raises(FacespotError, match="ellipse"):
        anonymize(np.zeros((4, 4, 3), np.uint8), [], "gaussian", shape="circle")
