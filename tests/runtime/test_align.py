"""facespot.align: the ArcFace 5-point crop, on the fixture photos."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

import facespot
from facespot.errors import FacespotError
from facespot.runtime.align import ARCFACE_TEMPLATE, similarity_transform

PHOTOS = Path(__file__).resolve().parents[1] / "fixtures" / "photos"
POINTS = {k: np.array(v[0], np.float64) for k, v in json.loads((PHOTOS / "landmarks.json").read_text()).items() if k != "_note"}


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def test_similarity_transform_recovers_a_known_one():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    a, s, t = np.deg2rad(23.0), 1.7, np.array([12.0, -4.0])
    m_true = np.array([[s * np.cos(a), -s * np.sin(a), t[0]], [s * np.sin(a), s * np.cos(a), t[1]]])
    np.testing.assert_allclose(similarity_transform(src, _apply(m_true, src)), m_true, atol=1e-9)
    mirrored = src * [-1, 1]  # a mirror image is no similarity: the fit stays a rotation, not a flip
    m = similarity_transform(src, mirrored)
    assert np.linalg.det(m[:, :2]) > 0


@pytest.mark.parametrize("name", ["astronaut.jpg", "grace_hopper.jpg"])
def test_frontal_faces_land_on_the_template_with_eyes_level(name):
    img = cv2.imread(str(PHOTOS / name))
    pts = POINTS[name]
    crop = facespot.align(img, pts)
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    moved = _apply(similarity_transform(pts, ARCFACE_TEMPLATE), pts)
    eyes = moved[:2]
    assert abs(eyes[0, 1] - eyes[1, 1]) < 2.0  # eyes level within 2 px
    assert np.abs(eyes - ARCFACE_TEMPLATE[:2]).max() < 4.0  # where the template puts them
    assert np.linalg.norm(moved - ARCFACE_TEMPLATE, axis=1).mean() < 4.0
    # the same face photographed turned by 25 degrees and 1.4x larger gives the same crop
    h, w = img.shape[:2]
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), 25, 1.4)
    turned = cv2.warpAffine(img, rot, (w, h))
    again = facespot.align(turned, _apply(rot, pts))
    diff = np.abs(again.astype(np.float32) - crop.astype(np.float32))[8:-8, 8:-8]  # borders resample differently
    assert diff.mean() < 6.0
    big = facespot.align(img, pts, size=224)
    assert big.shape == (224, 224, 3)
    np.testing.assert_allclose(cv2.resize(big, (112, 112), interpolation=cv2.INTER_AREA)[8:-8, 8:-8].astype(float).mean(),
                               crop[8:-8, 8:-8].astype(float).mean(), atol=3.0)  # fmt: skip


def test_align_takes_a_face_and_a_path(tmp_path):
    face = facespot.Face((185.0, 76.0, 274.0, 178.0), 0.9, POINTS["astronaut.jpg"].astype(np.float32))
    from_path = facespot.align(PHOTOS / "astronaut.jpg", face)
    from_array = facespot.align(cv2.imread(str(PHOTOS / "astronaut.jpg")), face)
    assert np.abs(from_path.astype(int) - from_array.astype(int)).mean() < 1.0  # a path is read as BGR


def test_faces_without_landmarks_and_bad_points_are_clear_errors():
    img = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(FacespotError, match="no landmarks"):
        facespot.align(img, facespot.Face((0.0, 0.0, 10.0, 10.0), 0.9, None))
    with pytest.raises(FacespotError, match="5 finite"):
        facespot.align(img, np.zeros((6, 2)))
    with pytest.raises(FacespotError, match="one point"):
        facespot.align(img, np.ones((5, 2)))
    with pytest.raises(FacespotError, match="image array"):
        facespot.align(np.zeros(5), np.arange(10.0).reshape(5, 2))


def test_the_default_gives_points_that_align():
    det = facespot.load("default")
    assert det.num_keypoints == 5  # the second-generation default has 5-point landmarks
    img = cv2.imread(str(PHOTOS / "astronaut.jpg"))
    face = max(det(img), key=lambda f: f.score)
    assert face.keypoints is not None and face.keypoints.shape == (5, 2)
    # within a tenth of the inter-ocular distance of the reference points, on average
    iod = np.linalg.norm(POINTS["astronaut.jpg"][0] - POINTS["astronaut.jpg"][1])
    assert np.linalg.norm(face.keypoints - POINTS["astronaut.jpg"], axis=1).mean() < 0.1 * iod
    moved = _apply(similarity_transform(face.keypoints, ARCFACE_TEMPLATE), face.keypoints)
    assert abs(moved[0, 1] - moved[1, 1]) < 3.0
