"""Faces come back in original-image pixels through letterbox, resize and tiles (hand-computed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facespot.runtime.detector import Detector, DetectorOptions
from facespot.runtime.preprocess import plan_view, tile_crops

from .helpers import FakeBackend, FakeModel


def test_fixed_size_letterbox_maps_back_exactly():
    # 256x128 image -> 128x128 canvas: scale 0.5, pasted top-left, bottom 64 rows padding.
    model = FakeModel([[0.5, 0.25, 0.25, 0.125], [0.1, 0.1, 0.05, 0.05]], fixed=(128, 128), num_keypoints=2)
    backend = FakeBackend(np.zeros((2, 4)), [10.0, -10.0], np.zeros((2, 2, 2)))
    det = Detector(model, backend, DetectorOptions(score_threshold=0.5))
    faces = det(np.zeros((128, 256, 3), np.uint8))
    assert backend.shapes == [(1, 3, 128, 128)]
    assert len(faces) == 1
    # canvas xyxy (0.375, 0.1875, 0.625, 0.3125) * 128 = (48, 24, 80, 40); / 0.5 = (96, 48, 160, 80)
    np.testing.assert_allclose(faces[0].box, (96, 48, 160, 80), atol=1e-4)
    assert faces[0].score == pytest.approx(1 / (1 + math.exp(-10)), rel=1e-6)
    # zero point offsets -> the anchor centre: canvas (64, 32) -> image (128, 64)
    np.testing.assert_allclose(faces[0].keypoints, [[128, 64], [128, 64]], atol=1e-4)


def test_nonzero_deltas_decode_and_map():
    # dx = 1 shifts the centre by 0.1 * 0.25 = 0.025; dw = ln(2) / 0.2 doubles the width.
    model = FakeModel([[0.5, 0.25, 0.25, 0.125]], fixed=(128, 128))
    backend = FakeBackend([[1.0, 0.0, math.log(2) / 0.2, 0.0]], [5.0])
    faces = Detector(model, backend)(np.zeros((128, 256, 3), np.uint8))
    # x: 0.525 +- 0.25 -> (0.275, 0.775) * 128 / 0.5 = (70.4, 198.4); y unchanged (48, 80)
    np.testing.assert_allclose(faces[0].box, (70.4, 48, 198.4, 80), atol=1e-3)


def test_long_side_resize_without_padding():
    # 300x200 image, long side 150 -> 150x100 input (scale 0.5 in both axes), no canvas padding
    model = FakeModel([[0.5, 0.5, 0.2, 0.2]])
    backend = FakeBackend(np.zeros((1, 4)), [4.0])
    faces = Detector(model, backend, DetectorOptions(resize=150))(np.zeros((200, 300, 3), np.uint8))
    assert backend.shapes == [(1, 3, 100, 150)]
    # canvas (60, 40, 90, 60) / 0.5 = (120, 80, 180, 120)
    np.testing.assert_allclose(faces[0].box, (120, 80, 180, 120), atol=1e-4)


def test_native_size_and_max_side_cap():
    model = FakeModel([[0.25, 0.5, 0.1, 0.1]])
    backend = FakeBackend(np.zeros((1, 4)), [4.0])
    det = Detector(model, backend, DetectorOptions(max_side=200))
    faces = det(np.zeros((100, 400, 3), np.uint8))  # long side 400 > 200 -> 200x50
    assert backend.shapes[-1] == (1, 3, 50, 200)
    np.testing.assert_allclose(faces[0].box, (80, 45, 120, 55), atol=1e-4)  # cx 100, cy 50, 40x10
    det.options.max_side = None
    det.options.min_side = None
    faces = det(np.zeros((100, 400, 3), np.uint8))
    assert backend.shapes[-1] == (1, 3, 100, 400)
    np.testing.assert_allclose(faces[0].box, (80, 45, 120, 55), atol=1e-4)
    det.options.min_side = 640  # the default: small images are upscaled, boxes map back exactly
    faces = det(np.zeros((100, 400, 3), np.uint8))
    assert backend.shapes[-1] == (1, 3, 160, 640)
    np.testing.assert_allclose(faces[0].box, (80, 45, 120, 55), atol=1e-4)


def test_square_letterbox_plan_for_grid_models():
    v = plan_view((0, 0, 448, 224), "auto", None, 224, 2048)
    assert (v.new_w, v.new_h, v.canvas_w, v.canvas_h) == (224, 112, 224, 224)
    # canvas point (0.5, 0.25) normalised -> canvas (112, 56) -> image (224, 112)
    np.testing.assert_allclose(v.to_image(np.array([0.5, 0.25])), [224, 112])


def test_tiles_map_back_with_their_offsets():
    model = FakeModel([[0.5, 0.5, 0.2, 0.2]])
    backend = FakeBackend(np.zeros((1, 4)), [4.0])
    opts = DetectorOptions(mode="multiscale", tile_size=100, tile_overlap=0.25, tile_zoom=1.0)
    faces = Detector(model, backend, opts)(np.zeros((200, 300, 3), np.uint8))
    crops = tile_crops(300, 200, 100, 0.25)
    assert [c[0] for c in crops[:4]] == [0, 75, 150, 200] and sorted({c[1] for c in crops}) == [0, 75, 100]
    got = {tuple(np.round(f.box, 3)) for f in faces}
    for x, y, w, h in crops:  # each tile: a 20x20 box at its centre, in image pixels
        cx, cy = x + w / 2, y + h / 2
        assert (cx - 10, cy - 10, cx + 10, cy + 10) in got
    assert (120.0, 80.0, 180.0, 120.0) in got  # the full-image pass: 60x40 at the centre
    assert len(faces) == len(crops) + 1


def test_min_face_size_and_max_faces():
    model = FakeModel([[0.2, 0.2, 0.1, 0.1], [0.7, 0.7, 0.4, 0.4]])
    backend = FakeBackend(np.zeros((2, 4)), [3.0, 2.0])
    det = Detector(model, backend, DetectorOptions(min_face_size=20))
    faces = det(np.zeros((100, 100, 3), np.uint8))  # 10 px and 40 px faces
    assert [round(f.width) for f in faces] == [40]
    det.options.min_face_size = 0
    det.options.max_faces = 1
    assert [round(f.width) for f in det(np.zeros((100, 100, 3), np.uint8))] == [10]  # best score only


def test_auto_upscales_small_images_to_min_side_only():
    from facespot.runtime.preprocess import plan_view

    v = plan_view((0, 0, 320, 240), "auto", None, None, 2048, 640)
    assert (v.new_w, v.new_h, v.canvas_w, v.canvas_h) == (640, 480, 640, 480)
    v = plan_view((0, 0, 320, 240), "native", None, None, 2048, 640)  # native means native
    assert (v.new_w, v.new_h) == (320, 240)
    v = plan_view((0, 0, 1000, 800), "auto", None, None, 2048, 640)  # large enough already
    assert (v.new_w, v.new_h) == (1000, 800)
    v = plan_view((0, 0, 300, 200), "auto", (128, 128), None, 2048, 640)  # fixed-size models letterbox
    assert (v.canvas_w, v.canvas_h) == (128, 128)
