"""Blur / pixelate change pixels inside the grown box only."""

from __future__ import annotations

import numpy as np
import pytest

from facespot.errors import FacespotError
from facespot.runtime.anonymize import anonymize, grow_box


def test_grow_box_hand_computed():
    assert grow_box((10, 20, 30, 60), 0.2, 100, 100) == (6, 12, 34, 68)  # 4 px and 8 px per side
    assert grow_box((0, 0, 10, 10), 0.5, 12, 12) == (0, 0, 12, 12)  # clipped
    assert grow_box((50, 50, 60, 60), 0.0, 40, 40) is None  # outside the image


@pytest.mark.parametrize("method", ["gaussian", "pixelate"])
def test_only_inside_changes(method):
    img = np.random.default_rng(0).integers(0, 255, (80, 100, 3), dtype=np.uint8)
    out = anonymize(img, [(20, 10, 60, 50)], method, margin=0.25)  # grown: (10, 0, 70, 60)
    mask = np.zeros((80, 100), bool)
    mask[0:60, 10:70] = True
    assert np.array_equal(out[~mask], img[~mask])
    assert np.abs(out[mask].astype(int) - img[mask]).mean() > 20
    assert out[mask].std() < img[mask].std() / 2  # detail really removed
    assert np.array_equal(img, np.random.default_rng(0).integers(0, 255, (80, 100, 3), dtype=np.uint8))  # input untouched


def test_bad_method():
    with pytest.raises(FacespotError, match="pixelate"):
        anonymize(np.zeros((4, 4, 3), np.uint8), [], "swirl")
