"""Face-free training data: folders of photos and synthetic frames."""

import cv2
import numpy as np
import pytest

from facespot.data.formats import open_records
from facespot.data.negatives import KINDS, read_record_image, render_synthetic, synthetic_records
from facespot.errors import FacespotError


def test_negatives_folder_gives_faceless_records(tmp_path):
    (tmp_path / "images" / "sub").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "images" / "a.jpg"), np.zeros((20, 30, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "images" / "sub" / "b.png"), np.zeros((20, 30, 3), np.uint8))
    (tmp_path / "images" / "notes.txt").write_text("not an image")
    recs = open_records(tmp_path, "negatives")
    assert [r.name for r in recs] == ["a", "sub/b"] and all(len(r) == 0 for r in recs)
    assert read_record_image(recs[0]).shape == (20, 30, 3)
    with pytest.raises(FacespotError, match="no images"):
        open_records(_empty(tmp_path), "negatives")


def _empty(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    return d


def test_synthetic_frames_are_every_kind_deterministic_and_faceless():
    recs = open_records("ignored", "synthetic", count=2 * len(KINDS), seed=3)
    assert len(recs) == 14 and all(len(r) == 0 for r in recs)
    kinds = [r.name.split(":")[1] for r in recs]
    assert set(kinds) == set(KINDS)
    a, b = read_record_image(recs[5]), render_synthetic(recs[5].name)
    assert np.array_equal(a, b) and a.dtype == np.uint8 and a.ndim == 3
    black = read_record_image(next(r for r in recs if ":black:" in r.name))
    white = read_record_image(next(r for r in recs if ":white:" in r.name))
    assert black.max() == 0 and white.min() == 255
    noise = read_record_image(next(r for r in recs if ":noise:" in r.name))
    assert noise.std() > 3
    with pytest.raises(FacespotError, match="count"):
        synthetic_records(0)
    with pytest.raises(FacespotError, match="do not apply"):
        open_records("x", "synthetic", count=3, size=5)
