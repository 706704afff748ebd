"""The detector takes integer images by their value range and float images in 0..1; anything
ambiguous is a clear FacespotError, never a silent empty answer (issue 11, item 4)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import facespot

PHOTO = Path(__file__).resolve().parents[1] / "fixtures" / "photos" / "astronaut.jpg"


@pytest.fixture(scope="module")
def detector():
    return facespot.load()


@pytest.fixture(scope="module")
def bgr():
    return cv2.imread(str(PHOTO))


@pytest.fixture(scope="module")
def expected(detector, bgr):
    faces = detector(bgr)
    assert len(faces) == 1
    return faces


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.int64, np.uint32, np.uint64, np.float16, np.float32, np.float64])
def test_every_numeric_type_finds_the_same_face(detector, bgr, expected, dtype):
    img = bgr.astype(dtype) / 255.0 if np.issubdtype(dtype, np.floating) else bgr.astype(dtype)
    faces = detector(img.astype(dtype))
    assert len(faces) == 1
    np.testing.assert_allclose(faces[0].box, expected[0].box, atol=2.0)


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda a: a.astype(np.float64), r"float images must be in 0\.\.1 \(0\.\.255 data: divide by 255"),
        (lambda a: a.astype(np.float32) * 4, "float images must be in 0..1"),
        (lambda a: a.astype(np.float32) / 255 - 0.5, "float images must be in 0..1"),
        (lambda a: a.astype(np.int64) * 4, "outside 0..255"),
        (lambda a: a.astype(np.int16) - 128, "outside 0..255"),
        (lambda a: a.astype(np.uint16), "uint16 image with values only up to"),
    ],
)
def test_ambiguous_images_are_errors(detector, bgr, make, message):
    with pytest.raises(facespot.FacespotError, match=message):
        detector(make(bgr))


def test_sixteen_bit_data_is_scaled(detector, bgr, expected):
    faces = detector(bgr.astype(np.uint16) * 257)
    assert len(faces) == 1 and np.allclose(faces[0].box, expected[0].box, atol=2.0)


@pytest.mark.parametrize("bad", [None, "photo.jpg", Path("photo.jpg"), 3, np.zeros((20, 30, 3), np.uint8)])
def test_batch_needs_a_list_of_images(detector, bad):
    with pytest.raises(facespot.FacespotError, match="batch"):
        detector.batch(bad)


def test_batch_accepts_lists_tuples_generators_and_4d_arrays(detector, bgr):
    assert len(detector.batch([bgr, bgr])) == 2
    assert len(detector.batch((bgr,))) == 1
    assert len(detector.batch(im for im in [bgr])) == 1
    assert len(detector.batch(np.stack([bgr, bgr]))) == 2
    assert detector.batch([]) == []
    with pytest.raises(facespot.FacespotError, match="got None"):
        detector.batch([bgr, None])
